//! What the worker announces: one typed [`Event`] per thing an operator, a
//! test or a benchmark may want to know (ready, assigned, restored, batch
//! committed, object failed, status, …).
//!
//! An event is emitted through `tracing` like any log line, so filtering and
//! ordering are the log's. With `--log-format human` (the default) it is the
//! familiar line ("Worker ready", "status: …"); with `--log-format json`
//! every line on stderr is one JSON object, and an event's object carries
//! `"event": "<name>"` and its fields next to `ts`, `level` and `message`
//! (see [`crate::logging`]). Tests and benchmarks deserialize these objects
//! back into [`Event`]; none of them reads log prose.

use crate::output::escape;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Partitions by topic, as a rebalance reports them.
pub type Partitions = BTreeMap<String, Vec<i32>>;

/// Everything the worker announces.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// Startup checks passed; the worker joins its group.
    Joining {
        worker: String,
        group: String,
        changelog: String,
        partitions: i32,
        serde: String,
    },
    /// The first assignment was handled: its state is restored.
    Ready { worker: String },
    /// A rebalance assigned these partitions.
    Assigned { partitions: Partitions },
    /// A rebalance revoked these partitions.
    Revoked { partitions: Partitions },
    /// Local state of newly owned partitions was rebuilt from a topic.
    Restored {
        /// `table` (changelog partitions) or `ledger` (done sets).
        what: String,
        topic: String,
        partitions: Vec<i32>,
        records: u64,
        /// Words (tables) or done objects (ledger) now held.
        entries: u64,
        seconds: f64,
    },
    /// This worker lists the bucket from now on.
    ListerStarted {
        bucket: String,
        prefix: String,
        interval_s: f64,
        known: u64,
    },
    /// Another worker lists the bucket now.
    ListerStopped,
    /// One object was counted (not yet committed: see `BatchCommitted`).
    ObjectCounted {
        key: String,
        bytes: u64,
        words: u64,
        distinct: u64,
        invalid_bytes: u64,
        ms: u64,
        /// Detected format chain (`text`, `gzip+tar`, `xml`…).
        #[serde(default)]
        format: String,
        /// Bytes of text counted.
        #[serde(default)]
        text_bytes: u64,
    },
    /// An object gone from the bucket: its contribution (`words`
    /// occurrences) taken out of the totals (not yet committed: see
    /// `BatchCommitted`).
    ObjectRemoved { key: String, words: u64 },
    /// One object could not be counted (recorded as `failed` in the ledger).
    ObjectFailed { key: String, reason: String },
    /// A big object split into `ranges` units of work of the group
    /// (docs/design.md §9; not yet committed: see `BatchCommitted`).
    ObjectSplit {
        key: String,
        etag: String,
        ranges: u32,
    },
    /// Range `range` of `of` of the object `key` counted by this worker
    /// (`changed`: its version was gone, it counted nothing).
    RangeCounted {
        key: String,
        range: u32,
        of: u32,
        bytes: u64,
        words: u64,
        changed: bool,
    },
    /// What the ranges of version `etag` of `key` added (`ranges` ranges,
    /// `words` occurrences) was taken back: the object is counted again at
    /// its current version.
    RangesTakenBack {
        key: String,
        etag: String,
        ranges: u32,
        words: u64,
    },
    /// A batch's transaction committed.
    BatchCommitted {
        discovered: u64,
        objects: u64,
        failed: u64,
        deltas: u64,
        totals: u64,
        count_ms: u64,
        txn_ms: u64,
    },
    /// A batch's transaction failed: the batch is done again.
    BatchAborted { reason: String },
    /// Local state is rebuilt from the committed state.
    Resync,
    /// Periodic summary (every `--status-interval`).
    Status(Status),
    /// The worker stops.
    Stopping { static_member: bool },
    /// The loop has made no progress in one step for `seconds` (see
    /// `worker::watchdog`): announced after 60 s, then every 60 s.
    Stalled { step: String, seconds: u64 },
    /// The web server listens (`--web-port`; 0 picks a free port).
    WebListening {
        /// The bound address (`127.0.0.1:6066`).
        addr: String,
        /// The URL other workers reach it at.
        url: String,
    },
}

