//! The object ledger: one compacted record per object, keyed by
//! `s3://bucket/key`, saying whether it was discovered, counted or failed.
//! It is also the work queue of the count stage (docs/design.md §2–§3).
//!
//! An object's records go `discovered` → `counted`, or `discovered` →
//! `failed` → `discovered` (discovery retries it) → … → `counted`. Fields
//! added since the first version default when absent, so older records
//! still parse. One more record per bucket, under `s3://bucket/`, says
//! where the bucket's full listing stands ([`Entry::Listing`]).

use serde::{Deserialize, Serialize};
use std::time::{SystemTime, UNIX_EPOCH};

/// The value of a ledger record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum Entry {
    /// Listed in the bucket; waiting to be counted.
    Discovered {
        /// ETag at listing time.
        etag: String,
        /// Size at listing time.
        size: u64,
    },
    /// Counted; its deltas went to the repartition topic in the same
    /// transaction as this record.
    Counted {
        /// ETag of what was read.
        etag: String,
        /// Bytes read.
        size: u64,
        /// Word occurrences.
        words: u64,
        /// Distinct words.
        distinct: u64,
        /// Invalid UTF-8 bytes (separators).
        invalid_bytes: u64,
        /// Words over 64 KiB, skipped (not in `words`).
        #[serde(default)]
        skipped_tokens: u64,
        /// Milliseconds spent reading and counting.
        ms: u64,
        /// The worker that counted it.
        worker: String,
        /// Where its word counts are kept in the contributions topic, so
        /// that an overwrite or a delete can take them back out of the
        /// totals (`--on-change recount`; absent under `ignore` and in
        /// records older than this field: such an object is never
        /// recounted).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        contribution: Option<Contribution>,
        /// Its format: `format`, `text_bytes`, tar `members` (see
        /// [`crate::format::Record`]).
        #[serde(flatten)]
        text: crate::format::Record,
    },
    /// Could not be read after retries (S3 said it cannot be read: missing,
    /// access denied); not counted, until discovery retries it.
    Failed {
        /// ETag at listing time.
        etag: String,
        /// Size at listing time.
        size: u64,
        /// Why.
        reason: String,
        /// The worker that gave up.
        worker: String,
        /// When (Unix seconds; 0 in records older than this field).
        #[serde(default)]
        at: u64,
    },
    /// The object is gone from the bucket (a full pass did not list it):
    /// its contribution is to be taken out of the totals. Written under
    /// the object's [`change_key`] only.
    Removed {
        /// When discovery found it gone (Unix seconds).
        at: u64,
    },
    /// Read in byte ranges by the whole group (docs/design.md §9): the
    /// object's ranges are work items under range keys; the object is
    /// `counted` once every range's note is in. Written on the object's
    /// own key by the owner of its partition.
    Split {
        /// The version split (its ranges are pinned to it).
        etag: String,
        /// Its size.
        size: u64,
        /// Ranges.
        ranges: u32,
        /// The contribution the object had before (a version counted
        /// earlier), taken out when the split completes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        old: Option<Contribution>,
    },
    /// A range of a split object to count (under its range key).
    Range(super::split::RangeWork),
    /// A range counted (or found changed): under its range key, and as a
    /// note under its note key in the object's partition.
    #[serde(rename = "range_done")]
    RangeDone(super::split::RangeDone),
    /// Not an object: where the bucket's full listing (reconciliation pass)
    /// stands, under the reserved key `s3://bucket/` ([`listing_key`]; an S3
    /// key is never empty). Written with the `discovered` records a page of
    /// the pass found, so a new lister resumes the pass there.
    Listing {
        /// The last key the pass listed; `None` once the pass is complete.
        after: Option<String>,
        /// When the pass started (Unix seconds).
        started: u64,
        /// When it completed (Unix seconds), if it did.
        finished: Option<u64>,
    },
}

/// Where an object's word counts are in the contributions topic: the
/// partition is the object's ledger partition; `offset` is that of its
/// first chunk (see [`super::contrib`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contribution {
    /// Offset of chunk 0.
    pub offset: i64,
    /// Chunks (records) it spans.
    pub chunks: u32,
}

/// The prefix of an object's change key.
pub const CHANGE_PREFIX: &str = "change:";

/// The ledger key of pending changes to an object already in the ledger
/// (a new version, a removal): `change:s3://bucket/key`, in the same
/// partition as the object's own key ([`partition_of`]). The object's own
/// key keeps what the totals hold for it (`counted`, with where its
/// contribution is), so compaction can never drop that while a change
/// waits; the count stage writes a tombstone here once the change is done.
pub fn change_key(ledger_key: &str) -> String {
    format!("{CHANGE_PREFIX}{ledger_key}")
}

/// A ledger key, split: the object's ledger key and whether it is its
/// change key.
pub fn split_key(key: &str) -> (&str, bool) {
    match key.strip_prefix(CHANGE_PREFIX) {
        Some(k) => (k, true),
        None => (key, false),
    }
}

