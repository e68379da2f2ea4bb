//! A batch, as pure functions (no I/O): [`plan`] turns the records polled
//! from the ledger and repartition topics into the objects to count, the new
//! totals and the offsets to commit; [`settle`] turns the objects' outcomes
//! into ledger entries and the word deltas; [`records`] lays out everything
//! the batch's transaction writes. The loop ([`super::Worker`]) does the
//! I/O around them.

use super::contrib::{chunk_key, chunks, diff};
use super::discover::{Discovery, Listed};
use super::here;
use super::keyset::etag_tag;
use super::ledger::{
    change_key, listing_key, partition_of, split_key, unix_now, Contribution, Entry,
};
use super::object::Outcome;
use super::split::{self, Collect, Splits};
use super::state::Done;
use crate::count::WordCounts;
use crate::events::Event;
use crate::kafka::partition_for;
use crate::s3;
use crate::wire::Serde;
use std::collections::{BTreeMap, HashMap};

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
    /// Its offset; [`here::FOUND_HERE`] for an object the batch found
    /// itself (no input offset moves for it).
    pub offset: i64,
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
}

/// What a job does to an object's contribution to the totals.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Count the object as it is now (GetObject pinned to the listed ETag
    /// first); its counts replace its old contribution, if any.
    Count,
    /// The object is gone: take its contribution out.
    Retract,
    /// Count one range of a split object (docs/design.md §9).
    Range,
    /// Collect a split object whose ranges are all done (see
    /// [`super::split`]).
    Collect(Box<Collect>),
}

/// An object to count (or retract) in this batch.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    /// Its ledger partition.
    pub partition: i32,
    /// `s3://bucket/key`.
    pub ledger_key: String,
    /// The object's key in the bucket.
    pub object_key: String,
    /// The ledger entry that asked for it (`discovered` or `removed`).
    pub listed: Entry,
    /// What to do.
    pub action: Action,
    /// Offset of the object's current contribution (to take out), if it
    /// has one.
    pub old: Option<i64>,
    /// Whether a record under its change key asked for it (a tombstone
    /// clears that key once done).
    pub change: bool,
}

impl Job {
    /// The ETag discovery listed (the version to read first).
    pub fn listed_etag(&self) -> Option<&str> {
        match &self.listed {
            Entry::Discovered { etag, .. } if !etag.is_empty() => Some(etag),
            _ => None,
        }
    }
}

/// What a batch's input asks for.
#[derive(Debug, Default)]
pub struct Plan {
    /// Objects to count or retract.
    pub jobs: Vec<Job>,
    /// New totals by word: (changelog partition, total); 0 means the word
    /// leaves the table (a tombstone in the changelog).
    pub totals: HashMap<String, (i32, i64)>,
    /// Next offset to commit per input partition.
    pub offsets: BTreeMap<(Input, i32), i64>,
    /// Objects found done in the ledger: (ledger partition, ledger key,
    /// what is counted), or gone (`None`: a tombstone).
    pub done: Vec<(i32, String, Option<Done>)>,
    /// Records that were skipped, and why (for a warning each).
    pub skipped: Vec<String>,
    /// A ledger key of another bucket: two buckets share one app id.
    pub foreign: Option<String>,
}

/// [`plan_with`] without splits in progress (the unit tests' planner).
#[cfg(test)]
pub fn plan(
    polled: Vec<Polled>,
    bucket: &str,
    recount: bool,
    done: impl Fn(i32, &str) -> Option<Done>,
    total: impl Fn(i32, &str) -> i64,
) -> Plan {
    plan_with(polled, bucket, recount, done, total, &mut Splits::default())
}

