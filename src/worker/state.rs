//! The worker's local state (Kafka Streams' `TaskManager` side): the tables of
//! owned changelog partitions, the done sets of owned ledger partitions, and
//! discovery (for the owner of ledger partition 0). All of it is a cache of
//! what Kafka committed: [`State::align`] restores what a new assignment
//! brings (reading the topics to their end, [`super::restore`]) and drops
//! what it takes away; after a failure the worker clears it all and aligns
//! again.

use super::batch::Input;
use super::discover::{Discovery, Known};
use super::group::{Assignment, Committed};
use super::keyset::{etag_tag, KeyMap};
use super::ledger::{split_key, Entry};
use super::restore;
use super::split::{self, Splits};
use super::Fatal;
use crate::config::{KafkaArgs, Topics};
use crate::events::Event;
use crate::wire::Serde;
use anyhow::{anyhow, Result};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

/// What is counted of a done object: its version (ETag fingerprint) and
/// where its contribution is (offset of chunk 0 in its partition of the
/// contributions topic; -1 when it has none). 12 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Done {
    pub etag: u32,
    offset: [u32; 2],
}

impl Done {
    /// Version `etag`, its contribution at `offset`.
    pub fn new(etag: &str, offset: Option<i64>) -> Done {
        let o = offset.unwrap_or(-1) as u64;
        Done {
            etag: etag_tag(etag),
            offset: [(o >> 32) as u32, o as u32],
        }
    }

    /// Where its contribution is, if it has one.
    pub fn offset(&self) -> Option<i64> {
        let o = ((u64::from(self.offset[0]) << 32) | u64::from(self.offset[1])) as i64;
        (o >= 0).then_some(o)
    }
}

/// Done objects of a ledger partition.
pub type DoneSet = KeyMap<Done>;

/// Tables by changelog partition: word → total.
pub type Tables = BTreeMap<i32, HashMap<String, i64>>;

/// What restoring needs to know.
pub struct Restore<'a> {
    pub kafka: &'a KafkaArgs,
    pub topics: &'a Topics,
    pub serde: Serde,
    pub bucket: &'a str,
    pub prefix: &'a str,
    pub interval: Duration,
    pub ledger_partitions: i32,
    pub stop: &'a AtomicBool,
    /// `--retry-failed`: discovery retries every failed object at once.
    pub retry_failed: bool,
    /// Time between full listings.
    pub reconcile: Duration,
    /// Keys per listed page (`None`: S3's default).
    pub page_size: Option<i32>,
    /// `--on-change recount`.
    pub recount: bool,
}

/// Local state of the owned partitions.
#[derive(Default)]
pub struct State {
    /// Owned repartition (= changelog) partitions and their tables.
    pub tables: Tables,
    /// Owned ledger partitions: for each, the keys already done.
    pub done: BTreeMap<i32, DoneSet>,
    /// Owned ledger partitions: their objects split into ranges whose
    /// ranges are not all collected yet (docs/design.md §9).
    pub splits: Splits,
    /// Discovery, when this worker owns ledger partition 0.
    pub discovery: Option<Discovery>,
    /// When the bucket was last listed.
    pub last_listing: Option<Instant>,
    /// Changelog records that did not decode (skipped when restoring).
    pub junk_records: u64,
    /// Where each owned changelog partition ended when this worker last
    /// read (restore) or wrote (commit) it: the table is kept over a
    /// rebalance only if the partition still ends there. The repartition
    /// topic's committed offset is not enough: a worker that owns a word's
    /// table writes its totals without consuming a delta (`batch::fold_owned`).
    pub table_ends: BTreeMap<i32, i64>,
    /// The committed offset of each input partition the state reflects.
    pub committed: Committed,
    /// Between an eager rebalance's revocation and its assignment: the state
    /// is kept (most of it usually comes back) but nothing is done with it.
    pub parked: bool,
}

impl State {
    /// Forgets everything (rebuilt by the next [`State::align`]).
    pub fn clear(&mut self) {
        *self = State {
            junk_records: self.junk_records,
            ..State::default()
        };
    }

    /// Whether this worker lists the bucket now.
    pub fn lists(&self) -> bool {
        self.discovery.is_some() && !self.parked
    }

