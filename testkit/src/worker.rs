//! A `wordstream worker` child process run with `--log-format json`: its
//! stderr lines are collected as they come and parsed into [`LogLine`]s,
//! so a test waits for typed events (ready, status, restored, …) with a
//! deadline; it can be signalled, killed (-9) and stopped (SIGTERM, exit 0).
//! A worker still running when dropped is killed with SIGKILL, and so is
//! one whose spawning thread ends (a test binary that aborts).

use crate::events::{self, LogLine};
use crate::stack::Stack;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use wordstream::events::{Event, Status};

/// How long a worker may take to start and be ready, on a loaded box.
pub const READY: Duration = Duration::from_secs(60);

/// One worker process.
pub struct Worker {
    child: Option<Child>,
    /// Short name for messages ("w1").
    pub name: String,
    pid: u32,
    lines: Arc<Mutex<Vec<LogLine>>>,
    reader: Option<JoinHandle<()>>,
    /// Every stderr line, as written (for a look after the test).
    pub log_path: PathBuf,
    /// When it was started, and when it was killed or told to stop (Unix s).
    pub started_at: f64,
    pub ended_at: Option<f64>,
}

/// `wordstream --log-format json worker --bucket B --app-id A [--worker-id
/// ID] FLAGS…` with the stack's settings in the environment.
pub fn command(
    stack: &Stack,
    bucket: &str,
    app_id: &str,
    worker_id: Option<&str>,
    flags: &[&str],
) -> Command {
    let mut c = crate::cli::cmd(
        stack,
        &[
            "--log-format",
            "json",
            "worker",
            "--bucket",
            bucket,
            "--app-id",
            app_id,
        ],
    );
    if let Some(id) = worker_id {
        c.args(["--worker-id", id]);
    }
    c.args(flags);
    // The tests were written when full passes came every 30 s (the default
    // is 10 minutes since events exist): they keep that pace unless they
    // choose their own.
    if !flags.contains(&"--reconcile-interval") {
        c.args(["--reconcile-interval", TEST_RECONCILE]);
    }
    c
}

/// `--reconcile-interval` of test workers that do not pass one.
pub const TEST_RECONCILE: &str = "30";

