//! Helpers of the worker's end-to-end tests (`tests/worker*.rs`): run the
//! real `wordstream worker` binary as a child process against the local
//! stack, upload objects with aws-sdk-s3, read the changelog and the ledger
//! back with a read_committed consumer, and compute expected counts with
//! the library's core or `wordstream count-local`.
//!
//! Use as `mod common; mod worker_harness;` at the root of a test binary.
#![allow(dead_code)]

use crate::common::{stack, unique_name, wait_for};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use futures::StreamExt;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use wordstream::count::{Counter, Options};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_wordstream");

/// Word → count.
pub type Counts = HashMap<String, i64>;

/// The shared corpus: `WORDSTREAM_CORPUS`, else `<repo>/../shared/corpus`.
pub fn corpus() -> PathBuf {
    match std::env::var_os("WORDSTREAM_CORPUS") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"),
    }
}

/// A file of the corpus, e.g. `demo/A1.headed.txt`.
pub fn corpus_file(rel: &str) -> PathBuf {
    let p = corpus().join(rel);
    assert!(
        p.is_file(),
        "{} is missing (set WORDSTREAM_CORPUS to the corpus folder)",
        p.display()
    );
    p
}

/// Counts `data` with the library's core (default options: UTF-8, case kept).
pub fn count_bytes(data: &[u8]) -> Counts {
    let mut c = Counter::new(Options::default());
    for chunk in data.chunks(64 << 10) {
        c.feed(chunk);
    }
    c.finish()
        .iter()
        .map(|(w, n)| (w.to_string(), n as i64))
        .collect()
}

/// Adds `b` × `times` into `a`.
pub fn add_counts(a: &mut Counts, b: &Counts, times: i64) {
    for (w, n) in b {
        *a.entry(w.clone()).or_default() += n * times;
    }
}

/// `wordstream count-local --output tsv PATHS…`, parsed.
pub fn count_local(paths: &[PathBuf]) -> Counts {
    let out = Command::new(BIN)
        .arg("count-local")
        .args(["--output", "tsv"])
        .args(paths)
        .env("WORDSTREAM_ENV_FILE", "/nonexistent")
        .stderr(Stdio::inherit())
        .output()
        .expect("running count-local");
    assert!(out.status.success(), "count-local failed: {:?}", out.status);
    let text = String::from_utf8(out.stdout).expect("count-local prints UTF-8");
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (w, n) = l
                .rsplit_once('\t')
                .unwrap_or_else(|| panic!("bad count-local line {l:?}"));
            (w.to_string(), n.parse().expect("count"))
        })
        .collect()
}

/// A human summary of how two count maps differ (empty if equal).
pub fn diff_counts(got: &Counts, want: &Counts) -> String {
    let mut lines = Vec::new();
    let mut n = 0;
    let mut keys: Vec<&String> = got.keys().chain(want.keys()).collect();
    keys.sort();
    keys.dedup();
    for k in keys {
        let (g, w) = (got.get(k), want.get(k));
        if g != w {
            n += 1;
            if lines.len() < 15 {
                lines.push(format!("  {k:?}: got {g:?}, want {w:?}"));
            }
        }
    }
    if n == 0 {
        return String::new();
    }
    format!(
        "{n} words differ ({} got, {} wanted; sum got {}, want {}):\n{}",
        got.len(),
        want.len(),
        got.values().sum::<i64>(),
        want.values().sum::<i64>(),
        lines.join("\n")
    )
}

/// One test's application: a fresh bucket and a unique app id (so unique
/// topics and consumer group).
#[derive(Clone)]
pub struct App {
    pub app_id: String,
    pub bucket: String,
    pub s3: aws_sdk_s3::Client,
}

impl App {
    /// Creates the bucket.
    pub async fn new(prefix: &str) -> App {
        let s = stack();
        let bucket = unique_name(prefix);
        s.create_bucket(&bucket).await;
        App {
            app_id: bucket.clone(),
            bucket,
            s3: s.s3_client(),
        }
    }

    pub fn changelog_topic(&self) -> String {
        format!("{}-word_counts-changelog", self.app_id)
    }

    pub fn ledger_topic(&self) -> String {
        format!("{}-objects", self.app_id)
    }

    /// `s3://bucket/key`, the ledger's key of an object.
    pub fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    /// Starts a worker with the stack's settings and `extra` flags. An
    /// empty `worker_id` passes none (the default id, dynamic membership).
    pub fn worker(&self, worker_id: &str, extra: &[&str]) -> WorkerProc {
        WorkerProc::spawn(self, worker_id, extra)
    }

