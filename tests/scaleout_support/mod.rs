//! Helpers of the scale-out tests (`tests/scaleout.rs`,
//! `tests/scaleout_cluster.rs`): several `wordstream worker` processes of
//! one group (one `--app-id`), and what their logs say about who owned which
//! partitions, who listed the bucket when, and how often.
//!
//! Workers run with `--interval 1 --status-interval 1`: each prints a status
//! line every second with its owned partitions and its ListObjectsV2 count
//! (`…; ledger [..] repartition [..] (lists the bucket); table N words; K
//! list calls`). A worker lists from its "this worker lists s3://…" line
//! until it loses ledger partition 0 ("partitions revoked: <ledger>[0, …]"),
//! resynchronises, stops, or is killed.
//!
//! Use as `mod common; mod worker_harness; mod scaleout_support;`.
#![allow(dead_code)]

use crate::common::stack;
use crate::worker_harness::{corpus, count_local, diff_counts, App, Counts, BIN};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// `--interval` of the workers, in seconds: the group lists once per this.
pub const INTERVAL: f64 = 1.0;
/// The worker's `session.timeout.ms` (src/worker/mod.rs).
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(10);

/// Seconds since the epoch, now.
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// `n` papers of the corpus from the `skip`-th (sorted), as (key, path).
pub fn papers(skip: usize, n: usize) -> Vec<(String, PathBuf)> {
    let mut all: Vec<PathBuf> = std::fs::read_dir(corpus().join("papers"))
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (set WORDSTREAM_CORPUS to the corpus folder)",
                corpus().join("papers").display()
            )
        })
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