/// The status line's figures.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub objects: u64,
    pub failed: u64,
    pub bytes: u64,
    pub words: u64,
    pub transactions: u64,
    pub aborted: u64,
    /// Owned ledger partitions.
    pub ledger: Vec<i32>,
    /// Owned repartition (= changelog) partitions.
    pub repartition: Vec<i32>,
    /// This worker lists the bucket.
    pub lister: bool,
    /// Words in the owned tables.
    pub table_words: u64,
    /// ListObjectsV2 calls made by this process.
    pub list_calls: u64,
    /// Estimated heap bytes of the owned tables.
    #[serde(default)]
    pub table_bytes: u64,
    /// Objects in the owned done sets.
    #[serde(default)]
    pub done_objects: u64,
    /// Objects discovery knows (the lister only).
    #[serde(default)]
    pub known_objects: u64,
    /// Estimated heap bytes of all local state (tables, done sets, known
    /// objects).
    #[serde(default)]
    pub state_bytes: u64,
    /// Changelog records skipped because they did not decode.
    #[serde(default)]
    pub junk_records: u64,
    /// Words over 64 KiB skipped in the objects counted.
    #[serde(default)]
    pub skipped_tokens: u64,
    /// Estimated heap bytes of the known objects (the lister only).
    #[serde(default)]
    pub known_bytes: u64,
    /// Event notices (`--events`) the lister's discovery took in.
    #[serde(default)]
    pub notices: Notices,
}

/// Event notices (`--events`) taken in by the lister's discovery (since it
/// became the lister).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notices {
    /// Created notices of the bucket and prefix.
    pub created: u64,
    /// Of those, objects found (not known before).
    pub found: u64,
    /// Removed notices of the bucket and prefix.
    pub removed: u64,
    /// Notices of another bucket or outside the prefix.
    pub ignored: u64,
}

impl Event {
    /// The event's name, as in its JSON `event` field.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Joining { .. } => "joining",
            Event::Ready { .. } => "ready",
            Event::Assigned { .. } => "assigned",
            Event::Revoked { .. } => "revoked",
            Event::Restored { .. } => "restored",
            Event::ListerStarted { .. } => "lister_started",
            Event::ListerStopped => "lister_stopped",
            Event::ObjectCounted { .. } => "object_counted",
            Event::ObjectFailed { .. } => "object_failed",
            Event::ObjectRemoved { .. } => "object_removed",
            Event::ObjectSplit { .. } => "object_split",
            Event::RangeCounted { .. } => "range_counted",
            Event::RangesTakenBack { .. } => "ranges_taken_back",
            Event::BatchCommitted { .. } => "batch_committed",
            Event::BatchAborted { .. } => "batch_aborted",
            Event::Resync => "resync",
            Event::Status(_) => "status",
            Event::Stopping { .. } => "stopping",
            Event::Stalled { .. } => "stalled",
            Event::WebListening { .. } => "web_listening",
        }
    }

    /// Emits the event through `tracing` (warn level for failures, debug for
    /// per-batch detail, info otherwise).
    pub fn emit(self) {
        crate::web::metrics::observe(&self);
        let json = serde_json::to_string(&self).unwrap_or_default();
        match self {
            Event::ObjectFailed { .. } | Event::BatchAborted { .. } | Event::Stalled { .. } => {
                tracing::warn!(event = self.name(), event_json = json.as_str(), "{self}")
            }
            Event::BatchCommitted { .. } => {
                tracing::debug!(event = self.name(), event_json = json.as_str(), "{self}")
            }
            _ => tracing::info!(event = self.name(), event_json = json.as_str(), "{self}"),
        }
    }
}

