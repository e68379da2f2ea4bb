//! The worker's benchmark (run by `scripts/bench-worker`, release build),
//! against the local stack and the real `wordstream worker` binary:
//!
//! 1. throughput: the whole test corpus (books + papers) uploaded while a
//!    worker runs; words/s and MB/s from the first upload to the moment the
//!    changelog holds the final totals (count of the same files by the core);
//! 2. latency: N small objects uploaded one at a time, each with a word of
//!    its own; time from the upload's start to that word in the changelog;
//!    p50 / p90 / p99 / max;
//! 3. memory: a fresh worker counting one generated 1 GiB object (multipart
//!    upload); peak RSS (VmHWM in /proc/<pid>/status) and its counting time;
//! 4. the web server's cost: the papers counted by a worker with `--no-web`
//!    and by one whose web server is scraped every second (`/metrics`,
//!    `/top`, `/api/dashboard`), alternating, `--web-rounds N` (default 3)
//!    each; words/s and CPU-seconds, medians and their ratio (`--skip-web`
//!    skips it).
//!
//! The changelog is watched by a read_committed consumer of all partitions
//! (`testkit::kafka::Tail`); the worker's readiness is its `ready` event.
//! Settings come from the environment (`eval "$(scripts/stack env)"`).
//! Flags: `--latency-objects N` (default 100), `--big-mib N` (default 1024,
//! 0 skips), `--skip-corpus`, `--interval SECS` (worker's, default 1),
//! `--keep` (keep the big object), `--worker-args "…"` (more worker flags,
//! e.g. `-X fetch.wait.max.ms=10`). `WORDSTREAM_BIN`: the binary (default:
//! the `wordstream` of this example's target folder).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use testkit::corpus::{self, probe_word, Rng};
use testkit::counts::{count_bytes, times, Counts};
use testkit::kafka::Tail;
use testkit::names::unique_name;
use testkit::stack::stack;
use testkit::worker::{self, Worker};

/// The worker's flags.
struct Opts {
    interval: String,
    extra: Vec<String>,
}

impl Opts {
    /// A worker on `bucket` (app id = bucket), once it is ready.
    async fn worker(&self, bucket: &str) -> Worker {
        let mut flags = vec!["--interval", self.interval.as_str()];
        flags.extend(self.extra.iter().map(String::as_str));
        let mut w = Worker::spawn(
            bucket,
            worker::command(stack(), bucket, bucket, None, &flags),
        );
        w.wait_ready(Duration::from_secs(60)).await;
        w
    }
}

/// What the changelog watcher saw.
#[derive(Default)]
struct Seen {
    table: Counts,
    first_seen: HashMap<String, Instant>,
    expected: Option<Counts>,
    mismatches: usize,
    matched_at: Option<Instant>,
}

impl Seen {
    fn expect(&mut self, want: Counts) {
        let mut keys: Vec<&String> = want.keys().chain(self.table.keys()).collect();
        keys.sort();
        keys.dedup();
        self.mismatches = keys
            .iter()
            .filter(|k| want.get(**k) != self.table.get(**k))
            .count();
        self.matched_at = (self.mismatches == 0).then(Instant::now);
        self.expected = Some(want);
    }

    fn apply(&mut self, word: String, total: i64) {
        let now = Instant::now();
        self.first_seen.entry(word.clone()).or_insert(now);
        let before = self.table.insert(word.clone(), total);
        if let Some(want) = &self.expected {
            let w = want.get(&word).copied();
            let was_ok = before == w;
            let is_ok = Some(total) == w;
            if was_ok && !is_ok {
                self.mismatches += 1;
                self.matched_at = None;
            } else if !was_ok && is_ok {
                self.mismatches -= 1;
                if self.mismatches == 0 {
                    self.matched_at = Some(now);
                }
            }
        }
    }
}

