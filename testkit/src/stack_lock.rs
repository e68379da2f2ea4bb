//! The lock that keeps disruptive tests apart from the others, across
//! processes: an advisory `flock(2)` on one file of the stack's folder
//! (`<stack dir>/tests.lock`), taken shared by most tests and exclusively
//! by those that disturb the stack for everybody.
//!
//! Across processes, so that several test binaries (or several runs of one,
//! as `scripts/test` starts the long tests apart from the rest) share one
//! stack safely: a broker stopped by one process's test never hits another
//! process's test. Each hold is an open file of its own (flock locks belong
//! to the open file), released when it is dropped, also when its process
//! dies.
//!
//! Linux grants a shared lock while an exclusive one waits: a test waiting
//! to be alone does not hold back the tests that share the stack; it gets
//! the stack once none of them runs.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// One hold of the lock (shared or exclusive), until dropped.
#[derive(Debug)]
pub struct Hold {
    _file: File,
}

/// How the stack is held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Shared,
    Alone,
}

impl Mode {
    fn operation(self) -> libc::c_int {
        match self {
            Mode::Shared => libc::LOCK_SH,
            Mode::Alone => libc::LOCK_EX,
        }
    }
}

/// The lock file of the stack in `stack_dir` (the folder is created if
/// missing).
pub fn lock_file(stack_dir: &Path) -> PathBuf {
    std::fs::create_dir_all(stack_dir)
        .unwrap_or_else(|e| panic!("creating {}: {e}", stack_dir.display()));
    stack_dir.join("tests.lock")
}

fn open(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("opening the stack lock {}: {e}", path.display()))
}

fn flock(file: &File, operation: libc::c_int) -> std::io::Result<()> {
    loop {
        // SAFETY: flock(2) on a descriptor this File owns; no memory effects.
        if unsafe { libc::flock(file.as_raw_fd(), operation) } == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Takes the lock at `path` in `mode`, waiting as long as it takes.
pub fn take_blocking(path: &Path, mode: Mode) -> Hold {
    let file = open(path);
    flock(&file, mode.operation())
        .unwrap_or_else(|e| panic!("locking {} ({mode:?}): {e}", path.display()));
    Hold { _file: file }
}

/// [`take_blocking`] on tokio's blocking threads.
pub async fn take(path: PathBuf, mode: Mode) -> Hold {
    tokio::task::spawn_blocking(move || take_blocking(&path, mode))
        .await
        .expect("the lock's thread does not panic but for an unusable lock file")
}

/// Takes the lock at `path` in `mode` if it can at once.
pub fn try_take(path: &Path, mode: Mode) -> Option<Hold> {
    let file = open(path);
    match flock(&file, mode.operation() | libc::LOCK_NB) {
        Ok(()) => Some(Hold { _file: file }),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => None,
        Err(e) => panic!("locking {} ({mode:?}): {e}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_test_waiting_alone_lets_shared_ones_in_then_runs_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = lock_file(dir.path());
        let a = try_take(&path, Mode::Shared).expect("A shares");
        let alone = tokio::spawn(take(path.clone(), Mode::Alone));
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!alone.is_finished(), "B waits while A shares");
        let c = try_take(&path, Mode::Shared).expect("C shares although B waits");
        drop(a);
        drop(c);
        let b = tokio::time::timeout(Duration::from_secs(5), alone)
            .await
            .expect("B runs once nobody shares")
            .expect("join");
        assert!(
            try_take(&path, Mode::Shared).is_none(),
            "nobody shares while B is alone"
        );
        assert!(
            try_take(&path, Mode::Alone).is_none(),
            "nor is anybody else alone"
        );
        drop(b);
        assert!(try_take(&path, Mode::Shared).is_some());
    }
}
