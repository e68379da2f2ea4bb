//! The worker's benchmark (run by `scripts/bench-worker`, release build),
//! against the local stack and the real `wordstream worker` binary:
//!
//! 1. throughput: the whole shared corpus uploaded while a worker runs;
//!    words/s and MB/s from the first upload to the moment the changelog
//!    holds the final totals (count of the same files by the core);
//! 2. latency: N small objects uploaded one at a time, each with a word of
//!    its own; time from the upload's start to that word in the changelog;
//!    p50 / p90 / p99 / max;
//! 3. memory: a fresh worker counting one generated 1 GiB object (multipart
//!    upload); peak RSS (VmHWM in /proc/<pid>/status) and its counting time.
//!
//! The changelog is watched by a read_committed consumer of all partitions.
//! Settings come from the environment (`eval "$(scripts/stack env)"`).
//! Flags: `--latency-objects N` (default 100), `--big-mib N` (default 1024,
//! 0 skips), `--skip-corpus`, `--interval SECS` (worker's, default 1),
//! `--keep` (keep the big object), `--worker-args "…"` (more worker flags,
//! e.g. `-X fetch.wait.max.ms=10`).

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use futures::StreamExt;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use wordstream::count::{Counter, Options};

type Counts = HashMap<String, i64>;

fn env_or(k: &str, d: &str) -> String {
    std::env::var(k)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| d.to_string())
}

struct Env {
    brokers: String,
    endpoint: String,
    region: String,
    access: String,
    secret: String,
    bin: PathBuf,
    interval: String,
    extra: Vec<String>,
    logs: PathBuf,
}

fn s3_client(e: &Env) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(&e.endpoint)
        .region(Region::new(e.region.clone()))
        .credentials_provider(Credentials::new(&e.access, &e.secret, None, None, "bench"))
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

fn unique(prefix: &str) -> String {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis();
    format!("{prefix}-{}-{t}", std::process::id())
}

fn count(data: &[u8]) -> (Counts, u64) {
    let mut c = Counter::new(Options::default());
    c.feed(data);
    let wc = c.finish();
    (
        wc.iter().map(|(w, n)| (w.to_string(), n as i64)).collect(),
        wc.words,
    )
}

/// A running worker (killed on drop).
struct Worker {
    child: Child,
    log: PathBuf,
}