    /// What is counted of `key` of ledger partition `p`, if it is done.
    pub fn done(&self, p: i32, key: &str) -> Option<Done> {
        self.done.get(&p).and_then(|d| d.get(key))
    }

    /// The current total of `word` in changelog partition `p`.
    pub fn total(&self, p: i32, word: &str) -> i64 {
        self.tables
            .get(&p)
            .and_then(|t| t.get(word))
            .copied()
            .unwrap_or(0)
    }

    /// Words in the owned tables.
    pub fn table_words(&self) -> usize {
        self.tables.values().map(HashMap::len).sum()
    }

    /// Estimated heap bytes of the state (see [`Memory`]).
    pub fn memory(&self) -> Memory {
        let tables = self
            .tables
            .values()
            .map(|t| table_bytes(t.capacity(), t.keys().map(String::len)))
            .sum();
        let done = self.done.values().map(DoneSet::memory).sum();
        let (known_objects, known) = self
            .discovery
            .as_ref()
            .map_or((0, 0), |d| (d.known() as u64, d.memory()));
        Memory {
            tables,
            done_objects: self.done.values().map(|d| d.len() as u64).sum(),
            done,
            known_objects,
            known,
        }
    }

    /// Brings the state in line with `owned`, whose committed offsets are
    /// now `committed`: keeps the state of a partition only if it is still
    /// owned and its committed offset did not move since this state was
    /// made (so nobody else changed it, even if the partition went away
    /// and came back in a rebalance); restores the others; starts or stops
    /// discovery. A rebalance thus costs a worker only the partitions it
    /// gains.
    pub fn align(
        &mut self,
        r: &Restore<'_>,
        owned: &Assignment,
        committed: &Committed,
    ) -> Result<()> {
        self.parked = owned.is_empty();
        if self.parked {
            return Ok(());
        }
        let known = std::mem::take(&mut self.committed);
        let same = |input: Input, p: i32| {
            let key = (input, p);
            known
                .get(&key)
                .is_some_and(|k| committed.get(&key) == Some(k))
        };
        let candidates: Vec<i32> = self
            .tables
            .keys()
            .copied()
            .filter(|&p| owned.repartition.contains(&p) && same(Input::Repartition, p))
            .collect();
        let ends_now = restore::log_ends(r.kafka, &r.topics.changelog, &candidates, r.stop)?;
        let ends = std::mem::take(&mut self.table_ends);
        self.tables.retain(|p, _| {
            candidates.contains(p) && ends.get(p).is_some_and(|e| ends_now.get(p) == Some(e))
        });
        self.table_ends = ends
            .into_iter()
            .filter(|(p, _)| self.tables.contains_key(p))
            .collect();
        self.done
            .retain(|&p, _| owned.ledger.contains(&p) && same(Input::Ledger, p));
        let done = &self.done;
        self.splits.retain(|p| done.contains_key(&p));
        let lister = owned.ledger.contains(&0);
        if self.discovery.is_some() && !(lister && same(Input::Ledger, 0)) {
            self.discovery = None;
            if !lister {
                Event::ListerStopped.emit();
            }
        }
        let new_tables = missing(&owned.repartition, |p| self.tables.contains_key(p));
        let new_ledger = missing(&owned.ledger, |p| self.done.contains_key(p));
        // The three reads are independent (each its own consumers): they
        // run at once, so a start or a rebalance waits for the longest one,
        // not for their sum.
        let list = self.discovery.is_none() && lister;
        let (tables, done, discovery) = std::thread::scope(|s| {
            let tables =
                (!new_tables.is_empty()).then(|| s.spawn(|| restore_tables(r, &new_tables)));
            let done = (!new_ledger.is_empty()).then(|| s.spawn(|| restore_done(r, &new_ledger)));
            let discovery = list.then(|| start_discovery(r));
            (tables.map(joined), done.map(joined), discovery)
        });
        if let Some(t) = tables {
            let (tables, junk, ends) = t?;
            self.tables.extend(tables);
            self.table_ends.extend(ends);
            self.junk_records += junk;
        }
        if let Some(d) = done {
            let (done, splits) = d?;
            self.done.extend(done);
            self.splits.0.extend(splits.0);
        }
        match &self.discovery {
            None if lister => {
                self.discovery = Some(discovery.expect("read when listing")?);
                self.last_listing = None;
            }
            // Kept through the rebalance: it lists again from now on, as
            // after any assignment of ledger partition 0.
            Some(d) if lister => Event::ListerStarted {
                bucket: r.bucket.to_string(),
                prefix: r.prefix.to_string(),
                interval_s: r.interval.as_secs_f64(),
                known: d.known() as u64,
            }
            .emit(),
            _ => {}
        }
        self.committed = committed.clone();
        Ok(())
    }
}

