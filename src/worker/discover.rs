//! Discovery: the one worker that owns ledger partition 0 lists the bucket
//! every interval and reports objects the ledger has never seen.
//!
//! Listing starts after the greatest key seen (keys that arrive in order
//! cost one short page), with a periodic full listing as the safety net for
//! keys that arrive out of order.

use crate::s3;
use anyhow::Result;
use aws_sdk_s3::Client;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// ListObjectsV2 requests made by this process (for status lines, tests
/// and the scale-out benchmark).
pub static LIST_CALLS: AtomicU64 = AtomicU64::new(0);

/// How often the whole bucket is listed, whatever the watermark.
const FULL_LIST_EVERY: Duration = Duration::from_secs(30);

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
            last_full: None,
        }
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
        let start_after = if full { None } else { self.watermark.clone() };
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
            self.last_full = Some(Instant::now());
        }
        found.sort_by(|a, b| a.key.cmp(&b.key));
        found.dedup_by(|a, b| a.key == b.key);
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
        self.last_full = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ledger_keys() {
        assert_eq!(Discovery::key_of("b", "s3://b/x/y.txt"), Some("x/y.txt"));
        assert_eq!(Discovery::key_of("b", "s3://bb/x"), None);
    }
}
