//! The ranges of a big object as units of work of the whole group
//! (docs/design.md §9).
//!
//! The owner of an object's ledger partition does not read a big plain-text
//! object itself: it writes one work item per byte range under a range key
//! (`range:<i>/<n>:<etag>:s3://bucket/key`, hashed over the ledger
//! partitions, so the ranges spread over the group) and records on the
//! object's key that it is [`Entry::Split`]. The owner of a range's
//! partition counts it (a ranged GET pinned with `If-Match`) and commits, in
//! one transaction, its deltas, its contribution (chunks under the range
//! key, whatever `--on-change` says: they are what an overwrite takes back),
//! a [`RangeDone`] record under the range key and the same record as a note
//! under the note key (`range-done:<i>/<n>:<etag>:s3://bucket/key`) in the
//! object's partition. Once the owner of the object's partition has all `n`
//! notes of the version it split, it collects ([`Collect`]): the object's
//! `counted` record (summed figures, `ranges: n`), its merged contribution
//! (`recount`), and tombstones for the ranges' keys, notes and chunks. When
//! a range found its version gone (`412`), or a newer version or a removal
//! arrived meanwhile, the collection takes back what the ranges committed
//! and the object is counted again at its current version, in the same
//! transaction.
//!
//! [`Splits`] is the local state of the splits in progress of the owned
//! partitions, rebuilt from the ledger like the done sets.

use super::batch::{Action, Job, Settled};
use super::contrib::{chunk_key, chunks, diff};
use super::discover::Discovery;
use super::ledger::{change_key, split_key, Contribution, Entry};
use super::object::Outcome;
use crate::count::WordCounts;
use crate::events::Event;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// The prefix of a range's key.
pub const RANGE_PREFIX: &str = "range:";
/// The prefix of a range's note to its object's partition.
pub const NOTE_PREFIX: &str = "range-done:";
/// The partition of a ledger record placed by its key when the batch's
/// records are laid out ([`super::batch::records`]): a range's work item.
pub const BY_KEY: i32 = -1;

/// The key of range `i` of `n` of version `etag` of the object `object`
/// (its ledger key).
pub fn range_key(i: u32, n: u32, etag: &str, object: &str) -> String {
    format!("{RANGE_PREFIX}{i}/{n}:{etag}:{object}")
}

/// The key of the note of range `i` of `n` (in the object's partition).
pub fn note_key(i: u32, n: u32, etag: &str, object: &str) -> String {
    format!("{NOTE_PREFIX}{i}/{n}:{etag}:{object}")
}

/// Whether a ledger key is a range's or a note's (not an object's).
pub fn is_work_key(key: &str) -> bool {
    key.starts_with(RANGE_PREFIX) || key.starts_with(NOTE_PREFIX)
}

/// A range to count: the value of a range key's work item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeWork {
    /// The object's ledger key.
    pub object: String,
    /// The object's ledger partition (where the note goes).
    pub partition: i32,
    /// The version split.
    pub etag: String,
    /// The object's size.
    pub size: u64,
    /// The range `[start, end)`.
    pub start: u64,
    pub end: u64,
    /// Range `index` of `of`.
    pub index: u32,
    pub of: u32,
}

/// A range done: under its range key, and as its note.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeDone {
    /// The object's ledger key.
    pub object: String,
    /// The version split.
    pub etag: String,
    pub index: u32,
    pub of: u32,
    /// `false`: the version was gone (`412`, or the object missing): the
    /// range counted nothing.
    pub counted: bool,
    pub bytes: u64,
    pub words: u64,
    pub distinct: u64,
    pub invalid_bytes: u64,
    #[serde(default)]
    pub skipped_tokens: u64,
    pub ms: u64,
    /// The worker that counted it.
    pub worker: String,
    /// The range key's ledger partition (that of its contribution).
    pub partition: i32,
    /// Where its word counts are in the contributions topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contribution: Option<Contribution>,
}

/// A split in progress (local state of the object's partition).
#[derive(Clone, Debug, PartialEq)]
pub struct Split {
    pub etag: String,
    pub size: u64,
    pub n: u32,
    /// The object's contribution before the split.
    pub old: Option<Contribution>,
    /// The notes in, by range.
    pub notes: BTreeMap<u32, RangeDone>,
    /// A newer version (`Count`) or a removal (`Retract`) came meanwhile.
    pub superseded: Option<Action>,
    /// …under the object's change key (a tombstone clears it once applied).
    pub change: bool,
}