/// Plans a batch. `done` says what is counted of a ledger key (in the local
/// done set); `total` gives a word's current total in its table. With
/// `recount` (`--on-change recount`), a new version of a counted object is
/// counted again and a removed one retracted; otherwise each key is counted
/// once.
///
/// An object's records in one batch are taken in order, and the last one
/// decides (a job sets the object's contribution to what the bucket holds
/// now: two quick overwrites are one recount, an overwrite then a delete
/// one retraction); what it replaces is what was counted before the batch.
///
/// `splits` are the splits in progress of the owned partitions
/// (docs/design.md §9): ranges' work items become [`Action::Range`] jobs;
/// notes and changes of a split object go to `splits` (facts of committed
/// records, so taking them in before the batch commits is safe), and a
/// split whose notes are all in becomes an [`Action::Collect`] job.
pub fn plan_with(
    polled: Vec<Polled>,
    bucket: &str,
    recount: bool,
    done: impl Fn(i32, &str) -> Option<Done>,
    total: impl Fn(i32, &str) -> i64,
    splits: &mut Splits,
) -> Plan {
    let mut plan = Plan::default();
    let mut touched: Vec<(i32, String)> = Vec::new();
    let mut jobs: Vec<Option<Job>> = Vec::new();
    let mut job_of: HashMap<String, usize> = HashMap::new();
    let mut overlay: HashMap<String, Option<Done>> = HashMap::new();
    for rec in polled {
        if rec.offset != here::FOUND_HERE {
            plan.offsets
                .insert((rec.input, rec.partition), rec.offset + 1);
        }
        let key = String::from_utf8_lossy(&rec.key).into_owned();
        let at = format!("[{}]@{}", rec.partition, rec.offset);
        match rec.input {
            Input::Ledger => {
                if key.starts_with(split::RANGE_PREFIX) {
                    let entry = rec.value.as_deref().and_then(|v| Entry::parse(v).ok());
                    match split::range_job(rec.partition, &key, entry.as_ref(), bucket) {
                        Some(job) => jobs.push(Some(job)),
                        None if matches!(entry, Some(Entry::Range(_))) => {
                            plan.foreign.get_or_insert(key);
                        }
                        None => {}
                    }
                    continue;
                }
                if splits.concerns(rec.partition, &key) {
                    let entry = match rec.value.as_deref().map(Entry::parse) {
                        Some(Ok(e)) => Some(e),
                        None => None,
                        Some(Err(_)) => continue,
                    };
                    match splits.apply(rec.partition, &key, entry.as_ref()) {
                        split::Applied::No => {}
                        split::Applied::Skip => continue,
                        split::Applied::Touched(object) => {
                            touched.push((rec.partition, object));
                            continue;
                        }
                    }
                }
                let (object, change) = split_key(&key);
                let object = object.to_string();
                let Some(value) = rec.value.as_deref() else {
                    // A tombstone: the object's removal was applied.
                    if !change {
                        if let Some(i) = job_of.remove(&object) {
                            jobs[i] = None;
                        }
                        overlay.insert(object.clone(), None);
                        plan.done.push((rec.partition, object, None));
                    }
                    continue;
                };
                let Ok(entry) = Entry::parse(value) else {
                    plan.skipped
                        .push(format!("ledger record {key} at {at} is not a ledger entry"));
                    continue;
                };
                if let Entry::Counted {
                    etag, contribution, ..
                } = &entry
                {
                    let d = Done::new(etag, contribution.map(|c| c.offset));
                    if let Some(i) = job_of.remove(&object) {
                        jobs[i] = None;
                    }
                    overlay.insert(object.clone(), Some(d));
                    plan.done.push((rec.partition, object, Some(d)));
                    continue;
                }
                if let Entry::Split { .. } = &entry {
                    // Its own, written when it split the object (§9).
                    splits.apply(rec.partition, &key, Some(&entry));
                    continue;
                }
                let action = match &entry {
                    Entry::Discovered { .. } => Action::Count,
                    Entry::Removed { .. } if recount && change => Action::Retract,
                    _ => continue, // failed: discovery lists it again to retry it
                };
                let Some(object_key) = Discovery::key_of(bucket, &object) else {
                    plan.foreign.get_or_insert(object);
                    continue;
                };
                let object_key = object_key.to_string();
                let current = match overlay.get(&object) {
                    Some(d) => *d,
                    None => done(rec.partition, &object),
                };
                if let Some(d) = current {
                    let same = match &entry {
                        Entry::Discovered { etag, .. } => d.etag == etag_tag(etag),
                        _ => false,
                    };
                    // Counted once for good (`ignore`, or counted without a
                    // contribution to take back), or this very version.
                    if !recount || d.offset().is_none() || same {
                        if let Some(i) = job_of.remove(&object) {
                            jobs[i] = None; // an earlier change of this batch is undone
                        }
                        continue;
                    }
                }
                let pending_change = job_of
                    .get(&object)
                    .and_then(|&i| jobs[i].as_ref())
                    .is_some_and(|j| j.change);
                let job = Job {
                    partition: rec.partition,
                    ledger_key: object.clone(),
                    object_key,
                    listed: entry,
                    action,
                    old: current.and_then(|d| d.offset()),
                    change: change || pending_change,
                };
                match job_of.get(&object) {
                    Some(&i) => jobs[i] = Some(job),
                    None => {
                        job_of.insert(object, jobs.len());
                        jobs.push(Some(job));
                    }
                }
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
    touched.sort();
    touched.dedup();
    for (p, object) in touched {
        if let Some(job) = splits.collect(p, &object, bucket) {
            match job_of.get(&object) {
                Some(&i) => jobs[i] = Some(job),
                None => {
                    job_of.insert(object, jobs.len());
                    jobs.push(Some(job));
                }
            }
        }
    }
    plan.jobs = jobs.into_iter().flatten().collect();
    plan
}

/// Moves the deltas of words whose table this worker holds (`owned` of the
/// word's changelog partition, `partition_of`) into `totals`, starting from
/// `total` when the batch has no total of that word yet; returns how many
/// moved. The others go through the repartition topic to their owner.
///
/// The owner of a word's partition is the one writer of its total, so its
/// own deltas need no round trip through the repartition topic: they are
/// applied in the transaction that writes the object's `counted` record,
/// which commits both or neither (one transaction per object instead of
/// two, and no repartition records with a single worker).
pub fn fold_owned(
    deltas: &mut HashMap<String, i64>,
    totals: &mut HashMap<String, (i32, i64)>,
    partition_of: impl Fn(&str) -> i32,
    owned: impl Fn(i32) -> bool,
    total: impl Fn(i32, &str) -> i64,
) -> usize {
    let before = deltas.len();
    deltas.retain(|word, n| {
        let p = partition_of(word);
        if !owned(p) {
            return true;
        }
        let entry = totals
            .entry(word.clone())
            .or_insert_with(|| (p, total(p, word)));
        entry.1 += *n;
        false
    });
    before - deltas.len()
}

/// What the batch's objects came to.
#[derive(Debug, Default)]
pub struct Settled {
    /// Ledger records to write: (partition, ledger key, entry; `None` is a
    /// tombstone).
    pub ledger: Vec<(i32, String, Option<Entry>)>,
    /// Contribution records: (partition, chunk key, value; `None` is a
    /// tombstone), written first: their offsets go into the `counted`
    /// entries ([`Settled::pointers`]).
    pub contributions: Vec<(i32, String, Option<Vec<u8>>)>,
    /// (index in `ledger` of a `counted` entry, index in `contributions`
    /// of its chunk 0, chunks).
    pub pointers: Vec<(usize, usize, u32)>,
    /// Word deltas of the batch (new counts minus old contributions),
    /// without zeros.
    pub deltas: HashMap<String, i64>,
    /// The counts of the objects counted, merged (for the status line).
    pub delta: WordCounts,
    /// Objects counted.
    pub counted: u64,
    /// Objects failed.
    pub failed: u64,
    /// Objects retracted (gone from the bucket).
    pub retracted: u64,
    /// Bytes of the counted objects.
    pub bytes: u64,
    /// One event per object.
    pub events: Vec<Event>,
}

/// An object's old contribution, as read back: word counts and chunks.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Old {
    pub words: HashMap<String, u64>,
    pub chunks: u32,
}

/// Settles the outcomes of `jobs` (in the same order; a retraction's
/// outcome is ignored), `olds` being their old contributions read back
/// (`None` for a job without one). `None` when an object was interrupted
/// (shutting down): then nothing may be committed. With `recount`, counted
/// objects keep their contribution.
pub fn settle(
    jobs: Vec<Job>,
    outcomes: Vec<Outcome>,
    olds: Vec<Option<Old>>,
    worker: &str,
    recount: bool,
) -> Option<Settled> {
    if outcomes.iter().any(|o| matches!(o, Outcome::Interrupted)) {
        return None;
    }
    let mut s = Settled::default();
    let add = |deltas: &mut HashMap<String, i64>, d: HashMap<String, i64>| {
        for (w, n) in d {
            *deltas.entry(w).or_default() += n;
        }
    };
    for ((job, outcome), old) in jobs.into_iter().zip(outcomes).zip(olds) {
        let p = job.partition;
        let old_chunks = old.as_ref().map_or(0, |o| o.chunks);
        let old_words = old.map(|o| o.words).unwrap_or_default();
        let change_done = |s: &mut Settled| {
            if job.change {
                s.ledger.push((p, change_key(&job.ledger_key), None));
            }
        };
        let mut action = &job.action;
        match &job.action {
            Action::Range => {
                split::settle_range(&mut s, &job, outcome, worker);
                continue;
            }
            Action::Collect(c) => {
                let old = (&old_words, old_chunks);
                if !split::settle_collect(&mut s, &job, c, old, recount, worker) {
                    continue;
                }
                action = c.then().unwrap_or(&Action::Count);
            }
            _ => {}
        }
        let collected = matches!(job.action, Action::Collect(_));
        if *action == Action::Retract {
            let words: u64 = old_words.values().sum();
            add(&mut s.deltas, diff(&WordCounts::new(), &old_words));
            for i in 0..old_chunks {
                s.contributions
                    .push((p, chunk_key(&job.ledger_key, i), None));
            }
            s.events.push(Event::ObjectRemoved {
                key: job.ledger_key.clone(),
                words,
            });
            s.retracted += 1;
            s.ledger.push((p, job.ledger_key.clone(), None));
            change_done(&mut s);
            continue;
        }
        match outcome {
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
                add(&mut s.deltas, diff(&counts, &old_words));
                let mut new_chunks = 0;
                if recount {
                    let first = s.contributions.len();
                    for (i, v) in chunks(&etag, &counts).into_iter().enumerate() {
                        s.contributions
                            .push((p, chunk_key(&job.ledger_key, i as u32), Some(v)));
                        new_chunks += 1;
                    }
                    s.pointers.push((s.ledger.len(), first, new_chunks));
                }
                for i in new_chunks..old_chunks {
                    s.contributions
                        .push((p, chunk_key(&job.ledger_key, i), None));
                }
                let e = Entry::counted(etag, size, &counts, ms, worker, text);
                s.counted += 1;
                s.bytes += size;
                s.delta.merge(counts);
                s.ledger.push((p, job.ledger_key.clone(), Some(e)));
                change_done(&mut s);
            }
            Outcome::Split {
                etag, size, ranges, ..
            } => {
                let old = split::old_pointer(&job, old_chunks);
                split::settle_split(&mut s, &job, etag, size, &ranges, old);
                change_done(&mut s);
            }
            Outcome::Changed | Outcome::Failed(_) => {
                let reason = match outcome {
                    Outcome::Failed(reason) => reason,
                    // (only ranges report it; an object re-reads itself)
                    _ => "its version changed while it was read".to_string(),
                };
                s.events.push(Event::ObjectFailed {
                    key: job.ledger_key.clone(),
                    reason: reason.clone(),
                });
                let (etag, size) = match &job.listed {
                    Entry::Discovered { etag, size } => (etag.clone(), *size),
                    _ => (String::new(), 0),
                };
                s.failed += 1;
                let e = Entry::Failed {
                    etag,
                    size,
                    reason,
                    worker: worker.to_string(),
                    at: unix_now(),
                };
                // A counted object keeps its record (and contribution): the
                // failure of its new version goes under its change key.
                if collected {
                    // A restarted split: its key holds `split`, not `counted`.
                    split::retract_old(&mut s, &job, (&old_words, old_chunks));
                    s.ledger.push((p, job.ledger_key.clone(), Some(e)));
                    change_done(&mut s);
                } else if job.old.is_some() {
                    s.ledger.push((p, change_key(&job.ledger_key), Some(e)));
                } else {
                    s.ledger.push((p, job.ledger_key.clone(), Some(e)));
                    change_done(&mut s);
                }
            }
            Outcome::Interrupted => unreachable!("checked above"),
        }
    }
    Some(s)
}

/// The output topics of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Ledger,
    Repartition,
    Changelog,
    Contributions,
}

