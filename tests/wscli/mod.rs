//! Running the real `wordstream` binary in e2e tests: a command with the
//! local stack's settings in its environment (and nothing else from the
//! caller's AWS/Kafka/.env setup), and its captured result.
//!
//! Use with `mod common; mod wscli;`.
#![allow(dead_code)]

use crate::common::Stack;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What a run of the binary did.
#[derive(Debug)]
pub struct Run {
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

/// Variables a developer's shell may hold that would change what the binary does.
const SCRUB: &[&str] = &[
    "KAFKA_BROKERS",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
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
    "WORDSTREAM_ENV_FILE",
    "WORDSTREAM_TEST_FAIL_AFTER_PARTS",
    "RUST_LOG",
];

/// `wordstream ARGS…` with the stack's settings in the environment.
pub fn cmd(stack: &Stack, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wordstream"));
    for v in SCRUB {
        c.env_remove(v);
    }
    c.args(args)
        .env("KAFKA_BROKERS", &stack.brokers)
        .env("AWS_ENDPOINT_URL", &stack.s3_endpoint)
        .env("AWS_ACCESS_KEY_ID", &stack.access_key)
        .env("AWS_SECRET_ACCESS_KEY", &stack.secret_key)
        .env("AWS_REGION", &stack.region)
        .env("S3_BUCKET", &stack.bucket)
        // no ~/.aws profile lookups, no .env from the working directory
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("WORDSTREAM_ENV_FILE", "/nonexistent/.env")
        .stdin(Stdio::null());
    c
}

/// Runs a command to the end (off the async workers) and captures its output.
pub async fn run(mut c: Command) -> Run {
    tokio::task::spawn_blocking(move || {
        let start = Instant::now();
        let out = c.output().expect("running wordstream");
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

/// The shared corpus: `$WORDSTREAM_CORPUS`, else `../shared/corpus` beside
/// the repository.
pub fn corpus() -> PathBuf {
    match std::env::var_os("WORDSTREAM_CORPUS") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"),
    }
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
