//! Fault injection against the real local stack: `kill -9` of the worker at
//! random moments, a Kafka broker restart, the S3 server frozen for 20 s.
//! After each, totals equal count-local of the uploaded files exactly and
//! every object is counted once.
//!
//! The broker restart and the S3 freeze affect every user of the shared
//! stack for a few seconds: those two tests take the stack exclusively
//! (`testkit::stack::exclusive`), so no other test of the binary runs
//! meanwhile. The broker is restarted with `scripts/stack stop-broker N` /
//! `start-broker N` (N=1 on the single node, 2 on the 3-node cluster); S3 is
//! frozen with SIGSTOP/SIGCONT to the versitygw process
//! (`.stack/run/s3.pid`), which keeps its connections and data.

use std::path::PathBuf;
use std::time::{Duration, Instant};
use testkit::app::App;
use testkit::corpus::{papers, Rng};
use testkit::counts::{count_bytes, times, Counts};
use testkit::worker::{Worker, READY};

/// Objects to upload: (key, file).
type Files = Vec<(String, PathBuf)>;
use testkit::stack::{exclusive, shared, BrokerDown, S3Frozen};

/// How long the final checks may wait for every object to be done.
const DONE: Duration = Duration::from_secs(300);

/// A fresh app, `n` papers of the corpus from the `skip`-th, and a ready
/// worker with id `worker_id`.
async fn start(prefix: &str, skip: usize, n: usize, worker_id: &str) -> (App, Files, Worker) {
    let (app, w) = App::with_worker(prefix, worker_id, &[]).await;
    (app, papers(skip, n), w)
}

/// The end of a run: every object of `files` and `more` counted exactly
/// once, the worker still running, then stopped cleanly.
async fn finish(app: &App, files: &Files, more: &[(String, Counts)], w: &mut Worker) {
    w.assert_running();
    app.finish(files, more, DONE, &mut [w]).await;
}

/// ≥ 10 `kill -9` at random moments (while starting, restoring, listing,
/// counting, committing) during a run of 240 objects uploaded gradually;
/// each time the worker restarts with the same --worker-id, fencing its
/// zombie's transaction.
#[tokio::test(flavor = "multi_thread")]
async fn kill9_at_random_moments_loses_nothing_and_counts_nothing_twice() {
    let _stack = shared().await;
    let (app, files, mut w) = start("ws-kill9", 0, 240, "crashy").await;
    let mut rng = Rng::from_clock("kill9");
    let uploads = app.upload_gradually(files.clone(), 8, Duration::from_millis(1000));
    let mut log = Vec::new();
    for kill in 1..=12 {
        // Two kills in three land after the ready event (listing, counting,
        // committing), the others at any moment from the start (connecting,
        // fencing, restoring).
        let when = if rng.below(3) > 0 {
            w.wait_ready(READY).await;
            let d = rng.millis(50, 1500);
            tokio::time::sleep(d).await;
            format!("{} ms after ready", d.as_millis())
        } else {
            let d = rng.millis(100, 2000);
            tokio::time::sleep(d).await;
            format!("{} ms after start", d.as_millis())
        };
        w.assert_running();
        w.kill9();
        log.push(format!(
            "kill {kill} {when}: {} done",
            app.done_count(&files).await
        ));
        w = app.worker("crashy", &[]);
    }
    eprintln!("{}", log.join("; "));
    uploads.await.expect("uploads");
    w.wait_ready(READY).await;
    finish(&app, &files, &[], &mut w).await;
}

/// The broker stops for ~8 s and starts again in the middle of a run of 200
/// objects: the worker rides it out (no exit) and counts each object once.
#[tokio::test(flavor = "multi_thread")]
async fn broker_restart_mid_run_loses_nothing_and_counts_nothing_twice() {
    let stack = exclusive().await;
    let (app, files, mut w) = start("ws-broker", 240, 200, "brk").await;
    let uploads = app.upload_gradually(files.clone(), 10, Duration::from_millis(400));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = app.done_count(&files).await;
    let t = Instant::now();
    // On the 3-node cluster (KAFKA_BROKERS lists three) stop node 2.
    let mut down = BrokerDown::stop(if stack.brokers.contains(',') { 2 } else { 1 });
    tokio::time::sleep(Duration::from_secs(8)).await;
    down.start();
    eprintln!(
        "broker down and up again in {:.1} s; {before} of {} objects were done when it stopped",
        t.elapsed().as_secs_f64(),
        files.len()
    );
    uploads.await.expect("uploads");
    finish(&app, &files, &[], &mut w).await;
}

/// The S3 server stops answering for 20 s (frozen) as soon as the first of
/// 100 uploaded objects are counted, then 100 more come: the worker waits,
/// retries, and counts each object once.
#[tokio::test(flavor = "multi_thread")]
async fn s3_frozen_for_20s_mid_run_loses_nothing_and_counts_nothing_twice() {
    let _stack = exclusive().await;
    let (app, files, mut w) = start("ws-s3down", 440, 200, "s3down").await;
    app.put_files(&files[..100], 16).await;
    // A 40 MB object (multipart), being read when S3 freezes: its body
    // stalls, times out, and is read again after the thaw.
    let para = b"the quick brown fox jumps over the lazy dog and runs away ";
    let per_part = (5 << 20) / para.len() + 1;
    app.put_repeated("big.txt", para, 8 * per_part).await;
    let big = times(&count_bytes(para), (8 * per_part) as i64);
    let big_url = app.url("big.txt");
    app.wait_for_ledger(&big_url, Duration::from_secs(60), &[&w])
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut frozen = S3Frozen::freeze();
    let latest = app.ledger_latest().await;
    let done = app.done_count(&files).await;
    let big_state = latest[&big_url]["state"].to_string();
    tokio::time::sleep(Duration::from_secs(20)).await;
    w.assert_running();
    frozen.thaw();
    eprintln!(
        "S3 frozen for 20 s with {done} of 100 uploaded papers done and the 40 MB object {big_state}"
    );
    app.put_files(&files[100..], 16).await;
    finish(&app, &files, &[("big.txt".to_string(), big)], &mut w).await;
    app.delete("big.txt").await;
}