impl Worker {
    /// Starts `cmd` (a worker command, see [`command`]), collecting its stderr.
    pub fn spawn(name: &str, mut cmd: Command) -> Worker {
        static SPAWNED: AtomicU64 = AtomicU64::new(0);
        let dir = crate::scratch_dir().join("worker-logs");
        std::fs::create_dir_all(&dir).expect("log folder");
        let n = SPAWNED.fetch_add(1, Ordering::Relaxed);
        let log_path = dir.join(format!("{}-{name}-{n}.log", std::process::id()));
        let started_at = crate::now();
        // SAFETY: prctl(2) only sets an attribute of the new process. It gets
        // SIGKILL when the thread that spawned it ends: a test binary that
        // aborts leaves no worker behind on the shared stack.
        unsafe {
            cmd.pre_exec(
                || match libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) {
                    0 => Ok(()),
                    _ => Err(std::io::Error::last_os_error()),
                },
            );
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning the worker");
        let stderr = child.stderr.take().expect("piped stderr");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let reader = {
            let (lines, log_path) = (lines.clone(), log_path.clone());
            std::thread::spawn(move || collect(stderr, &lines, &log_path))
        };
        Worker {
            pid: child.id(),
            child: Some(child),
            name: name.to_string(),
            lines,
            reader: Some(reader),
            log_path,
            started_at,
            ended_at: None,
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Every line so far.
    pub fn lines(&self) -> Vec<LogLine> {
        self.lines.lock().expect("not poisoned").clone()
    }

    /// The first event since `after` (Unix s) that `pred` accepts.
    pub fn find_event(&self, after: f64, pred: impl Fn(&Event) -> bool) -> Option<(f64, Event)> {
        let lines = self.lines.lock().expect("not poisoned");
        let found = events::events(&lines)
            .find(|(t, e)| *t >= after && pred(e))
            .map(|(t, e)| (t, e.clone()));
        found
    }

    /// Waits for the first event since `after` that `pred` accepts; panics
    /// (with the log's tail) if the worker exits or `deadline` passes first.
    pub async fn wait_event(
        &mut self,
        after: f64,
        deadline: Duration,
        what: &str,
        pred: impl Fn(&Event) -> bool,
    ) -> (f64, Event) {
        let start = Instant::now();
        loop {
            if let Some(found) = self.find_event(after, &pred) {
                return found;
            }
            self.assert_running();
            if start.elapsed() > deadline {
                panic!(
                    "worker {}: no {what} within {deadline:?}\n{}",
                    self.name,
                    self.log_tail(60)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for its `ready` event (its first assignment handled); returns
    /// when it was announced.
    pub async fn wait_ready(&mut self, deadline: Duration) -> f64 {
        let (t, _) = self
            .wait_event(0.0, deadline, "ready event", |e| {
                matches!(e, Event::Ready { .. })
            })
            .await;
        t
    }

    /// Its worker id (from its `joining` event): the `--worker-id`, or the
    /// default `hostname-pid`.
    pub fn worker_id(&self) -> Option<String> {
        match self.find_event(0.0, |e| matches!(e, Event::Joining { .. })) {
            Some((_, Event::Joining { worker, .. })) => Some(worker),
            _ => None,
        }
    }

    /// Its latest status event.
    pub fn latest_status(&self) -> Option<(f64, Status)> {
        events::statuses(&self.lines.lock().expect("not poisoned")).pop()
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            None => false,
            Some(c) => c.try_wait().expect("try_wait").is_none(),
        }
    }

    /// Panics (with the log's tail) if the process has exited.
    pub fn assert_running(&mut self) {
        if !self.is_running() {
            self.join_reader();
            panic!("worker {} is not running\n{}", self.name, self.log_tail(60));
        }
    }

    /// SIGKILL, and reap.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            self.ended_at = Some(crate::now());
            let _ = c.wait();
            self.join_reader();
        }
    }

    /// Sends `sig` (`libc::SIGTERM`, `libc::SIGINT`, …).
    pub fn signal(&self, sig: libc::c_int) {
        crate::procfs::signal(self.pid, sig)
            .unwrap_or_else(|e| panic!("signal {sig} to worker {}: {e}", self.name));
    }

    /// Waits for the process to exit, at most `deadline`; `None` if it did not.
    pub async fn wait_exit(&mut self, deadline: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        loop {
            let c = self.child.as_mut()?;
            if let Some(st) = c.try_wait().expect("try_wait") {
                self.child = None;
                self.join_reader();
                return Some(st);
            }
            if start.elapsed() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGTERM; the worker must exit 0 within 20 s.
    pub async fn stop(&mut self) {
        if self.child.is_some() {
            self.stop_with(libc::SIGTERM, Duration::from_secs(20)).await;
        }
    }

    /// Sends `sig` (SIGTERM, SIGINT); the worker must exit 0 within
    /// `deadline`. Returns how long it took.
    pub async fn stop_with(&mut self, sig: libc::c_int, deadline: Duration) -> Duration {
        let start = Instant::now();
        self.ended_at = Some(crate::now());
        self.signal(sig);
        match self.wait_exit(deadline).await {
            Some(st) if st.success() => start.elapsed(),
            Some(st) => panic!(
                "worker {} exited with {st} after signal {sig}\n{}",
                self.name,
                self.log_tail(40)
            ),
            None => panic!(
                "worker {} still running {deadline:?} after signal {sig}\n{}",
                self.name,
                self.log_tail(40)
            ),
        }
    }

    /// The last `n` lines, under a header naming the worker and its log file.
    pub fn log_tail(&self, n: usize) -> String {
        let lines = self.lines.lock().expect("not poisoned");
        let tail: Vec<String> = lines[lines.len().saturating_sub(n)..]
            .iter()
            .map(LogLine::to_string)
            .collect();
        format!(
            "--- worker {} (pid {}, {}) ---\n{}",
            self.name,
            self.pid,
            self.log_path.display(),
            tail.join("\n")
        )
    }

    /// CPU seconds (user + system) so far.
    pub fn cpu_seconds(&self) -> Option<f64> {
        crate::procfs::cpu_seconds(self.pid)
    }

    /// Its peak and current resident memory.
    pub fn memory(&self) -> crate::procfs::Memory {
        crate::procfs::memory(self.pid)
    }

    /// Waits until every line the process wrote is collected.
    fn join_reader(&mut self) {
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Reads `stderr` to its end: each line parsed into `lines` and written to
/// `log_path`.
fn collect(stderr: impl std::io::Read, lines: &Mutex<Vec<LogLine>>, log_path: &PathBuf) {
    let mut log = std::fs::File::create(log_path).ok();
    let mut reader = BufReader::new(stderr);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if let Some(f) = log.as_mut() {
            let _ = f.write_all(&buf);
        }
        let text = String::from_utf8_lossy(&buf);
        let line = LogLine::parse(text.trim_end_matches(['\n', '\r']), crate::now());
        lines.lock().expect("not poisoned").push(line);
    }
}