/// The ledger partition of a ledger key (a change key goes with its
/// object's key).
pub fn partition_of(key: &str, partitions: i32) -> i32 {
    crate::kafka::partition_for(split_key(key).0.as_bytes(), partitions)
}

/// The ledger key of a bucket's listing progress.
pub fn listing_key(bucket: &str) -> String {
    format!("s3://{bucket}/")
}

/// Now, in Unix seconds.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Entry {
    /// Whether the object is done for good (counted): never count it
    /// again. A failed object is not: it waits for discovery to retry it.
    pub fn is_done(&self) -> bool {
        matches!(self, Entry::Counted { .. })
    }

    /// The `counted` entry of version `etag` (`size` bytes) with `counts`
    /// (where its contribution is gets filled in once its chunks landed).
    pub fn counted(
        etag: String,
        size: u64,
        counts: &crate::count::WordCounts,
        ms: u64,
        worker: &str,
        text: crate::format::Record,
    ) -> Entry {
        Entry::Counted {
            etag,
            size,
            words: counts.words,
            distinct: counts.distinct() as u64,
            invalid_bytes: counts.invalid_bytes,
            skipped_tokens: counts.skipped_tokens,
            ms,
            worker: worker.to_string(),
            contribution: None,
            text,
        }
    }

    /// Parses a record value.
    pub fn parse(value: &[u8]) -> anyhow::Result<Entry> {
        Ok(serde_json::from_slice(value)?)
    }

    /// The record value.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("ledger entries serialize")
    }

    /// A `counted` entry of version `etag` (one word, no contribution), for
    /// tests.
    #[cfg(test)]
    pub fn counted_for_tests(etag: &str) -> Entry {
        Entry::Counted {
            etag: etag.into(),
            size: 3,
            words: 1,
            distinct: 1,
            invalid_bytes: 0,
            skipped_tokens: 0,
            ms: 1,
            worker: "w".into(),
            contribution: None,
            text: Default::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape() {
        let e = Entry::Discovered {
            etag: "\"abc\"".into(),
            size: 5,
        };
        assert_eq!(
            String::from_utf8(e.to_bytes()).unwrap(),
            r#"{"state":"discovered","etag":"\"abc\"","size":5}"#
        );
        assert_eq!(Entry::parse(&e.to_bytes()).unwrap(), e);
    }

    #[test]
    fn records_without_the_newer_fields_parse() {
        let counted = br#"{"state":"counted","etag":"e","size":5,"words":1,"distinct":1,"invalid_bytes":0,"ms":3,"worker":"w"}"#;
        assert!(matches!(
            Entry::parse(counted).unwrap(),
            Entry::Counted {
                skipped_tokens: 0,
                words: 1,
                ..
            }
        ));
        let failed = br#"{"state":"failed","etag":"e","size":5,"reason":"NoSuchKey","worker":"w"}"#;
        assert!(matches!(
            Entry::parse(failed).unwrap(),
            Entry::Failed { at: 0, ref reason, .. } if reason == "NoSuchKey"
        ));
    }

    #[test]
    fn counted_records_carry_the_format() {
        let e = Entry::Counted {
            etag: "e".into(),
            size: 9,
            words: 2,
            distinct: 2,
            invalid_bytes: 0,
            skipped_tokens: 0,
            ms: 1,
            worker: "w".into(),
            contribution: None,
            text: crate::format::Record {
                format: "gzip+tar".into(),
                text_bytes: 12,
                members: vec![crate::format::Member {
                    name: "a.xml".into(),
                    format: "xml".into(),
                    text_bytes: 12,
                    words: 2,
                }],
                member_count: 1,
                ranges: 0,
            },
        };
        let json = String::from_utf8(e.to_bytes()).unwrap();
        assert!(
            json.ends_with(r#""worker":"w","format":"gzip+tar","text_bytes":12,"members":[{"name":"a.xml","format":"xml","text_bytes":12,"words":2}],"member_count":1}"#),
            "{json}"
        );
        assert_eq!(Entry::parse(json.as_bytes()).unwrap(), e);
        let old = br#"{"state":"counted","etag":"e","size":5,"words":1,"distinct":1,"invalid_bytes":0,"ms":3,"worker":"w"}"#;
        assert!(
            matches!(Entry::parse(old).unwrap(), Entry::Counted { ref text, .. } if *text == crate::format::Record::default())
        );
    }

    #[test]
    fn only_counted_is_done() {
        let failed = Entry::Failed {
            etag: String::new(),
            size: 0,
            reason: "AccessDenied".into(),
            worker: "w".into(),
            at: 1,
        };
        assert!(!failed.is_done());
        assert!(!Entry::Discovered {
            etag: String::new(),
            size: 0
        }
        .is_done());
    }
}
