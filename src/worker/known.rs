//! What the ledger says as discovery starts ([`Known`]): the keys of the
//! bucket it holds (fingerprints and ETag tags, bounded memory), the
//! greatest key, the failed objects and where the full listing stood.
//! [`super::discover::Discovery`] takes it over.

use super::discover::{tag31, Discovery, Seen, REMOVED, RETRY_FAILED_AFTER, UNKNOWN};
use super::keyset::KeyMap;
use super::ledger::{split_key, Entry};
use std::collections::HashMap;

/// A failed object: when it failed, and its ETag then.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Failure {
    pub(super) at: u64,
    pub(super) etag: String,
    /// Recorded under the object's change key (a counted object's new
    /// version failed): retried there.
    pub(super) change: bool,
}

impl Failure {
    /// Whether a listing at `now` (Unix s) that shows `etag` retries it.
    pub(super) fn due(&self, now: u64, etag: &str) -> bool {
        now >= self.at.saturating_add(RETRY_FAILED_AFTER.as_secs())
            || (!self.etag.is_empty() && self.etag != etag)
    }
}

/// What the ledger says as discovery starts: the keys of this bucket in
/// it, and those whose latest entry is `failed`.
#[derive(Default)]
pub struct Known {
    pub(super) bucket: String,
    pub(super) prefix: String,
    pub(super) seen: KeyMap<Seen>,
    /// The greatest key seen.
    pub(super) greatest: Option<String>,
    pub(super) failed: HashMap<String, Failure>,
    /// Where the full listing stood (the latest `listing` record).
    pub(super) listing: Option<Entry>,
}

impl Known {
    /// Nothing known yet, of `bucket`.
    pub fn new(bucket: &str) -> Self {
        Known {
            bucket: bucket.to_string(),
            ..Known::default()
        }
    }

    /// Only keys under `prefix` (those the listings show).
    pub fn with_prefix(mut self, prefix: &str) -> Self {
        self.prefix = prefix.to_string();
        self
    }

    /// Takes in one ledger record (in ledger order: the latest one wins).
    pub fn add(&mut self, ledger_key: &[u8], value: Option<&[u8]>) {
        let Some((key, change)) = std::str::from_utf8(ledger_key).ok().and_then(|k| {
            let (object, change) = split_key(k);
            Some((Discovery::key_of(&self.bucket, object)?, change))
        }) else {
            return;
        };
        let tag = match value.map(Entry::parse) {
            Some(Ok(listing @ Entry::Listing { .. })) => {
                if !change {
                    self.listing = Some(listing);
                }
                return;
            }
            None if change => return, // a change applied
            None => {
                // Gone, and its removal applied.
                self.seen.remove(key);
                self.failed.remove(key);
                return;
            }
            _ if !key.starts_with(self.prefix.as_str()) => return,
            Some(Ok(Entry::Removed { .. })) => {
                self.failed.remove(key);
                REMOVED
            }
            Some(Ok(Entry::Failed { at, etag, .. })) => {
                let tag = tag31(&etag);
                self.failed
                    .insert(key.to_string(), Failure { at, etag, change });
                tag
            }
            Some(Ok(
                Entry::Discovered { etag, .. }
                | Entry::Counted { etag, .. }
                | Entry::Split { etag, .. },
            )) => {
                self.failed.remove(key);
                tag31(&etag)
            }
            _ => {
                self.failed.remove(key);
                UNKNOWN
            }
        };
        self.seen.set(key, tag);
        if self.greatest.as_deref().is_none_or(|g| key > g) {
            self.greatest = Some(key.to_string());
        }
    }

    /// `--retry-failed`: every failed object is due at the first listing.
    pub fn retry_failed_now(&mut self) {
        for f in self.failed.values_mut() {
            f.at = 0;
        }
    }

    /// Keys known.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether no key is known.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Keys whose latest entry is `failed`.
    pub fn failed(&self) -> usize {
        self.failed.len()
    }
}
