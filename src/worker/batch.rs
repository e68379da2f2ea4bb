//! A batch, as pure functions (no I/O): [`plan`] turns the records polled
//! from the ledger and repartition topics into the objects to count, the new
//! totals and the offsets to commit; [`settle`] turns the objects' outcomes
//! into ledger entries and the word deltas; [`records`] lays out everything
//! the batch's transaction writes. The loop ([`super::Worker`]) does the
//! I/O around them.

use super::discover::{Discovery, Listed};
use super::ledger::{listing_key, unix_now, Entry};
use super::object::Outcome;
use crate::count::WordCounts;
use crate::events::Event;
use crate::kafka::partition_for;
use crate::s3;
use crate::wire::Serde;
use std::collections::{BTreeMap, HashMap, HashSet};

/// The two input topics of the group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Input {
    /// The object ledger (the work queue of the count stage).
    Ledger,
    /// The repartition topic (word deltas, input of the aggregate stage).
    Repartition,
}

/// A record polled in this batch (owned: the batch outlives the poll).
#[derive(Clone, Debug)]
pub struct Polled {
    pub input: Input,
    pub partition: i32,
    pub offset: i64,
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
}

/// An object to count in this batch.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    /// Its ledger partition.
    pub partition: i32,
    /// `s3://bucket/key`.
    pub ledger_key: String,
    /// The object's key in the bucket.
    pub object_key: String,
    /// The ledger entry that asked for it (`discovered`).
    pub listed: Entry,
}

/// What a batch's input asks for.
#[derive(Debug, Default)]
pub struct Plan {
    /// Objects to count.
    pub jobs: Vec<Job>,
    /// New totals by word: (changelog partition, total).
    pub totals: HashMap<String, (i32, i64)>,
    /// Next offset to commit per input partition.
    pub offsets: BTreeMap<(Input, i32), i64>,
    /// Objects found done in the ledger: (ledger partition, ledger key).
    pub done: Vec<(i32, String)>,
    /// Records that were skipped, and why (for a warning each).
    pub skipped: Vec<String>,
    /// A ledger key of another bucket: two buckets share one app id.
    pub foreign: Option<String>,
}

/// Plans a batch. `is_done` says whether a ledger key is already done (in
/// the local done set); `total` gives a word's current total in its table.
pub fn plan(
    polled: Vec<Polled>,
    bucket: &str,
    is_done: impl Fn(i32, &str) -> bool,
    total: impl Fn(i32, &str) -> i64,
) -> Plan {
    let mut plan = Plan::default();
    let mut seen: HashSet<String> = HashSet::new();
    for rec in polled {
        plan.offsets
            .insert((rec.input, rec.partition), rec.offset + 1);
        let key = String::from_utf8_lossy(&rec.key).into_owned();
        let at = format!("[{}]@{}", rec.partition, rec.offset);
        match rec.input {
            Input::Ledger => {
                let Some(Ok(entry)) = rec.value.as_deref().map(Entry::parse) else {
                    plan.skipped
                        .push(format!("ledger record {key} at {at} is not a ledger entry"));
                    continue;
                };
                if entry.is_done() {
                    seen.insert(key.clone());
                    plan.done.push((rec.partition, key));
                    continue;
                }
                if !matches!(entry, Entry::Discovered { .. }) {
                    continue; // failed: discovery lists it again to retry it
                }
                if is_done(rec.partition, &key) || !seen.insert(key.clone()) {
                    continue; // counted already, or twice in this batch
                }
                let Some(object_key) = Discovery::key_of(bucket, &key) else {
                    plan.foreign.get_or_insert(key);
                    continue;
                };
                plan.jobs.push(Job {
                    partition: rec.partition,
                    object_key: object_key.to_string(),
                    ledger_key: key,
                    listed: entry,
                });
            }
            Input::Repartition => {
                let Some(delta) = rec
                    .value
                    .as_deref()
                    .and_then(|v| std::str::from_utf8(v).ok())
                    .and_then(|s| s.parse::<i64>().ok())
                else {
                    plan.skipped
                        .push(format!("repartition record at {at} has no count"));
                    continue;
                };
                let p = rec.partition;
                let current = match plan.totals.get(&key) {
                    Some(&(_, t)) => t,
                    None => total(p, &key),
                };
                plan.totals.insert(key, (p, current + delta));
            }
        }
    }
    plan
}

