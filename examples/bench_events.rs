//! Discovery's benchmark (run by `scripts/bench-events`, release build),
//! against the local stack and the real `wordstream worker` binary:
//!
//! 1. latency, upload → totals visible: N small objects uploaded one at a
//!    time at random moments, each with a word of its own; time from the
//!    upload's start to that word in the changelog (p50/p90/p99/max), for
//!    - events through a Kafka topic, random keys (`--events kafka:…`,
//!      `--interval 3600`: only events find them);
//!    - events through SQS, random keys (`--events sqs:…`, the same);
//!    - polling at `--interval 1`, keys in order (the baseline);
//!    - polling at `--interval 1`, random keys (found by full passes, here
//!      every 30 s: `--reconcile-interval 30`, the old default; fewer objects,
//!      `--random-poll-objects`).
//!
//!    The worker's CPU seconds come next to the wall time of each run; each
//!    bucket holds 200 objects with random keys before the measure. The
//!    benchmark plays S3's notifier (testkit::notify) right after each
//!    upload, as AWS S3 → SQS would (versitygw cannot publish to SQS).
//! 2. LIST calls per hour: a bucket of `--objects` (2,000) objects listed
//!    `--page` (100) keys per page, full passes every 5 s for `--window`
//!    (60) s: the measured calls, pages per pass and page time; then the
//!    model (pages × 3600 / (reconcile + pages × page time)) extrapolated to a bucket of 1 M
//!    objects (1,000 pages of 1,000 keys) with one new object per second:
//!    the old design (a full re-list every 30 s) against the new one at the
//!    default `--reconcile-interval` (600 s).
//! 3. memory per known object: the lister's estimate (`known_bytes` /
//!    `known_objects` of its status) for that bucket.
//!
//! Flags: `--objects-per-mode N` (30), `--random-poll-objects N` (8; 0 skips that mode),
//! `--objects N`, `--page N`, `--window SECS`, `--skip-latency`,
//! `--skip-list`. Settings come from the environment (`eval "$(scripts/stack
//! env)"`): the SQS server is `AWS_ENDPOINT_URL_SQS`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use testkit::bench::{banner, worker_logs, Args};
use testkit::corpus::{probe_word, Rng};
use testkit::names::unique_name;
use testkit::notify::{described, Notifier};
use testkit::stack::stack;
use testkit::wait::poll;
use testkit::worker::{self, Worker};
use wordstream::events::{Event, Status};

/// One latency run.
struct Mode {
    name: &'static str,
    random_keys: bool,
    events: Option<&'static str>,
    flags: &'static [&'static str],
}

const MODES: [Mode; 4] = [
    Mode {
        name: "events kafka, random keys",
        random_keys: true,
        events: Some("kafka"),
        flags: &["--interval", "3600", "--reconcile-interval", "3600"],
    },
    Mode {
        name: "events sqs, random keys",
        random_keys: true,
        events: Some("sqs"),
        flags: &["--interval", "3600", "--reconcile-interval", "3600"],
    },
    Mode {
        name: "polling --interval 1, ordered keys",
        random_keys: false,
        events: None,
        flags: &["--interval", "1", "--reconcile-interval", "600"],
    },
    Mode {
        name: "polling --interval 1, random keys (--reconcile-interval 30)",
        random_keys: true,
        events: None,
        flags: &["--interval", "1", "--reconcile-interval", "30"],
    },
];

/// Objects in each latency run's bucket before the measure.
const PREFILL: usize = 200;

/// Figures of one latency run.
struct Latency {
    ms: Vec<f64>,
    wall_s: f64,
    cpu_s: f64,
}

impl Latency {
    fn pct(&self, p: f64) -> f64 {
        let n = self.ms.len();
        self.ms[((n as f64 * p).ceil() as usize).clamp(1, n) - 1]
    }
}

/// A worker with `flags`, ready, its first listing done (status lines every
/// second).
async fn worker(bucket: &str, flags: &[&str]) -> Worker {
    let mut all = vec!["--status-interval", "1"];
    all.extend_from_slice(flags);
    let mut w = Worker::spawn(bucket, worker::command(stack(), bucket, bucket, None, &all));
    w.wait_ready(Duration::from_secs(60)).await;
    w.wait_event(
        0.0,
        Duration::from_secs(60),
        "a listing",
        |e| matches!(e, Event::Status(s) if s.lister && s.list_calls >= 1),
    )
    .await;
    w
}

