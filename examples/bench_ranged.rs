//! The big-object benchmark (issue 15; run by `scripts/bench-ranged`,
//! release build), against the local stack and the real `wordstream worker`
//! binary: one generated object of `--mib` MiB (default 2048: 2 GiB of
//! text, one long line with multi-byte words, multipart-uploaded with
//! `wordstream upload`), counted by fresh app ids on the same bucket:
//!
//! 1. one worker reading it whole (`--range-size 0`): the baseline;
//! 2. one worker reading it in ranges (`--range-size`, default 64MiB,
//!    `--range-concurrency`, default 2);
//! 3. two workers of one group, ranges as in 2.
//!
//! For each: MB/s over the object's read-and-count time (read whole: the
//! `ms` of its ledger `counted` record; in ranges, counted by the group:
//! from its `object_split` event to the `object_counted` event of its
//! collection, across the workers) and over the wall time from the workers' start
//! to the final totals in the changelog; ratios against the baseline
//! measured in the same run; CPU-seconds (utime + stime, /proc) of the
//! worker(s), the Kafka broker and versitygw over the run, and per MB; the
//! workers' peak RSS (VmHWM). Totals are checked exactly (the core's count
//! of the repeated unit).
//!
//! Flags: `--mib N`, `--range-size SIZE`, `--range-concurrency N`, `--keep`
//! (keep the object). Settings from the environment (`eval "$(scripts/stack
//! env)"`); `WORDSTREAM_BIN`: the binary.

use std::time::{Duration, Instant};
use testkit::app::App;
use testkit::counts::{count_bytes, times, Counts};
use testkit::names::unique_name;
use testkit::procfs::{cpu_seconds, stack_processes};
use testkit::stack::stack;
use testkit::worker::{self, Worker, READY};
use wordstream::events::Event;

/// The repeated unit: multi-byte words, digits, punctuation, no newline.
const UNIT: &str = "It was the best of times, it was the worst of times; \
    naïve Ωmega 文字 café H2O x_1 señor théorème données and the end of a long line ";

/// One run's figures.
struct Run {
    label: String,
    workers: usize,
    count_s: f64,
    wall_s: f64,
    worker_cpu: f64,
    kafka_cpu: f64,
    s3_cpu: f64,
    peak_mib: f64,
    ranges: u64,
    counted_by: String,
}