    /// Uploads one object.
    pub async fn put(&self, key: &str, data: Vec<u8>) {
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(data))
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "put s3://{}/{key}: {}",
                    self.bucket,
                    aws_sdk_s3::error::DisplayErrorContext(e)
                )
            });
    }

    /// Deletes an object (big test objects must not pile up in the shared
    /// stack's data directory).
    pub async fn delete(&self, key: &str) {
        let _ = self
            .s3
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await;
    }

    /// Uploads files (key, path), `concurrency` at a time.
    pub async fn put_files(&self, files: &[(String, PathBuf)], concurrency: usize) {
        // Owned futures, so that callers may spawn this.
        let jobs: Vec<_> = files
            .iter()
            .cloned()
            .map(|(key, path)| {
                let app = self.clone();
                async move {
                    let data = std::fs::read(&path)
                        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
                    app.put(&key, data).await
                }
            })
            .collect();
        futures::stream::iter(jobs)
            .buffer_unordered(concurrency)
            .collect::<Vec<()>>()
            .await;
    }

    /// Multipart upload of `parts` parts, each made by `part(i)` (all but
    /// the last at least 5 MiB); memory holds one part at a time.
    pub async fn put_multipart(
        &self,
        key: &str,
        parts: usize,
        mut part: impl FnMut(usize) -> Vec<u8>,
    ) {
        let up = self
            .s3
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .expect("create_multipart_upload");
        let id = up.upload_id().expect("upload id").to_string();
        let mut done = Vec::new();
        for i in 0..parts {
            let n = (i + 1) as i32;
            let r = self
                .s3
                .upload_part()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(&id)
                .part_number(n)
                .body(ByteStream::from(part(i)))
                .send()
                .await
                .unwrap_or_else(|e| {
                    panic!(
                        "upload_part {n} of {key}: {}",
                        aws_sdk_s3::error::DisplayErrorContext(e)
                    )
                });
            done.push(
                CompletedPart::builder()
                    .part_number(n)
                    .e_tag(r.e_tag().unwrap_or_default())
                    .build(),
            );
        }
        self.s3
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(&id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(done))
                    .build(),
            )
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "complete_multipart_upload {key}: {}",
                    aws_sdk_s3::error::DisplayErrorContext(e)
                )
            });
    }

    /// The changelog, decoded as Faust JSON: latest total per word.
    pub async fn changelog(&self) -> Counts {
        let mut out = Counts::new();
        for r in stack()
            .read_to_end(&self.changelog_topic(), "read_committed")
            .await
        {
            let key = r.key.as_deref().expect("changelog record without key");
            let word: String = serde_json::from_slice(key)
                .unwrap_or_else(|e| panic!("changelog key {key:?} is not a JSON string: {e}"));
            match r.value.as_deref() {
                Some(v) => {
                    let n: i64 = serde_json::from_slice(v).unwrap_or_else(|e| {
                        panic!("changelog value {v:?} is not a JSON integer: {e}")
                    });
                    out.insert(word, n);
                }
                None => {
                    out.remove(&word);
                }
            }
        }
        out
    }

    /// Every ledger record in partition/offset order: (key, JSON value).
    pub async fn ledger(&self) -> Vec<(String, serde_json::Value)> {
        stack()
            .read_to_end(&self.ledger_topic(), "read_committed")
            .await
            .into_iter()
            .filter_map(|r| {
                let v = r.value.as_deref()?;
                let v: serde_json::Value = serde_json::from_slice(v).expect("ledger value is JSON");
                Some((r.key_str().to_string(), v))
            })
            .collect()
    }

    /// The latest ledger entry per key.
    pub async fn ledger_latest(&self) -> BTreeMap<String, serde_json::Value> {
        self.ledger().await.into_iter().collect()
    }

    /// Waits until every key in `keys` has a done (counted/failed) ledger
    /// entry, then until the changelog equals `want`; panics with a diff
    /// and the worker's log tail after `deadline`.
    pub async fn wait_for_totals(&self, want: &Counts, deadline: Duration, worker: &WorkerProc) {
        let start = Instant::now();
        loop {
            let last = self.changelog().await;
            if last == *want {
                return;
            }
            if start.elapsed() > deadline {
                panic!(
                    "changelog of {} differs after {deadline:?}: {}\n--- worker log tail ---\n{}",
                    self.app_id,
                    diff_counts(&last, want),
                    worker.log_tail(40)
                );
            }
            tokio::time::sleep(Duration::from_millis(1500)).await;
        }
    }

    /// Waits until the ledger has a done entry for each of `urls`.
    pub async fn wait_for_done(&self, urls: &[String], deadline: Duration, worker: &WorkerProc) {
        let start = Instant::now();
        loop {
            let latest = self.ledger_latest().await;
            let missing: Vec<&String> = urls
                .iter()
                .filter(|u| {
                    !latest
                        .get(*u)
                        .is_some_and(|v| v["state"] == "counted" || v["state"] == "failed")
                })
                .collect();
            if missing.is_empty() {
                return;
            }
            if start.elapsed() > deadline {
                panic!(
                    "{} of {} objects not done after {deadline:?} (e.g. {:?})\n--- worker log tail ---\n{}",
                    missing.len(),
                    urls.len(),
                    &missing[..missing.len().min(5)],
                    worker.log_tail(40)
                );
            }
            tokio::time::sleep(Duration::from_millis(1000)).await;
        }
    }
}