/// What the batch's objects came to.
#[derive(Debug, Default)]
pub struct Settled {
    /// Ledger records to write: (partition, ledger key, entry).
    pub ledger: Vec<(i32, String, Entry)>,
    /// Word deltas of the counted objects, merged.
    pub delta: WordCounts,
    /// Objects counted.
    pub counted: u64,
    /// Objects failed.
    pub failed: u64,
    /// Bytes of the counted objects.
    pub bytes: u64,
    /// One event per object.
    pub events: Vec<Event>,
}

/// Settles the outcomes of `jobs` (in the same order). `None` when an
/// object was interrupted (shutting down): then nothing may be committed.
pub fn settle(jobs: Vec<Job>, outcomes: Vec<Outcome>, worker: &str) -> Option<Settled> {
    if outcomes.iter().any(|o| matches!(o, Outcome::Interrupted)) {
        return None;
    }
    let mut s = Settled::default();
    for (job, outcome) in jobs.into_iter().zip(outcomes) {
        let entry = match outcome {
            Outcome::Counted {
                counts,
                size,
                etag,
                elapsed,
                text,
            } => {
                let ms = elapsed.as_millis() as u64;
                s.events.push(Event::ObjectCounted {
                    key: job.ledger_key.clone(),
                    bytes: size,
                    words: counts.words,
                    distinct: counts.distinct() as u64,
                    invalid_bytes: counts.invalid_bytes,
                    ms,
                    format: text.format.clone(),
                    text_bytes: text.text_bytes,
                });
                let e = Entry::Counted {
                    etag,
                    size,
                    words: counts.words,
                    distinct: counts.distinct() as u64,
                    invalid_bytes: counts.invalid_bytes,
                    skipped_tokens: counts.skipped_tokens,
                    ms,
                    worker: worker.to_string(),
                    text,
                };
                s.counted += 1;
                s.bytes += size;
                s.delta.merge(counts);
                e
            }
            Outcome::Failed(reason) => {
                s.events.push(Event::ObjectFailed {
                    key: job.ledger_key.clone(),
                    reason: reason.clone(),
                });
                let (etag, size) = match job.listed {
                    Entry::Discovered { etag, size } => (etag, size),
                    _ => (String::new(), 0),
                };
                s.failed += 1;
                Entry::Failed {
                    etag,
                    size,
                    reason,
                    worker: worker.to_string(),
                    at: unix_now(),
                }
            }
            Outcome::Interrupted => unreachable!("checked above"),
        };
        s.ledger.push((job.partition, job.ledger_key, entry));
    }
    Some(s)
}

/// The output topics of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Ledger,
    Repartition,
    Changelog,
}

/// One record of a batch's transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub topic: Output,
    pub partition: i32,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

/// How records are laid out: partition counts and the changelog's format.
#[derive(Clone, Copy, Debug)]
pub struct Layout<'a> {
    pub bucket: &'a str,
    /// Partitions of the changelog (= repartition) topic.
    pub partitions: i32,
    /// Partitions of the ledger.
    pub ledger_partitions: i32,
    pub serde: Serde,
}