/// What collecting a complete split does.
#[derive(Clone, Debug, PartialEq)]
pub struct Collect {
    /// The notes, one per range.
    pub notes: Vec<RangeDone>,
    /// `None`: the object is counted (the ranges' sum). Otherwise what the
    /// ranges committed is taken back and the object counted again
    /// (`Count`, at its current version) or retracted (`Retract`).
    pub restart: Option<Action>,
    /// The ranges' contributions, merged (read before settling).
    pub words: HashMap<String, u64>,
}

impl Collect {
    /// What the job does after the collection.
    pub fn then(&self) -> Option<&Action> {
        self.restart.as_ref()
    }
}

/// How a ledger record bears on the splits in progress.
#[derive(Debug, PartialEq)]
pub enum Applied {
    /// Not at all: the object's usual handling applies.
    No,
    /// It belongs to a split: the usual handling skips it.
    Skip,
    /// It belongs to the split of this object, which may now be complete.
    Touched(String),
}

/// The splits in progress of the owned ledger partitions, by partition and
/// object ledger key.
#[derive(Debug, Default)]
pub struct Splits(pub BTreeMap<i32, HashMap<String, Split>>);

impl Splits {
    /// Whether a record of `key` in partition `p` may bear on a split.
    pub fn concerns(&self, p: i32, key: &str) -> bool {
        key.starts_with(NOTE_PREFIX)
            || self
                .0
                .get(&p)
                .is_some_and(|m| m.contains_key(split_key(key).0))
    }

    /// Takes in a ledger record of partition `p` (committed, in order;
    /// `None` a tombstone). Idempotent: a record taken in twice changes
    /// nothing more.
    pub fn apply(&mut self, p: i32, key: &str, entry: Option<&Entry>) -> Applied {
        if key.starts_with(RANGE_PREFIX) {
            return Applied::Skip;
        }
        if key.starts_with(NOTE_PREFIX) {
            if let Some(Entry::RangeDone(note)) = entry {
                if let Some(s) = self.0.get_mut(&p).and_then(|m| m.get_mut(&note.object)) {
                    if s.etag == note.etag && s.n == note.of && note.index < s.n {
                        s.notes.insert(note.index, note.clone());
                        return Applied::Touched(note.object.clone());
                    }
                }
            }
            return Applied::Skip;
        }
        let (object, change) = split_key(key);
        let splits = self.0.entry(p).or_default();
        match entry {
            Some(Entry::Split {
                etag,
                size,
                ranges,
                old,
            }) if !change => {
                if splits.get(object).is_none_or(|s| s.etag != *etag) {
                    splits.insert(
                        object.to_string(),
                        Split {
                            etag: etag.clone(),
                            size: *size,
                            n: *ranges,
                            old: *old,
                            notes: BTreeMap::new(),
                            superseded: None,
                            change: false,
                        },
                    );
                }
                Applied::Skip
            }
            // The count stage recorded the object otherwise (counted,
            // failed, gone): no split is in progress.
            Some(Entry::Counted { .. } | Entry::Failed { .. }) | None if !change => {
                splits.remove(object);
                Applied::No
            }
            _ => {
                let Some(s) = splits.get_mut(object) else {
                    return Applied::No;
                };
                match entry {
                    Some(Entry::Discovered { etag, .. }) if *etag == s.etag => Applied::Skip,
                    Some(Entry::Discovered { .. }) => {
                        s.superseded = Some(Action::Count);
                        s.change |= change;
                        Applied::Touched(object.to_string())
                    }
                    Some(Entry::Removed { .. }) if change => {
                        s.superseded = Some(Action::Retract);
                        s.change = true;
                        Applied::Touched(object.to_string())
                    }
                    None => Applied::No, // a change applied
                    _ => Applied::Skip,
                }
            }
        }
    }

    /// The job that collects the split of `object` in partition `p`, once
    /// every range's note is in.
    pub fn collect(&self, p: i32, object: &str, bucket: &str) -> Option<Job> {
        let s = self.0.get(&p)?.get(object)?;
        if s.notes.len() < s.n as usize {
            return None;
        }
        let notes: Vec<RangeDone> = s.notes.values().cloned().collect();
        let changed = notes.iter().any(|n| !n.counted);
        let restart = s.superseded.clone().or(changed.then_some(Action::Count));
        Some(Job {
            partition: p,
            ledger_key: object.to_string(),
            object_key: Discovery::key_of(bucket, object)?.to_string(),
            listed: Entry::Split {
                etag: s.etag.clone(),
                size: s.size,
                ranges: s.n,
                old: s.old,
            },
            action: Action::Collect(Box::new(Collect {
                notes,
                restart,
                words: HashMap::new(),
            })),
            old: s.old.map(|c| c.offset),
            change: s.change,
        })
    }

