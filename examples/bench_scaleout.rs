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
//!    worker joins: the time from its start to its `ready` event, its
//!    restore (words, seconds), and the first worker's pause (eager
//!    rebalance: it revokes everything and restores the partitions it keeps).
//!
//! What the workers do is read from their events (`--log-format json`):
//! ready, status, restored, revoked.
//!
//! Settings from the environment (`eval "$(scripts/stack env)"`).
//! Flags: `--workers 1,2,3`, `--corpus papers|all` (default papers: the
//! papers of the test corpus; all = papers + books), `--table-words N` (0
//! skips part 2),
//! `--skip-throughput`, `--live`, `--copies K` (the corpus K times, under
//! `c0/` … `c<K-1>/`; default 1), `--interval SECS` (the workers', default 1).
//! `WORDSTREAM_BIN`: the binary (default: the `wordstream` of this
//! example's target folder, e.g. target/release/wordstream).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use testkit::corpus;
use testkit::counts::{count_bytes, Counts};
use testkit::events::restores;
use testkit::group::wait_settled;
use testkit::kafka::{fill_changelog, Tail};
use testkit::names::unique_name;
use testkit::now;
use testkit::procfs::cpu_seconds;
use testkit::stack::stack;
use testkit::worker::{self, Worker};
use wordstream::events::Event;

const PARTITIONS: i32 = 8;

/// A worker of `app` on `bucket`, listing every `interval` s, a status
/// every second.
fn start_worker(app: &str, bucket: &str, name: &str, interval: f64) -> Worker {
    let interval = interval.to_string();
    let flags = ["--interval", &interval, "--status-interval", "1"];
    Worker::spawn(
        &format!("{app}-{name}"),
        worker::command(stack(), bucket, app, None, &flags),
    )
}

/// When a worker announced `ready`, seconds after its start.
fn ready_after(w: &Worker) -> f64 {
    w.find_event(0.0, |e| matches!(e, Event::Ready { .. }))
        .map(|(t, _)| t - w.started_at)
        .unwrap_or(f64::NAN)
}

// --------------------------------------------------------------- watcher

/// What the tail of the ledger and the changelog (read_committed) saw: how
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

impl Seen {
    fn ledger(&mut self, key: &[u8], value: &[u8], objects: usize) {
        let v: serde_json::Value = serde_json::from_slice(value).unwrap_or_default();
        if v["state"] == "counted" {
            let key = String::from_utf8_lossy(key).into_owned();
            let by = v["worker"].as_str().unwrap_or("?").to_string();
            self.counted.insert(key, by);
            self.t_first.get_or_insert_with(now);
            if self.counted.len() == objects && self.t_counted.is_none() {
                self.t_counted = Some(now());
            }
        }
    }

    fn changelog(&mut self, key: &[u8], value: &[u8], want: &Counts) {
        let word: String = serde_json::from_slice(key).unwrap_or_default();
        let total: i64 = serde_json::from_slice(value).unwrap_or(-1);
        let target = want.get(&word).copied();
        let old = self.current.insert(word, total);
        match target {
            None => {
                if old.is_none() {
                    self.extra += 1;
                }
            }
            Some(t) => {
                if old == Some(t) {
                    self.matched -= 1;
                }
                if total == t {
                    self.matched += 1;
                }
            }
        }
        if self.matched == want.len() && self.extra == 0 && self.t_final.is_none() {
            self.t_final = Some(now());
        }
    }
}

/// Tails `app`'s ledger and changelog into a [`Seen`].
fn watch(app: &str, objects: usize, want: Arc<Counts>) -> (Arc<Mutex<Seen>>, Tail) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let ledger = format!("{app}-objects");
    let topics = [ledger.clone(), format!("{app}-word_counts-changelog")];
    let tail = stack().tail(&topics, {
        let seen = seen.clone();
        move |topic, k, v| {
            let Some(v) = v else { return };
            let mut s = seen.lock().unwrap();
            if topic == ledger {
                s.ledger(k, v, objects);
            } else {
                s.changelog(k, v, &want);
            }
        }
    });
    (seen, tail)
}