impl Worker {
    fn start(e: &Env, bucket: &str) -> Worker {
        let log = e.logs.join(format!("{bucket}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(&e.bin)
            .args([
                "-l", "warn", "worker", "--bucket", bucket, "--app-id", bucket,
            ])
            .args(["--brokers", &e.brokers, "--endpoint-url", &e.endpoint])
            .args(["--region", &e.region, "--interval", &e.interval])
            .args(&e.extra)
            .env("AWS_ACCESS_KEY_ID", &e.access)
            .env("AWS_SECRET_ACCESS_KEY", &e.secret)
            .env("WORDSTREAM_ENV_FILE", "/dev/null")
            .env("RUST_LOG", "warn,wordstream=info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .expect("starting the worker");
        let w = Worker { child, log };
        let t = Instant::now();
        while !std::fs::read_to_string(&w.log)
            .unwrap_or_default()
            .contains("Worker ready")
        {
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "worker not ready; see {}",
                w.log.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        w
    }

    /// (VmHWM, VmRSS) in KiB.
    fn memory(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (field("VmHWM:"), field("VmRSS:"))
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the watcher saw.
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

/// A read_committed consumer of the whole changelog in a thread.
struct Watcher {
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
}

impl Watcher {
    fn start(e: &Env, topic: &str) -> Watcher {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &e.brokers)
            .set("group.id", unique("bench-watch"))
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .set("fetch.wait.max.ms", "10")
            .set("log_level", "3")
            .create()
            .expect("consumer");
        let md = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .expect("metadata");
        let mut tpl = TopicPartitionList::new();
        for p in md.topics()[0].partitions() {
            tpl.add_partition_offset(topic, p.id(), Offset::Beginning)
                .unwrap();
        }
        consumer.assign(&tpl).expect("assign");
        let seen = Arc::new(Mutex::new(Seen::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s2, st2) = (seen.clone(), stop.clone());
        std::thread::spawn(move || {
            while !st2.load(Ordering::Relaxed) {
                if let Some(Ok(m)) = consumer.poll(Duration::from_millis(50)) {
                    let (Some(k), Some(v)) = (m.key(), m.payload()) else {
                        continue;
                    };
                    let word: String = serde_json::from_slice(k).expect("JSON key");
                    let total: i64 = serde_json::from_slice(v).expect("JSON value");
                    s2.lock().unwrap().apply(word, total);
                }
            }
        });
        Watcher { seen, stop }
    }

    /// Waits until the table equals the expectation; returns when it did.
    fn wait_match(&self, deadline: Duration) -> Instant {
        let t = Instant::now();
        loop {
            if let Some(at) = self.seen.lock().unwrap().matched_at {
                return at;
            }
            if t.elapsed() > deadline {
                let s = self.seen.lock().unwrap();
                panic!(
                    "changelog not at the expected totals after {deadline:?}: {} words differ",
                    s.mismatches
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn corpus_files() -> Vec<(String, PathBuf)> {
    let root = PathBuf::from(env_or(
        "WORDSTREAM_CORPUS",
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/corpus")
            .to_string_lossy(),
    ));
    let mut files = Vec::new();
    for dir in ["books", "papers"] {
        for e in walkdir::WalkDir::new(root.join(dir)).sort_by_file_name() {
            let e = e.unwrap();
            if e.file_type().is_file() {
                let rel = e.path().strip_prefix(&root).unwrap();
                files.push((rel.to_string_lossy().into_owned(), e.path().to_path_buf()));
            }
        }
    }
    files
}

async fn create_bucket(s3: &aws_sdk_s3::Client, b: &str) {
    s3.create_bucket()
        .bucket(b)
        .send()
        .await
        .expect("create bucket");
}

/// 1. The whole corpus, uploaded while the worker runs.
async fn bench_corpus(e: &Env, s3: &aws_sdk_s3::Client) {
    let files = corpus_files();
    let mut want = Counts::new();
    let (mut bytes, mut words) = (0u64, 0u64);
    let mut datas = Vec::new();
    for (k, p) in &files {
        let d = std::fs::read(p).unwrap();
        let (c, n) = count(&d);
        for (w, v) in c {
            *want.entry(w).or_default() += v;
        }
        bytes += d.len() as u64;
        words += n;
        datas.push((k.clone(), d));
    }
    let bucket = unique("bench-corpus");
    create_bucket(s3, &bucket).await;
    let w = Worker::start(e, &bucket);
    let watch = Watcher::start(e, &format!("{bucket}-word_counts-changelog"));
    watch.seen.lock().unwrap().expect(want);
    let t0 = Instant::now();
    futures::stream::iter(datas.into_iter().map(|(k, d)| {
        let (s3, bucket) = (s3.clone(), bucket.clone());
        async move {
            s3.put_object()
                .bucket(&bucket)
                .key(&k)
                .body(ByteStream::from(d))
                .send()
                .await
                .expect("put");
        }
    }))
    .buffer_unordered(32)
    .collect::<Vec<()>>()
    .await;
    let uploaded = t0.elapsed();
    let done = watch.wait_match(Duration::from_secs(600));
    let secs = done.duration_since(t0).as_secs_f64();
    let (hwm, _) = w.memory();
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

/// `i` as letters only (a word of its own for each object).
fn probe_word(i: usize) -> String {
    let mut s = String::from("latencyprobe");
    let mut n = i;
    loop {
        s.push((b'a' + (n % 26) as u8) as char);
        n /= 26;
        if n == 0 {
            break;
        }
    }
    s
}

/// 2. Upload-to-changelog latency of small objects, one at a time.
async fn bench_latency(e: &Env, s3: &aws_sdk_s3::Client, n: usize) {
    let bucket = unique("bench-latency");
    create_bucket(s3, &bucket).await;
    let _w = Worker::start(e, &bucket);
    let watch = Watcher::start(e, &format!("{bucket}-word_counts-changelog"));
    let mut lat = Vec::with_capacity(n);
    // Uploads at random phases of the worker's listing period: a pause of
    // 0..interval before each (xorshift, seeded from the clock).
    let interval_ms = (e.interval.parse::<f64>().unwrap_or(1.0) * 1000.0) as u64;
    let mut x = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    for i in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        tokio::time::sleep(Duration::from_millis(x % interval_ms.max(1))).await;
        let word = probe_word(i);
        let body = format!("{word} a small object of a few words\n");
        let t0 = Instant::now();
        s3.put_object()
            .bucket(&bucket)
            .key(format!("probe-{i:05}.txt"))
            .body(ByteStream::from(body.into_bytes()))
            .send()
            .await
            .expect("put");
        loop {
            if let Some(at) = watch.seen.lock().unwrap().first_seen.get(&word) {
                lat.push(at.duration_since(t0).as_secs_f64() * 1000.0);
                break;
            }
            assert!(t0.elapsed() < Duration::from_secs(60), "{word} never seen");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pct = |p: f64| lat[((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1];
    println!(
        "latency (upload start to counts in the changelog, {n} objects one at a time at random moments, --interval {} {}): p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms, min {:.0} ms",
        e.interval,
        e.extra.join(" "),
        pct(0.50),
        pct(0.90),
        pct(0.99),
        lat[lat.len() - 1],
        lat[0]
    );
}

/// 3. Peak RSS of a worker counting one big object.
async fn bench_big(e: &Env, s3: &aws_sdk_s3::Client, mib: usize, keep: bool) {
    const PARAGRAPH: &str = "It was the best of times, it was the worst of times; \
        naïve Ωmega 文字 café H2O x_1 señor and the end of a long line ";
    let para = PARAGRAPH.as_bytes();
    let part_target = 64usize << 20;
    let per_part = part_target / para.len();
    let part = para.repeat(per_part);
    let parts = (mib << 20).div_ceil(part.len()).max(1);
    let size = part.len() * parts;
    let (pc, pw) = count(para);
    let reps = (per_part * parts) as i64;
    let want: Counts = pc.into_iter().map(|(w, n)| (w, n * reps)).collect();

    let bucket = unique("bench-big");
    create_bucket(s3, &bucket).await;
    let key = "big-one-line.txt";
    let t = Instant::now();
    let up = s3
        .create_multipart_upload()
        .bucket(&bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap().to_string();
    let mut done = Vec::new();
    for i in 1..=parts as i32 {
        let r = s3
            .upload_part()
            .bucket(&bucket)
            .key(key)
            .upload_id(&id)
            .part_number(i)
            .body(ByteStream::from(part.clone()))
            .send()
            .await
            .expect("upload_part");
        done.push(
            CompletedPart::builder()
                .part_number(i)
                .e_tag(r.e_tag().unwrap_or_default())
                .build(),
        );
    }
    s3.complete_multipart_upload()
        .bucket(&bucket)
        .key(key)
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(done))
                .build(),
        )
        .send()
        .await
        .expect("complete");
    drop(part);
    println!(
        "big object: {:.0} MiB ({size} bytes, one line) uploaded in {parts} parts in {:.1} s",
        size as f64 / (1 << 20) as f64,
        t.elapsed().as_secs_f64()
    );

    let t0 = Instant::now();
    let w = Worker::start(e, &bucket);
    let (idle_hwm, _) = w.memory();
    let watch = Watcher::start(e, &format!("{bucket}-word_counts-changelog"));
    watch.seen.lock().unwrap().expect(want);
    let mut max_rss = 0;
    let done = loop {
        if let Some(at) = watch.seen.lock().unwrap().matched_at {
            break at;
        }
        max_rss = max_rss.max(w.memory().1);
        assert!(
            t0.elapsed() < Duration::from_secs(900),
            "big object never counted"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let (hwm, _) = w.memory();
    let secs = done.duration_since(t0).as_secs_f64();
    println!(
        "big object: counted ({} words) and in the changelog {:.1} s after the worker started: {:.0} MB/s",
        pw as i64 * reps,
        secs,
        size as f64 / 1e6 / secs
    );
    println!(
        "big object: worker peak RSS (VmHWM) {:.1} MiB (ready and idle: {:.1} MiB; largest VmRSS sampled {:.1} MiB)",
        hwm as f64 / 1024.0,
        idle_hwm as f64 / 1024.0,
        max_rss as f64 / 1024.0
    );
    drop(w);
    if !keep {
        let _ = s3.delete_object().bucket(&bucket).key(key).send().await;
    }
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
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("wordstream"))
        .unwrap();
    let logs = std::env::temp_dir().join("wordstream-bench-worker");
    std::fs::create_dir_all(&logs).unwrap();
    let e = Env {
        brokers: env_or("KAFKA_BROKERS", "127.0.0.1:9092"),
        endpoint: env_or("AWS_ENDPOINT_URL", "http://127.0.0.1:9000"),
        region: env_or("AWS_REGION", "us-east-1"),
        access: env_or("AWS_ACCESS_KEY_ID", "wordstream"),
        secret: env_or("AWS_SECRET_ACCESS_KEY", "wordstream-secret"),
        bin: PathBuf::from(env_or("WORDSTREAM_BIN", &bin.to_string_lossy())),
        interval: value("--interval", "1"),
        extra: value("--worker-args", "")
            .split_whitespace()
            .map(String::from)
            .collect(),
        logs,
    };
    println!(
        "wordstream worker benchmark: {} on {} cores; worker logs in {}",
        e.bin.display(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        e.logs.display()
    );
    let s3 = s3_client(&e);
    if flag("--skip-corpus").is_none() {
        bench_corpus(&e, &s3).await;
    }
    let n: usize = value("--latency-objects", "100").parse().expect("N");
    if n > 0 {
        bench_latency(&e, &s3, n).await;
    }
    let mib: usize = value("--big-mib", "1024").parse().expect("MiB");
    if mib > 0 {
        bench_big(&e, &s3, mib, flag("--keep").is_some()).await;
    }
}