/// The result of a scoped thread (its panic goes on in the caller).
fn joined<T>(h: std::thread::ScopedJoinHandle<'_, T>) -> T {
    h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))
}

/// The tables of changelog partitions `parts`, read to their end, the
/// number of records that did not decode (skipped with a warning: a third
/// party may write to the topic) and where each partition's log ended when
/// the read began ([`State::table_ends`]). When no record decodes at all,
/// the topic is in another format: that is fatal.
fn restore_tables(r: &Restore<'_>, parts: &[i32]) -> Result<(Tables, u64, BTreeMap<i32, i64>)> {
    let started = Instant::now();
    let mut tables: BTreeMap<i32, HashMap<String, i64>> =
        parts.iter().map(|&p| (p, HashMap::new())).collect();
    let (mut bad, mut records) = (0u64, 0u64);
    let serde = r.serde;
    let (_, ends) =
        restore::read_to_ends(r.kafka, &r.topics.changelog, parts, r.stop, |p, k, v| {
            records += 1;
            match (serde.decode_key(k), v.map(|v| serde.decode_value(v))) {
                (Ok(word), Some(Ok(total))) => {
                    tables.entry(p).or_default().insert(word, total);
                }
                (Ok(word), None) => {
                    tables.entry(p).or_default().remove(&word);
                }
                _ => bad += 1,
            }
        })?;
    if bad > 0 && bad == records {
        return Err(anyhow!(Fatal(format!(
            "{bad} records of {} do not decode with --serde {}: is the topic written in another format?",
            r.topics.changelog,
            serde.name()
        ))));
    }
    if bad > 0 {
        tracing::warn!(
            "{bad} of {records} records of {} partitions {parts:?} do not decode with --serde {}; skipped",
            r.topics.changelog,
            serde.name()
        );
    }
    let entries = tables.values().map(HashMap::len).sum::<usize>();
    restored(
        "table",
        &r.topics.changelog,
        parts,
        records,
        entries,
        started,
    );
    Ok((tables, bad, ends))
}

/// Announces a restore that started at `started`.
fn restored(
    what: &str,
    topic: &str,
    parts: &[i32],
    records: u64,
    entries: usize,
    started: Instant,
) {
    Event::Restored {
        what: what.into(),
        topic: topic.to_string(),
        partitions: parts.to_vec(),
        records,
        entries: entries as u64,
        seconds: started.elapsed().as_secs_f64(),
    }
    .emit();
}

/// The done sets and splits in progress of ledger partitions `parts`, read
/// to their end.
fn restore_done(r: &Restore<'_>, parts: &[i32]) -> Result<(BTreeMap<i32, DoneSet>, Splits)> {
    let started = Instant::now();
    let mut records = 0u64;
    // Objects of another bucket still waiting to be counted (latest entry
    // `discovered`): a worker of that bucket shares this app id now, and
    // each would skip the other's objects. Another bucket's finished
    // objects are only history (e.g. an earlier run on another bucket).
    let mut foreign: HashMap<String, bool> = HashMap::new();
    let mut done: BTreeMap<i32, DoneSet> = parts.iter().map(|&p| (p, DoneSet::default())).collect();
    let mut splits = Splits::default();
    restore::read_to_end_until(r.kafka, &r.topics.ledger, parts, r.stop, |p, k, v| {
        records += 1;
        let full = String::from_utf8_lossy(k);
        let entry = match v.map(Entry::parse) {
            Some(Ok(e)) => Some(e),
            None => None,
            Some(Err(_)) => return,
        };
        if split::is_work_key(&full) {
            splits.apply(p, &full, entry.as_ref());
            return;
        }
        let (key, change) = split_key(&full);
        if Discovery::key_of(r.bucket, key).is_none() {
            let pending = matches!(entry, Some(Entry::Discovered { .. }));
            foreign.insert(key.to_string(), pending);
            return;
        }
        splits.apply(p, &full, entry.as_ref());
        if change {
            return; // pending changes: the object's own key says what is counted
        }
        // Counted is counted until the count stage records otherwise (a new
        // `counted`, or a tombstone once the object is gone); a later
        // discovery of the same version is a duplicate.
        match entry {
            Some(Entry::Counted {
                etag, contribution, ..
            }) => {
                done.entry(p)
                    .or_default()
                    .set(key, Done::new(&etag, contribution.map(|c| c.offset)));
            }
            // Split: what it counted so far is in the split (`old`).
            None | Some(Entry::Split { .. }) => done.entry(p).or_default().remove(key),
            _ => {}
        }
    })?;
    if let Some((key, _)) = foreign.into_iter().find(|(_, pending)| *pending) {
        return Err(foreign_bucket(
            &r.kafka.app_id,
            &key,
            &r.topics.ledger,
            r.bucket,
        ));
    }
    let entries = done.values().map(DoneSet::len).sum::<usize>();
    restored("ledger", &r.topics.ledger, parts, records, entries, started);
    Ok((done, splits))
}

