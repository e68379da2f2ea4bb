//! Failpoints: named places in the worker where a test can stop, pause or
//! kill the process at exactly the moment a race needs, instead of timing a
//! signal from outside and hitting the window only by luck.
//!
//! `WORDSTREAM_FAILPOINTS=name=action[;name=action…]`, actions:
//! - `stop`: the process stops itself with SIGSTOP (the test sends SIGCONT);
//!   everything stops, heartbeats included, as in a VM pause;
//! - `sleep(MS)`: the calling thread sleeps;
//! - `exit`: the process exits at once with code 137, like a kill -9.
//!
//! A few failpoints make a condition true for a while instead (see
//! [`lasting`]): `sleep(MS)` then says for how long.
//!
//! Each failpoint fires once per process. Unset (as in production), a
//! failpoint costs one check of a value computed at the first call.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// The variable that names the failpoints.
pub const VAR: &str = "WORDSTREAM_FAILPOINTS";

#[derive(Clone, Debug, PartialEq, Eq)]
enum Action {
    Stop,
    Sleep(Duration),
    Exit,
}

fn parse(spec: &str) -> HashMap<String, Action> {
    spec.split(';')
        .filter_map(|item| {
            let (name, action) = item.trim().split_once('=')?;
            let action = match action.trim() {
                "stop" => Action::Stop,
                "exit" => Action::Exit,
                a => {
                    let ms = a.strip_prefix("sleep(")?.strip_suffix(')')?;
                    Action::Sleep(Duration::from_millis(ms.trim().parse().ok()?))
                }
            };
            Some((name.trim().to_string(), action))
        })
        .collect()
}

fn armed() -> &'static Mutex<HashMap<String, Action>> {
    static ARMED: OnceLock<Mutex<HashMap<String, Action>>> = OnceLock::new();
    ARMED.get_or_init(|| Mutex::new(std::env::var(VAR).map(|s| parse(&s)).unwrap_or_default()))
}

/// Runs the action armed for `name`, if any (once).
pub fn hit(name: &str) {
    let action = {
        let mut armed = armed().lock().unwrap_or_else(|e| e.into_inner());
        if armed.is_empty() {
            return;
        }
        armed.remove(name)
    };
    let Some(action) = action else { return };
    tracing::warn!("failpoint {name}: {action:?}");
    match action {
        // SAFETY: raise() is async-signal-safe and has no preconditions.
        Action::Stop => unsafe {
            libc::raise(libc::SIGSTOP);
        },
        Action::Sleep(d) => std::thread::sleep(d),
        Action::Exit => std::process::exit(137),
    }
}

/// How long the condition armed for `name` lasts (its `sleep(MS)`), once;
/// zero when it is not armed. For failpoints that fake a state of the
/// world, e.g. partitions without a leader, rather than pause the caller.
pub fn lasting(name: &str) -> Duration {
    let mut armed = armed().lock().unwrap_or_else(|e| e.into_inner());
    if armed.is_empty() {
        return Duration::ZERO;
    }
    let Some(&Action::Sleep(d)) = armed.get(name) else {
        return Duration::ZERO;
    };
    armed.remove(name);
    tracing::warn!("failpoint {name}: for {d:?}");
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse() {
        let m = parse("a=stop; b=sleep(250);c=exit;bad;d=sleep(x)");
        assert_eq!(m["a"], Action::Stop);
        assert_eq!(m["b"], Action::Sleep(Duration::from_millis(250)));
        assert_eq!(m["c"], Action::Exit);
        assert_eq!(m.len(), 3);
    }
}
