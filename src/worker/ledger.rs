//! The object ledger: one compacted record per object, keyed by
//! `s3://bucket/key`, saying whether it was discovered, counted or failed.
//! It is also the work queue of the count stage (DESIGN §2–§3).

use serde::{Deserialize, Serialize};

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
        /// Milliseconds spent reading and counting.
        ms: u64,
        /// The worker that counted it.
        worker: String,
    },
    /// Could not be read after retries; never counted.
    Failed {
        /// ETag at listing time.
        etag: String,
        /// Size at listing time.
        size: u64,
        /// Why.
        reason: String,
        /// The worker that gave up.
        worker: String,
    },
}

impl Entry {
    /// Whether the object is done (counted or failed): never count it again.
    pub fn is_done(&self) -> bool {
        !matches!(self, Entry::Discovered { .. })
    }

    /// Parses a record value.
    pub fn parse(value: &[u8]) -> anyhow::Result<Entry> {
        Ok(serde_json::from_slice(value)?)
    }

    /// The record value.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("ledger entries serialize")
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
}