/// Everything a batch writes, in order: the listing's progress and
/// `discovered` records, word deltas
/// (repartition), the objects' ledger entries, the new totals (changelog).
pub fn records(
    layout: Layout<'_>,
    listed: &Listed,
    settled: &Settled,
    totals: &HashMap<String, (i32, i64)>,
) -> Vec<Record> {
    let mut out = Vec::with_capacity(
        listed.found.len() + 1 + settled.delta.distinct() + settled.ledger.len() + totals.len(),
    );
    if let Some(progress) = &listed.progress {
        let key = listing_key(layout.bucket).into_bytes();
        out.push(Record {
            topic: Output::Ledger,
            partition: partition_for(&key, layout.ledger_partitions),
            value: progress.to_bytes(),
            key,
        });
    }
    for f in &listed.found {
        let key = s3::url(layout.bucket, &f.key).into_bytes();
        out.push(Record {
            topic: Output::Ledger,
            partition: partition_for(&key, layout.ledger_partitions),
            value: Entry::Discovered {
                etag: f.etag.clone(),
                size: f.size,
            }
            .to_bytes(),
            key,
        });
    }
    for (word, n) in settled.delta.iter() {
        out.push(Record {
            topic: Output::Repartition,
            partition: partition_for(&layout.serde.key(word), layout.partitions),
            key: word.as_bytes().to_vec(),
            value: n.to_string().into_bytes(),
        });
    }
    for (partition, key, entry) in &settled.ledger {
        out.push(Record {
            topic: Output::Ledger,
            partition: *partition,
            key: key.as_bytes().to_vec(),
            value: entry.to_bytes(),
        });
    }
    for (word, (partition, total)) in totals {
        out.push(Record {
            topic: Output::Changelog,
            partition: *partition,
            key: layout.serde.key(word),
            value: layout.serde.value(*total),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::count::{Counter, Options};
    use std::time::Duration;

    fn ledger(p: i32, offset: i64, key: &str, e: &Entry) -> Polled {
        Polled {
            input: Input::Ledger,
            partition: p,
            offset,
            key: key.as_bytes().to_vec(),
            value: Some(e.to_bytes()),
        }
    }

    fn delta(p: i32, offset: i64, word: &str, n: i64) -> Polled {
        Polled {
            input: Input::Repartition,
            partition: p,
            offset,
            key: word.as_bytes().to_vec(),
            value: Some(n.to_string().into_bytes()),
        }
    }

    fn discovered() -> Entry {
        Entry::Discovered {
            etag: "e".into(),
            size: 3,
        }
    }

    fn counted() -> Entry {
        Entry::Counted {
            etag: "e".into(),
            size: 3,
            words: 1,
            distinct: 1,
            invalid_bytes: 0,
            skipped_tokens: 0,
            ms: 1,
            worker: "w".into(),
            text: Default::default(),
        }
    }

    fn failed() -> Entry {
        Entry::Failed {
            etag: "e".into(),
            size: 3,
            reason: "AccessDenied".into(),
            worker: "w".into(),
            at: 1,
        }
    }

    /// A failed object is not done: a later discovery (a retry) counts it,
    /// but the failed record itself asks for nothing.
    #[test]
    fn plan_counts_a_failed_object_when_it_is_discovered_again() {
        let polled = vec![
            ledger(0, 1, "s3://b/f", &failed()),
            ledger(0, 2, "s3://b/f", &discovered()),
            ledger(1, 7, "s3://b/g", &failed()),
        ];
        let p = plan(polled, "b", |_, _| false, |_, _| 0);
        let keys: Vec<&str> = p.jobs.iter().map(|j| j.object_key.as_str()).collect();
        assert_eq!(keys, ["f"]);
        assert!(p.done.is_empty());
        assert_eq!(p.offsets[&(Input::Ledger, 1)], 8);
    }

    #[test]
    fn plan_counts_each_object_once_and_skips_done_ones() {
        let polled = vec![
            ledger(0, 5, "s3://b/a", &discovered()),
            ledger(0, 6, "s3://b/a", &discovered()), // duplicate discovery
            ledger(1, 2, "s3://b/done", &discovered()), // done locally
            ledger(1, 3, "s3://b/c", &counted()),    // done in this batch
            ledger(1, 4, "s3://b/c", &discovered()), // ... so skipped
            ledger(2, 0, "s3://other/x", &discovered()), // another bucket
        ];
        let p = plan(polled, "b", |_, k| k == "s3://b/done", |_, _| 0);
        let keys: Vec<&str> = p.jobs.iter().map(|j| j.object_key.as_str()).collect();
        assert_eq!(keys, ["a"]);
        assert_eq!(p.foreign.as_deref(), Some("s3://other/x"));
        assert_eq!(p.done, [(1, "s3://b/c".to_string())]);
        assert_eq!(
            p.offsets,
            BTreeMap::from([
                ((Input::Ledger, 0), 7),
                ((Input::Ledger, 1), 5),
                ((Input::Ledger, 2), 1)
            ])
        );
    }

    #[test]
    fn plan_adds_deltas_to_the_table_totals() {
        let polled = vec![
            delta(3, 10, "the", 2),
            delta(3, 11, "the", 5),
            delta(4, 1, "cat", 1),
            Polled {
                value: Some(b"junk".to_vec()),
                ..delta(4, 2, "dog", 0)
            },
        ];
        let p = plan(
            polled,
            "b",
            |_, _| false,
            |_, w| if w == "the" { 100 } else { 0 },
        );
        assert_eq!(p.totals["the"], (3, 107));
        assert_eq!(p.totals["cat"], (4, 1));
        assert!(!p.totals.contains_key("dog"));
        assert_eq!(p.skipped.len(), 1);
        assert_eq!(p.offsets[&(Input::Repartition, 4)], 3);
    }

    fn job(key: &str) -> Job {
        Job {
            partition: 0,
            ledger_key: format!("s3://b/{key}"),
            object_key: key.into(),
            listed: discovered(),
        }
    }

    fn counts_of(text: &str) -> WordCounts {
        let mut c = Counter::new(Options::default());
        c.feed(text.as_bytes());
        c.finish()
    }

    #[test]
    fn settle_merges_counts_and_records_failures() {
        let outcomes = vec![
            Outcome::Counted {
                counts: counts_of("a b a"),
                size: 5,
                etag: "x".into(),
                elapsed: Duration::from_millis(3),
                text: Default::default(),
            },
            Outcome::Failed("NoSuchKey".into()),
        ];
        let s = settle(vec![job("one"), job("two")], outcomes, "w").unwrap();
        assert_eq!((s.counted, s.failed, s.bytes), (1, 1, 5));
        assert_eq!(s.delta.words, 3);
        assert!(matches!(s.ledger[1].2, Entry::Failed { ref reason, .. } if reason == "NoSuchKey"));
        assert_eq!(s.events.len(), 2);
        let layout = Layout {
            bucket: "b",
            partitions: 8,
            ledger_partitions: 8,
            serde: Serde::Faust,
        };
        let totals = HashMap::from([("a".to_string(), (partition_for(b"\"a\"", 8), 9))]);
        let recs = records(layout, &Listed::default(), &s, &totals);
        let by = |t: Output| recs.iter().filter(|r| r.topic == t).count();
        assert_eq!(
            (
                by(Output::Repartition),
                by(Output::Ledger),
                by(Output::Changelog)
            ),
            (2, 2, 1)
        );
        let total = recs.iter().find(|r| r.topic == Output::Changelog).unwrap();
        assert_eq!(
            (&total.key[..], &total.value[..]),
            (&b"\"a\""[..], &b"9"[..])
        );
    }

    #[test]
    fn settle_records_skipped_tokens_in_the_counted_entry() {
        let text = format!("a {} b", "z".repeat(crate::tokenize::MAX_TOKEN_BYTES + 1));
        let outcomes = vec![Outcome::Counted {
            counts: counts_of(&text),
            size: text.len() as u64,
            etag: "x".into(),
            elapsed: Duration::from_millis(3),
            text: Default::default(),
        }];
        let s = settle(vec![job("long")], outcomes, "w").unwrap();
        assert!(matches!(
            s.ledger[0].2,
            Entry::Counted {
                words: 2,
                skipped_tokens: 1,
                ..
            }
        ));
        assert_eq!(s.delta.skipped_tokens, 1);
    }

    #[test]
    fn an_interrupted_object_settles_nothing() {
        let s = settle(
            vec![job("one"), job("two")],
            vec![Outcome::Failed("x".into()), Outcome::Interrupted],
            "w",
        );
        assert!(s.is_none());
    }
}
