//! The scale-out benchmark (run by `scripts/bench-scaleout`, release build),
//! against the local stack and the real `wordstream worker` binary:
//!
//! 1. throughput with 1, 2 and 3 workers of one group on the same corpus.
//!    Default (backlog): the corpus is uploaded once to a bucket; each run
//!    is a new app id on it with N workers started together, and the clock
//!    runs from their start to (a) every object counted in the ledger and
//!    (b) the changelog holding the final totals (count of the same files by
//!    the core). `--live`: the workers settle on an empty bucket first and
//!    the corpus is uploaded (32 at a time) while they run, the clock
//!    starting at the first upload; objects that land behind the listing
//!    watermark (concurrent uploads complete out of key order) wait for the
//!    next full re-list (every 30 s), which then dominates the figure.
//!    Objects/s, words/s, MB/s; per worker: objects counted and CPU use
//!    (utime + stime from /proc/<pid>/stat) from its start to the end of the
//!    run, as seconds and % of one core; the same for the Kafka broker and
//!    versitygw.
//! 2. takeover of a big table: a fresh changelog seeded with N distinct
//!    words (default 1,000,000; produced directly, Faust serde, murmur2,
//!    8 partitions); one worker starts and restores all of it; then a second
//!    worker joins: the time from its start to "Worker ready", its restore
//!    (words, seconds), and the first worker's pause (eager rebalance: it
//!    revokes everything and restores the partitions it keeps).
//!
//! Settings from the environment (`eval "$(scripts/stack env)"`).
//! Flags: `--workers 1,2,3`, `--corpus papers|all` (default papers: the
//! 2125 papers; all = papers + books), `--table-words N` (0 skips part 2),
//! `--skip-throughput`, `--live`, `--copies K` (the corpus K times, under
//! `c0/` … `c<K-1>/`; default 1), `--interval SECS` (the workers', default 1).
//! `WORDSTREAM_BIN`: the binary (default target/release/wordstream).

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::primitives::ByteStream;
use futures::StreamExt;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use wordstream::count::{Counter, Options};
use wordstream::kafka::partition_for;
use wordstream::wire::Serde;

const PARTITIONS: i32 = 8;

struct Env {
    brokers: String,
    endpoint: String,
    access: String,
    secret: String,
    region: String,
    bin: PathBuf,
    logs: PathBuf,
    interval: f64,
    stack_dir: PathBuf,
}

fn env_or(k: &str, d: &str) -> String {
    match std::env::var(k) {
        Ok(v) if !v.trim().is_empty() => v.trim().to_string(),
        _ => d.to_string(),
    }
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn unique(prefix: &str) -> String {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis();
    format!("{prefix}-{}-{}", std::process::id(), t % 100_000_000)
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
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

/// utime + stime of a process, seconds.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / 100.0)
}

/// VmRSS of a process, MiB.
fn rss_mib(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// The stack's own processes (Kafka node, versitygw), from its pid files.
fn stack_pids(e: &Env) -> Vec<(String, u32)> {
    let mut out = Vec::new();
    for name in ["kafka", "kafka-1", "kafka-2", "kafka-3", "s3"] {
        let p = e.stack_dir.join("run").join(format!("{name}.pid"));
        if let Some(pid) = std::fs::read_to_string(&p)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
        {
            if Path::new(&format!("/proc/{pid}")).exists() {
                let label = if name == "s3" { "versitygw" } else { name };
                out.push((label.to_string(), pid));
            }
        }
    }
    out
}

// ------------------------------------------------------------------ logs

/// `2025-11-25T21:30:00.123456Z` → epoch seconds.
fn parse_rfc3339(s: &str) -> Option<f64> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let mut t = time.split(':');
    let (hh, mm) = (
        t.next()?.parse::<i64>().ok()?,
        t.next()?.parse::<i64>().ok()?,
    );
    let ss: f64 = t.next()?.parse().ok()?;
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + hh * 3600 + mm * 60) as f64 + ss)
}

