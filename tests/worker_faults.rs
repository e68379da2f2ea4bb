//! Fault injection against the real local stack: `kill -9` of the worker at
//! random moments, a Kafka broker restart, the S3 server frozen for 20 s.
//! After each, totals equal count-local of the uploaded files exactly and
//! every object is counted once.
//!
//! The broker restart and the S3 freeze affect every user of the shared
//! stack for a few seconds: the tests of this binary take one lock and run
//! one at a time. The broker is restarted with `scripts/stack stop-broker N`
//! / `start-broker N` (N=1 on the single node, 2 on the 3-node cluster);
//! S3 is frozen with SIGSTOP/SIGCONT to the versitygw process
//! (`.stack/run/s3.pid`), which keeps its connections and data.
//!
//! Run: `eval "$(scripts/stack env)" && cargo test --test worker_faults`.

mod common;
mod worker_harness;

use common::stack;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use worker_harness::{add_counts, corpus, count_bytes, count_local, App, Counts, WorkerProc};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// xorshift64*, seeded from the clock (the seed is printed).
struct Rng(u64);

impl Rng {
    fn from_clock(what: &str) -> Rng {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            | 1;
        eprintln!("{what}: random seed {seed}");
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.next() % (hi - lo))
    }
}

/// `n` papers of the corpus after the first `skip` (sorted), as (key, path).
fn papers(skip: usize, n: usize) -> Vec<(String, PathBuf)> {
    let mut all: Vec<PathBuf> = std::fs::read_dir(corpus().join("papers"))
        .expect("corpus papers")
        .map(|e| e.unwrap().path())
        .collect();
    all.sort();
    assert!(all.len() >= skip + n, "corpus has {} papers", all.len());
    all[skip..skip + n]
        .iter()
        .map(|p| {
            (
                format!("papers/{}", p.file_name().unwrap().to_string_lossy()),
                p.clone(),
            )
        })
        .collect()
}

/// Uploads `files` in rounds of `per_round`, pausing `pause` between rounds.
fn upload_gradually(
    app: &App,
    files: Vec<(String, PathBuf)>,
    per_round: usize,
    pause: Duration,
) -> tokio::task::JoinHandle<()> {
    let app = app.clone();
    tokio::spawn(async move {
        for chunk in files.chunks(per_round) {
            app.put_files(chunk, per_round).await;
            tokio::time::sleep(pause).await;
        }
    })
}

/// The final checks: every file's object counted exactly once in the
/// ledger, and the changelog equal to count-local of the files.
async fn assert_exactly_once(app: &App, files: &[(String, PathBuf)], w: &WorkerProc) {
    assert_exactly_once_with(app, files, &[], w).await
}

/// [`assert_exactly_once`], with more objects: (key, their counts).
async fn assert_exactly_once_with(
    app: &App,
    files: &[(String, PathBuf)],
    more: &[(String, Counts)],
    w: &WorkerProc,
) {
    let mut urls: Vec<String> = files.iter().map(|(k, _)| app.url(k)).collect();
    let paths: Vec<PathBuf> = files.iter().map(|(_, p)| p.clone()).collect();
    let mut want = count_local(&paths);
    for (k, c) in more {
        urls.push(app.url(k));
        add_counts(&mut want, c, 1);
    }
    app.wait_for_done(&urls, Duration::from_secs(300), w).await;
    app.wait_for_totals(&want, Duration::from_secs(90), w).await;
    let mut counted: std::collections::BTreeMap<String, usize> = Default::default();
    for (k, v) in app.ledger().await {
        assert_ne!(v["state"], "failed", "{k}: {v}");
        if v["state"] == "counted" {
            *counted.entry(k).or_default() += 1;
        }
    }
    let mut sorted = urls.clone();
    sorted.sort();
    assert_eq!(
        counted.keys().cloned().collect::<Vec<_>>(),
        sorted,
        "counted objects"
    );
    let twice: Vec<_> = counted.iter().filter(|(_, &n)| n != 1).collect();
    assert!(twice.is_empty(), "counted more than once: {twice:?}");
}

/// How many of `files` the ledger says are done.
async fn done_count(app: &App, files: &[(String, PathBuf)]) -> usize {
    let latest = app.ledger_latest().await;
    files
        .iter()
        .filter(|(k, _)| {
            latest
                .get(&app.url(k))
                .is_some_and(|v| v["state"] == "counted" || v["state"] == "failed")
        })
        .count()
}

/// ≥ 10 `kill -9` at random moments (while starting, restoring, listing,
/// counting, committing) during a run of 240 objects uploaded gradually;
/// each time the worker restarts with the same --worker-id, fencing its
/// zombie's transaction.
#[tokio::test(flavor = "multi_thread")]
async fn kill9_at_random_moments_loses_nothing_and_counts_nothing_twice() {
    let _serial = SERIAL.lock().await;
    let app = App::new("ws-kill9").await;
    let files = papers(0, 240);
    let mut rng = Rng::from_clock("kill9");
    let mut w = app.worker("crashy", &[]);
    w.wait_ready(Duration::from_secs(60)).await;
    let uploads = upload_gradually(&app, files.clone(), 8, Duration::from_millis(1000));
    let mut log = Vec::new();
    for kill in 1..=12 {
        // Two kills in three land after "Worker ready" (listing, counting,
        // committing), the others at any moment from the start (connecting,
        // fencing, restoring).
        let when = if rng.next() % 3 > 0 {
            w.wait_ready(Duration::from_secs(60)).await;
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
            done_count(&app, &files).await
        ));
        w = app.worker("crashy", &[]);
    }
    eprintln!("{}", log.join("; "));
    uploads.await.expect("uploads");
    w.wait_ready(Duration::from_secs(60)).await;
    assert_exactly_once(&app, &files, &w).await;
    w.assert_running();
    w.stop().await;
}

