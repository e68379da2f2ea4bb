//! Running the real `wordstream` binary: a command with the local stack's
//! settings in its environment (and nothing else from the caller's
//! AWS/Kafka/.env setup), and its captured result.

use crate::stack::Stack;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// The binary under test: `WORDSTREAM_BIN`, else the `wordstream` next to
/// (or above) the running test, example or benchmark in cargo's target
/// folder (`target/debug/deps/e2e-…` → `target/debug/wordstream`).
pub fn bin() -> &'static PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("WORDSTREAM_BIN").filter(|p| !p.is_empty()) {
            return PathBuf::from(p);
        }
        let exe = std::env::current_exe().expect("the running executable");
        exe.ancestors()
            .skip(1)
            .take(3)
            .map(|d| d.join("wordstream"))
            .find(|p| p.is_file())
            .unwrap_or_else(|| {
                panic!(
                    "no wordstream binary above {} (build it, or set WORDSTREAM_BIN)",
                    exe.display()
                )
            })
    })
}

/// What a run of the binary did.
#[derive(Debug)]
pub struct Run {
    /// `None`: killed by a signal (or by [`run_for`]'s limit).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub took: Duration,
}

impl Run {
    /// Panics with both streams unless the exit code was 0.
    pub fn ok(self) -> Self {
        assert_eq!(
            self.code,
            Some(0),
            "wordstream failed\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// Panics unless the run failed with exit code 1 and exactly `line` (plus
    /// a newline) on stderr.
    pub fn fails_with(self, line: &str) -> Self {
        assert_eq!(
            self.code,
            Some(1),
            "expected exit 1\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        assert_eq!(self.stderr, format!("{line}\n"), "stderr");
        self
    }

    /// Both streams, for secret checks.
    pub fn all_output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// The stdout of a finished command; panics with `what` and its stderr
/// unless it exited 0.
pub fn stdout_of(what: &str, out: std::process::Output) -> Vec<u8> {
    assert!(
        out.status.success(),
        "{what}: {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Variables a developer's shell may hold that would change what the binary does.
const SCRUB: &[&str] = &[
    "KAFKA_BROKERS",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL_SQS",
    "WORDSTREAM_EVENTS",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_PROFILE",
    "ACCESS_KEY",
    "SECRET_KEY",
    "S3_BUCKET",
    "WORDSTREAM_APP_ID",
    "WORDSTREAM_TABLE",
    "WORDSTREAM_WORKER_ID",
    "WORDSTREAM_LOG_FORMAT",
    "WORDSTREAM_ENV_FILE",
    "WORDSTREAM_TEST_FAIL_AFTER_PARTS",
    "KAFKA_SECURITY_PROTOCOL",
    "KAFKA_SASL_MECHANISM",
    "KAFKA_SASL_USERNAME",
    "KAFKA_SASL_PASSWORD",
    "KAFKA_CA_LOCATION",
    "KAFKA_AUTH",
    "MSK_REGION",
    "RUST_LOG",
];

/// `wordstream ARGS…` with no settings from the caller's environment (no
/// stack either): for commands that need none, like `count-local`.
pub fn offline_cmd(args: &[&str]) -> Command {
    let mut c = Command::new(bin());
    for v in SCRUB {
        c.env_remove(v);
    }
    c.args(args)
        // no ~/.aws profile lookups, no .env from the working directory
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("WORDSTREAM_ENV_FILE", "/dev/null")
        // workers of parallel tests must not all take port 6066
        .env("WORDSTREAM_WEB_PORT", "0")
        .stdin(Stdio::null());
    c
}

/// `wordstream ARGS…` with the stack's settings in the environment.
pub fn cmd(stack: &Stack, args: &[&str]) -> Command {
    let mut c = offline_cmd(args);
    c.env("KAFKA_BROKERS", &stack.brokers)
        .env("AWS_ENDPOINT_URL", &stack.s3_endpoint)
        .env("AWS_ACCESS_KEY_ID", &stack.access_key)
        .env("AWS_SECRET_ACCESS_KEY", &stack.secret_key)
        .env("AWS_REGION", &stack.region)
        .env("S3_BUCKET", &stack.bucket);
    c
}

/// `wordstream consume --topic TOPIC FLAGS…` with the stack's settings.
pub fn consume(stack: &Stack, topic: &str, flags: &[&str]) -> Command {
    let mut c = cmd(stack, &["consume", "--topic", topic]);
    c.args(flags);
    c
}

/// Runs a command to the end (off the async workers) and captures its output.
pub async fn run(c: Command) -> Run {
    run_for(c, None).await
}

/// [`run`], killing the process (SIGKILL) if it runs longer than `limit`.
pub async fn run_for(mut c: Command, limit: Option<Duration>) -> Run {
    tokio::task::spawn_blocking(move || {
        let start = Instant::now();
        let child = c
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running wordstream");
        let done = Arc::new(AtomicBool::new(false));
        if let Some(limit) = limit {
            let (pid, done) = (child.id(), done.clone());
            std::thread::spawn(move || {
                while start.elapsed() < limit {
                    if done.load(Ordering::SeqCst) {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                if !done.load(Ordering::SeqCst) {
                    // gone meanwhile: nothing to kill
                    let _ = crate::procfs::signal(pid, libc::SIGKILL);
                }
            });
        }
        let out = child.wait_with_output().expect("running wordstream");
        done.store(true, Ordering::SeqCst);
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            took: start.elapsed(),
        }
    })
    .await
    .expect("join")
}

/// `run(cmd(stack, args))`.
pub async fn wordstream(stack: &Stack, args: &[&str]) -> Run {
    run(cmd(stack, args)).await
}

/// Runs a command whose stdout reader is gone before it writes (as with
/// `| head` after it exited): returns the exit code and stderr.
pub async fn run_with_closed_stdout(mut c: Command) -> (Option<i32>, String) {
    tokio::task::spawn_blocking(move || {
        let mut child = c
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn wordstream");
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("wait");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .expect("join")
}

/// `c` run by bash inside `script`, where `"$@"` is the command (its
/// program and arguments) and the environment is `c`'s: e.g. `exec "$@" >
/// >(true)` for a process whose stdout reader is gone.
pub fn under_bash(c: &Command, script: &str) -> Command {
    let mut sh = Command::new("bash");
    sh.arg("-c")
        .arg(script)
        .arg("bash")
        .arg(c.get_program())
        .args(c.get_args())
        .stdin(Stdio::null());
    for (k, v) in c.get_envs() {
        match v {
            Some(v) => sh.env(k, v),
            None => sh.env_remove(k),
        };
    }
    if let Some(dir) = c.get_current_dir() {
        sh.current_dir(dir);
    }
    sh
}

/// Runs `c` under bash with `redirections` after it (`| true`, `2>&-`,
/// `>/dev/full`, `2>&1 | head -1`), as a user's shell would. The exit code
/// is the program's (bash's `PIPESTATUS[0]`: 128 + N if signal N killed
/// it); stdout and stderr are what reaches the end of the pipeline.
pub async fn shell(c: &Command, redirections: &str) -> Run {
    run(under_bash(
        c,
        &format!("\"$@\" {redirections}; exit ${{PIPESTATUS[0]}}"),
    ))
    .await
}
