//! The worker's Prometheus metrics: their names and help texts, the
//! recorder (`metrics-exporter-prometheus`, rendered by `/metrics`), and
//! the observations, made where the worker's typed events are emitted
//! ([`observe`], called by [`crate::events::Event::emit`]) plus a few
//! explicit ones ([`committed`], [`error`], …).
//!
//! The `metrics` facade costs nothing when no recorder is installed (the
//! worker with `--no-web`, and every other subcommand).

use crate::events::Event;
use anyhow::{Context, Result};
use metrics::{counter, gauge, histogram, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

pub const OBJECTS_COUNTED: &str = "wordstream_objects_counted_total";
pub const OBJECTS_FAILED: &str = "wordstream_objects_failed_total";
pub const OBJECTS_SKIPPED: &str = "wordstream_objects_skipped_total";
pub const BYTES: &str = "wordstream_counted_bytes_total";
pub const WORDS: &str = "wordstream_words_total";
pub const OBJECT_SECONDS: &str = "wordstream_object_count_seconds";
pub const COMMIT_SECONDS: &str = "wordstream_commit_seconds";
pub const BATCH_OBJECTS: &str = "wordstream_batch_objects";
pub const TRANSACTIONS: &str = "wordstream_transactions_total";
pub const LAG: &str = "wordstream_consumer_lag_records";
pub const BACKLOG: &str = "wordstream_backlog_objects";
pub const TABLE_WORDS: &str = "wordstream_table_words";
pub const TABLE_BYTES: &str = "wordstream_table_bytes";
pub const STATE_BYTES: &str = "wordstream_state_bytes";
pub const RESTORE_SECONDS: &str = "wordstream_restore_seconds";
pub const RESTORE_RECORDS: &str = "wordstream_restore_records_total";
pub const LIST_CALLS: &str = "wordstream_list_calls_total";
pub const REBALANCES: &str = "wordstream_rebalances_total";
pub const ERRORS: &str = "wordstream_errors_total";
pub const READY: &str = "wordstream_ready";
pub const OWNED: &str = "wordstream_owned_partitions";
pub const LISTER: &str = "wordstream_lister";

/// The kinds of `wordstream_errors_total`: a failed loop iteration
/// (Kafka, mostly; retried), a failed bucket listing, an aborted
/// transaction, a resync of local state, an object that failed.
pub const ERROR_KINDS: &[&str] = &[
    "iteration",
    "s3_list",
    "transaction_aborted",
    "resync",
    "object_failed",
];

/// What a metric is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// A metric: its name (a histogram's base name), kind, unit and help text.
#[derive(Clone, Copy, Debug)]
pub struct Metric {
    pub name: &'static str,
    pub kind: Kind,
    pub unit: Option<Unit>,
    pub help: &'static str,
}

const fn counter(name: &'static str, help: &'static str) -> Metric {
    Metric {
        name,
        kind: Kind::Counter,
        unit: None,
        help,
    }
}

const fn gauge(name: &'static str, help: &'static str) -> Metric {
    Metric {
        kind: Kind::Gauge,
        ..counter(name, help)
    }
}

const fn histogram(name: &'static str, help: &'static str) -> Metric {
    Metric {
        kind: Kind::Histogram,
        ..counter(name, help)
    }
}

impl Metric {
    const fn in_unit(self, unit: Unit) -> Metric {
        Metric {
            unit: Some(unit),
            ..self
        }
    }
}

/// Every metric.
pub const ALL: &[Metric] = &[
    counter(OBJECTS_COUNTED, "Objects counted (committed)"),
    counter(OBJECTS_FAILED, "Objects failed (committed)"),
    counter(
        OBJECTS_SKIPPED,
        "Ledger records skipped: malformed, or of objects already done",
    ),
    counter(BYTES, "Bytes of objects counted (committed)").in_unit(Unit::Bytes),
    counter(WORDS, "Words counted (committed)"),
    histogram(OBJECT_SECONDS, "Time to read and count one object").in_unit(Unit::Seconds),
    histogram(COMMIT_SECONDS, "Transaction commit latency").in_unit(Unit::Seconds),
    histogram(BATCH_OBJECTS, "Objects per committed batch"),
    counter(TRANSACTIONS, "Transactions, by result (committed, aborted)"),
    gauge(
        LAG,
        "Records not yet processed, per owned input partition (log end - committed offset)",
    ),
    gauge(
        BACKLOG,
        "Ledger records (discovered objects) not yet processed in the owned ledger partitions",
    ),
    gauge(TABLE_WORDS, "Words in the owned tables"),
    gauge(TABLE_BYTES, "Estimated heap bytes of the owned tables").in_unit(Unit::Bytes),
    gauge(STATE_BYTES, "Estimated heap bytes of all local state").in_unit(Unit::Bytes),
    histogram(
        RESTORE_SECONDS,
        "Duration of a restore of local state, by what (table, ledger)",
    )
    .in_unit(Unit::Seconds),
    counter(RESTORE_RECORDS, "Records read by restores, by what"),
    counter(LIST_CALLS, "ListObjectsV2 calls of this process"),
    counter(REBALANCES, "Rebalances (assignments) of this worker"),
    counter(ERRORS, "Errors, by kind"),
    gauge(
        READY,
        "1 when the tables are restored, the worker is in its group and not resyncing",
    ),
    gauge(OWNED, "Owned partitions, by input topic kind"),
    gauge(LISTER, "1 when this worker lists the bucket"),
];

/// Totals the dashboard's chart samples (words and objects committed).
pub static WORDS_COMMITTED: AtomicU64 = AtomicU64::new(0);
pub static OBJECTS_COMMITTED: AtomicU64 = AtomicU64::new(0);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder (once per process) and describes every
/// metric; returns the handle `/metrics` renders.
pub fn install() -> Result<PrometheusHandle> {
    if let Some(h) = HANDLE.get() {
        return Ok(h.clone());
    }
    let seconds = [
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    ];
    let sizes = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0];
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &seconds)
        .and_then(|b| b.set_buckets_for_metric(Matcher::Full(BATCH_OBJECTS.into()), &sizes))
        .context("cannot configure the metric buckets")?
        .install_recorder()
        .context("cannot install the metrics recorder")?;
    describe();
    // Series that exist from the start, so that a scrape before the first
    // object already shows them (at 0).
    for name in [
        OBJECTS_COUNTED,
        OBJECTS_FAILED,
        OBJECTS_SKIPPED,
        BYTES,
        WORDS,
        LIST_CALLS,
        REBALANCES,
    ] {
        counter!(name).absolute(0);
    }
    for kind in ERROR_KINDS {
        counter!(ERRORS, "kind" => *kind).absolute(0);
    }
    for result in ["committed", "aborted"] {
        counter!(TRANSACTIONS, "result" => result).absolute(0);
    }
    for name in [
        READY,
        TABLE_WORDS,
        TABLE_BYTES,
        STATE_BYTES,
        BACKLOG,
        LISTER,
    ] {
        gauge!(name).set(0.0);
    }
    let _ = HANDLE.set(handle.clone());
    Ok(handle)
}

