//! Sets and small maps of object keys held as 96-bit fingerprints: 12 bytes
//! a key, whatever the key's length, instead of the key itself (about 90
//! bytes for a typical `s3://bucket/key`), plus a small fixed-size value.
//! Discovery's known keys ([`KeyMap`] of a 32-bit ETag fingerprint and a
//! mark, see [`super::discover`]) and the done sets of the ledger
//! partitions ([`KeyMap`] of the counted version and where its contribution
//! is) are such maps, so that a worker knows 10 M objects in a few hundred
//! MB at most (see [`KeyMap::memory`]).
//!
//! Two keys share a fingerprint with probability 2^-96 per pair: for 10^8
//! keys, about 10^16 pairs, the chance that any two collide is about
//! 10^-13. A collision would make a new object look known (never counted).
//! Two versions of one object share an ETag fingerprint ([`etag_tag`]) with
//! probability 2^-32 per overwrite: that overwrite would be missed until the
//! next one.

use std::collections::HashMap;
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

/// The 96 bits of a key's fingerprint a [`KeyMap`] keeps.
pub type Fp = [u32; 3];

/// The fingerprint a [`KeyMap`] keeps of `key`.
pub fn fp96(key: &str) -> Fp {
    let f = fingerprint(key);
    [(f >> 96) as u32, (f >> 64) as u32, (f >> 32) as u32]
}

/// A 32-bit fingerprint of an ETag, never 0 (0 means "no version known").
pub fn etag_tag(etag: &str) -> u32 {
    let mut h = DefaultHasher::new();
    3u8.hash(&mut h);
    // Listings and GetObject may quote it or not.
    etag.trim_matches('"').hash(&mut h);
    (h.finish() as u32).max(1)
}

/// Keys (by fingerprint) to a small value.
#[derive(Clone, Debug)]
pub struct KeyMap<V>(HashMap<Fp, V>);

impl<V> Default for KeyMap<V> {
    fn default() -> Self {
        KeyMap(HashMap::new())
    }
}

impl<V: Copy> KeyMap<V> {
    /// Sets `key`'s value; the previous one.
    pub fn set(&mut self, key: &str, v: V) -> Option<V> {
        self.0.insert(fp96(key), v)
    }

    /// `key`'s value.
    pub fn get(&self, key: &str) -> Option<V> {
        self.0.get(&fp96(key)).copied()
    }

    /// Whether `key` is in the map.
    pub fn contains(&self, key: &str) -> bool {
        self.0.contains_key(&fp96(key))
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: &str) {
        self.0.remove(&fp96(key));
    }

    /// Keys in the map.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every entry, by fingerprint.
    pub fn entries_mut(&mut self) -> impl Iterator<Item = (&Fp, &mut V)> {
        self.0.iter_mut()
    }

    /// Heap bytes: hashbrown's buckets (12 bytes and the value's) and
    /// control bytes (1) over its capacity (at most 8/7 of the keys, up to
    /// twice as many just after it grew).
    pub fn memory(&self) -> u64 {
        self.0.capacity() as u64 * (12 + std::mem::size_of::<V>() as u64 + 1)
    }
}

/// A set of keys, by fingerprint.
pub type KeySet = KeyMap<()>;

impl KeyMap<()> {
    /// Adds `key`; whether it was new.
    pub fn insert(&mut self, key: &str) -> bool {
        self.set(key, ()).is_none()
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
        assert_ne!(etag_tag("\"a\""), etag_tag("\"b\""));
        assert_ne!(etag_tag(""), 0);
        assert_eq!(etag_tag("\"a\""), etag_tag("a"));
    }

    /// Discovery's map: a key's ETag fingerprint (4 bytes) with it.
    #[test]
    fn a_million_keys_and_their_etags_take_under_40_bytes_each() {
        let mut s: KeyMap<u32> = KeyMap::default();
        for i in 0..1_000_000 {
            s.set(&format!("s3://bucket/papers/{i:08}.txt"), i);
        }
        let per_key = s.memory() as f64 / s.len() as f64;
        assert!(per_key < 40.0, "{per_key} bytes a key");
    }
}
