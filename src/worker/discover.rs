//! Discovery: the one worker that owns ledger partition 0 lists the bucket
//! every interval and reports objects the ledger has never seen.
//!
//! Listing starts after the greatest key seen [`WATERMARK_LAG`] ago: keys
//! that arrive in order cost a short page (what arrived lately), whatever
//! the number of objects already counted, and keys that arrive a little out
//! of order (concurrent uploads finish in any order) are still found at the
//! next listing. A periodic full listing is the safety net for keys that
//! arrive far out of order.
//!
//! Full listings also retry failed objects: an object whose latest ledger
//! entry is `failed` is discovered again when a full listing still shows it
//! and it failed at least [`RETRY_FAILED_AFTER`] ago, or its ETag changed
//! since (it was replaced), or the worker started with `--retry-failed`.
//! Discovery learns of failures from the ledger when it starts and from the
//! batches its own process commits.

use super::ledger::{unix_now, Entry};
use crate::s3;
use anyhow::Result;
use aws_sdk_s3::Client;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// ListObjectsV2 requests made by this process (for status lines, tests
/// and the scale-out benchmark).
pub static LIST_CALLS: AtomicU64 = AtomicU64::new(0);

/// How often the whole bucket is listed, whatever the watermark.
const FULL_LIST_EVERY: Duration = Duration::from_secs(30);
/// Listings start after the watermark as it was this long ago.
pub const WATERMARK_LAG: Duration = Duration::from_secs(10);
/// A failed object is retried by a full listing this long after it failed.
pub const RETRY_FAILED_AFTER: Duration = Duration::from_secs(600);

/// An object found in the bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// Its key.
    pub key: String,
    /// Its ETag.
    pub etag: String,
    /// Its size.
    pub size: u64,
}

/// A failed object: when it failed, and its ETag then.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Failure {
    at: u64,
    etag: String,
}

impl Failure {
    /// Whether a listing at `now` (Unix s) that shows `etag` retries it.
    fn due(&self, now: u64, etag: &str) -> bool {
        now >= self.at.saturating_add(RETRY_FAILED_AFTER.as_secs())
            || (!self.etag.is_empty() && self.etag != etag)
    }
}

/// What the ledger says as discovery starts: the keys of this bucket in
/// it, and those whose latest entry is `failed`.
#[derive(Default)]
pub struct Known {
    bucket: String,
    seen: HashSet<String>,
    failed: HashMap<String, Failure>,
}

impl Known {
    /// Nothing known yet, of `bucket`.
    pub fn new(bucket: &str) -> Self {
        Known {
            bucket: bucket.to_string(),
            ..Known::default()
        }
    }

