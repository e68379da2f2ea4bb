//! One test's application: a fresh bucket and a unique app id (so its own
//! topics and consumer group), its workers, its objects, and the checks on
//! what ends up in its changelog and ledger.

use crate::counts::{add_counts, count_local, diff_counts, Counts};
use crate::stack::stack;
use crate::worker::{self, Worker};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A bucket and an app id of their own.
#[derive(Clone, Debug)]
pub struct App {
    pub app_id: String,
    pub bucket: String,
}

/// A ledger record's value is a done state (counted or failed).
fn is_done(v: &serde_json::Value) -> bool {
    v["state"] == "counted" || v["state"] == "failed"
}

/// The log tails of `workers`, for a failure message.
pub fn tails(workers: &[&Worker], n: usize) -> String {
    workers
        .iter()
        .map(|w| w.log_tail(n))
        .collect::<Vec<_>>()
        .join("\n")
}

impl App {
    /// Creates the bucket; the app id is the bucket's name.
    pub async fn new(prefix: &str) -> App {
        let bucket = stack().new_bucket(prefix).await;
        App {
            app_id: bucket.clone(),
            bucket,
        }
    }

    /// A fresh app whose bucket holds `n` papers of the corpus from the
    /// `skip`th on (see [`crate::corpus::papers`]), and those files.
    pub async fn with_papers(prefix: &str, skip: usize, n: usize) -> (App, Vec<(String, PathBuf)>) {
        let app = App::new(prefix).await;
        let files = crate::corpus::papers(skip, n);
        app.put_files(&files, 8).await;
        (app, files)
    }

    /// A fresh app and a ready worker of it (see [`App::worker`]).
    pub async fn with_worker(prefix: &str, worker_id: &str, extra: &[&str]) -> (App, Worker) {
        let app = App::new(prefix).await;
        let mut w = app.worker(worker_id, extra);
        w.wait_ready(worker::READY).await;
        (app, w)
    }

    pub fn changelog_topic(&self) -> String {
        format!("{}-word_counts-changelog", self.app_id)
    }

    pub fn ledger_topic(&self) -> String {
        format!("{}-objects", self.app_id)
    }

    pub fn repartition_topic(&self) -> String {
        format!("{}-word_counts-repartition", self.app_id)
    }

    /// `s3://bucket/key`, the ledger's key of an object.
    pub fn url(&self, key: &str) -> String {
        wordstream::s3::url(&self.bucket, key)
    }

    /// Starts a worker (`--interval 0.5 --status-interval 5` and `extra`).
    /// An empty `worker_id` passes none (the default id, dynamic membership).
    pub fn worker(&self, worker_id: &str, extra: &[&str]) -> Worker {
        let id = (!worker_id.is_empty()).then_some(worker_id);
        let mut flags = vec!["--interval", "0.5", "--status-interval", "5"];
        flags.extend_from_slice(extra);
        Worker::spawn(id.unwrap_or("worker"), self.worker_command(id, &flags))
    }

    /// The command of a worker of this app (see [`worker::command`]), for a
    /// test that runs it its own way.
    pub fn worker_command(&self, worker_id: Option<&str>, flags: &[&str]) -> std::process::Command {
        worker::command(stack(), &self.bucket, &self.app_id, worker_id, flags)
    }

    /// Starts a worker of a group (see [`crate::group`]): `--interval 1
    /// --status-interval 1`, `--worker-id` if given (static membership), and
    /// `extra`.
    pub fn member(&self, name: &str, worker_id: Option<&str>, extra: &[&str]) -> Worker {
        let interval = crate::group::INTERVAL.to_string();
        let mut flags = vec!["--interval", &interval, "--status-interval", "1"];
        flags.extend_from_slice(extra);
        Worker::spawn(name, self.worker_command(worker_id, &flags))
    }

    /// Uploads one object.
    pub async fn put(&self, key: &str, data: Vec<u8>) {
        stack().put(&self.bucket, key, data).await
    }

    /// Uploads one object with a Content-Type and a Content-Encoding.
    pub async fn put_typed(
        &self,
        key: &str,
        data: Vec<u8>,
        content_type: Option<&str>,
        content_encoding: Option<&str>,
    ) {
        stack()
            .put_typed(&self.bucket, key, data, content_type, content_encoding)
            .await
    }