/// (time, message) of each log line.
fn log_lines(path: &Path) -> Vec<(f64, String)> {
    let text = std::fs::read(path).unwrap_or_default();
    String::from_utf8_lossy(&text)
        .lines()
        .filter_map(|l| {
            let (ts, rest) = l.split_once(' ')?;
            let t = parse_rfc3339(ts)?;
            let rest = rest.trim_start();
            let msg = rest.split_once(' ').map(|(_, m)| m.trim_start())?;
            Some((t, msg.to_string()))
        })
        .collect()
}

fn parse_set(s: &str) -> BTreeSet<i32> {
    s.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split(',')
        .filter_map(|x| x.trim().parse().ok())
        .collect()
}

/// (ledger partitions, lists the bucket) of a status line.
fn parse_status(msg: &str) -> Option<(BTreeSet<i32>, bool)> {
    let m = msg.strip_prefix("status: ")?;
    let after = &m[m.find("; ledger ")? + "; ledger ".len()..];
    let (ledger, rest) = after.split_once(" repartition ")?;
    Some((parse_set(ledger), rest.contains("(lists the bucket)")))
}

/// "restored table partitions [..] from T: N words in S s" → (N, S).
fn parse_restore(msg: &str) -> Option<(u64, f64)> {
    let rest = msg.strip_prefix("restored table partitions")?;
    let after = &rest[rest.find(": ")? + 2..];
    let mut it = after.split_whitespace();
    let words = it.next()?.parse().ok()?;
    let secs = after
        .split(" in ")
        .nth(1)?
        .trim_end_matches(" s")
        .parse()
        .ok()?;
    Some((words, secs))
}

// --------------------------------------------------------------- workers

struct Worker {
    child: Option<Child>,
    pid: u32,
    id: String,
    log: PathBuf,
    started: f64,
}