/// Waits until the lister's status says it knows `n` objects.
async fn wait_known(w: &mut Worker, n: usize) {
    w.wait_event(
        0.0,
        Duration::from_secs(300),
        "the objects known",
        |e| matches!(e, Event::Status(s) if s.known_objects as usize >= n),
    )
    .await;
}

/// When each word first appeared in the changelog of app `bucket`.
fn first_seen(bucket: &str) -> (Arc<Mutex<HashMap<String, Instant>>>, testkit::kafka::Tail) {
    let seen = Arc::new(Mutex::new(HashMap::new()));
    let tail = stack().tail(&[format!("{bucket}-word_counts-changelog")], {
        let seen = seen.clone();
        move |_, k, _| {
            let word: String = serde_json::from_slice(k).expect("JSON key");
            seen.lock()
                .unwrap()
                .entry(word)
                .or_insert_with(Instant::now);
        }
    });
    (seen, tail)
}

async fn latency(mode: &Mode, n: usize, rng: &mut Rng) -> Latency {
    let bucket = unique_name("bench-ev");
    stack().create_bucket(&bucket).await;
    let notifier = match mode.events {
        Some("kafka") => Some(Notifier::new_kafka("bench-ev-topic", 1).await),
        Some(_) => Some(Notifier::new_sqs("bench-ev-queue").await),
        None => None,
    };
    let events = notifier.as_ref().map(Notifier::flag);
    let mut flags: Vec<&str> = mode.flags.to_vec();
    if let Some(e) = &events {
        flags.extend(["--events", e.as_str()]);
    }
    // A bucket that already holds objects with random keys (a new random
    // key then mostly sorts before the greatest one known).
    let old: Vec<(String, Vec<u8>)> = (0..PREFILL)
        .map(|_| {
            (
                format!("{:08x}.txt", rng.next_u64() as u32),
                b"old words\n".to_vec(),
            )
        })
        .collect();
    stack().put_objects(&bucket, &old, 16).await;
    let mut w = worker(&bucket, &flags).await;
    wait_known(&mut w, PREFILL).await;
    let (seen, _tail) = first_seen(&bucket);
    let cpu0 = w.cpu_seconds().unwrap_or(0.0);
    let started = Instant::now();
    let mut ms = Vec::with_capacity(n);
    for i in 0..n {
        tokio::time::sleep(rng.millis(0, 1000)).await;
        let word = probe_word(i);
        let key = if mode.random_keys {
            format!("{:08x}.txt", rng.next_u64() as u32)
        } else {
            format!("probe-{i:05}.txt")
        };
        let t0 = Instant::now();
        stack()
            .put(&bucket, &key, format!("{word} a few words\n").into_bytes())
            .await;
        if let Some(n) = &notifier {
            n.created(
                &bucket,
                &described(&bucket, std::slice::from_ref(&key)).await,
            )
            .await;
        }
        let what = format!("{key} counted");
        let (every, limit) = (Duration::from_millis(2), Duration::from_secs(180));
        let at = poll(every, limit, &what, || {
            w.assert_running();
            let at = seen.lock().unwrap().get(&word).copied();
            async move { at }
        })
        .await;
        ms.push(at.duration_since(t0).as_secs_f64() * 1000.0);
    }
    let wall_s = started.elapsed().as_secs_f64();
    let cpu_s = w.cpu_seconds().unwrap_or(0.0) - cpu0;
    w.stop().await;
    ms.sort_by(|a, b| a.total_cmp(b));
    Latency { ms, wall_s, cpu_s }
}

/// The latest status of `w`.
fn status(w: &Worker) -> Status {
    w.latest_status().map(|(_, s)| s).unwrap_or_default()
}