/// Tails `bucket`'s changelog into a [`Seen`].
fn watch(bucket: &str) -> (Arc<Mutex<Seen>>, Tail) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let tail = stack().tail(&[format!("{bucket}-word_counts-changelog")], {
        let seen = seen.clone();
        move |_, k, v| {
            let word: String = serde_json::from_slice(k).expect("JSON key");
            let total: i64 = serde_json::from_slice(v.expect("a total")).expect("JSON value");
            seen.lock().unwrap().apply(word, total);
        }
    });
    (seen, tail)
}

/// Waits until the table equals the expectation; returns when it did.
async fn wait_match(seen: &Mutex<Seen>, deadline: Duration) -> Instant {
    let t = Instant::now();
    loop {
        if let Some(at) = seen.lock().unwrap().matched_at {
            return at;
        }
        if t.elapsed() > deadline {
            panic!(
                "changelog not at the expected totals after {deadline:?}: {} words differ",
                seen.lock().unwrap().mismatches
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// 1. The whole corpus, uploaded while the worker runs.
async fn bench_corpus(o: &Opts) {
    let files = corpus::objects(&["books", "papers"]);
    let mut want = Counts::new();
    let mut bytes = 0u64;
    for (_, p) in &files {
        let d = std::fs::read(p).expect("a corpus file");
        testkit::counts::add_counts(&mut want, &count_bytes(&d), 1);
        bytes += d.len() as u64;
    }
    let words: i64 = want.values().sum();
    let bucket = unique_name("bench-corpus");
    stack().create_bucket(&bucket).await;
    let mut w = o.worker(&bucket).await;
    let (seen, _tail) = watch(&bucket);
    seen.lock().unwrap().expect(want);
    let t0 = Instant::now();
    stack().put_files(&bucket, &files, 32).await;
    let uploaded = t0.elapsed();
    let done = wait_match(&seen, Duration::from_secs(600)).await;
    let secs = done.duration_since(t0).as_secs_f64();
    let hwm = w.memory().peak_kib;
    w.stop().await;
    println!(
        "corpus: {} objects, {:.2} MB, {} words: uploaded in {:.2} s; final totals in the changelog after {:.2} s",
        files.len(),
        bytes as f64 / 1e6,
        words,
        uploaded.as_secs_f64(),
        secs
    );
    println!(
        "corpus: {:.0} words/s, {:.2} MB/s (upload start to final totals); worker peak RSS {:.1} MiB",
        words as f64 / secs,
        bytes as f64 / 1e6 / secs,
        hwm as f64 / 1024.0
    );
}

/// 2. Upload-to-changelog latency of small objects, one at a time.
async fn bench_latency(o: &Opts, n: usize) {
    let bucket = unique_name("bench-latency");
    stack().create_bucket(&bucket).await;
    let mut w = o.worker(&bucket).await;
    let (seen, _tail) = watch(&bucket);
    let mut lat = Vec::with_capacity(n);
    // Uploads at random phases of the worker's listing period: a pause of
    // 0..interval before each.
    let interval_ms = (o.interval.parse::<f64>().unwrap_or(1.0) * 1000.0) as u64;
    let mut rng = Rng::from_clock("latency");
    for i in 0..n {
        tokio::time::sleep(rng.millis(0, interval_ms.max(1) + 1)).await;
        let word = probe_word(i);
        let body = format!("{word} a small object of a few words\n");
        let t0 = Instant::now();
        stack()
            .put(&bucket, &format!("probe-{i:05}.txt"), body.into_bytes())
            .await;
        loop {
            if let Some(at) = seen.lock().unwrap().first_seen.get(&word) {
                lat.push(at.duration_since(t0).as_secs_f64() * 1000.0);
                break;
            }
            assert!(t0.elapsed() < Duration::from_secs(60), "{word} never seen");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    w.stop().await;
    lat.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| lat[((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1];
    println!(
        "latency (upload start to counts in the changelog, {n} objects one at a time at random moments, --interval {} {}): p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms, min {:.0} ms",
        o.interval,
        o.extra.join(" "),
        pct(0.50),
        pct(0.90),
        pct(0.99),
        lat[lat.len() - 1],
        lat[0]
    );
}

/// 3. Peak RSS of a worker counting one big object.
async fn bench_big(o: &Opts, mib: usize, keep: bool) {
    const PARAGRAPH: &str = "It was the best of times, it was the worst of times; \
        naïve Ωmega 文字 café H2O x_1 señor and the end of a long line ";
    let para = PARAGRAPH.as_bytes();
    let reps = ((mib << 20) / para.len()).max(1);
    let size = para.len() * reps;
    let unit = count_bytes(para);
    let want = times(&unit, reps as i64);

    let bucket = unique_name("bench-big");
    stack().create_bucket(&bucket).await;
    let key = "big-one-line.txt";
    let t = Instant::now();
    stack().put_repeated(&bucket, key, para, reps).await;
    println!(
        "big object: {:.0} MiB ({size} bytes, one line) written and uploaded (multipart) in {:.1} s",
        size as f64 / (1 << 20) as f64,
        t.elapsed().as_secs_f64()
    );

    let t0 = Instant::now();
    let mut w = o.worker(&bucket).await;
    let idle_hwm = w.memory().peak_kib;
    let (seen, _tail) = watch(&bucket);
    seen.lock().unwrap().expect(want);
    let mut max_rss = 0;
    let done = loop {
        if let Some(at) = seen.lock().unwrap().matched_at {
            break at;
        }
        max_rss = max_rss.max(w.memory().rss_kib);
        assert!(
            t0.elapsed() < Duration::from_secs(900),
            "big object never counted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let hwm = w.memory().peak_kib;
    let secs = done.duration_since(t0).as_secs_f64();
    println!(
        "big object: counted ({} words) and in the changelog {:.1} s after the worker started: {:.0} MB/s",
        unit.values().sum::<i64>() * reps as i64,
        secs,
        size as f64 / 1e6 / secs
    );
    println!(
        "big object: worker peak RSS (VmHWM) {:.1} MiB (ready and idle: {:.1} MiB; largest VmRSS sampled {:.1} MiB)",
        hwm as f64 / 1024.0,
        idle_hwm as f64 / 1024.0,
        max_rss as f64 / 1024.0
    );
    w.stop().await;
    if !keep {
        stack().delete(&bucket, key).await;
    }
}

/// A worker of app `app_id` on `bucket` with `flags`, once ready.
async fn worker_of(o: &Opts, bucket: &str, app_id: &str, flags: &[&str]) -> Worker {
    let mut all = vec!["--interval", o.interval.as_str()];
    all.extend(o.extra.iter().map(String::as_str));
    all.extend_from_slice(flags);
    let mut w = Worker::spawn(app_id, worker::command(stack(), bucket, app_id, None, &all));
    w.wait_ready(Duration::from_secs(60)).await;
    w
}

/// One round of part 4: a fresh app counts the whole bucket; (words/s, worker
/// CPU-seconds, scrapes) from the worker's ready to the final totals.
async fn web_round(o: &Opts, bucket: &str, want: &Counts, web: bool) -> (f64, f64, usize) {
    let app_id = unique_name(if web { "bench-web-on" } else { "bench-web-off" });
    let flags: &[&str] = if web {
        &["--web-port", "0"]
    } else {
        &["--no-web"]
    };
    let mut w = worker_of(o, bucket, &app_id, flags).await;
    let t0 = Instant::now();
    let cpu0 = w.cpu_seconds().unwrap_or(0.0);
    // The changelog exists once the worker is ready; tailed from its start.
    let (seen, _tail) = watch(&app_id);
    seen.lock().unwrap().expect(want.clone());
    let requests = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let scraper = if web {
        let addr = testkit::web::addr(&mut w).await;
        let requests = requests.clone();
        Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                for path in ["/metrics", "/top?n=20", "/api/dashboard"] {
                    if testkit::web::get_raw(&addr, path.as_bytes())
                        .await
                        .is_some()
                    {
                        requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            }
        }))
    } else {
        None
    };
    let done = wait_match(&seen, Duration::from_secs(600)).await;
    let cpu = w.cpu_seconds().unwrap_or(0.0) - cpu0;
    let secs = done.duration_since(t0).as_secs_f64();
    if let Some(s) = scraper {
        s.abort();
    }
    let scrapes = requests.load(std::sync::atomic::Ordering::Relaxed);
    w.stop().await;
    (want.values().sum::<i64>() as f64 / secs, cpu, scrapes)
}

/// Part 4: counting throughput with the web server scraped every second,
/// against a worker without it (`--no-web`), alternating rounds on the same
/// objects.
async fn bench_web(o: &Opts, rounds: usize) {
    let files = corpus::objects(&["papers"]);
    let mut want = Counts::new();
    for (_, p) in &files {
        let d = std::fs::read(p).expect("a corpus file");
        testkit::counts::add_counts(&mut want, &count_bytes(&d), 1);
    }
    let bucket = unique_name("bench-web");
    stack().create_bucket(&bucket).await;
    stack().put_files(&bucket, &files, 32).await;
    let (mut off, mut on) = (Vec::new(), Vec::new());
    for r in 0..rounds {
        // Alternate which goes first, so a drift of the box favours neither.
        let order = if r % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        for web in order {
            let (wps, cpu, scrapes) = web_round(o, &bucket, &want, web).await;
            println!(
                "web overhead round {}: {}: {:.0} words/s, {:.2} CPU-s{}",
                r + 1,
                if web {
                    "web on, scraped every second"
                } else {
                    "--no-web"
                },
                wps,
                cpu,
                if web {
                    format!(" ({scrapes} requests answered)")
                } else {
                    String::new()
                }
            );
            if web {
                on.push((wps, cpu))
            } else {
                off.push((wps, cpu))
            }
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let (mut off_w, mut off_c): (Vec<f64>, Vec<f64>) = off.into_iter().unzip();
    let (mut on_w, mut on_c): (Vec<f64>, Vec<f64>) = on.into_iter().unzip();
    let (ow, oc, nw, nc) = (
        median(&mut off_w),
        median(&mut off_c),
        median(&mut on_w),
        median(&mut on_c),
    );
    println!(
        "web overhead ({} papers, {rounds} rounds each, medians): --no-web {:.0} words/s, {:.2} CPU-s; web on + scraped every second {:.0} words/s, {:.2} CPU-s; throughput ratio {:.3}, CPU ratio {:.3}",
        files.len(),
        ow,
        oc,
        nw,
        nc,
        nw / ow,
        nc / oc
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| args.iter().position(|a| a == name);
    let value = |name: &str, d: &str| {
        flag(name)
            .and_then(|i| args.get(i + 1).cloned())
            .unwrap_or_else(|| d.to_string())
    };
    let o = Opts {
        interval: value("--interval", "1"),
        extra: value("--worker-args", "")
            .split_whitespace()
            .map(String::from)
            .collect(),
    };
    println!(
        "wordstream worker benchmark: {} on {} cores; worker logs in {}",
        testkit::cli::bin().display(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        testkit::scratch_dir().join("worker-logs").display()
    );
    if flag("--skip-corpus").is_none() {
        bench_corpus(&o).await;
    }
    let n: usize = value("--latency-objects", "100").parse().expect("N");
    if n > 0 {
        bench_latency(&o, n).await;
    }
    let mib: usize = value("--big-mib", "1024").parse().expect("MiB");
    if mib > 0 {
        bench_big(&o, mib, flag("--keep").is_some()).await;
    }
    if flag("--skip-web").is_none() {
        let rounds: usize = value("--web-rounds", "3").parse().expect("N");
        bench_web(&o, rounds.max(1)).await;
    }
}