/// Discovery, knowing every key of the whole ledger and the failed ones.
fn start_discovery(r: &Restore<'_>) -> Result<Discovery> {
    let all: Vec<i32> = (0..r.ledger_partitions).collect();
    let mut known = Known::new(r.bucket).with_prefix(r.prefix);
    restore::read_to_end_until(r.kafka, &r.topics.ledger, &all, r.stop, |_, k, v| {
        known.add(k, v)
    })?;
    if r.retry_failed {
        known.retry_failed_now();
    }
    Event::ListerStarted {
        bucket: r.bucket.to_string(),
        prefix: r.prefix.to_string(),
        interval_s: r.interval.as_secs_f64(),
        known: known.len() as u64,
    }
    .emit();
    if known.failed() > 0 {
        tracing::info!(
            "{} objects failed before: retried {}",
            known.failed(),
            if r.retry_failed {
                "at the first listing (--retry-failed)"
            } else {
                "by a full listing 10 minutes after they failed, or once replaced"
            }
        );
    }
    Ok(Discovery::new(r.bucket, r.prefix, known, r.reconcile)
        .with_page_size(r.page_size)
        .with_recount(r.recount))
}

/// The error for a ledger record of another bucket: two buckets share one
/// app id, and each worker would skip the other's objects.
/// The partitions of `owned` that `have` says are not held yet.
fn missing<'a>(owned: impl IntoIterator<Item = &'a i32>, have: impl Fn(&i32) -> bool) -> Vec<i32> {
    owned.into_iter().copied().filter(|p| !have(p)).collect()
}

pub fn foreign_bucket(app_id: &str, key: &str, ledger: &str, bucket: &str) -> anyhow::Error {
    anyhow!(Fatal(format!(
        "app id {app_id} already counts another bucket ({key} in {ledger}); this worker counts s3://{bucket}: give each bucket its own --app-id"
    )))
}

/// Estimated heap bytes of the local state, by part.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Memory {
    /// The owned tables.
    pub tables: u64,
    /// The owned done sets.
    pub done: u64,
    /// Objects in the done sets.
    pub done_objects: u64,
    /// Discovery's known keys.
    pub known: u64,
    /// Objects discovery knows.
    pub known_objects: u64,
}

impl Memory {
    /// All of it.
    pub fn total(&self) -> u64 {
        self.tables + self.done + self.known
    }
}

/// glibc's chunk for a heap allocation of `len` bytes (16-byte steps, 32 at
/// least, 8 bytes of header).
pub fn heap_bytes(len: usize) -> u64 {
    (((len + 8 + 15) & !15).max(32)) as u64
}

/// A hashbrown map of `String` to `i64` with `capacity` buckets: a bucket is
/// the entry (24 + 8 bytes) and one control byte; each key its heap chunk.
pub fn table_bytes(capacity: usize, keys: impl Iterator<Item = usize>) -> u64 {
    capacity as u64 * 33 + keys.map(heap_bytes).sum::<u64>()
}