/// LIST calls per hour: measured on a local bucket, then the model
/// extrapolated to 1 M objects.
async fn list_cost(objects: usize, page: usize, window: Duration) {
    let bucket = unique_name("bench-ev-list");
    stack().create_bucket(&bucket).await;
    let data: Vec<(String, Vec<u8>)> = (0..objects)
        .map(|i| {
            (
                format!("k{i:07}.txt"),
                format!("alpha beta {i}\n").into_bytes(),
            )
        })
        .collect();
    stack().put_objects(&bucket, &data, 32).await;
    let page_s = page.to_string();
    let reconcile = 5.0;
    let mut w = worker(
        &bucket,
        &[
            "--interval",
            "3600",
            "--reconcile-interval",
            "5",
            "--list-page-size",
            &page_s,
        ],
    )
    .await;
    // Wait until every object is known (the first pass ended), then measure.
    wait_known(&mut w, objects).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (c0, t0) = (status(&w).list_calls, Instant::now());
    tokio::time::sleep(window).await;
    let last = status(&w);
    let (calls, secs) = (last.list_calls - c0, t0.elapsed().as_secs_f64());
    let memory = (last.known_bytes, last.known_objects);
    w.stop().await;

    let pages = objects.div_ceil(page) as f64;
    let passes = calls as f64 / pages;
    let cycle = secs / passes;
    let page_time = ((cycle - reconcile) / pages).max(0.0);
    println!(
        "list calls, measured: {objects} objects, {page} keys a page ({pages} pages a pass), full passes every {reconcile} s: \
         {calls} calls in {secs:.1} s = {:.0} an hour; {passes:.1} passes, one every {cycle:.2} s, page time {:.0} ms",
        calls as f64 * 3600.0 / secs,
        page_time * 1000.0
    );
    // The model below: pages × 3600 / (reconcile + pages × page time) calls
    // an hour for the passes (the page time is what this run measured).
    // A bucket of 1 M objects: 1,000 pages of 1,000 keys; one new object a
    // second keeps the quick listing (one page a second) busy in both.
    let (big, quick) = (1000.0, 3600.0);
    let old = big * 3600.0 / 30.0 + quick;
    println!(
        "list calls an hour, 1 M objects, one new object a second: before (a full re-list every 30 s, the quick listing every 1 s): \
         {old:.0} at least (more than one re-list at a time is impossible: with 0.2 s pages a re-list takes 200 s and never finished)"
    );
    for (what, t) in [
        ("AWS-like 0.2 s pages", 0.2),
        ("this stack's pages", page_time),
    ] {
        let new = big * 3600.0 / (600.0 + big * t) + quick;
        println!(
            "list calls an hour, 1 M objects, one new object a second, now (default --reconcile-interval 600, --interval 1), {what}: \
             {new:.0} ({:.0} passes + {quick:.0} quick; {:.1}x fewer than before); with --events and --interval 60: {:.0}",
            new - quick,
            old / new,
            new - quick + 60.0
        );
    }
    println!(
        "memory per known object: {} bytes for {} objects = {:.1} bytes each (the lister's estimate; `cargo test --lib keyset` checks < 40 for 1 M)",
        memory.0,
        memory.1,
        memory.0 as f64 / memory.1.max(1) as f64
    );
}

#[tokio::main]
async fn main() {
    let args = Args::from_env();
    banner("discovery", &worker_logs());
    if !args.has("--skip-latency") {
        let mut rng = Rng::from_clock("bench-events");
        let mut baseline = None;
        let mut results = Vec::new();
        for m in &MODES {
            let n = if m.random_keys && m.events.is_none() {
                args.value("--random-poll-objects", 8)
            } else {
                args.value("--objects-per-mode", 30)
            };
            if n == 0 {
                continue; // this mode skipped (`--random-poll-objects 0`)
            }
            let l = latency(m, n, &mut rng).await;
            if !m.random_keys {
                baseline = Some(l.pct(0.5));
            }
            results.push((m.name, n, l));
        }
        for (name, n, l) in &results {
            let ratio = baseline.map_or(String::new(), |b| {
                format!(", p50 {:.2}x the ordered polling's", l.pct(0.5) / b)
            });
            println!(
                "latency upload → totals, {name}: {n} objects, p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms{ratio}; \
                 wall {:.1} s, worker CPU {:.2} s",
                l.pct(0.5),
                l.pct(0.9),
                l.pct(0.99),
                l.pct(1.0),
                l.wall_s,
                l.cpu_s
            );
        }
    }
    if !args.has("--skip-list") {
        list_cost(
            args.value("--objects", 2000),
            args.value("--page", 100),
            Duration::from_secs(args.value("--window", 60u64)),
        )
        .await;
    }
}