/// Uploads `files` in rounds of `per_round`, pausing `pause` between rounds
/// (in the background: the workers run meanwhile).
pub fn upload_gradually(
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

static SPAWNED: AtomicU64 = AtomicU64::new(0);

/// One `wordstream worker` child process of a group; SIGKILLed when dropped.
pub struct Member {
    child: Option<Child>,
    /// Short name for messages ("w1").
    pub name: String,
    /// `--worker-id` if given (static membership), else the default id
    /// `hostname-pid` (dynamic membership).
    pub worker_id: String,
    pub pid: u32,
    pub log: PathBuf,
    /// When it was killed or told to stop (epoch seconds).
    pub ended_at: Option<f64>,
}

impl Member {
    /// Starts a worker of `app`'s group with the stack's settings, `--interval
    /// 1 --status-interval 1`, `--worker-id` if `worker_id` is given, and
    /// `extra` flags.
    pub fn spawn(app: &App, name: &str, worker_id: Option<&str>, extra: &[&str]) -> Member {
        let s = stack();
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("scaleout-logs");
        std::fs::create_dir_all(&dir).expect("log dir");
        let n = SPAWNED.fetch_add(1, Ordering::Relaxed);
        let log = dir.join(format!("{}-{name}-{n}.log", app.app_id));
        let out = File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let mut cmd = Command::new(BIN);
        cmd.arg("worker");
        if let Some(id) = worker_id {
            cmd.args(["--worker-id", id]);
        }
        let child = cmd
            .args(["--bucket", &app.bucket])
            .args(["--app-id", &app.app_id])
            .args(["--brokers", &s.brokers])
            .args(["--endpoint-url", &s.s3_endpoint])
            .args(["--region", &s.region])
            .args(["--interval", &INTERVAL.to_string()])
            .args(["--status-interval", "1"])
            .args(extra)
            .env("AWS_ACCESS_KEY_ID", &s.access_key)
            .env("AWS_SECRET_ACCESS_KEY", &s.secret_key)
            .env("WORDSTREAM_ENV_FILE", "/nonexistent")
            .env_remove("WORDSTREAM_WORKER_ID")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawning the worker");
        let pid = child.id();
        let host = gethostname_lossy();
        Member {
            child: Some(child),
            name: name.to_string(),
            worker_id: worker_id
                .map(str::to_string)
                .unwrap_or_else(|| format!("{host}-{pid}")),
            pid,
            log,
            ended_at: None,
        }
    }

    pub fn log_text(&self) -> String {
        let mut b = Vec::new();
        if let Ok(mut f) = File::open(&self.log) {
            let _ = f.read_to_end(&mut b);
        }
        String::from_utf8_lossy(&b).into_owned()
    }

    pub fn log_tail(&self, n: usize) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        format!(
            "--- {} ({}, {}) ---\n{}",
            self.name,
            self.worker_id,
            self.log.display(),
            lines[lines.len().saturating_sub(n)..].join("\n")
        )
    }

    /// The parsed log.
    pub fn lines(&self) -> Vec<LogLine> {
        parse_log(&self.log_text())
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            None => false,
            Some(c) => c.try_wait().expect("try_wait").is_none(),
        }
    }

    /// Panics (with the log) if the process has exited.
    pub fn assert_running(&mut self) {
        if !self.is_running() {
            panic!("worker {} is not running\n{}", self.name, self.log_tail(60));
        }
    }

    /// Waits for "Worker ready" in the log.
    pub async fn wait_ready(&mut self, deadline: Duration) {
        let start = Instant::now();
        while !self.log_text().contains("Worker ready") {
            self.assert_running();
            assert!(
                start.elapsed() < deadline,
                "worker {} not ready after {deadline:?}\n{}",
                self.name,
                self.log_tail(60)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGKILL, and reap.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            self.ended_at = Some(now());
            let _ = c.wait();
        }
    }

    fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid.to_string())
            .status()
            .expect("kill(1)");
        assert!(st.success(), "kill -{sig} {}", self.pid);
    }

    async fn wait_exit(&mut self, deadline: Duration) -> Option<ExitStatus> {
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

    /// SIGTERM; the worker must exit 0 within 20 s.
    pub async fn stop(&mut self) {
        if self.child.is_none() {
            return;
        }
        self.ended_at = Some(now());
        self.signal("TERM");
        match self.wait_exit(Duration::from_secs(20)).await {
            Some(st) if st.success() => {}
            Some(st) => panic!(
                "worker {} exited with {st} after SIGTERM\n{}",
                self.name,
                self.log_tail(40)
            ),
            None => panic!(
                "worker {} still running 20 s after SIGTERM\n{}",
                self.name,
                self.log_tail(40)
            ),
        }
    }

    /// CPU seconds (user + system) so far, from /proc/<pid>/stat.
    pub fn cpu_seconds(&self) -> Option<f64> {
        cpu_seconds(self.pid)
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn gethostname_lossy() -> String {
    // What the worker's default id uses (gethostname(2)).
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// utime + stime of a process in seconds (/proc/<pid>/stat fields 14, 15).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): utime is field 14, stime field 15.
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0) // USER_HZ is 100 on Linux
}

// ------------------------------------------------------------ log parsing

/// A log line of a worker: time (epoch seconds) and message (level removed).
#[derive(Clone, Debug)]
pub struct LogLine {
    pub t: f64,
    pub msg: String,
}

/// `2025-11-25T21:30:00.123456Z` → epoch seconds.
pub fn parse_rfc3339(s: &str) -> Option<f64> {
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
    // days from civil (Howard Hinnant)
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + hh * 3600 + mm * 60) as f64 + ss)
}

/// The lines of a worker log that start with a timestamp.
pub fn parse_log(text: &str) -> Vec<LogLine> {
    text.lines()
        .filter_map(|l| {
            let (ts, rest) = l.split_once(' ')?;
            let t = parse_rfc3339(ts)?;
            let rest = rest.trim_start();
            let msg = rest
                .split_once(' ')
                .map(|(_level, m)| m.trim_start())
                .unwrap_or(rest);
            Some(LogLine {
                t,
                msg: msg.to_string(),
            })
        })
        .collect()
}

/// One status line.
#[derive(Clone, Debug)]
pub struct Status {
    pub t: f64,
    pub objects: u64,
    pub ledger: BTreeSet<i32>,
    pub repartition: BTreeSet<i32>,
    pub lists: bool,
    pub list_calls: u64,
}

fn parse_set(s: &str) -> BTreeSet<i32> {
    s.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split(',')
        .filter_map(|x| x.trim().parse().ok())
        .collect()
}