    /// Uploads files (key, path), `concurrency` at a time.
    pub async fn put_files(&self, files: &[(String, PathBuf)], concurrency: usize) {
        stack().put_files(&self.bucket, files, concurrency).await
    }

    /// A big object: `unit` × `times` (see [`crate::stack::Stack::put_repeated`]).
    pub async fn put_repeated(&self, key: &str, unit: &[u8], times: usize) {
        stack().put_repeated(&self.bucket, key, unit, times).await
    }

    /// Deletes an object.
    pub async fn delete(&self, key: &str) {
        stack().delete(&self.bucket, key).await
    }

    /// Uploads `files` in rounds of `per_round`, pausing `pause` between
    /// rounds, in the background (the workers run meanwhile).
    pub fn upload_gradually(
        &self,
        files: Vec<(String, PathBuf)>,
        per_round: usize,
        pause: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let app = self.clone();
        tokio::spawn(async move {
            for chunk in files.chunks(per_round) {
                app.put_files(chunk, per_round).await;
                tokio::time::sleep(pause).await;
            }
        })
    }

    /// Produces a raw record (not transactional) to the ledger partition the
    /// worker would choose (of `partitions`): what a discovery that listed
    /// `url` with this `etag` and `size` writes.
    pub async fn inject_discovered(&self, url: &str, etag: &str, size: usize, partitions: i32) {
        let value =
            serde_json::json!({"state": "discovered", "etag": etag, "size": size}).to_string();
        let part = wordstream::kafka::partition_for(url.as_bytes(), partitions);
        stack()
            .produce(
                &self.ledger_topic(),
                Some(part),
                &[(url.as_bytes(), value.as_bytes())],
            )
            .await;
    }

    /// The changelog (Faust serde): latest total per word.
    pub async fn changelog(&self) -> Counts {
        stack().changelog(&self.changelog_topic()).await
    }

    /// Every ledger record in partition/offset order: (key, JSON value).
    /// Objects' records only: the listing's progress (`s3://bucket/`,
    /// state `listing`) is left out.
    pub async fn ledger(&self) -> Vec<(String, serde_json::Value)> {
        stack()
            .read_to_end(&self.ledger_topic(), "read_committed")
            .await
            .into_iter()
            .filter_map(|r| {
                let v = r.value.as_deref()?;
                let v: serde_json::Value = serde_json::from_slice(v).expect("ledger value is JSON");
                (v["state"] != "listing").then(|| (r.key_str().to_string(), v))
            })
            .collect()
    }

    /// The latest ledger entry per key.
    pub async fn ledger_latest(&self) -> BTreeMap<String, serde_json::Value> {
        self.ledger().await.into_iter().collect()
    }

    /// The latest ledger entry per key, tombstoned keys left out (what
    /// compaction keeps), the listing's progress included.
    pub async fn ledger_live(&self) -> BTreeMap<String, serde_json::Value> {
        let mut live = BTreeMap::new();
        for r in stack()
            .read_to_end(&self.ledger_topic(), "read_committed")
            .await
        {
            let key = r.key_str().to_string();
            match r.value.as_deref() {
                Some(v) => {
                    live.insert(
                        key,
                        serde_json::from_slice(v).expect("ledger value is JSON"),
                    );
                }
                None => {
                    live.remove(&key);
                }
            }
        }
        live
    }

    /// How many of `files` the ledger says are done.
    pub async fn done_count(&self, files: &[(String, PathBuf)]) -> usize {
        let latest = self.ledger_latest().await;
        files
            .iter()
            .filter(|(k, _)| latest.get(&self.url(k)).is_some_and(is_done))
            .count()
    }