fn describe() {
    metrics::with_recorder(|r| {
        for &Metric {
            name,
            kind,
            unit,
            help,
        } in ALL
        {
            let (key, help) = (name.into(), help.into());
            match kind {
                Kind::Counter => r.describe_counter(key, unit, help),
                Kind::Gauge => r.describe_gauge(key, unit, help),
                Kind::Histogram => r.describe_histogram(key, unit, help),
            }
        }
    });
}

/// The Prometheus text of every metric (empty before [`install`]).
pub fn render() -> String {
    HANDLE
        .get()
        .map(PrometheusHandle::render)
        .unwrap_or_default()
}

/// Updates the metrics an event carries.
pub fn observe(e: &Event) {
    match e {
        Event::ObjectCounted { ms, .. } => {
            histogram!(OBJECT_SECONDS).record(*ms as f64 / 1000.0);
        }
        Event::BatchCommitted {
            objects, txn_ms, ..
        } => {
            histogram!(COMMIT_SECONDS).record(*txn_ms as f64 / 1000.0);
            histogram!(BATCH_OBJECTS).record(*objects as f64);
            counter!(TRANSACTIONS, "result" => "committed").increment(1);
        }
        Event::BatchAborted { .. } => {
            counter!(TRANSACTIONS, "result" => "aborted").increment(1);
            error("transaction_aborted");
        }
        Event::Resync => error("resync"),
        Event::ObjectFailed { .. } => error("object_failed"),
        Event::Restored {
            what,
            records,
            seconds,
            ..
        } => {
            histogram!(RESTORE_SECONDS, "what" => what.clone()).record(*seconds);
            counter!(RESTORE_RECORDS, "what" => what.clone()).increment(*records);
        }
        Event::Assigned { .. } => counter!(REBALANCES).increment(1),
        Event::ListerStarted { .. } => gauge!(LISTER).set(1.0),
        Event::ListerStopped => gauge!(LISTER).set(0.0),
        Event::Status(s) => {
            gauge!(TABLE_WORDS).set(s.table_words as f64);
            gauge!(TABLE_BYTES).set(s.table_bytes as f64);
            gauge!(STATE_BYTES).set(s.state_bytes as f64);
            counter!(LIST_CALLS).absolute(s.list_calls);
        }
        _ => {}
    }
}

