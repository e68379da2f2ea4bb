//! Discovery: the one worker that owns ledger partition 0 lists the bucket
//! every interval and reports objects the ledger has never seen.
//!
//! Listing starts after the greatest key seen [`WATERMARK_LAG`] ago: keys
//! that arrive in order cost a short page (what arrived lately), whatever
//! the number of objects already counted, and keys that arrive a little out
//! of order (concurrent uploads finish in any order) are still found at the
//! next listing. A periodic full listing is the safety net for keys that
//! arrive far out of order.

use crate::s3;
use anyhow::Result;
use aws_sdk_s3::Client;
use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// ListObjectsV2 requests made by this process (for status lines, tests
/// and the scale-out benchmark).
pub static LIST_CALLS: AtomicU64 = AtomicU64::new(0);

/// How often the whole bucket is listed, whatever the watermark.
const FULL_LIST_EVERY: Duration = Duration::from_secs(30);
/// Listings start after the watermark as it was this long ago.
pub const WATERMARK_LAG: Duration = Duration::from_secs(10);

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

/// What discovery knows: the keys in the ledger.
pub struct Discovery {
    bucket: String,
    prefix: String,
    seen: HashSet<String>,
    watermark: Option<String>,
    /// The watermark before each listing since the oldest one that may
    /// still be the start of the next listing.
    history: VecDeque<(Instant, Option<String>)>,
    last_full: Option<Instant>,
}

impl Discovery {
    /// Discovery of `bucket` under `prefix`, knowing `seen` keys.
    pub fn new(bucket: &str, prefix: &str, seen: HashSet<String>) -> Self {
        let watermark = seen.iter().max().cloned();
        Discovery {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
            seen,
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
                if !self.seen.contains(key) {
                    found.push(Found {
                        key: key.to_string(),
                        etag: obj.e_tag().unwrap_or_default().to_string(),
                        size: obj.size().unwrap_or(0).max(0) as u64,
                    });
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

    /// Forgets keys whose discovery was not committed.
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
        let mut d = Discovery::new("b", "", HashSet::new());
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
}
