//! wordstream's test kit: everything the tests (`tests/offline`, `tests/e2e`,
//! `tests/cluster`), the examples and the benchmarks share, one concept per
//! module:
//!
//! - [`stack`]: where the local Kafka + S3 stack is, and the lock that keeps
//!   disruptive tests (broker restart, S3 freeze) apart from the others;
//! - [`stack_lock`]: that lock, a `flock` shared by every test process;
//! - [`names`]: unique names for topics, buckets, groups;
//! - [`wait`]: polling until something holds, with a deadline;
//! - [`cli`]: running the `wordstream` binary and capturing its output;
//! - [`worker`]: a `wordstream worker` child process and its JSON log lines;
//! - [`events`]: those log lines, parsed into typed [`wordstream::events::Event`]s;
//! - [`group`]: several workers of one group: who owns what, who lists;
//! - [`bench`]: the benchmarks' command line and first line;
//! - [`app`]: one test's application (bucket, app id, topics) and its checks;
//! - [`bucket`]: a model of a test bucket's contents as objects come and go;
//! - [`ranges`]: texts whose words straddle every range boundary (ranged reads);
//! - [`corpus`]: the test corpus (`tests/corpus`) and generated inputs;
//! - [`counts`]: expected word counts, from the core or `count-local`;
//! - [`formats`]: compressed, archived, XML, HTML copies of texts, and
//!   malicious ones (a gzip bomb, tars with path tricks);
//! - [`s3`]: S3 helpers (client, put, list, get, multipart through the binary);
//! - [`kafka`]: Kafka helpers (configs, topic admin, reading topics back);
//! - [`notify`]: S3 event notifications sent the way S3 sends them (to an
//!   SQS queue of the stack's SQS server, or to a Kafka topic);
//! - [`procfs`]: CPU seconds and memory of a process, from `/proc`;
//! - [`proxy`]: a TCP proxy in front of S3 that a test freezes and thaws;
//! - [`web`]: the worker's web server: its address, raw GETs, `/metrics` parsed.

pub mod app;
pub mod bench;
pub mod bucket;
pub mod cli;
pub mod corpus;
pub mod counts;
pub mod events;
pub mod formats;
pub mod group;
pub mod kafka;
pub mod names;
pub mod notify;
pub mod procfs;
pub mod proxy;
pub mod ranges;
pub mod s3;
pub mod stack;
pub mod stack_lock;
pub mod wait;
pub mod web;
pub mod worker;

use std::path::{Path, PathBuf};

/// The repository's root folder.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit lives in the repository")
}

/// A folder for the logs and files tests leave behind: `<repo>/target/testkit`.
pub fn scratch_dir() -> PathBuf {
    let dir = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => repo().join("target"),
    }
    .join("testkit");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    dir
}

/// Unix seconds, now (the clock of the JSON log lines' `ts`).
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
}