    /// Waits until the ledger has an entry (any state) for `url`.
    pub async fn wait_for_ledger(&self, url: &str, deadline: Duration, workers: &[&Worker]) {
        let start = Instant::now();
        while !self.ledger_latest().await.contains_key(url) {
            assert!(
                start.elapsed() < deadline,
                "{url} not in the ledger after {deadline:?}\n{}",
                tails(workers, 20)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the changelog equals `want`; panics with a diff and the
    /// workers' log tails after `deadline`.
    pub async fn wait_for_totals(&self, want: &Counts, deadline: Duration, workers: &[&Worker]) {
        let start = Instant::now();
        loop {
            let last = self.changelog().await;
            if last == *want {
                return;
            }
            if start.elapsed() > deadline {
                panic!(
                    "changelog of {} differs after {deadline:?}: {}\n{}",
                    self.app_id,
                    diff_counts(&last, want),
                    tails(workers, 40)
                );
            }
            tokio::time::sleep(Duration::from_millis(1500)).await;
        }
    }

    /// Waits until the ledger has a done (counted or failed) entry for each
    /// of `urls`.
    pub async fn wait_for_done(&self, urls: &[String], deadline: Duration, workers: &[&Worker]) {
        let start = Instant::now();
        loop {
            let latest = self.ledger_latest().await;
            let missing: Vec<&String> = urls
                .iter()
                .filter(|u| !latest.get(*u).is_some_and(is_done))
                .collect();
            if missing.is_empty() {
                return;
            }
            if start.elapsed() > deadline {
                panic!(
                    "{} of {} objects not done after {deadline:?} (e.g. {:?})\n{}",
                    missing.len(),
                    urls.len(),
                    &missing[..missing.len().min(5)],
                    tails(workers, 40)
                );
            }
            tokio::time::sleep(Duration::from_millis(1000)).await;
        }
    }

    /// Waits until every one of `urls` is done (within `deadline`) and the
    /// changelog equals `want` (within a minute more), checks that `w`
    /// still runs; returns the latest ledger record of each object.
    pub async fn wait_settled(
        &self,
        urls: &[String],
        want: &Counts,
        deadline: Duration,
        w: &mut Worker,
    ) -> BTreeMap<String, serde_json::Value> {
        self.wait_for_done(urls, deadline, &[w]).await;
        self.wait_for_totals(want, Duration::from_secs(60), &[w])
            .await;
        w.assert_running();
        self.ledger_latest().await
    }

    /// The final checks of a run: every object of `files` and of `more`
    /// (key, its counts) counted exactly once in the ledger (none failed),
    /// and the changelog equal to `count-local` of the files plus `more`.
    /// Returns the ledger's `worker` of each counted object (by URL).
    pub async fn assert_exactly_once(
        &self,
        files: &[(String, PathBuf)],
        more: &[(String, Counts)],
        deadline: Duration,
        workers: &[&Worker],
    ) -> BTreeMap<String, String> {
        let paths: Vec<PathBuf> = files.iter().map(|(_, p)| p.clone()).collect();
        let mut want = count_local(&paths);
        let mut urls: Vec<String> = files.iter().map(|(k, _)| self.url(k)).collect();
        for (k, c) in more {
            urls.push(self.url(k));
            add_counts(&mut want, c, 1);
        }
        let start = Instant::now();
        self.wait_for_done(&urls, deadline, workers).await;
        let left = deadline.saturating_sub(start.elapsed()) + Duration::from_secs(30);
        self.wait_for_totals(&want, left, workers).await;
        let mut counted: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (k, v) in self.ledger().await {
            assert_ne!(v["state"], "failed", "{k}: {v}");
            if v["state"] == "counted" {
                counted
                    .entry(k)
                    .or_default()
                    .push(v["worker"].as_str().unwrap_or("?").to_string());
            }
        }
        assert_eq!(
            counted.keys().cloned().collect::<BTreeSet<_>>(),
            urls.into_iter().collect::<BTreeSet<_>>(),
            "the set of counted objects"
        );
        let twice: Vec<_> = counted.iter().filter(|(_, w)| w.len() != 1).collect();
        assert!(twice.is_empty(), "counted more than once: {twice:?}");
        counted
            .into_iter()
            .map(|(k, mut w)| (k, w.remove(0)))
            .collect()
    }

    /// The end of a run: [`App::assert_exactly_once`], then every worker
    /// stops cleanly (SIGTERM, exit 0).
    pub async fn finish(
        &self,
        files: &[(String, PathBuf)],
        more: &[(String, Counts)],
        deadline: Duration,
        workers: &mut [&mut Worker],
    ) -> BTreeMap<String, String> {
        let refs: Vec<&Worker> = workers.iter().map(|w| &**w).collect();
        let counted = self.assert_exactly_once(files, more, deadline, &refs).await;
        for w in workers.iter_mut() {
            w.stop().await;
        }
        counted
    }
}

/// Objects counted per worker id (from [`App::assert_exactly_once`]).
pub fn per_worker(counted: &BTreeMap<String, String>) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for w in counted.values() {
        *out.entry(w.clone()).or_default() += 1;
    }
    out
}
