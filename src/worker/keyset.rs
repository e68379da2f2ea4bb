//! A set of object keys held as 128-bit fingerprints: 16 bytes and one
//! control byte a key, whatever the key's length, instead of the key itself
//! (about 90 bytes for a typical `s3://bucket/key`). Discovery's known keys
//! and the done sets of the ledger partitions are such sets, so that a
//! worker knows 10 M objects in about 200-400 MB at most (see
//! [`KeySet::memory`]).
//!
//! Two keys share a fingerprint with probability 2^-128 per pair: for
//! 10^8 keys, about 10^16 pairs, the chance that any two collide is about
//! 10^-22, far below that of a memory error. A collision would make a new
//! object look known (never counted), so the margin matters.

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};

/// The fingerprint of `key`: two SipHash-1-3 values with different salts.
pub fn fingerprint(key: &str) -> u128 {
    let half = |salt: u8| {
        let mut h = DefaultHasher::new();
        salt.hash(&mut h);
        key.hash(&mut h);
        h.finish()
    };
    (u128::from(half(1)) << 64) | u128::from(half(2))
}

/// A set of keys, by fingerprint.
#[derive(Clone, Debug, Default)]
pub struct KeySet(HashSet<u128>);

impl KeySet {
    /// Adds `key`; whether it was new.
    pub fn insert(&mut self, key: &str) -> bool {
        self.0.insert(fingerprint(key))
    }

    /// Whether `key` is in the set.
    pub fn contains(&self, key: &str) -> bool {
        self.0.contains(&fingerprint(key))
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: &str) {
        self.0.remove(&fingerprint(key));
    }

    /// Keys in the set.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Heap bytes: hashbrown's buckets (16 bytes) and control bytes (1) over
    /// its capacity (at most 8/7 of the keys, up to twice as many just
    /// after it grew): 19-37 bytes a key.
    pub fn memory(&self) -> u64 {
        self.0.capacity() as u64 * 17
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_by_fingerprint() {
        let mut s = KeySet::default();
        assert!(s.insert("s3://b/a.txt"));
        assert!(!s.insert("s3://b/a.txt"));
        assert!(s.contains("s3://b/a.txt"));
        assert!(!s.contains("s3://b/b.txt"));
        s.remove("s3://b/a.txt");
        assert!(s.is_empty());
        assert_ne!(fingerprint("a"), fingerprint("b"));
        assert_eq!(fingerprint("a"), fingerprint("a"));
    }

    #[test]
    fn a_million_keys_take_under_40_bytes_each() {
        let mut s = KeySet::default();
        for i in 0..1_000_000 {
            s.insert(&format!("s3://bucket/papers/{i:08}.txt"));
        }
        let per_key = s.memory() as f64 / s.len() as f64;
        assert!(per_key < 40.0, "{per_key} bytes a key");
    }
}