impl Worker {
    fn start(e: &Env, app: &str, bucket: &str, name: &str) -> Worker {
        let log = e.logs.join(format!("{app}-{name}.log"));
        let out = File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let started = now();
        let child = Command::new(&e.bin)
            .arg("worker")
            .args(["--bucket", bucket, "--app-id", app])
            .args(["--brokers", &e.brokers])
            .args(["--endpoint-url", &e.endpoint, "--region", &e.region])
            .args(["--interval", &e.interval.to_string()])
            .args(["--status-interval", "1"])
            .env("AWS_ACCESS_KEY_ID", &e.access)
            .env("AWS_SECRET_ACCESS_KEY", &e.secret)
            .env("WORDSTREAM_ENV_FILE", "/dev/null")
            .env_remove("WORDSTREAM_WORKER_ID")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|err| panic!("starting {}: {err}", e.bin.display()));
        let pid = child.id();
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        Worker {
            child: Some(child),
            pid,
            id: format!("{}-{pid}", host.trim()),
            log,
            started,
        }
    }

    fn lines(&self) -> Vec<(f64, String)> {
        log_lines(&self.log)
    }

    fn alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    fn check(&mut self) {
        if !self.alive() {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(30).collect();
            panic!(
                "worker {} exited; log {}:\n{}",
                self.id,
                self.log.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
    }

    /// The time of the first log line starting with `prefix` after `after`.
    fn first(&self, prefix: &str, after: f64) -> Option<(f64, String)> {
        self.lines()
            .into_iter()
            .find(|(t, m)| *t >= after && m.starts_with(prefix))
    }

    fn wait_for(&mut self, prefix: &str, after: f64, deadline: Duration) -> (f64, String) {
        let start = Instant::now();
        loop {
            if let Some(x) = self.first(prefix, after) {
                return x;
            }
            self.check();
            assert!(
                start.elapsed() < deadline,
                "worker {}: no {prefix:?} within {deadline:?} (log {})",
                self.id,
                self.log.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.pid.to_string()])
                .status();
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(20) {
                if c.try_wait().ok().flatten().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Waits until the workers' latest status lines split the ledger
/// partitions between them (each owned once, every worker some) with one
/// lister.
fn wait_settled(ws: &mut [Worker], deadline: Duration) {
    let start = Instant::now();
    let want: BTreeSet<i32> = (0..PARTITIONS).collect();
    loop {
        let mut all = BTreeSet::new();
        let (mut n, mut listers, mut ok) = (0, 0, true);
        for w in ws.iter_mut() {
            w.check();
            match w
                .lines()
                .into_iter()
                .rev()
                .find_map(|(t, m)| parse_status(&m).map(|s| (t, s)))
            {
                Some((t, (ledger, lists))) if t > now() - 3.0 && !ledger.is_empty() => {
                    n += ledger.len();
                    all.extend(ledger);
                    listers += lists as usize;
                }
                _ => ok = false,
            }
        }
        if ok && n == all.len() && all == want && listers == 1 {
            return;
        }
        assert!(
            start.elapsed() < deadline,
            "{} workers did not settle within {deadline:?}",
            ws.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

// --------------------------------------------------------------- watcher

/// Tails the ledger and the changelog (read_committed) in a thread: how
/// many of the expected objects are counted (and by whom), and whether the
/// changelog holds exactly the expected totals.
#[derive(Default)]
struct Seen {
    counted: HashMap<String, String>,
    current: HashMap<String, i64>,
    matched: usize,
    extra: usize,
    t_first: Option<f64>,
    t_counted: Option<f64>,
    t_final: Option<f64>,
}

struct Watcher {
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watcher {
    fn start(e: &Env, app: &str, objects: usize, want: Arc<HashMap<String, i64>>) -> Watcher {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &e.brokers)
            .set("group.id", unique("bench-watch"))
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .set("fetch.wait.max.ms", "50")
            .create()
            .expect("watch consumer");
        let (ledger, changelog) = (
            format!("{app}-objects"),
            format!("{app}-word_counts-changelog"),
        );
        let mut tpl = TopicPartitionList::new();
        for t in [&ledger, &changelog] {
            for p in 0..PARTITIONS {
                tpl.add_partition_offset(t, p, Offset::Beginning).unwrap();
            }
        }
        consumer.assign(&tpl).expect("assign");
        let seen = Arc::new(Mutex::new(Seen::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s2, st2) = (Arc::clone(&seen), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            while !st2.load(Ordering::Relaxed) {
                let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) else {
                    continue;
                };
                let (Some(k), Some(v)) = (m.key(), m.payload()) else {
                    continue;
                };
                let mut s = s2.lock().unwrap();
                if m.topic() == ledger {
                    let v: serde_json::Value = serde_json::from_slice(v).unwrap_or_default();
                    if v["state"] == "counted" {
                        let key = String::from_utf8_lossy(k).into_owned();
                        let by = v["worker"].as_str().unwrap_or("?").to_string();
                        s.counted.insert(key, by);
                        s.t_first.get_or_insert_with(now);
                        if s.counted.len() == objects && s.t_counted.is_none() {
                            s.t_counted = Some(now());
                        }
                    }
                } else {
                    let word: String = serde_json::from_slice(k).unwrap_or_default();
                    let total: i64 = serde_json::from_slice(v).unwrap_or(-1);
                    let target = want.get(&word).copied();
                    let old = s.current.insert(word, total);
                    match target {
                        None => {
                            if old.is_none() {
                                s.extra += 1;
                            }
                        }
                        Some(t) => {
                            if old == Some(t) {
                                s.matched -= 1;
                            }
                            if total == t {
                                s.matched += 1;
                            }
                        }
                    }
                    if s.matched == want.len() && s.extra == 0 && s.t_final.is_none() {
                        s.t_final = Some(now());
                    }
                }
            }
        });
        Watcher {
            seen,
            stop,
            thread: Some(thread),
        }
    }

    /// Waits for both moments; (counted, final) epoch seconds.
    fn wait(&self, deadline: Duration, ws: &mut [Worker]) -> (f64, f64) {
        let start = Instant::now();
        loop {
            {
                let s = self.seen.lock().unwrap();
                if let (Some(a), Some(b)) = (s.t_counted, s.t_final) {
                    return (a, b);
                }
                if start.elapsed() > deadline {
                    panic!(
                        "not done within {deadline:?}: {} counted, {} words matched, {} extra",
                        s.counted.len(),
                        s.matched,
                        s.extra
                    );
                }
            }
            for w in ws.iter_mut() {
                w.check();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ---------------------------------------------------------------- corpus

fn corpus_dir() -> PathBuf {
    match std::env::var_os("WORDSTREAM_CORPUS") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => repo().join("../shared/corpus"),
    }
}

fn corpus_files(which: &str) -> Vec<(String, PathBuf)> {
    let dirs: &[&str] = if which == "all" {
        &["papers", "books"]
    } else {
        &["papers"]
    };
    let mut out = Vec::new();
    for d in dirs {
        let dir = corpus_dir().join(d);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e} (WORDSTREAM_CORPUS?)", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        for p in files {
            out.push((
                format!("{d}/{}", p.file_name().unwrap().to_string_lossy()),
                p,
            ));
        }
    }
    out
}

// ------------------------------------------------------------ throughput

struct Corpus {
    files: Vec<(String, Vec<u8>)>,
    want: Arc<HashMap<String, i64>>,
    words: u64,
    bytes: u64,
}

/// The corpus, `copies` times (keys `c<i>/<dir>/<file>`).
fn load_corpus(which: &str, copies: usize) -> Corpus {
    let mut counter = Counter::new(Options::default());
    let mut files = Vec::new();
    let mut bytes = 0;
    for (k, p) in corpus_files(which) {
        let data = std::fs::read(&p).expect("corpus file");
        // one counter over all files, each file ending on a separator
        counter.feed(&data);
        counter.feed(b"\n");
        bytes += (data.len() * copies) as u64;
        for i in 0..copies {
            files.push((format!("c{i}/{k}"), data.clone()));
        }
    }
    let counts = counter.finish();
    let want: HashMap<String, i64> = counts
        .iter()
        .map(|(w, n)| (w.to_string(), (n as usize * copies) as i64))
        .collect();
    // upload order: by key (as a lister sees them)
    files.sort_by(|a, b| a.0.cmp(&b.0));
    Corpus {
        files,
        want: Arc::new(want),
        words: counts.words * copies as u64,
        bytes,
    }
}

async fn upload_all(s3: &aws_sdk_s3::Client, bucket: &str, c: &Corpus) -> f64 {
    let t0 = now();
    futures::stream::iter(c.files.iter().map(|(k, d)| {
        s3.put_object()
            .bucket(bucket)
            .key(k)
            .body(ByteStream::from(d.clone()))
            .send()
    }))
    .buffer_unordered(32)
    .for_each(|r| async move {
        r.expect("put_object");
    })
    .await;
    now() - t0
}

/// Waits until the app's ledger and changelog exist (the first worker
/// creates them).
fn wait_topics(e: &Env, app: &str) {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &e.brokers)
        .create()
        .expect("metadata client");
    let start = Instant::now();
    for t in [
        format!("{app}-objects"),
        format!("{app}-word_counts-changelog"),
    ] {
        loop {
            let ok = c
                .fetch_metadata(Some(&t), Duration::from_secs(5))
                .ok()
                .is_some_and(|md| {
                    md.topics().first().is_some_and(|x| {
                        x.error().is_none() && x.partitions().len() == PARTITIONS as usize
                    })
                });
            if ok {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(120), "no topic {t}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// One run with `n` workers. `backlog`: a bucket holding the corpus
/// already; the workers start together on it and the clock starts at their
/// start. Else (live): a fresh bucket, the workers settle first, then the
/// corpus is uploaded while they run and the clock starts at the upload.
async fn bench_throughput(
    e: &Env,
    s3: &aws_sdk_s3::Client,
    c: &Corpus,
    n: usize,
    backlog: Option<&str>,
) -> String {
    let app = unique(&format!("bso{n}"));
    let bucket = match backlog {
        Some(b) => b.to_string(),
        None => {
            s3.create_bucket()
                .bucket(&app)
                .send()
                .await
                .expect("create bucket");
            app.clone()
        }
    };
    let stack = stack_pids(e);
    let scpu0: Vec<f64> = stack
        .iter()
        .map(|(_, p)| cpu_seconds(*p).unwrap_or(0.0))
        .collect();
    let t_spawn = now();
    let mut ws: Vec<Worker> = (1..=n)
        .map(|i| Worker::start(e, &app, &bucket, &format!("w{i}")))
        .collect();
    let mut upload = None;
    let (watcher, t0) = if backlog.is_some() {
        tokio::task::block_in_place(|| wait_topics(e, &app));
        let w = Watcher::start(e, &app, c.files.len(), Arc::clone(&c.want));
        (w, t_spawn)
    } else {
        for w in ws.iter_mut() {
            w.wait_for("Worker ready", 0.0, Duration::from_secs(120));
        }
        wait_settled(&mut ws, Duration::from_secs(120));
        let w = Watcher::start(e, &app, c.files.len(), Arc::clone(&c.want));
        let t0 = now();
        upload = Some(upload_all(s3, &bucket, c).await);
        (w, t0)
    };
    let (t_counted, t_final) =
        tokio::task::block_in_place(|| watcher.wait(Duration::from_secs(900), &mut ws));
    let cpu: Vec<f64> = ws
        .iter()
        .map(|w| cpu_seconds(w.pid).unwrap_or(0.0))
        .collect();
    let scpu1: Vec<f64> = stack
        .iter()
        .map(|(_, p)| cpu_seconds(*p).unwrap_or(0.0))
        .collect();
    let (by, t_first) = {
        let s = watcher.seen.lock().unwrap();
        let mut m: BTreeMap<String, usize> = BTreeMap::new();
        for w in s.counted.values() {
            *m.entry(w.clone()).or_default() += 1;
        }
        (m, s.t_first.unwrap_or(t0))
    };
    let ready: Vec<f64> = ws
        .iter()
        .map(|w| {
            w.first("Worker ready", 0.0)
                .map(|(t, _)| t - t_spawn)
                .unwrap_or(f64::NAN)
        })
        .collect();
    drop(watcher);
    for w in ws.iter_mut() {
        w.stop();
    }
    let wall = t_final - t0;
    let objs = c.files.len() as f64;
    let mut out = format!(
        "{n} worker{} ({}): all counted (ledger) {:.1} s, final totals (changelog) {:.1} s → {:.0} objects/s, {:.0} words/s, {:.2} MB/s\n",
        if n == 1 { "" } else { "s" },
        match upload {
            Some(u) => format!("live: upload of {} objects took {u:.1} s, clock from the first upload", c.files.len()),
            None => "backlog: clock from the workers' start".to_string(),
        },
        t_counted - t0,
        wall,
        objs / wall,
        c.words as f64 / wall,
        c.bytes as f64 / 1e6 / wall,
    );
    out += &format!(
        "    first object counted at +{:.1} s; from then {:.0} objects/s; workers ready at {:?} s\n",
        t_first - t0,
        objs / (t_final - t_first),
        ready
            .iter()
            .map(|r| (r * 10.0).round() / 10.0)
            .collect::<Vec<_>>()
    );
    let cpu_wall = t_final - t_spawn;
    for (i, w) in ws.iter().enumerate() {
        out += &format!(
            "    worker {}: {:>5} objects, CPU {:.1} s = {:.0} % of one core over {:.1} s\n",
            i + 1,
            by.get(&w.id).copied().unwrap_or(0),
            cpu[i],
            100.0 * cpu[i] / cpu_wall,
            cpu_wall
        );
    }
    for (i, (name, pid)) in stack.iter().enumerate() {
        let cpu = scpu1[i] - scpu0[i];
        if cpu < 0.0 || stack_pids(e).iter().all(|(_, p)| p != pid) {
            out += &format!(
                "    {name}: RESTARTED during this run (someone else's test?): the figures above are not valid\n"
            );
            continue;
        }
        out += &format!(
            "    {name}: CPU {:.1} s = {:.0} % of one core\n",
            cpu,
            100.0 * cpu / cpu_wall
        );
    }
    out
}

// --------------------------------------------------------------- restore

fn letters(mut i: u64) -> String {
    // 6 letters: 308 M distinct words, all alphabetic (Faust-style words)
    let mut s = [b'a'; 6];
    for c in s.iter_mut().rev() {
        *c = b'a' + (i % 26) as u8;
        i /= 26;
    }
    format!("w{}", std::str::from_utf8(&s).unwrap())
}

fn seed_table(e: &Env, topic: &str, n: u64) -> f64 {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &e.brokers)
        .create()
        .expect("admin");
    let spec = NewTopic::new(topic, PARTITIONS, TopicReplication::Fixed(-1))
        .set("cleanup.policy", "compact");
    let res = futures::executor::block_on(admin.create_topics(
        [&spec],
        &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
    ))
    .expect("create_topics");
    for r in res {
        r.unwrap_or_else(|(t, c)| panic!("creating {t}: {c}"));
    }
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &e.brokers)
        .set("linger.ms", "20")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.messages", "1000000")
        .set("compression.type", "lz4")
        .create()
        .expect("producer");
    let serde = Serde::Faust;
    let start = Instant::now();
    for i in 0..n {
        let key = serde.key(&letters(i));
        let value = serde.value(1);
        let p = partition_for(&key, PARTITIONS);
        let mut rec = BaseRecord::to(topic).key(&key).payload(&value).partition(p);
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((_, r)) => {
                    rec = r;
                    producer.poll(Duration::from_millis(10));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(120)).expect("flush");
    start.elapsed().as_secs_f64()
}

async fn bench_restore(e: &Env, s3: &aws_sdk_s3::Client, n: u64) -> String {
    let app = unique("bso-table");
    s3.create_bucket()
        .bucket(&app)
        .send()
        .await
        .expect("create bucket");
    let seeded =
        tokio::task::block_in_place(|| seed_table(e, &format!("{app}-word_counts-changelog"), n));
    let mut out =
        format!("table of {n} distinct words ({PARTITIONS} partitions) seeded in {seeded:.1} s\n");
    tokio::task::block_in_place(|| {
        let mut a = Worker::start(e, &app, &app, "a");
        let (ready_a, _) = a.wait_for("Worker ready", 0.0, Duration::from_secs(300));
        let restore_a = a
            .lines()
            .into_iter()
            .find_map(|(_, m)| parse_restore(&m))
            .expect("worker A's restore line");
        wait_settled(std::slice::from_mut(&mut a), Duration::from_secs(60));
        out += &format!(
            "  worker A alone: restored {} words in {:.2} s; ready {:.2} s after its start; RSS {:.0} MiB\n",
            restore_a.0,
            restore_a.1,
            ready_a - a.started,
            rss_mib(a.pid).unwrap_or(0.0)
        );
        std::thread::sleep(Duration::from_secs(2));
        let mut b = Worker::start(e, &app, &app, "b");
        let (ready_b, _) = b.wait_for("Worker ready", 0.0, Duration::from_secs(300));
        let (t_b, line_b) = b.wait_for("restored table partitions", 0.0, Duration::from_secs(60));
        let restore_b = parse_restore(&line_b).expect("B's restore line");
        let (revoke_a, _) = a.wait_for("partitions revoked", b.started, Duration::from_secs(60));
        let mut ws = [a, b];
        wait_settled(&mut ws, Duration::from_secs(300));
        let [mut a, mut b] = ws;
        // A's last restore after the rebalance
        let (t_a2, line_a2) = a
            .lines()
            .into_iter()
            .rfind(|(t, m)| *t >= revoke_a && m.starts_with("restored table partitions"))
            .expect("A restores what it keeps");
        let restore_a2 = parse_restore(&line_a2).unwrap_or((0, 0.0));
        out += &format!(
            "  worker B joins: ready {:.2} s after its start; it restored {} words in {:.2} s (restore done {:.2} s after its start)\n",
            ready_b - b.started,
            restore_b.0,
            restore_b.1,
            t_b - b.started,
        );
        out += &format!(
            "  worker A during the rebalance (eager: revokes all, restores what it keeps): revoked at +{:.2} s, restored {} words in {:.2} s, working again at +{:.2} s (times from B's start)\n",
            revoke_a - b.started,
            restore_a2.0,
            restore_a2.1,
            t_a2 - b.started,
        );
        a.stop();
        b.stop();
    });
    out
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut workers = vec![1usize, 2, 3];
    let mut which = "papers".to_string();
    let mut table_words: u64 = 1_000_000;
    let mut skip_throughput = false;
    let mut live = false;
    let mut copies = 1usize;
    let mut interval = 1.0f64;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || {
            it.next()
                .cloned()
                .unwrap_or_else(|| panic!("{a} needs a value"))
        };
        match a.as_str() {
            "--workers" => {
                workers = val()
                    .split(',')
                    .map(|x| x.trim().parse().expect("--workers 1,2,3"))
                    .collect()
            }
            "--corpus" => which = val(),
            "--table-words" => table_words = val().parse().expect("--table-words N"),
            "--skip-throughput" => skip_throughput = true,
            "--live" => live = true,
            "--copies" => copies = val().parse().expect("--copies K"),
            "--interval" => interval = val().parse().expect("--interval SECS"),
            other => panic!("unknown flag {other} (see the top of examples/bench_scaleout.rs)"),
        }
    }
    let logs = std::env::temp_dir().join(format!("bench-scaleout-{}", std::process::id()));
    std::fs::create_dir_all(&logs).expect("log dir");
    let e = Env {
        brokers: env_or("KAFKA_BROKERS", "127.0.0.1:9092"),
        endpoint: env_or("AWS_ENDPOINT_URL", "http://127.0.0.1:9000"),
        access: env_or("AWS_ACCESS_KEY_ID", "wordstream"),
        secret: env_or("AWS_SECRET_ACCESS_KEY", "wordstream-secret"),
        region: env_or("AWS_REGION", "us-east-1"),
        bin: PathBuf::from(env_or(
            "WORDSTREAM_BIN",
            &repo().join("target/release/wordstream").to_string_lossy(),
        )),
        logs: logs.clone(),
        interval,
        stack_dir: PathBuf::from(env_or(
            "WORDSTREAM_STACK_DIR",
            &repo().join(".stack").to_string_lossy(),
        )),
    };
    let s3 = s3_client(&e);
    println!(
        "bench-scaleout: {} cores; worker logs in {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        logs.display()
    );
    if !skip_throughput {
        let c = load_corpus(&which, copies);
        println!(
            "corpus {which} x {copies}: {} objects, {:.1} MB, {} words, {} distinct; workers list every {interval} s",
            c.files.len(),
            c.bytes as f64 / 1e6,
            c.words,
            c.want.len()
        );
        let backlog = if live {
            None
        } else {
            let b = unique("bso-backlog");
            s3.create_bucket()
                .bucket(&b)
                .send()
                .await
                .expect("create bucket");
            let took = upload_all(&s3, &b, &c).await;
            println!(
                "backlog: the corpus uploaded to s3://{b} in {took:.1} s; each run: a new app id on it, N workers started together"
            );
            Some(b)
        };
        for &n in &workers {
            print!(
                "{}",
                bench_throughput(&e, &s3, &c, n, backlog.as_deref()).await
            );
        }
    }
    if table_words > 0 {
        print!("{}", bench_restore(&e, &s3, table_words).await);
    }
}