/// Waits for both moments; (counted, final) epoch seconds.
async fn wait_done(seen: &Mutex<Seen>, deadline: Duration, ws: &mut [Worker]) -> (f64, f64) {
    let start = Instant::now();
    loop {
        {
            let s = seen.lock().unwrap();
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
            w.assert_running();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ------------------------------------------------------------ throughput

struct Corpus {
    files: Vec<(String, Vec<u8>)>,
    want: Arc<Counts>,
    words: u64,
    bytes: u64,
    /// Seconds the core takes to count all of it (one thread, in process).
    core_s: f64,
}

/// The corpus (`papers`, or `all`: papers and books), `copies` times
/// (keys `c<i>/<dir>/<file>`).
fn load_corpus(which: &str, copies: usize) -> Corpus {
    let dirs: &[&str] = if which == "all" {
        &["papers", "books"]
    } else {
        &["papers"]
    };
    let mut want = Counts::new();
    let mut files = Vec::new();
    let mut bytes = 0;
    for (k, p) in corpus::objects(dirs) {
        let data = std::fs::read(&p).expect("corpus file");
        testkit::counts::add_counts(&mut want, &count_bytes(&data), copies as i64);
        bytes += (data.len() * copies) as u64;
        for i in 0..copies {
            files.push((format!("c{i}/{k}"), data.clone()));
        }
    }
    // upload order: by key (as a lister sees them)
    files.sort_by(|a, b| a.0.cmp(&b.0));
    // the baseline: the core counting the same bytes, one thread, in process
    let started = Instant::now();
    for (_, data) in &files {
        std::hint::black_box(count_bytes(data));
    }
    Corpus {
        core_s: started.elapsed().as_secs_f64(),
        files,
        words: want.values().sum::<i64>() as u64,
        want: Arc::new(want),
        bytes,
    }
}

async fn upload_all(bucket: &str, c: &Corpus) -> f64 {
    let t0 = now();
    stack().put_objects(bucket, &c.files, 32).await;
    now() - t0
}

/// Waits until the app's ledger and changelog exist (the first worker
/// creates them).
async fn wait_topics(app: &str) {
    for t in [
        format!("{app}-objects"),
        format!("{app}-word_counts-changelog"),
    ] {
        testkit::wait::wait_for(Duration::from_secs(120), &format!("topic {t}"), || {
            let ok = stack()
                .layout(&t)
                .is_some_and(|l| l.len() == PARTITIONS as usize);
            async move { ok }
        })
        .await;
    }
}

/// One run with `n` workers. `backlog`: a bucket holding the corpus
/// already; the workers start together on it and the clock starts at their
/// start. Else (live): a fresh bucket, the workers settle first, then the
/// corpus is uploaded while they run and the clock starts at the upload.
async fn bench_throughput(c: &Corpus, n: usize, backlog: Option<&str>, interval: f64) -> String {
    let app = unique_name(&format!("bso{n}"));
    let bucket = match backlog {
        Some(b) => b.to_string(),
        None => {
            stack().create_bucket(&app).await;
            app.clone()
        }
    };
    let stack_procs = testkit::procfs::stack_processes();
    let scpu0: Vec<f64> = stack_procs
        .iter()
        .map(|(_, p)| cpu_seconds(*p).unwrap_or(0.0))
        .collect();
    let t_spawn = now();
    let mut ws: Vec<Worker> = (1..=n)
        .map(|i| start_worker(&app, &bucket, &format!("w{i}"), interval))
        .collect();
    let mut upload = None;
    let (seen, tail, t0) = if backlog.is_some() {
        wait_topics(&app).await;
        let (seen, tail) = watch(&app, c.files.len(), Arc::clone(&c.want));
        (seen, tail, t_spawn)
    } else {
        for w in ws.iter_mut() {
            w.wait_ready(Duration::from_secs(120)).await;
        }
        wait_settled(
            &mut ws.iter_mut().collect::<Vec<_>>(),
            PARTITIONS,
            Duration::from_secs(120),
        )
        .await;
        let (seen, tail) = watch(&app, c.files.len(), Arc::clone(&c.want));
        let t0 = now();
        upload = Some(upload_all(&bucket, c).await);
        (seen, tail, t0)
    };
    let (t_counted, t_final) = wait_done(&seen, Duration::from_secs(900), &mut ws).await;
    let cpu: Vec<f64> = ws.iter().map(|w| w.cpu_seconds().unwrap_or(0.0)).collect();
    let peak_mib: Vec<f64> = ws
        .iter()
        .map(|w| w.memory().peak_kib as f64 / 1024.0)
        .collect();
    let scpu1: Vec<f64> = stack_procs
        .iter()
        .map(|(_, p)| cpu_seconds(*p).unwrap_or(0.0))
        .collect();
    let (by, t_first) = {
        let s = seen.lock().unwrap();
        let mut m: BTreeMap<String, usize> = BTreeMap::new();
        for w in s.counted.values() {
            *m.entry(w.clone()).or_default() += 1;
        }
        (m, s.t_first.unwrap_or(t0))
    };
    let ready: Vec<f64> = ws.iter().map(ready_after).collect();
    drop(tail);
    let ids: Vec<String> = ws
        .iter()
        .map(|w| w.worker_id().unwrap_or_default())
        .collect();
    for w in ws.iter_mut() {
        w.stop().await;
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
        "    baseline: the core counts the same bytes in {:.3} s (one thread, in process): the run took {:.0}x that\n",
        c.core_s,
        wall / c.core_s
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
    let mb = c.bytes as f64 / 1e6;
    let per = |cpu: f64| {
        format!(
            "{:.3} CPU-s/MB, {:.2} CPU-s per 1,000 objects",
            cpu / mb,
            1000.0 * cpu / objs
        )
    };
    for (i, id) in ids.iter().enumerate() {
        out += &format!(
            "    worker {}: {:>5} objects, CPU {:.1} s = {:.0} % of one core over {:.1} s ({}), peak RSS {:.0} MiB\n",
            i + 1,
            by.get(id).copied().unwrap_or(0),
            cpu[i],
            100.0 * cpu[i] / cpu_wall,
            cpu_wall,
            per(cpu[i]),
            peak_mib[i],
        );
    }
    let mut total_cpu: f64 = cpu.iter().sum();
    for (i, (name, pid)) in stack_procs.iter().enumerate() {
        let cpu = scpu1[i] - scpu0[i];
        if cpu < 0.0
            || testkit::procfs::stack_processes()
                .iter()
                .all(|(_, p)| p != pid)
        {
            out += &format!(
                "    {name}: RESTARTED during this run (someone else's test?): the figures above are not valid\n"
            );
            continue;
        }
        total_cpu += cpu;
        out += &format!(
            "    {name}: CPU {:.1} s = {:.0} % of one core ({})\n",
            cpu,
            100.0 * cpu / cpu_wall,
            per(cpu)
        );
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    out += &format!(
        "    CPU floor: workers + Kafka + S3 used {total_cpu:.1} CPU-s = {:.1} s of all {cores} cores, {:.0} % of the {cpu_wall:.1} s run\n",
        total_cpu / cores,
        100.0 * total_cpu / cores / cpu_wall
    );
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

async fn bench_restore(n: u64, interval: f64) -> String {
    let app = unique_name("bso-table");
    stack().create_bucket(&app).await;
    let topic = format!("{app}-word_counts-changelog");
    let seeded = tokio::task::block_in_place(|| {
        fill_changelog(&stack().brokers, &topic, PARTITIONS, n, |i| (letters(i), 1))
    });
    let mut out =
        format!("table of {n} distinct words ({PARTITIONS} partitions) seeded in {seeded:.1} s\n");
    let restored = |w: &Worker| restores(&w.lines(), "table");
    let mut a = start_worker(&app, &app, "a", interval);
    let ready_a = a.wait_ready(Duration::from_secs(300)).await;
    let restore_a = restored(&a).into_iter().next().expect("worker A's restore");
    wait_settled(&mut [&mut a], PARTITIONS, Duration::from_secs(60)).await;
    out += &format!(
        "  worker A alone: restored {} words in {:.2} s; ready {:.2} s after its start; RSS {:.0} MiB\n",
        restore_a.entries,
        restore_a.seconds,
        ready_a - a.started_at,
        a.memory().rss_kib as f64 / 1024.0
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut b = start_worker(&app, &app, "b", interval);
    let ready_b = b.wait_ready(Duration::from_secs(300)).await;
    b.wait_event(
        0.0,
        Duration::from_secs(60),
        "table restore",
        |e| matches!(e, Event::Restored { what, .. } if what == "table"),
    )
    .await;
    let restore_b = restored(&b).into_iter().next().expect("B's restore");
    let (revoke_a, _) = a
        .wait_event(
            b.started_at,
            Duration::from_secs(60),
            "revoked event",
            |e| matches!(e, Event::Revoked { .. }),
        )
        .await;
    wait_settled(&mut [&mut a, &mut b], PARTITIONS, Duration::from_secs(300)).await;
    // A is working again once it has its new assignment and has restored
    // what it must (nothing, when it keeps the tables of the partitions it
    // keeps).
    let (assigned_a, _) = a
        .find_event(revoke_a, |e| matches!(e, Event::Assigned { .. }))
        .expect("A's assignment after the rebalance");
    let restore_a2 = restored(&a).into_iter().rfind(|r| r.ts >= revoke_a);
    let working_a = restore_a2
        .as_ref()
        .map_or(assigned_a, |r| r.ts.max(assigned_a));
    let since_b = |t: f64| t - b.started_at;
    out += &format!(
        "  worker B joins: ready {:.2} s after its start; it restored {} words in {:.2} s (restore done {:.2} s after its start)\n\
         \x20 worker A during the rebalance: revoked at +{:.2} s, assigned at +{:.2} s, restored {} words in {:.2} s, working again at +{:.2} s: paused {:.2} s (times from B's start)\n",
        since_b(ready_b),
        restore_b.entries,
        restore_b.seconds,
        since_b(restore_b.ts),
        since_b(revoke_a),
        since_b(assigned_a),
        restore_a2.as_ref().map_or(0, |r| r.entries),
        restore_a2.as_ref().map_or(0.0, |r| r.seconds),
        since_b(working_a),
        working_a - revoke_a,
    );
    a.stop().await;
    b.stop().await;
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
    println!(
        "bench-scaleout: {} on {} cores; worker logs in {}",
        testkit::cli::bin().display(),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        testkit::scratch_dir().join("worker-logs").display()
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
            let b = unique_name("bso-backlog");
            stack().create_bucket(&b).await;
            let took = upload_all(&b, &c).await;
            println!(
                "backlog: the corpus uploaded to s3://{b} in {took:.1} s; each run: a new app id on it, N workers started together"
            );
            Some(b)
        };
        for &n in &workers {
            print!(
                "{}",
                bench_throughput(&c, n, backlog.as_deref(), interval).await
            );
        }
    }
    if table_words > 0 {
        print!("{}", bench_restore(table_words, interval).await);
    }
}