/// A committed batch's objects and words.
pub fn committed(counted: u64, failed: u64, bytes: u64, words: u64) {
    counter!(OBJECTS_COUNTED).increment(counted);
    counter!(OBJECTS_FAILED).increment(failed);
    counter!(BYTES).increment(bytes);
    counter!(WORDS).increment(words);
    WORDS_COMMITTED.fetch_add(words, Ordering::Relaxed);
    OBJECTS_COMMITTED.fetch_add(counted, Ordering::Relaxed);
}

/// Ledger records skipped by a batch.
pub fn skipped(n: usize) {
    if n > 0 {
        counter!(OBJECTS_SKIPPED).increment(n as u64);
    }
}

/// One error of `kind` (`iteration`, `s3_list`, `transaction_aborted`,
/// `resync`, …).
pub fn error(kind: &'static str) {
    counter!(ERRORS, "kind" => kind).increment(1);
}

/// Whether the worker is ready (see `/ready`).
pub fn set_ready(ready: bool) {
    gauge!(READY).set(if ready { 1.0 } else { 0.0 });
}

/// Words in the owned tables (also updated by every status line, with the
/// estimated bytes).
pub fn set_table_words(n: usize) {
    gauge!(TABLE_WORDS).set(n as f64);
}

/// How many partitions of each input the worker owns.
pub fn set_owned(repartition: usize, ledger: usize) {
    gauge!(OWNED, "topic" => "repartition").set(repartition as f64);
    gauge!(OWNED, "topic" => "ledger").set(ledger as f64);
}

/// The lag of one owned input partition (`topic`: `ledger` or
/// `repartition`).
pub fn set_lag(topic: &'static str, partition: i32, lag: i64) {
    gauge!(LAG, "topic" => topic, "partition" => partition.to_string()).set(lag as f64);
}

/// The lag series of a partition no longer owned disappear from scrapes
/// as 0 (the exporter keeps a series once recorded).
pub fn clear_lag(topic: &'static str, partition: i32) {
    set_lag(topic, partition, 0);
}

/// The discovered-but-not-processed objects of the owned ledger partitions.
pub fn set_backlog(n: i64) {
    gauge!(BACKLOG).set(n as f64);
}