/// One record of a batch's transaction (`value` `None`: a tombstone).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub topic: Output,
    pub partition: i32,
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
}

/// How records are laid out: partition counts and the changelog's format.
#[derive(Clone, Copy, Debug)]
pub struct Layout<'a> {
    pub bucket: &'a str,
    /// Partitions of the changelog (= repartition) topic.
    pub partitions: i32,
    /// Partitions of the ledger (= contributions topic).
    pub ledger_partitions: i32,
    pub serde: Serde,
}

/// Says in each `counted` entry where its contribution landed (`offsets`
/// of [`first_records`], in their order).
pub fn fill_pointers(settled: &mut Settled, offsets: &[i64]) {
    for &(l, first, chunks) in &settled.pointers {
        let pointer = offsets
            .get(first)
            .map(|&offset| Contribution { offset, chunks });
        match settled.ledger[l].2.as_mut() {
            Some(Entry::Counted { contribution, .. }) => *contribution = pointer,
            Some(Entry::RangeDone(done)) => done.contribution = pointer,
            _ => {}
        }
    }
}

/// The records a batch's transaction writes first: the objects'
/// contribution chunks (their offsets go into the `counted` entries, see
/// [`records`]).
pub fn first_records(settled: &Settled) -> Vec<Record> {
    settled
        .contributions
        .iter()
        .map(|(p, key, value)| Record {
            topic: Output::Contributions,
            partition: *p,
            key: key.as_bytes().to_vec(),
            value: value.clone(),
        })
        .collect()
}