/// Restarts the Kafka broker (SIGTERM, start again) with `scripts/stack`
/// when dropped, if it is still stopped: a failing test must not leave the
/// shared stack without its broker.
struct BrokerDown {
    node: String,
    restarted: bool,
}

fn stack_script(args: &[&str]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/stack");
    let st = Command::new("bash")
        .arg(&script)
        .args(args)
        .status()
        .expect("running scripts/stack");
    assert!(st.success(), "scripts/stack {args:?} failed: {st}");
}

impl BrokerDown {
    fn stop() -> BrokerDown {
        // On the 3-node cluster (KAFKA_BROKERS lists three) stop node 2.
        let node = if stack().brokers.contains(',') {
            "2"
        } else {
            "1"
        };
        stack_script(&["stop-broker", node]);
        BrokerDown {
            node: node.to_string(),
            restarted: false,
        }
    }

    fn start(&mut self) {
        stack_script(&["start-broker", &self.node]);
        self.restarted = true;
    }
}

impl Drop for BrokerDown {
    fn drop(&mut self) {
        if !self.restarted {
            stack_script(&["start-broker", &self.node]);
        }
    }
}

/// The broker stops for ~8 s and starts again in the middle of a run of 200
/// objects: the worker rides it out (no exit) and counts each object once.
#[tokio::test(flavor = "multi_thread")]
async fn broker_restart_mid_run_loses_nothing_and_counts_nothing_twice() {
    let _serial = SERIAL.lock().await;
    let app = App::new("ws-broker").await;
    let files = papers(240, 200);
    let mut w = app.worker("brk", &[]);
    w.wait_ready(Duration::from_secs(60)).await;
    let uploads = upload_gradually(&app, files.clone(), 10, Duration::from_millis(400));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = done_count(&app, &files).await;
    let t = Instant::now();
    let mut down = BrokerDown::stop();
    tokio::time::sleep(Duration::from_secs(8)).await;
    down.start();
    eprintln!(
        "broker down and up again in {:.1} s; {before} of {} objects were done when it stopped",
        t.elapsed().as_secs_f64(),
        files.len()
    );
    uploads.await.expect("uploads");
    w.assert_running();
    assert_exactly_once(&app, &files, &w).await;
    w.assert_running();
    w.stop().await;
}

/// SIGCONT to versitygw when dropped, if it is still frozen.
struct S3Frozen {
    pid: String,
    thawed: bool,
}

impl S3Frozen {
    fn freeze() -> S3Frozen {
        let dir = std::env::var_os("WORDSTREAM_STACK_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".stack"));
        let pid_file = dir.join("run/s3.pid");
        let pid = std::fs::read_to_string(&pid_file)
            .unwrap_or_else(|e| panic!("{}: {e} (is the stack up?)", pid_file.display()))
            .trim()
            .to_string();
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        assert!(
            comm.contains("versitygw"),
            "pid {pid} from {} is {comm:?}, not versitygw",
            pid_file.display()
        );
        signal(&pid, "STOP");
        S3Frozen { pid, thawed: false }
    }

    fn thaw(&mut self) {
        signal(&self.pid, "CONT");
        self.thawed = true;
    }
}

impl Drop for S3Frozen {
    fn drop(&mut self) {
        if !self.thawed {
            signal(&self.pid, "CONT");
        }
    }
}

fn signal(pid: &str, sig: &str) {
    let st = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid)
        .status()
        .expect("kill(1)");
    assert!(st.success(), "kill -{sig} {pid}");
}

/// The S3 server stops answering for 20 s (frozen) as soon as the first of
/// 100 uploaded objects are counted, then 100 more come: the worker waits,
/// retries, and counts each object once.
#[tokio::test(flavor = "multi_thread")]
async fn s3_frozen_for_20s_mid_run_loses_nothing_and_counts_nothing_twice() {
    let _serial = SERIAL.lock().await;
    let app = App::new("ws-s3down").await;
    let files = papers(440, 200);
    let mut w = app.worker("s3down", &[]);
    w.wait_ready(Duration::from_secs(60)).await;
    app.put_files(&files[..100], 16).await;
    // A 40 MB object (8 parts), being read when S3 freezes: its body
    // stalls, times out, and is read again after the thaw.
    let para = b"the quick brown fox jumps over the lazy dog and runs away ";
    let per_part = (5 << 20) / para.len() + 1; // parts of at least 5 MiB
    app.put_multipart("big.txt", 8, |_| para.repeat(per_part))
        .await;
    let mut big = count_bytes(para);
    for v in big.values_mut() {
        *v *= (8 * per_part) as i64;
    }
    let big_url = app.url("big.txt");
    let t = Instant::now();
    while !app.ledger_latest().await.contains_key(&big_url) {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "big.txt not discovered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut frozen = S3Frozen::freeze();
    let latest = app.ledger_latest().await;
    let done = done_count(&app, &files).await;
    let big_state = latest[&big_url]["state"].to_string();
    tokio::time::sleep(Duration::from_secs(20)).await;
    w.assert_running();
    frozen.thaw();
    eprintln!(
        "S3 frozen for 20 s with {done} of 100 uploaded papers done and the 40 MB object {big_state}"
    );
    app.put_files(&files[100..], 16).await;
    assert_exactly_once_with(&app, &files, &[("big.txt".to_string(), big)], &w).await;
    w.assert_running();
    w.stop().await;
    app.delete("big.txt").await;
}
