//! Throughput of the counting core against a simple baseline.
//!
//! `cargo bench --bench count` (or `scripts/bench-count`) builds an input of
//! at least 40 MB by repeating the corpus files, then measures, in one run:
//!
//! - the baseline: `HashMap<Vec<u8>, u64>` with foldhash, ASCII lowercase,
//!   split on ASCII whitespace, single-threaded (the simplest word count);
//! - the core, `count::count_bytes`, with one thread and with every core,
//!   case-preserving (the default) and with `--lowercase`;
//! - the real binary end to end: `wordstream count-local --output tsv FILE`
//!   on the same bytes written to a temporary file (process start, reading,
//!   counting, sorting and printing included).
//!
//! Each figure is the best of several runs (`--runs N`, default 5), in MB/s
//! (10^6 bytes per second) of wall time, and per CPU-second (user + system
//! time of every thread: the efficiency, less disturbed by other load on
//! the machine), each with its ratio to the baseline.
//! Options: `--mb N` (input size, default 40), `--runs N`.
//! The corpus is the test corpus (`tests/corpus`, or `$WORDSTREAM_CORPUS`).

use std::collections::HashMap;
use std::hint::black_box;
use std::process::Stdio;
use std::time::{Duration, Instant};

use wordstream::cmd::count_local::default_threads;
use wordstream::count::{self, Options};

type FoldMap = HashMap<Vec<u8>, u64, foldhash::fast::RandomState>;

/// The baseline, written the obvious way.
fn baseline(buf: &[u8]) -> FoldMap {
    let mut counts = FoldMap::default();
    for word in buf.split(u8::is_ascii_whitespace).filter(|w| !w.is_empty()) {
        *counts.entry(word.to_ascii_lowercase()).or_insert(0) += 1;
    }
    counts
}

/// The baseline without its allocation per word (look up by a reused
/// buffer, allocate only for a new word): a stronger single-threaded bar.
fn baseline_reuse(buf: &[u8]) -> FoldMap {
    let mut counts = FoldMap::default();
    let mut lower = Vec::new();
    for word in buf.split(u8::is_ascii_whitespace).filter(|w| !w.is_empty()) {
        lower.clear();
        lower.extend(word.iter().map(u8::to_ascii_lowercase));
        match counts.get_mut(&lower) {
            Some(n) => *n += 1,
            None => {
                counts.insert(lower.clone(), 1);
            }
        }
    }
    counts
}

/// The corpus files, each followed by a newline, repeated to `min` bytes.
fn build_input(min: usize) -> Vec<u8> {
    let mut once = Vec::new();
    for f in &testkit::corpus::files_under(&testkit::corpus::root()) {
        once.extend(std::fs::read(f).expect("readable corpus file"));
        once.push(b'\n');
    }
    let mut input = Vec::with_capacity(min + once.len());
    while input.len() < min {
        input.extend_from_slice(&once);
    }
    input
}

/// CPU time (user + system) used so far by this process (`RUSAGE_SELF`,
/// every thread) or by its waited-for children (`RUSAGE_CHILDREN`).
fn cpu_time(who: libc::c_int) -> Duration {
    // SAFETY: getrusage only writes the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::getrusage(who, &mut usage), 0, "getrusage");
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// One measurement: the best wall time and the best CPU time over the runs.
#[derive(Clone, Copy)]
struct Timing {
    wall: Duration,
    cpu: Duration,
}

/// Runs `f` `runs` times; `who` says whose CPU time it spends.
fn best(runs: usize, who: libc::c_int, mut f: impl FnMut()) -> Timing {
    let mut best = Timing {
        wall: Duration::MAX,
        cpu: Duration::MAX,
    };
    for _ in 0..runs {
        let (c, t) = (cpu_time(who), Instant::now());
        f();
        best.wall = best.wall.min(t.elapsed());
        best.cpu = best.cpu.min(cpu_time(who) - c);
    }
    best
}

struct Report {
    bytes: usize,
    baseline: Timing,
}

impl Report {
    fn mbs(&self, d: Duration) -> f64 {
        self.bytes as f64 / 1e6 / d.as_secs_f64().max(1e-9)
    }

    fn header(&self) {
        println!(
            "{:<46} {:>19}   {:>19}   {:>7}",
            "", "MB/s wall (ratio)", "MB/s per CPU-s", "best s"
        );
    }

    fn line(&self, name: &str, t: Timing) {
        let (wall, cpu) = (self.mbs(t.wall), self.mbs(t.cpu));
        println!(
            "{name:<46} {wall:>9.1} ({:>5.2}x)   {cpu:>9.1} ({:>5.2}x)   {:>7.3}",
            wall / self.mbs(self.baseline.wall),
            cpu / self.mbs(self.baseline.cpu),
            t.wall.as_secs_f64()
        );
    }
}

fn main() {
    let mut mb = 40usize;
    let mut runs = 5usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut num = |what: &str| -> usize {
            args.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{what} needs a number"))
        };
        match a.as_str() {
            "--mb" => mb = num("--mb"),
            "--runs" => runs = num("--runs").max(1),
            _ => {} // `cargo bench` passes --bench; ignore the rest
        }
    }
    let input = build_input(mb * 1_000_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("bench-input.txt");
    std::fs::write(&file, &input).expect("write the input file");
    let cores = default_threads();
    println!(
        "input: {:.1} MB (the corpus repeated), {} cores, best of {runs} runs",
        input.len() as f64 / 1e6,
        cores
    );

    let me = libc::RUSAGE_SELF;
    let base = best(runs, me, || {
        black_box(baseline(black_box(&input)));
    });
    let report = Report {
        bytes: input.len(),
        baseline: base,
    };
    report.header();
    report.line("baseline (split whitespace, lowercase, 1 thread)", base);
    let reuse = best(runs, me, || {
        black_box(baseline_reuse(black_box(&input)));
    });
    report.line("baseline without per-word allocation", reuse);

    for lowercase in [false, true] {
        let opts = Options {
            lowercase,
            ..Options::default()
        };
        let flag = if lowercase { " --lowercase" } else { "" };
        for threads in [1, cores] {
            let t = best(runs, me, || {
                black_box(count::count_bytes(black_box(&input), opts, threads));
            });
            report.line(&format!("core count_bytes{flag}, {threads} thread(s)"), t);
        }
        let t = best(runs, libc::RUSAGE_CHILDREN, || {
            let mut cmd = testkit::cli::offline_cmd(&["count-local", "--quiet", "--output", "tsv"]);
            if lowercase {
                cmd.arg("--lowercase");
            }
            let status = cmd
                .arg(&file)
                .stdout(Stdio::null())
                .status()
                .expect("wordstream runs");
            assert!(status.success(), "count-local failed");
        });
        report.line(&format!("count-local end to end{flag}, {cores} threads"), t);
    }
}