/// Parses "status: N objects counted, …; ledger [..] repartition [..]
/// (lists the bucket); table N words; K list calls".
pub fn parse_status(l: &LogLine) -> Option<Status> {
    let m = l.msg.strip_prefix("status: ")?;
    let objects = m.split_whitespace().next()?.parse().ok()?;
    let after = &m[m.find("; ledger ")? + "; ledger ".len()..];
    let (ledger, rest) = after.split_once(" repartition ")?;
    let (repart, rest) = rest.split_once(';')?;
    let lists = repart.contains("(lists the bucket)");
    let repart = repart.replace("(lists the bucket)", "");
    let calls = rest
        .strip_suffix(" list calls")?
        .rsplit(' ')
        .next()?
        .parse()
        .ok()?;
    Some(Status {
        t: l.t,
        objects,
        ledger: parse_set(ledger),
        repartition: parse_set(&repart),
        lists,
        list_calls: calls,
    })
}

/// The status lines of a log.
pub fn statuses(lines: &[LogLine]) -> Vec<Status> {
    lines.iter().filter_map(parse_status).collect()
}

/// The partitions of `topic` in a "partitions revoked/assigned: t[0, 1] u[2]"
/// message.
pub fn partitions_in(msg: &str, topic: &str) -> BTreeSet<i32> {
    let pat = format!("{topic}[");
    match msg.find(&pat) {
        None => BTreeSet::new(),
        Some(i) => {
            let rest = &msg[i + pat.len()..];
            parse_set(&rest[..rest.find(']').unwrap_or(rest.len())])
        }
    }
}

/// The times this worker listed the bucket: from each "this worker lists"
/// to the next loss of ledger partition 0, resync, stop or the end of the
/// process (`end`: kill/stop time, else the last log line).
pub fn lister_intervals(lines: &[LogLine], ledger_topic: &str, end: f64) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    let mut since: Option<f64> = None;
    for l in lines {
        let m = l.msg.as_str();
        if m.starts_with("this worker lists s3://") {
            since.get_or_insert(l.t);
        } else if (m.starts_with("partitions revoked:")
            && partitions_in(m, ledger_topic).contains(&0))
            || m.starts_with("resynchronising")
            || m.starts_with("another worker lists the bucket")
            || m.starts_with("stopping")
        {
            if let Some(s) = since.take() {
                out.push((s, l.t));
            }
        }
    }
    if let Some(s) = since {
        out.push((s, end.max(s)));
    }
    out
}

/// What the group's logs say about listing.
#[derive(Debug, Default)]
pub struct ListingReport {
    /// (worker, from, to), sorted by start.
    pub intervals: Vec<(String, f64, f64)>,
    /// ListObjectsV2 calls per worker (last status line).
    pub calls: BTreeMap<String, u64>,
    /// Sum of the listers' time, seconds.
    pub lister_seconds: f64,
    /// Gaps between one lister's end and the next one's start (takeovers),
    /// seconds, in order.
    pub gaps: Vec<f64>,
    /// Status intervals in which a worker's count grew while it was not
    /// listing (should be none).
    pub stray_growth: Vec<String>,
}

impl ListingReport {
    pub fn total_calls(&self) -> u64 {
        self.calls.values().sum()
    }

    /// Calls per interval of listing time.
    pub fn rate(&self) -> f64 {
        self.total_calls() as f64 / (self.lister_seconds / INTERVAL).max(1.0)
    }
}

impl std::fmt::Display for ListingReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t0 = self.intervals.first().map(|i| i.1).unwrap_or(0.0);
        writeln!(
            f,
            "listing: {} ListObjectsV2 calls in {:.1} s of listing ({:.2} per {INTERVAL} s interval), per worker {:?}",
            self.total_calls(),
            self.lister_seconds,
            self.rate(),
            self.calls
        )?;
        for (w, a, b) in &self.intervals {
            writeln!(f, "  {w} listed from +{:.2} s to +{:.2} s", a - t0, b - t0)?;
        }
        write!(f, "  takeover gaps {:?} s", self.gaps)
    }
}