/// Everything else a batch writes, in order: the listing's progress and
/// `discovered` / `removed` records, word deltas (repartition), the
/// objects' ledger entries (with where their contributions landed:
/// `offsets` are those of [`first_records`]), the new totals (changelog;
/// a tombstone for a word whose total is 0).
pub fn records(
    layout: Layout<'_>,
    listed: &Listed,
    settled: &Settled,
    totals: &HashMap<String, (i32, i64)>,
    offsets: &[i64],
) -> Vec<Record> {
    let mut out = Vec::with_capacity(
        listed.found.len() + 1 + settled.deltas.len() + settled.ledger.len() + totals.len(),
    );
    if let Some(progress) = &listed.progress {
        let key = listing_key(layout.bucket).into_bytes();
        out.push(Record {
            topic: Output::Ledger,
            partition: partition_for(&key, layout.ledger_partitions),
            value: Some(progress.to_bytes()),
            key,
        });
    }
    for f in &listed.found {
        let object = s3::url(layout.bucket, &f.key);
        let key = if f.change {
            change_key(&object)
        } else {
            object.clone()
        };
        out.push(Record {
            topic: Output::Ledger,
            partition: partition_of(&object, layout.ledger_partitions),
            value: Some(
                Entry::Discovered {
                    etag: f.etag.clone(),
                    size: f.size,
                }
                .to_bytes(),
            ),
            key: key.into_bytes(),
        });
    }
    for key in &listed.removed {
        let object = s3::url(layout.bucket, key);
        out.push(Record {
            topic: Output::Ledger,
            partition: partition_of(&object, layout.ledger_partitions),
            value: Some(Entry::Removed { at: unix_now() }.to_bytes()),
            key: change_key(&object).into_bytes(),
        });
    }
    let mut deltas: Vec<(&String, &i64)> = settled.deltas.iter().collect();
    deltas.sort_unstable();
    for (word, n) in deltas {
        out.push(Record {
            topic: Output::Repartition,
            partition: partition_for(&layout.serde.key(word), layout.partitions),
            key: word.as_bytes().to_vec(),
            value: Some(n.to_string().into_bytes()),
        });
    }
    debug_assert!(settled.pointers.is_empty() || !offsets.is_empty());
    for (partition, key, entry) in &settled.ledger {
        out.push(Record {
            topic: Output::Ledger,
            partition: match *partition {
                split::BY_KEY => partition_for(key.as_bytes(), layout.ledger_partitions),
                p => p,
            },
            key: key.as_bytes().to_vec(),
            value: entry.as_ref().map(Entry::to_bytes),
        });
    }
    for (word, (partition, total)) in totals {
        out.push(Record {
            topic: Output::Changelog,
            partition: *partition,
            key: layout.serde.key(word),
            value: (*total != 0).then(|| layout.serde.value(*total)),
        });
    }
    out
}

#[cfg(test)]
mod tests;