fn describe(p: &Partitions) -> String {
    if p.is_empty() {
        return "none".into();
    }
    p.iter()
        .map(|(t, ps)| format!("{t}{ps:?}"))
        .collect::<Vec<_>>()
        .join(" ")
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Joining {
                worker,
                group,
                changelog,
                partitions,
                serde,
            } => write!(
                f,
                "worker {worker} joining group {group} (changelog {changelog}, {partitions} partitions, serde {serde})"
            ),
            Event::Ready { .. } => f.write_str("Worker ready"),
            Event::Assigned { partitions } => {
                write!(f, "partitions assigned: {}", describe(partitions))
            }
            Event::Revoked { partitions } => {
                write!(f, "partitions revoked: {}", describe(partitions))
            }
            Event::Restored {
                what,
                topic,
                partitions,
                records,
                entries,
                seconds,
            } => write!(
                f,
                "restored {what} partitions {partitions:?} from {topic}: {records} records, {entries} entries in {seconds:.2} s"
            ),
            Event::ListerStarted {
                bucket,
                prefix,
                interval_s,
                known,
            } => write!(
                f,
                "this worker lists s3://{bucket}/{} every {interval_s} s ({known} objects known)",
                escape(prefix)
            ),
            Event::ListerStopped => f.write_str("another worker lists the bucket now"),
            Event::ObjectCounted {
                key,
                bytes,
                words,
                distinct,
                invalid_bytes,
                ms,
                format,
                text_bytes,
            } => write!(
                f,
                "counted {} ({format}, {text_bytes} bytes of text): {bytes} bytes, {words} words, {distinct} distinct, {invalid_bytes} invalid bytes, {ms} ms",
                escape(key)
            ),
            Event::ObjectFailed { key, reason } => {
                write!(f, "failed {}: {}", escape(key), escape(reason))
            }
            Event::ObjectRemoved { key, words } => {
                write!(f, "removed {}: {words} words retracted", escape(key))
            }
            Event::ObjectSplit { key, etag, ranges } => write!(
                f,
                "split {} (version {}) into {ranges} ranges for the group",
                escape(key),
                escape(etag)
            ),
            Event::RangeCounted {
                key,
                range,
                of,
                bytes,
                words,
                changed: false,
            } => write!(
                f,
                "counted range {range}/{of} of {}: {bytes} bytes, {words} words",
                escape(key)
            ),
            Event::RangeCounted {
                key, range, of, ..
            } => write!(
                f,
                "range {range}/{of} of {}: the object changed; counted nothing",
                escape(key)
            ),
            Event::RangesTakenBack {
                key,
                etag,
                ranges,
                words,
            } => write!(
                f,
                "{} changed while its ranges were counted: {ranges} ranges of version {} ({words} words) taken back; counting it again",
                escape(key),
                escape(etag)
            ),
            Event::BatchCommitted {
                discovered,
                objects,
                failed,
                deltas,
                totals,
                count_ms,
                txn_ms,
            } => write!(
                f,
                "batch: {discovered} discovered, {objects} objects ({failed} failed), {deltas} deltas, {totals} totals; counted in {count_ms} ms, committed in {txn_ms} ms"
            ),
            Event::BatchAborted { reason } => {
                write!(f, "transaction failed, retrying the batch: {}", escape(reason))
            }
            Event::Resync => f.write_str("resynchronising with the committed state"),
            Event::Status(s) => write!(
                f,
                "status: {} objects counted, {} failed, {} bytes, {} words{}, {} transactions ({} aborted); ledger {:?} repartition {:?}{}; table {} words; state ~{} MiB ({} done, {} known objects){}; {} list calls{}",
                s.objects,
                s.failed,
                s.bytes,
                s.words,
                match s.skipped_tokens {
                    0 => String::new(),
                    n => format!(" ({n} words over 64 KiB skipped)"),
                },
                s.transactions,
                s.aborted,
                s.ledger,
                s.repartition,
                if s.lister { " (lists the bucket)" } else { "" },
                s.table_words,
                s.state_bytes >> 20,
                s.done_objects,
                s.known_objects,
                if s.junk_records > 0 {
                    format!("; {} undecodable changelog records skipped", s.junk_records)
                } else {
                    String::new()
                },
                s.list_calls,
                match s.notices {
                    Notices { created: 0, removed: 0, ignored: 0, .. } => String::new(),
                    n => format!(
                        "; events: {} created ({} new), {} removed, {} ignored",
                        n.created, n.found, n.removed, n.ignored
                    ),
                },
            ),
            Event::Stopping { static_member: true } => f.write_str(
                "stopping (static member: partitions stay assigned to this id for the session timeout)",
            ),
            Event::Stopping {
                static_member: false,
            } => f.write_str("stopping: leaving the group"),
            Event::Stalled { step, seconds } => write!(
                f,
                "the worker's loop has made no progress in step {step} for {seconds} s"
            ),
            Event::WebListening { addr, url } => {
                write!(f, "web server on http://{addr} (advertised as {url})")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_keeps_the_event() {
        let events = [
            Event::Ready { worker: "w".into() },
            Event::ListerStopped,
            Event::Status(Status {
                objects: 3,
                ledger: vec![0, 1],
                lister: true,
                ..Status::default()
            }),
            Event::ObjectFailed {
                key: "s3://b/k".into(),
                reason: "NoSuchKey".into(),
            },
        ];
        for e in events {
            let json = serde_json::to_string(&e).unwrap();
            assert!(
                json.contains(&format!("\"event\":\"{}\"", e.name())),
                "{json}"
            );
            assert_eq!(serde_json::from_str::<Event>(&json).unwrap(), e);
        }
    }

    #[test]
    fn extra_fields_of_a_log_line_are_ignored() {
        let line =
            r#"{"ts":1.5,"level":"INFO","message":"Worker ready","event":"ready","worker":"w"}"#;
        assert_eq!(
            serde_json::from_str::<Event>(line).unwrap(),
            Event::Ready { worker: "w".into() }
        );
    }
}