fn value(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

/// CPU-seconds of the stack's processes: (Kafka, versitygw).
fn stack_cpu() -> (f64, f64) {
    let mut out = (0.0, 0.0);
    for (label, pid) in stack_processes() {
        let s = cpu_seconds(pid).unwrap_or(0.0);
        if label == "versitygw" {
            out.1 += s;
        } else {
            out.0 += s;
        }
    }
    out
}

/// Counts the object with `n` workers of a fresh app and `flags`.
async fn run(bucket: &str, key: &str, want: &Counts, n: usize, flags: &[&str], label: &str) -> Run {
    let app = App {
        app_id: unique_name("bench-ranged"),
        bucket: bucket.to_string(),
    };
    let (k0, s0) = stack_cpu();
    let t0 = Instant::now();
    let mut all = vec!["--interval", "0.5", "--status-interval", "5"];
    all.extend_from_slice(flags);
    let mut ws: Vec<Worker> = (0..n)
        .map(|i| {
            Worker::spawn(
                &format!("{label}-{i}"),
                worker::command(stack(), bucket, &app.app_id, None, &all),
            )
        })
        .collect();
    for w in &mut ws {
        w.wait_ready(READY).await;
    }
    loop {
        if app.changelog().await == *want {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(1800),
            "{label}: the totals never matched"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let wall_s = t0.elapsed().as_secs_f64();
    let (k1, s1) = stack_cpu();
    let worker_cpu = ws.iter().map(|w| w.cpu_seconds().unwrap_or(0.0)).sum();
    let peak_mib = ws.iter().map(|w| w.memory().peak_kib).max().unwrap_or(0) as f64 / 1024.0;
    // In ranges, the totals are complete once the last range commits; the
    // object's `counted` record follows in its owner's next transaction.
    let rec = loop {
        let rec = app
            .ledger_latest()
            .await
            .remove(&app.url(key))
            .expect("the object is in the ledger");
        if rec["state"] == "counted" {
            break rec;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(1800),
            "{label}: never counted: {rec}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let ranges = rec["ranges"].as_u64().unwrap_or(0);
    let url = app.url(key);
    let when = |pred: &dyn Fn(&Event) -> bool| {
        ws.iter()
            .filter_map(|w| w.find_event(0.0, pred).map(|(t, _)| t))
            .reduce(f64::min)
    };
    let split = when(&|e| matches!(e, Event::ObjectSplit { key, .. } if *key == url));
    let counted = when(&|e| matches!(e, Event::ObjectCounted { key, .. } if *key == url));
    let count_s = match (ranges, split, counted) {
        (1.., Some(a), Some(b)) => b - a,
        _ => rec["ms"].as_f64().unwrap_or(0.0) / 1000.0,
    };
    for w in &mut ws {
        w.stop().await;
    }
    Run {
        label: label.to_string(),
        workers: n,
        count_s,
        wall_s,
        worker_cpu,
        kafka_cpu: k1 - k0,
        s3_cpu: s1 - s0,
        peak_mib,
        ranges,
        counted_by: rec["worker"].as_str().unwrap_or("").to_string(),
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mib: usize = value(&args, "--mib", "2048").parse().expect("--mib N");
    let range_size = value(&args, "--range-size", "64MiB");
    let concurrency = value(&args, "--range-concurrency", "2");
    let keep = args.iter().any(|a| a == "--keep");

    let unit = UNIT.as_bytes();
    let reps = ((mib << 20) / unit.len()).max(1);
    let size = (unit.len() * reps) as u64;
    let want = times(&count_bytes(unit), reps as i64);
    let mb = size as f64 / 1e6;

    let bucket = unique_name("bench-ranged");
    stack().create_bucket(&bucket).await;
    let key = "big-one-line.txt";
    let t = Instant::now();
    stack().put_repeated(&bucket, key, unit, reps).await;
    println!(
        "object: {:.0} MiB ({size} bytes, one line), written and uploaded (multipart, wordstream upload) in {:.1} s",
        size as f64 / f64::from(1 << 20),
        t.elapsed().as_secs_f64()
    );

    let ranged = [
        "--range-size",
        range_size.as_str(),
        "--range-concurrency",
        concurrency.as_str(),
    ];
    let runs = [
        run(
            &bucket,
            key,
            &want,
            1,
            &["--range-size", "0"],
            "whole, 1 worker",
        )
        .await,
        run(&bucket, key, &want, 1, &ranged, "ranged, 1 worker").await,
        run(&bucket, key, &want, 2, &ranged, "ranged, 2 workers").await,
    ];
    if !keep {
        stack().delete(&bucket, key).await;
    }

    println!(
        "\n{} MB, --range-size {range_size}, --range-concurrency {concurrency}; totals exact in every run",
        mb.round()
    );
    println!(
        "| run | workers | ranges | read+count s | MB/s | ratio | start→totals s | MB/s (wall) | worker CPU-s | worker CPU-s/MB | Kafka CPU-s | versitygw CPU-s | peak RSS MiB | counted by |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    let base = mb / runs[0].count_s;
    for r in &runs {
        println!(
            "| {} | {} | {} | {:.2} | {:.0} | {:.2}x | {:.1} | {:.0} | {:.2} | {:.4} | {:.2} | {:.2} | {:.0} | {} |",
            r.label,
            r.workers,
            r.ranges,
            r.count_s,
            mb / r.count_s,
            mb / r.count_s / base,
            r.wall_s,
            mb / r.wall_s,
            r.worker_cpu,
            r.worker_cpu / mb,
            r.kafka_cpu,
            r.s3_cpu,
            r.peak_mib,
            r.counted_by
        );
    }
    println!(
        "2 workers vs 1 (ranged): {:.2}x (read+count), {:.2}x (wall)",
        runs[1].count_s / runs[2].count_s,
        runs[1].wall_s / runs[2].wall_s
    );
}