    /// Keeps the partitions `keep` says.
    pub fn retain(&mut self, keep: impl Fn(i32) -> bool) {
        self.0.retain(|&p, _| keep(p));
    }

    /// Splits in progress.
    pub fn len(&self) -> usize {
        self.0.values().map(HashMap::len).sum()
    }

    /// Whether none is in progress.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The job of a range's work item polled from the ledger (`None` for the
/// range key's other records: its `range_done`, its tombstone).
pub fn range_job(p: i32, key: &str, entry: Option<&Entry>, bucket: &str) -> Option<Job> {
    let Some(Entry::Range(w)) = entry else {
        return None;
    };
    Some(Job {
        partition: p,
        ledger_key: key.to_string(),
        object_key: Discovery::key_of(bucket, &w.object)?.to_string(),
        listed: Entry::Range(w.clone()),
        action: Action::Range,
        old: None,
        change: false,
    })
}

fn add(deltas: &mut HashMap<String, i64>, d: HashMap<String, i64>) {
    for (w, n) in d {
        *deltas.entry(w).or_default() += n;
    }
}

/// Settles a range: its deltas, its contribution (chunks under the range
/// key), its `range_done` record and its note to the object's partition;
/// or, when its version was gone, a note saying so.
pub fn settle_range(s: &mut Settled, job: &Job, outcome: Outcome, worker: &str) {
    let Entry::Range(w) = &job.listed else {
        return;
    };
    let p = job.partition;
    let mut note = RangeDone {
        object: w.object.clone(),
        etag: w.etag.clone(),
        index: w.index,
        of: w.of,
        counted: false,
        bytes: 0,
        words: 0,
        distinct: 0,
        invalid_bytes: 0,
        skipped_tokens: 0,
        ms: 0,
        worker: worker.to_string(),
        partition: p,
        contribution: None,
    };
    let mut pointer = None;
    if let Outcome::Counted {
        counts,
        size,
        elapsed,
        ..
    } = outcome
    {
        note.counted = true;
        note.bytes = size;
        note.words = counts.words;
        note.distinct = counts.distinct() as u64;
        note.invalid_bytes = counts.invalid_bytes;
        note.skipped_tokens = counts.skipped_tokens;
        note.ms = elapsed.as_millis() as u64;
        add(&mut s.deltas, diff(&counts, &HashMap::new()));
        let first = s.contributions.len();
        let values = chunks(&w.etag, &counts);
        let n = values.len() as u32;
        for (i, v) in values.into_iter().enumerate() {
            s.contributions
                .push((p, chunk_key(&job.ledger_key, i as u32), Some(v)));
        }
        pointer = Some((first, n));
        s.bytes += size;
        s.delta.merge(counts);
    }
    s.events.push(Event::RangeCounted {
        key: w.object.clone(),
        range: w.index,
        of: w.of,
        bytes: note.bytes,
        words: note.words,
        changed: !note.counted,
    });
    let note_at = note_key(w.index, w.of, &w.etag, &w.object);
    for (partition, key) in [(p, job.ledger_key.clone()), (w.partition, note_at)] {
        if let Some((first, n)) = pointer {
            s.pointers.push((s.ledger.len(), first, n));
        }
        s.ledger
            .push((partition, key, Some(Entry::RangeDone(note.clone()))));
    }
}

/// Settles an object the owner of its partition found to split (`ranges`
/// of version `etag`): a work item per range, and `split` on its key,
/// carrying its contribution so far (`old`).
pub fn settle_split(
    s: &mut Settled,
    job: &Job,
    etag: String,
    size: u64,
    ranges: &[(u64, u64)],
    old: Option<Contribution>,
) {
    let n = ranges.len() as u32;
    for (i, &(start, end)) in ranges.iter().enumerate() {
        let i = i as u32;
        let work = RangeWork {
            object: job.ledger_key.clone(),
            partition: job.partition,
            etag: etag.clone(),
            size,
            start,
            end,
            index: i,
            of: n,
        };
        let key = range_key(i, n, &etag, &job.ledger_key);
        s.ledger.push((BY_KEY, key, Some(Entry::Range(work))));
    }
    s.events.push(Event::ObjectSplit {
        key: job.ledger_key.clone(),
        etag: etag.clone(),
        ranges: n,
    });
    let e = Entry::Split {
        etag,
        size,
        ranges: n,
        old,
    };
    s.ledger
        .push((job.partition, job.ledger_key.clone(), Some(e)));
}

/// The contribution an object had before (the one a `split` carries, or
/// the one its done set named), with its chunks as read back.
pub fn old_pointer(job: &Job, old_chunks: u32) -> Option<Contribution> {
    match &job.listed {
        Entry::Split { old, .. } => *old,
        _ => job.old.map(|offset| Contribution {
            offset,
            chunks: old_chunks,
        }),
    }
}

/// Settles the collection of a complete split. Tombstones the ranges'
/// keys, notes and chunks; then either writes the object's `counted`
/// record (the ranges' sum; its old contribution taken out; under
/// `recount` the merged contribution) and returns `false`, or, to restart,
/// takes back what the ranges added and returns `true`: the caller then
/// settles the job's own outcome (a count of the current version, or a
/// retraction) as any object's.
pub fn settle_collect(
    s: &mut Settled,
    job: &Job,
    c: &Collect,
    old: (&HashMap<String, u64>, u32),
    recount: bool,
    worker: &str,
) -> bool {
    let Entry::Split { etag, size, .. } = &job.listed else {
        return false;
    };
    let (p, object) = (job.partition, &job.ledger_key);
    for note in &c.notes {
        let range = range_key(note.index, note.of, &note.etag, object);
        if let Some(con) = note.contribution {
            for j in 0..con.chunks {
                s.contributions
                    .push((note.partition, chunk_key(&range, j), None));
            }
        }
        s.ledger.push((note.partition, range, None));
        let at = note_key(note.index, note.of, &note.etag, object);
        s.ledger.push((p, at, None));
    }
    let counted = c.notes.iter().filter(|n| n.counted);
    if c.restart.is_some() {
        let words: u64 = c.words.values().sum();
        add(&mut s.deltas, diff(&WordCounts::new(), &c.words));
        s.events.push(Event::RangesTakenBack {
            key: object.clone(),
            etag: etag.clone(),
            ranges: counted.count() as u32,
            words,
        });
        return true;
    }
    let mut counts = WordCounts::new();
    for (w, &n) in &c.words {
        counts.add(w.as_bytes(), n);
    }
    for n in counted {
        counts.invalid_bytes += n.invalid_bytes;
        counts.skipped_tokens += n.skipped_tokens;
    }
    let ms = c.notes.iter().map(|n| n.ms).max().unwrap_or(0);
    let (old_words, old_chunks) = old;
    add(&mut s.deltas, diff(&WordCounts::new(), old_words));
    let mut new_chunks = 0;
    if recount {
        let first = s.contributions.len();
        for (i, v) in chunks(etag, &counts).into_iter().enumerate() {
            s.contributions
                .push((p, chunk_key(object, i as u32), Some(v)));
            new_chunks += 1;
        }
        s.pointers.push((s.ledger.len(), first, new_chunks));
    }
    for i in new_chunks..old_chunks {
        s.contributions.push((p, chunk_key(object, i), None));
    }
    s.events.push(Event::ObjectCounted {
        key: object.clone(),
        bytes: *size,
        words: counts.words,
        distinct: counts.distinct() as u64,
        invalid_bytes: counts.invalid_bytes,
        ms,
        format: crate::format::Kind::Text.name().into(),
        text_bytes: *size,
    });
    let text = crate::format::Record {
        ranges: c.notes.len() as u64,
        ..crate::format::Record::text(*size)
    };
    let e = Entry::counted(etag.clone(), *size, &counts, ms, worker, text);
    s.counted += 1;
    s.ledger.push((p, object.clone(), Some(e)));
    if job.change {
        s.ledger.push((p, change_key(object), None));
    }
    false
}

/// A restarted split whose object could not be read: its old contribution
/// is taken out too (the object's key holds `split`, not `counted`: the
/// `failed` record goes there, and discovery retries it).
pub fn retract_old(s: &mut Settled, job: &Job, old: (&HashMap<String, u64>, u32)) {
    add(&mut s.deltas, diff(&WordCounts::new(), old.0));
    for i in 0..old.1 {
        s.contributions
            .push((job.partition, chunk_key(&job.ledger_key, i), None));
    }
}

#[cfg(test)]
mod tests;
