//! What `/proc` says about a process: its state, CPU seconds, memory; and
//! signals.

/// The fields of /proc/<pid>/stat from the third (state) on: the command
/// name before them may hold spaces, so they start after its last `)`.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// The process's state (`R` running, `S` sleeping, `T` stopped, …), `None`
/// once it is gone.
pub fn state(pid: u32) -> Option<char> {
    stat_fields(pid)?.first()?.chars().next()
}

/// utime + stime of a process in seconds (/proc/<pid>/stat fields 14, 15),
/// `None` once it is gone.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let f = stat_fields(pid)?;
    // f[0] is field 3 (state): utime is field 14, stime field 15.
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0) // USER_HZ is 100 on Linux
}

/// Memory of a process, KiB, from /proc/<pid>/status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Memory {
    /// Peak resident set (VmHWM).
    pub peak_kib: u64,
    /// Resident set now (VmRSS).
    pub rss_kib: u64,
}

/// VmHWM and VmRSS of a process (zeros once it is gone).
pub fn memory(pid: u32) -> Memory {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Memory {
        peak_kib: field("VmHWM:"),
        rss_kib: field("VmRSS:"),
    }
}

/// Sends `sig` (`libc::SIGTERM`, …) to `pid`.
pub fn signal(pid: u32, sig: libc::c_int) -> std::io::Result<()> {
    // SAFETY: kill(2) has no memory effects on this process.
    match unsafe { libc::kill(pid as libc::pid_t, sig) } {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

/// The local stack's own processes (Kafka nodes, versitygw) from its pid
/// files, labelled, for benchmarks that report their CPU use.
pub fn stack_processes() -> Vec<(String, u32)> {
    let run = crate::stack::stack_dir().join("run");
    ["kafka", "kafka-1", "kafka-2", "kafka-3", "s3"]
        .iter()
        .filter_map(|name| {
            let pid = std::fs::read_to_string(run.join(format!("{name}.pid")))
                .ok()?
                .trim()
                .parse::<u32>()
                .ok()?;
            state(pid)?;
            let label = if *name == "s3" { "versitygw" } else { name };
            Some((label.to_string(), pid))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_cpu_time_and_memory() {
        let pid = std::process::id();
        assert!(cpu_seconds(pid).is_some());
        let m = memory(pid);
        assert!(m.rss_kib > 0 && m.peak_kib >= m.rss_kib, "{m:?}");
        assert_eq!(cpu_seconds(u32::MAX), None);
    }

    #[test]
    fn a_stopped_process_is_in_state_t() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep(1)");
        let pid = child.id();
        signal(pid, libc::SIGSTOP).expect("SIGSTOP");
        let t = std::time::Instant::now();
        while state(pid) != Some('T') {
            assert!(t.elapsed().as_secs() < 5, "state {:?}", state(pid));
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
        assert_eq!(state(pid), None);
    }
}
