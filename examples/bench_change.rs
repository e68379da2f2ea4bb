//! The cost of an overwrite (issue 14), run by `scripts/bench-change`
//! (release build) against the local stack and the real binary: N corpus
//! papers uploaded to a fresh bucket, then overwritten under the same keys
//! with N other papers. For each phase: wall time from the first upload to
//! the final totals in the changelog, the worker's CPU-seconds over it, and
//! the bytes (keys + values) it wrote to each topic. Baseline, measured in
//! the same run: the first upload under `--on-change ignore` (today's
//! pipeline, no contributions kept). Ratios: first upload under `recount`
//! against the baseline, and the overwrite against the first upload.
//!
//! Workers run with `--reconcile-interval 1` (a full pass a second after
//! the last), so an overwrite is found within about a second and a pass;
//! the wall time of an overwrite includes that. Flags: `--objects N` (default 100).

use std::time::{Duration, Instant};
use testkit::app::App;
use testkit::bench::{banner, Args};
use testkit::corpus;
use testkit::counts::{add_counts, count_bytes, Counts};
use testkit::stack::stack;
use testkit::wait::poll;
use testkit::worker::READY;

/// What one phase cost.
struct Phase {
    secs: f64,
    cpu: f64,
    /// (topic suffix, bytes written).
    bytes: Vec<(&'static str, u64)>,
}

impl Phase {
    fn total(&self) -> u64 {
        self.bytes.iter().map(|(_, b)| b).sum()
    }

    fn line(&self, what: &str, n: usize, mb: f64) -> String {
        let per: Vec<String> = self
            .bytes
            .iter()
            .map(|(t, b)| format!("{t} {:.1} KB", *b as f64 / 1e3))
            .collect();
        format!(
            "{what}: {n} objects, {mb:.2} MB: {:.2} s wall, {:.2} CPU-s; Kafka bytes written {:.1} KB ({})",
            self.secs,
            self.cpu,
            self.total() as f64 / 1e3,
            per.join(", ")
        )
    }
}

const TOPICS: [&str; 4] = [
    "objects",
    "word_counts-repartition",
    "word_counts-changelog",
    "word_counts-contributions",
];

fn topic(app: &App, suffix: &str) -> String {
    format!("{}-{suffix}", app.app_id)
}

/// High watermarks per partition of the app's topics (absent: none).
async fn marks(app: &App) -> Vec<Vec<(i32, i64, i64)>> {
    let mut out = Vec::new();
    for t in TOPICS {
        let name = topic(app, t);
        out.push(if stack().layout(&name).is_some() {
            stack().watermarks(&name).await
        } else {
            Vec::new()
        });
    }
    out
}

/// Bytes of the records written to each topic since `before` (but the
/// listing's progress records, `s3://bucket/`: the cost of listing, not of
/// the objects).
async fn written(app: &App, before: &[Vec<(i32, i64, i64)>]) -> Vec<(&'static str, u64)> {
    let mut out = Vec::new();
    for (t, marks) in TOPICS.iter().zip(before) {
        let name = topic(app, t);
        if stack().layout(&name).is_none() {
            continue;
        }
        let from = |p: i32| marks.iter().find(|m| m.0 == p).map_or(0, |m| m.2);
        // read_uncommitted: the worker goes on listing (its open
        // transactions would hold a read_committed reader back).
        let bytes = stack()
            .read_to_end(&name, "read_uncommitted")
            .await
            .iter()
            .filter(|r| r.offset >= from(r.partition))
            .filter(|r| !r.key.as_deref().is_some_and(|k| k.ends_with(b"/")))
            .map(|r| {
                (r.key.as_ref().map_or(0, Vec::len) + r.value.as_ref().map_or(0, Vec::len)) as u64
            })
            .sum();
        out.push((*t, bytes));
    }
    out
}

/// Uploads `objects` and waits for the changelog to equal `want`.
async fn phase(
    app: &App,
    w: &testkit::worker::Worker,
    objects: &[(String, Vec<u8>)],
    want: &Counts,
) -> Phase {
    let before = marks(app).await;
    let cpu0 = w.cpu_seconds().unwrap_or(0.0);
    let t0 = Instant::now();
    stack().put_objects(&app.bucket, objects, 16).await;
    let changelog = topic(app, "word_counts-changelog");
    let (every, limit) = (Duration::from_millis(100), Duration::from_secs(600));
    poll(every, limit, "the final totals", || async {
        (stack().changelog(&changelog).await == *want).then_some(())
    })
    .await;
    let secs = t0.elapsed().as_secs_f64();
    let cpu = w.cpu_seconds().unwrap_or(0.0) - cpu0;
    Phase {
        secs,
        cpu,
        bytes: written(app, &before).await,
    }
}

fn objects(skip: usize, n: usize) -> (Vec<(String, Vec<u8>)>, Counts, f64) {
    let mut want = Counts::new();
    let mut bytes = 0;
    let objects: Vec<(String, Vec<u8>)> = corpus::papers(skip, n)
        .into_iter()
        .enumerate()
        .map(|(i, (_, p))| {
            let d = std::fs::read(&p).expect("a corpus paper");
            add_counts(&mut want, &count_bytes(&d), 1);
            bytes += d.len();
            (format!("p/{i:05}.txt"), d)
        })
        .collect();
    (objects, want, bytes as f64 / 1e6)
}

async fn worker(app: &App, mode: &str) -> testkit::worker::Worker {
    let flags = [
        "--reconcile-interval",
        "1",
        "--purge-interval",
        "86400",
        "--on-change",
        mode,
    ];
    let mut w = app.worker("", &flags);
    w.wait_ready(READY).await;
    w
}

#[tokio::main]
async fn main() {
    let n: usize = Args::from_env().value("--objects", 100);
    banner("overwrite", "");
    let (first, want1, mb1) = objects(0, n);
    let (second, want2, mb2) = objects(n, n);

    let app = App::new("bench-ignore").await;
    let mut w = worker(&app, "ignore").await;
    let base = phase(&app, &w, &first, &want1).await;
    w.stop().await;
    println!(
        "{}",
        base.line("baseline: first upload, --on-change ignore", n, mb1)
    );

    let app = App::new("bench-recount").await;
    let mut w = worker(&app, "recount").await;
    let up = phase(&app, &w, &first, &want1).await;
    println!("{}", up.line("first upload, --on-change recount", n, mb1));
    let over = phase(&app, &w, &second, &want2).await;
    w.stop().await;
    println!("{}", over.line("overwrite of the same keys", n, mb2));
    println!(
        "ratios: first upload recount/ignore: {:.2}x wall, {:.2}x CPU, {:.2}x bytes; \
         overwrite/first upload (recount): {:.2}x wall, {:.2}x CPU, {:.2}x bytes",
        up.secs / base.secs,
        up.cpu / base.cpu.max(1e-9),
        up.total() as f64 / base.total().max(1) as f64,
        over.secs / up.secs,
        over.cpu / up.cpu.max(1e-9),
        over.total() as f64 / up.total().max(1) as f64,
    );
}
