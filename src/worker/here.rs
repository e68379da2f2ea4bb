//! Objects counted where they are found: the lister counts a small object
//! it just found in the batch that found it, when it also owns the
//! object's ledger partition, instead of writing a `discovered` record and
//! counting the object once that record comes back from the ledger.
//!
//! The ledger is the work queue of the count stage: the owner of an
//! object's ledger partition counts it. When the lister is that owner (a
//! single worker owns every partition; with N workers about 1/N of the
//! objects), the round trip through the queue only costs time: a
//! transaction to write the `discovered` record, a poll to read it back.
//! So the found object becomes a record of the batch as if it had been
//! polled (the very `discovered` entry, under the key it would have been
//! written under), with no offset to commit ([`FOUND_HERE`]), and the
//! batch's transaction writes its `counted` record directly. Exactly-once
//! holds as for any batch: that transaction commits the counts, the totals
//! and the listing's progress together, fenced by the lister's position in
//! ledger partition 0; an abandoned batch forgets what it found, and the
//! listing finds it again.
//!
//! Only small objects go this way ([`MAX_SIZE`]): a big one stays a
//! `discovered` record, visible in the ledger while it is read, and over
//! `--range-size` split into ranges that any worker can count. A batch
//! takes at most what it has room for (the poll's object and byte
//! budgets); the rest of the found objects are written as `discovered`
//! records, as before.

use super::batch::{Input, Polled};
use super::discover::Found;
use super::group::{MAX_BYTES_PER_BATCH, MAX_OBJECTS_PER_BATCH};
use super::ledger::{change_key, partition_of, Entry};
use super::ranged::Ranged;
use crate::s3;

/// The offset of a record made of an object found in this batch: nothing
/// was consumed for it, so it moves no input offset.
pub const FOUND_HERE: i64 = -1;

/// Objects up to this size are counted where they are found.
pub const MAX_SIZE: u64 = 1 << 20;

/// Takes out of `found` the objects this batch counts where they were
/// found: small ones ([`MAX_SIZE`], and not split by `ranged`) of ledger
/// partitions `owned`, as many as `polled` leaves room for. Returns them,
/// and the records that ask for them (see [`FOUND_HERE`]).
pub fn take(
    found: &mut Vec<Found>,
    polled: &[Polled],
    bucket: &str,
    ledger_partitions: i32,
    ranged: &Ranged,
    owned: impl Fn(i32) -> bool,
) -> (Vec<Found>, Vec<Polled>) {
    let (mut objects, mut bytes) = budget(polled);
    let mut here = Vec::new();
    let mut records = Vec::new();
    found.retain(|f| {
        let small = f.size <= MAX_SIZE && !ranged.splits(f.size);
        if !small || objects == 0 || bytes < f.size {
            return true;
        }
        let object = s3::url(bucket, &f.key);
        let partition = partition_of(&object, ledger_partitions);
        if !owned(partition) {
            return true;
        }
        objects -= 1;
        bytes -= f.size;
        let key = if f.change {
            change_key(&object)
        } else {
            object
        };
        records.push(Polled {
            input: Input::Ledger,
            partition,
            offset: FOUND_HERE,
            key: key.into_bytes(),
            value: Some(
                Entry::Discovered {
                    etag: f.etag.clone(),
                    size: f.size,
                }
                .to_bytes(),
            ),
        });
        here.push(f.clone());
        false
    });
    (here, records)
}

/// The objects and bytes a batch of `polled` still has room for.
fn budget(polled: &[Polled]) -> (usize, u64) {
    let mut objects = MAX_OBJECTS_PER_BATCH;
    let mut bytes = MAX_BYTES_PER_BATCH;
    for p in polled.iter().filter(|p| p.input == Input::Ledger) {
        if let Some(Ok(Entry::Discovered { size, .. })) = p.value.as_deref().map(Entry::parse) {
            objects = objects.saturating_sub(1);
            bytes = bytes.saturating_sub(size);
        }
    }
    (objects, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(key: &str, size: u64, change: bool) -> Found {
        Found {
            key: key.into(),
            etag: format!("\"{key}\""),
            size,
            change,
        }
    }

    #[test]
    fn small_objects_of_owned_partitions_become_records_without_an_offset() {
        let mut all = vec![
            found("a.txt", 10, false),
            found("big.txt", MAX_SIZE + 1, false),
            found("b.txt", 20, true),
        ];
        let (here, records) = take(&mut all, &[], "bk", 8, &Ranged::default(), |_| true);
        assert_eq!(
            here.iter().map(|f| f.key.as_str()).collect::<Vec<_>>(),
            ["a.txt", "b.txt"]
        );
        assert_eq!(all, [found("big.txt", MAX_SIZE + 1, false)]);
        assert_eq!(records.len(), 2);
        assert!(records.iter().all(|r| r.offset == FOUND_HERE));
        assert_eq!(records[0].key, b"s3://bk/a.txt");
        assert_eq!(records[0].partition, partition_of("s3://bk/a.txt", 8));
        // a change goes under the change key, as its `discovered` record would
        assert_eq!(records[1].key, change_key("s3://bk/b.txt").into_bytes());
        assert_eq!(
            records[1]
                .value
                .as_deref()
                .map(Entry::parse)
                .and_then(Result::ok),
            Some(Entry::Discovered {
                etag: "\"b.txt\"".into(),
                size: 20
            })
        );
    }

    #[test]
    fn objects_of_other_partitions_over_the_range_size_or_the_budget_stay_found() {
        let keys: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
        let mut all: Vec<Found> = keys.iter().map(|k| found(k, 5, false)).collect();
        let mine = partition_of("s3://bk/k0", 8);
        let (here, _) = take(&mut all, &[], "bk", 8, &Ranged::default(), |p| p == mine);
        assert!(!here.is_empty());
        assert!(here
            .iter()
            .all(|f| partition_of(&s3::url("bk", &f.key), 8) == mine));
        assert_eq!(here.len() + all.len(), 40);

        let mut all = vec![found("a", 101, false)];
        let ranged = Ranged {
            size: 100,
            concurrency: 2,
        };
        let (here, _) = take(&mut all, &[], "bk", 8, &ranged, |_| true);
        assert!(here.is_empty(), "split into ranges");

        // a batch that polled MAX_OBJECTS_PER_BATCH objects has no room left
        let polled: Vec<Polled> = (0..MAX_OBJECTS_PER_BATCH as i64)
            .map(|i| Polled {
                input: Input::Ledger,
                partition: 0,
                offset: i,
                key: format!("s3://bk/p{i}").into_bytes(),
                value: Some(
                    Entry::Discovered {
                        etag: "\"e\"".into(),
                        size: 1,
                    }
                    .to_bytes(),
                ),
            })
            .collect();
        let mut all = vec![found("a", 1, false)];
        let (here, _) = take(&mut all, &polled, "bk", 8, &Ranged::default(), |_| true);
        assert!(here.is_empty(), "no room");
        let (here, _) = take(&mut all, &polled[1..], "bk", 8, &Ranged::default(), |_| {
            true
        });
        assert_eq!(here.len(), 1, "room for one");
    }
}