/// A `wordstream worker` child process; killed (SIGKILL) when dropped.
pub struct WorkerProc {
    child: Option<Child>,
    pub worker_id: String,
    pub log: PathBuf,
    started: Instant,
}

static SPAWNED: AtomicU64 = AtomicU64::new(0);

impl WorkerProc {
    fn spawn(app: &App, worker_id: &str, extra: &[&str]) -> WorkerProc {
        let s = stack();
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("worker-logs");
        std::fs::create_dir_all(&dir).expect("log dir");
        let n = SPAWNED.fetch_add(1, Ordering::Relaxed);
        let log = dir.join(format!("{}-{worker_id}-{n}.log", app.app_id));
        let out = File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let mut cmd = Command::new(BIN);
        cmd.arg("worker");
        if !worker_id.is_empty() {
            cmd.args(["--worker-id", worker_id]);
        }
        let child = cmd
            .args(["--bucket", &app.bucket])
            .args(["--app-id", &app.app_id])
            .args(["--brokers", &s.brokers])
            .args(["--endpoint-url", &s.s3_endpoint])
            .args(["--region", &s.region])
            .args(["--interval", "0.5", "--status-interval", "5"])
            .args(extra)
            .env("AWS_ACCESS_KEY_ID", &s.access_key)
            .env("AWS_SECRET_ACCESS_KEY", &s.secret_key)
            .env("WORDSTREAM_ENV_FILE", "/nonexistent")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawning the worker");
        WorkerProc {
            child: Some(child),
            worker_id: worker_id.to_string(),
            log,
            started: Instant::now(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// The whole log so far.
    pub fn log_text(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = File::open(&self.log) {
            let mut b = Vec::new();
            let _ = f.read_to_end(&mut b);
            s = String::from_utf8_lossy(&b).into_owned();
        }
        s
    }

    /// The last `n` lines of the log.
    pub fn log_tail(&self, n: usize) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Panics (with the log) if the process has exited.
    pub fn assert_running(&mut self) {
        if let Some(status) = self
            .child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
        {
            panic!(
                "worker {} exited with {status}\n--- log ---\n{}",
                self.worker_id,
                self.log_tail(60)
            );
        }
    }

    /// Waits for "Worker ready" in the log.
    pub async fn wait_ready(&mut self, deadline: Duration) {
        let start = Instant::now();
        loop {
            if self.log_text().contains("Worker ready") {
                return;
            }
            self.assert_running();
            if start.elapsed() > deadline {
                panic!(
                    "worker {} not ready after {deadline:?}\n--- log ---\n{}",
                    self.worker_id,
                    self.log_tail(60)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGKILL, and reap.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends `sig` (e.g. "TERM", "INT") with kill(1).
    pub fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill(1)");
        assert!(st.success(), "kill -{sig} failed");
    }

    /// Waits for the process to exit, at most `deadline`; `None` if it did not.
    pub async fn wait_exit(&mut self, deadline: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        loop {
            let c = self.child.as_mut()?;
            if let Some(st) = c.try_wait().expect("try_wait") {
                self.child = None;
                return Some(st);
            }
            if start.elapsed() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the worker with SIGTERM and checks it exits 0 within 10 s.
    pub async fn stop(&mut self) {
        if self.child.is_none() {
            return;
        }
        self.signal("TERM");
        match self.wait_exit(Duration::from_secs(10)).await {
            Some(st) if st.success() => {}
            Some(st) => panic!(
                "worker {} exited with {st} after SIGTERM\n--- log ---\n{}",
                self.worker_id,
                self.log_tail(40)
            ),
            None => panic!(
                "worker {} still running 10 s after SIGTERM\n--- log ---\n{}",
                self.worker_id,
                self.log_tail(40)
            ),
        }
    }
}

impl Drop for WorkerProc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Produces a raw record (not transactional) to a ledger partition chosen
/// as the worker does: what a discovery that listed `url` would write.
pub async fn inject_discovered(app: &App, url: &str, partitions: i32) {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let producer: FutureProducer = stack().producer_config().create().expect("producer");
    let value = serde_json::json!({"state": "discovered", "etag": "\"0\"", "size": 1}).to_string();
    let part = wordstream::kafka::partition_for(url.as_bytes(), partitions);
    producer
        .send(
            FutureRecord::to(&app.ledger_topic())
                .partition(part)
                .key(url)
                .payload(&value),
            Duration::from_secs(30),
        )
        .await
        .unwrap_or_else(|(e, _)| panic!("producing to {}: {e}", app.ledger_topic()));
}

/// Polls until `f` holds (see `common::wait_for`).
pub async fn until<F, Fut>(deadline: Duration, what: &str, f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    wait_for(deadline, what, f).await
}