    /// Takes in one ledger record (in ledger order: the latest one wins).
    pub fn add(&mut self, ledger_key: &[u8], value: Option<&[u8]>) {
        let Some(key) = std::str::from_utf8(ledger_key)
            .ok()
            .and_then(|k| Discovery::key_of(&self.bucket, k))
        else {
            return;
        };
        match value.map(Entry::parse) {
            Some(Ok(Entry::Failed { at, etag, .. })) => {
                self.failed.insert(key.to_string(), Failure { at, etag });
            }
            _ => {
                self.failed.remove(key);
            }
        }
        if !self.seen.contains(key) {
            self.seen.insert(key.to_string());
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

/// What discovery knows: the keys in the ledger.
pub struct Discovery {
    bucket: String,
    prefix: String,
    seen: HashSet<String>,
    /// Seen keys whose latest ledger entry is `failed`, as far as this
    /// process knows.
    failed: HashMap<String, Failure>,
    watermark: Option<String>,
    /// The watermark before each listing since the oldest one that may
    /// still be the start of the next listing.
    history: VecDeque<(Instant, Option<String>)>,
    last_full: Option<Instant>,
}

impl Discovery {
    /// Discovery of `bucket` under `prefix`, knowing what `known` says.
    pub fn new(bucket: &str, prefix: &str, known: Known) -> Self {
        let Known { seen, failed, .. } = known;
        let watermark = seen.iter().max().cloned();
        Discovery {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
            seen,
            failed,
            watermark,
            history: VecDeque::new(),
            last_full: None,
        }
    }

    /// Where a listing at `now` starts: the watermark of the latest listing
    /// at least [`WATERMARK_LAG`] before `now` (older ones are dropped), or
    /// of the oldest listing known when none is that old.
    fn start_after(&mut self, now: Instant) -> Option<String> {
        while self.history.len() >= 2
            && now.saturating_duration_since(self.history[1].0) >= WATERMARK_LAG
        {
            self.history.pop_front();
        }
        match self.history.front() {
            Some((_, w)) => w.clone(),
            None => self.watermark.clone(),
        }
    }

    /// Objects known (in the ledger or found since).
    pub fn known(&self) -> usize {
        self.seen.len()
    }

    /// Estimated heap bytes of the known keys.
    pub fn memory(&self) -> u64 {
        super::state::set_bytes(self.seen.capacity(), self.seen.iter().map(String::len))
    }

    /// The object key of a ledger key, if it belongs to this bucket.
    pub fn key_of<'a>(bucket: &str, ledger_key: &'a str) -> Option<&'a str> {
        ledger_key
            .strip_prefix("s3://")?
            .strip_prefix(bucket)?
            .strip_prefix('/')
    }

    /// Lists the bucket and returns the objects not seen yet, in key order,
    /// marking them seen. On error nothing is marked.
    pub async fn poll(&mut self, client: &Client) -> Result<Vec<Found>> {
        let full = self
            .last_full
            .is_none_or(|t| t.elapsed() >= FULL_LIST_EVERY);
        let now = Instant::now();
        let start_after = if full { None } else { self.start_after(now) };
        let mut found = Vec::new();
        let mut retried = Vec::new();
        let unix = unix_now();
        let mut token: Option<String> = None;
        loop {
            let mut req = client.list_objects_v2().bucket(&self.bucket);
            if !self.prefix.is_empty() {
                req = req.prefix(&self.prefix);
            }
            if let Some(sa) = &start_after {
                req = req.start_after(sa);
            }
            if let Some(t) = &token {
                req = req.continuation_token(t);
            }
            LIST_CALLS.fetch_add(1, Ordering::Relaxed);
            let resp = req
                .send()
                .await
                .map_err(|e| s3::describe(&format!("cannot list s3://{}", self.bucket), &e))?;
            for obj in resp.contents() {
                let Some(key) = obj.key() else { continue };
                let etag = obj.e_tag().unwrap_or_default();
                let retry = full && self.failed.get(key).is_some_and(|f| f.due(unix, etag));
                if retry || !self.seen.contains(key) {
                    found.push(Found {
                        key: key.to_string(),
                        etag: etag.to_string(),
                        size: obj.size().unwrap_or(0).max(0) as u64,
                    });
                }
                if retry {
                    retried.push(key.to_string());
                }
            }
            match resp.next_continuation_token() {
                Some(t) if resp.is_truncated() == Some(true) => token = Some(t.to_string()),
                _ => break,
            }
        }
        if full {
            self.last_full = Some(now);
            self.history.clear();
        }
        if !retried.is_empty() {
            tracing::info!(
                "retrying {} failed objects of s3://{} (e.g. {})",
                retried.len(),
                self.bucket,
                retried[0]
            );
        }
        for key in &retried {
            self.failed.remove(key);
        }
        found.sort_by(|a, b| a.key.cmp(&b.key));
        found.dedup_by(|a, b| a.key == b.key);
        // The watermark before this listing's finds: a later listing within
        // the lag starts no later than here.
        self.history.push_back((now, self.watermark.clone()));
        for f in &found {
            self.seen.insert(f.key.clone());
            if self.watermark.as_ref().is_none_or(|w| f.key > *w) {
                self.watermark = Some(f.key.clone());
            }
        }
        Ok(found)
    }

    /// Takes in a ledger entry this process committed for `ledger_key`: the
    /// key is in the ledger (seen, even if another lister discovered it); a
    /// failed object waits for a retry, any other is not failed.
    pub fn settled(&mut self, ledger_key: &str, entry: &Entry) {
        let Some(key) = Self::key_of(&self.bucket, ledger_key) else {
            return;
        };
        if !self.seen.contains(key) {
            self.seen.insert(key.to_string());
        }
        match entry {
            Entry::Failed { at, etag, .. } => {
                let failure = Failure {
                    at: *at,
                    etag: etag.clone(),
                };
                self.failed.insert(key.to_string(), failure);
            }
            _ => {
                self.failed.remove(key);
            }
        }
    }

    /// Forgets keys whose discovery was not committed (a retried failed
    /// key, no longer seen, is then found again as new).
    pub fn forget(&mut self, keys: impl IntoIterator<Item = String>) {
        for k in keys {
            self.seen.remove(&k);
        }
        self.watermark = self.seen.iter().max().cloned();
        self.history.clear();
        self.last_full = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_after_lags_behind_the_watermark() {
        let mut d = Discovery::new("b", "", Known::new("b"));
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert_eq!(d.start_after(at(0)), None);
        // listings at 0 s (before: none), 4 s (before: "c"), 12 s (before: "f")
        d.history.push_back((at(0), None));
        d.watermark = Some("c".into());
        d.history.push_back((at(4), Some("c".into())));
        d.watermark = Some("f".into());
        d.history.push_back((at(12), Some("f".into())));
        d.watermark = Some("k".into());
        // at 13 s: the latest listing at least 10 s old is the one at 0 s
        assert_eq!(d.start_after(at(13)), None);
        // at 15 s: the one at 4 s; the one at 0 s is dropped
        assert_eq!(d.start_after(at(15)), Some("c".into()));
        assert_eq!(d.history.len(), 2);
        // at 30 s: the one at 12 s
        assert_eq!(d.start_after(at(30)), Some("f".into()));
        assert_eq!(d.history.len(), 1);
    }

    #[test]
    fn ledger_keys() {
        assert_eq!(Discovery::key_of("b", "s3://b/x/y.txt"), Some("x/y.txt"));
        assert_eq!(Discovery::key_of("b", "s3://bb/x"), None);
    }

    fn failed(at: u64, etag: &str) -> Vec<u8> {
        Entry::Failed {
            etag: etag.into(),
            size: 1,
            reason: "AccessDenied".into(),
            worker: "w".into(),
            at,
        }
        .to_bytes()
    }

    #[test]
    fn known_failed_keys_follow_the_latest_ledger_entry() {
        let discovered = Entry::Discovered {
            etag: "e".into(),
            size: 1,
        }
        .to_bytes();
        let mut k = Known::new("b");
        k.add(b"s3://b/again", Some(&failed(5, "e")));
        k.add(b"s3://b/again", Some(&discovered));
        k.add(b"s3://b/still", Some(&discovered));
        k.add(b"s3://b/still", Some(&failed(7, "e")));
        k.add(b"s3://other/x", Some(&failed(7, "e")));
        k.add(b"s3://b/junk", Some(b"not json"));
        assert_eq!((k.len(), k.failed()), (3, 1));
        assert_eq!(
            k.failed["still"],
            Failure {
                at: 7,
                etag: "e".into()
            }
        );
        k.retry_failed_now();
        assert!(k.failed["still"].due(unix_now(), "e"));
        let mut d = Discovery::new("b", "", k);
        d.settled("s3://b/still", &Entry::parse(&discovered).unwrap());
        d.settled("s3://b/late", &Entry::parse(&failed(9, "f")).unwrap());
        assert_eq!(d.failed.keys().collect::<Vec<_>>(), ["late"]);
        assert!(d.seen.contains("late"));
    }

    #[test]
    fn a_failed_object_is_due_after_ten_minutes_or_once_replaced() {
        let f = Failure {
            at: 1_000,
            etag: "\"e\"".into(),
        };
        assert!(!f.due(1_000 + 599, "\"e\""));
        assert!(f.due(1_000 + 600, "\"e\""));
        assert!(f.due(1_001, "\"other\""));
        let unknown = Failure {
            at: 1_000,
            etag: String::new(),
        };
        assert!(!unknown.due(1_001, "\"other\""));
    }
}