/// Reads every member's log: listing intervals, calls, and checks them.
/// `end` closes the intervals of members still running.
pub fn listing_report(members: &[&Member], ledger_topic: &str, end: f64) -> ListingReport {
    let mut r = ListingReport::default();
    for m in members {
        let lines = m.lines();
        let stop = m
            .ended_at
            .unwrap_or_else(|| lines.last().map(|l| l.t).unwrap_or(end).max(end));
        let iv = lister_intervals(&lines, ledger_topic, stop);
        let st = statuses(&lines);
        r.calls
            .insert(m.name.clone(), st.last().map(|s| s.list_calls).unwrap_or(0));
        let mut prev: Option<&Status> = None;
        for s in &st {
            if let Some(p) = prev {
                if s.list_calls > p.list_calls
                    && !iv.iter().any(|&(a, b)| a <= s.t + 0.05 && b >= p.t - 0.05)
                {
                    r.stray_growth.push(format!(
                        "{}: {} → {} calls between {:.2} and {:.2} while not listing",
                        m.name, p.list_calls, s.list_calls, p.t, s.t
                    ));
                }
            }
            prev = Some(s);
        }
        for (a, b) in iv {
            r.lister_seconds += b - a;
            r.intervals.push((m.name.clone(), a, b));
        }
    }
    r.intervals.sort_by(|x, y| x.1.total_cmp(&y.1));
    for w in r.intervals.windows(2) {
        r.gaps.push(((w[1].1 - w[0].2) * 100.0).round() / 100.0);
    }
    r
}

/// Asserts that listing was exclusive (no two listers at any time), that no
/// worker's count grew while it was not the lister, and that the group made
/// about one call per interval of listing: at most one per interval plus one
/// per takeover (a new lister lists at once) plus slack, and at least
/// `min_rate` per interval (a lister busy counting lists later).
pub fn assert_listing(r: &ListingReport, min_rate: f64) {
    for w in r.intervals.windows(2) {
        assert!(
            w[1].1 >= w[0].2,
            "two workers listed at the same time: {} until {:.3}, {} from {:.3}\n{r}",
            w[0].0,
            w[0].2,
            w[1].0,
            w[1].1
        );
    }
    assert!(
        r.stray_growth.is_empty(),
        "list calls by a worker that was not the lister: {:?}\n{r}",
        r.stray_growth
    );
    let per_interval = r.lister_seconds / INTERVAL;
    let max = per_interval + r.intervals.len() as f64 + 3.0;
    assert!(
        (r.total_calls() as f64) <= max,
        "{} list calls for {:.1} s of listing: more than one per interval (max {max:.0})\n{r}",
        r.total_calls(),
        r.lister_seconds
    );
    assert!(
        r.rate() >= min_rate,
        "{} list calls for {:.1} s of listing: fewer than {min_rate} per interval\n{r}",
        r.total_calls(),
        r.lister_seconds
    );
}

// -------------------------------------------------------- group and checks

/// The latest status line of each member (None if none yet).
pub fn latest_statuses(members: &[&Member]) -> Vec<Option<Status>> {
    members.iter().map(|m| statuses(&m.lines()).pop()).collect()
}

/// Waits until the members' latest status lines split the `partitions`
/// ledger and repartition partitions between them (each owned once, all
/// owned, every member owns some) and exactly one lists the bucket.
pub async fn wait_settled(members: &mut [&mut Member], partitions: i32, deadline: Duration) {
    let start = Instant::now();
    let want: BTreeSet<i32> = (0..partitions).collect();
    loop {
        for m in members.iter_mut() {
            m.assert_running();
        }
        let refs: Vec<&Member> = members.iter().map(|m| &**m).collect();
        let st = latest_statuses(&refs);
        let fresh = st
            .iter()
            .all(|s| s.as_ref().is_some_and(|s| s.t > now() - 3.0));
        if fresh {
            let st: Vec<Status> = st.into_iter().map(Option::unwrap).collect();
            let disjoint_cover = |f: fn(&Status) -> &BTreeSet<i32>| {
                let mut all = BTreeSet::new();
                let mut n = 0;
                for s in &st {
                    n += f(s).len();
                    all.extend(f(s).iter().copied());
                }
                n == all.len() && all == want && st.iter().all(|s| !f(s).is_empty())
            };
            if disjoint_cover(|s| &s.ledger)
                && disjoint_cover(|s| &s.repartition)
                && st.iter().filter(|s| s.lists).count() == 1
            {
                return;
            }
        }
        if start.elapsed() > deadline {
            panic!(
                "the group of {} workers did not settle in {deadline:?}\n{}",
                members.len(),
                refs.iter()
                    .map(|m| m.log_tail(15))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Which member lists the bucket now (by its latest status line).
pub fn current_lister(members: &[&Member]) -> Option<usize> {
    latest_statuses(members)
        .iter()
        .position(|s| s.as_ref().is_some_and(|s| s.lists))
}

/// How many "this worker lists" lines a member logged.
pub fn lister_starts(m: &Member) -> usize {
    m.log_text().matches("this worker lists s3://").count()
}

fn tails(members: &[&Member], n: usize) -> String {
    members
        .iter()
        .map(|m| m.log_tail(n))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every file's object counted exactly once in the ledger (none failed),
/// and the changelog equal to `count-local` of the files. Returns the
/// ledger's `worker` of each counted object.
pub async fn assert_exactly_once(
    app: &App,
    files: &[(String, PathBuf)],
    members: &[&Member],
    deadline: Duration,
) -> BTreeMap<String, String> {
    let urls: BTreeSet<String> = files.iter().map(|(k, _)| app.url(k)).collect();
    let paths: Vec<PathBuf> = files.iter().map(|(_, p)| p.clone()).collect();
    let want: Counts = count_local(&paths);
    let start = Instant::now();
    // every object done
    loop {
        let latest = app.ledger_latest().await;
        let missing = urls
            .iter()
            .filter(|u| {
                !latest
                    .get(*u)
                    .is_some_and(|v| v["state"] == "counted" || v["state"] == "failed")
            })
            .count();
        if missing == 0 {
            break;
        }
        assert!(
            start.elapsed() < deadline,
            "{missing} of {} objects not done after {deadline:?}\n{}",
            urls.len(),
            tails(members, 25)
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // totals
    loop {
        let got = app.changelog().await;
        if got == want {
            break;
        }
        assert!(
            start.elapsed() < deadline,
            "changelog of {} differs after {deadline:?}: {}\n{}",
            app.app_id,
            diff_counts(&got, &want),
            tails(members, 25)
        );
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    // once each
    let mut counted: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in app.ledger().await {
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
        urls,
        "the set of counted objects"
    );
    let twice: Vec<_> = counted.iter().filter(|(_, w)| w.len() != 1).collect();
    assert!(twice.is_empty(), "counted more than once: {twice:?}");
    counted
        .into_iter()
        .map(|(k, mut w)| (k, w.remove(0)))
        .collect()
}

/// Objects counted per worker id.
pub fn per_worker(counted: &BTreeMap<String, String>) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for w in counted.values() {
        *out.entry(w.clone()).or_default() += 1;
    }
    out
}

/// "restored table partitions [..] from <changelog>: N words in S s" lines.
pub fn restores(m: &Member) -> Vec<String> {
    m.lines()
        .into_iter()
        .filter(|l| l.msg.starts_with("restored table partitions"))
        .map(|l| l.msg)
        .collect()
}

/// "partitions assigned: …" messages.
pub fn assignments(m: &Member) -> Vec<String> {
    m.lines()
        .into_iter()
        .filter(|l| l.msg.starts_with("partitions assigned:"))
        .map(|l| l.msg)
        .collect()
}

/// Runs `scripts/stack ARGS` (with this process's environment: the stack
/// dir and ports of the stack under test).
pub fn stack_script(args: &[&str]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/stack");
    let st = Command::new("bash")
        .arg(&script)
        .args(args)
        .status()
        .expect("running scripts/stack");
    assert!(st.success(), "scripts/stack {args:?} failed: {st}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_timestamps_and_status() {
        assert_eq!(parse_rfc3339("1970-01-02T00:00:01.5Z"), Some(86_401.5));
        assert_eq!(parse_rfc3339("2024-03-01T12:00:00Z"), Some(1_709_294_400.0));
        let lines = parse_log(
            "2024-03-01T12:00:00.250000Z  INFO status: 3 objects counted, 0 failed, 10 bytes, 7 words, 2 transactions (0 aborted); ledger [0, 1] repartition [0, 1] (lists the bucket); table 5 words; 12 list calls\n\
             2024-03-01T12:00:01.000000Z  INFO partitions revoked: app-objects[0, 1] app-word_counts-repartition[0, 1]\n",
        );
        let s = parse_status(&lines[0]).expect("status");
        assert_eq!(s.objects, 3);
        assert_eq!(s.ledger, BTreeSet::from([0, 1]));
        assert_eq!(s.repartition, BTreeSet::from([0, 1]));
        assert!(s.lists);
        assert_eq!(s.list_calls, 12);
        assert_eq!(
            partitions_in(&lines[1].msg, "app-objects"),
            BTreeSet::from([0, 1])
        );
    }
}
