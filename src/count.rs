//! The counter: word → occurrences, fed by the tokenizer. No I/O.
//!
//! [`WordCounts`] holds the map plus the totals count-local and the worker
//! report. It looks words up by borrowed bytes and allocates only when a new
//! distinct word appears. [`Counter`] adds streaming (chunks of any size) and
//! [`ParallelCounter`] splits large buffers between threads, one map each,
//! merged at the end; [`RangeCounter`] (`count/range.rs`) counts one byte
//! range of a stream so that ranges add up to the whole.

mod range;
pub use range::RangeCounter;

use crate::charclass;
use crate::tokenize::{self, Encoding, Splitter, Word};
use hashbrown::{DefaultHashBuilder, HashMap, HashTable};
use std::hash::BuildHasher;

/// What to count and how (the flags count-local and the worker share).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// How bytes decode into characters.
    pub encoding: Encoding,
    /// Fold words with Python's `str.lower()`.
    pub lowercase: bool,
}

/// Word counts and the totals of what was counted.
///
/// Words of up to [`SHORT`] bytes (99.9% of the occurrences in English
/// text) live in a table keyed by the word zero-padded to 16 bytes: hashing
/// is one multiplication and comparing is one 16-byte compare, with no
/// pointer to follow. Longer words live in an ordinary map.
#[derive(Clone)]
pub struct WordCounts {
    short: HashTable<Short>,
    long: HashMap<Box<[u8]>, u64>,
    seeds: [u64; 2],
    /// Word occurrences.
    pub words: u64,
    /// Invalid UTF-8 bytes met (treated as separators).
    pub invalid_bytes: u64,
    /// Words longer than [`tokenize::MAX_TOKEN_BYTES`], skipped (not in
    /// `words`).
    pub skipped_tokens: u64,
}

/// Longest word kept in the short table.
const SHORT: usize = 16;

/// A word of up to [`SHORT`] bytes, zero-padded (words never contain NUL),
/// and its count.
#[derive(Clone)]
struct Short {
    key: [u8; SHORT],
    count: u64,
}

/// `word` zero-padded to a short key (`word.len() <= SHORT`).
fn pad(word: &[u8]) -> [u8; SHORT] {
    let mut key = [0; SHORT];
    key[..word.len()].copy_from_slice(word);
    key
}

/// The word in a short key.
fn unpad(key: &[u8; SHORT]) -> &[u8] {
    let len = key.iter().position(|&b| b == 0).unwrap_or(SHORT);
    &key[..len]
}

/// The short key of a word of `len` bytes (1 to 16) that starts `block`:
/// the bytes after the word are masked off, with no branch on the length.
/// With `ascii_lower`, ASCII letters are lowercased (set bit 0x20).
#[inline]
fn key_from_block(block: &[u8; SHORT], len: usize, ascii_lower: bool) -> [u8; SHORT] {
    debug_assert!((1..=SHORT).contains(&len));
    let mask = u128::MAX >> (128 - 8 * len);
    let mut key = u128::from_le_bytes(*block) & mask;
    if ascii_lower {
        key |= mask & (u128::MAX / 255 * 0x20);
    }
    key.to_le_bytes()
}

/// The hash of a short key: one folded multiplication, as foldhash does.
#[inline]
fn hash_short(seeds: [u64; 2], key: &[u8; SHORT]) -> u64 {
    let k = u128::from_le_bytes(*key);
    let product = u128::from((k as u64) ^ seeds[0]) * u128::from(((k >> 64) as u64) ^ seeds[1]);
    (product as u64) ^ ((product >> 64) as u64)
}

impl Default for WordCounts {
    fn default() -> Self {
        // Random seeds per process, as hashbrown's default hasher has.
        let random = DefaultHashBuilder::default();
        WordCounts {
            short: HashTable::new(),
            long: HashMap::new(),
            seeds: [random.hash_one(1u64), random.hash_one(2u64)],
            words: 0,
            invalid_bytes: 0,
            skipped_tokens: 0,
        }
    }
}

impl PartialEq for WordCounts {
    fn eq(&self, other: &Self) -> bool {
        self.words == other.words
            && self.invalid_bytes == other.invalid_bytes
            && self.skipped_tokens == other.skipped_tokens
            && self.distinct() == other.distinct()
            && self.iter().all(|(w, n)| other.get(w) == n)
    }
}

impl Eq for WordCounts {}

impl std::fmt::Debug for WordCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WordCounts")
            .field("words", &self.words)
            .field("invalid_bytes", &self.invalid_bytes)
            .field("skipped_tokens", &self.skipped_tokens)
            .field("counts", &self.sorted())
            .finish()
    }
}

/// Reused buffers for words that must be rewritten (case folding, Latin-1).
#[derive(Default)]
struct Scratch {
    bytes: Vec<u8>,
    text: String,
}

impl WordCounts {
    /// An empty count.
    pub fn new() -> Self {
        Self::default()
    }

    /// Distinct words.
    pub fn distinct(&self) -> usize {
        self.short.len() + self.long.len()
    }

    #[inline]
    fn hash(&self, key: &[u8; SHORT]) -> u64 {
        hash_short(self.seeds, key)
    }

    /// Occurrences of `word` (0 if absent).
    pub fn get(&self, word: &str) -> u64 {
        let word = word.as_bytes();
        if word.len() > SHORT {
            return self.long.get(word).copied().unwrap_or(0);
        }
        let key = pad(word);
        self.short
            .find(self.hash(&key), |e| e.key == key)
            .map_or(0, |e| e.count)
    }

    /// Adds `n` occurrences of `word` (UTF-8 bytes).
    #[inline]
    pub fn add(&mut self, word: &[u8], n: u64) {
        self.words += n;
        self.count_word(word, n);
    }

    /// Adds `n` to the count of `word`, but not to the total `words`
    /// (callers add to it once per batch of words: a field written once per
    /// word would be written by every thread in a cache line they share).
    #[inline]
    fn count_word(&mut self, word: &[u8], n: u64) {
        if word.len() <= SHORT {
            self.count_short(pad(word), n);
        } else {
            self.count_long(word, n);
        }
    }

    /// Adds `n` to the count of the word in a short key.
    #[inline]
    fn count_short(&mut self, key: [u8; SHORT], n: u64) {
        let hash = self.hash(&key);
        match self.short.find_mut(hash, |e| e.key == key) {
            Some(e) => e.count += n,
            None => self.insert_short(hash, key, n),
        }
    }

    #[cold]
    fn insert_short(&mut self, hash: u64, key: [u8; SHORT], count: u64) {
        let seeds = self.seeds;
        let rehash = |e: &Short| hash_short(seeds, &e.key);
        self.short.insert_unique(hash, Short { key, count }, rehash);
    }

    #[cold]
    fn count_long(&mut self, word: &[u8], n: u64) {
        match self.long.get_mut(word) {
            Some(c) => *c += n,
            None => {
                self.long.insert(word.into(), n);
            }
        }
    }

    /// Counts the words of one complete segment (see [`tokenize::scan`]).
    pub fn add_segment(&mut self, seg: &[u8], opts: Options) {
        let mut scratch = Scratch::default();
        self.add_segment_with(seg, opts, &mut scratch);
    }

    fn add_segment_with(&mut self, seg: &[u8], opts: Options, scratch: &mut Scratch) {
        // Words whose bytes are their key (ASCII, or UTF-8 kept as is) take
        // the fast path when 16 bytes can be read from their start.
        let as_is = opts.encoding == Encoding::Utf8 && !opts.lowercase;
        let mut words = 0;
        let invalid = tokenize::scan(seg, opts.encoding, |w| {
            let len = w.bytes.len();
            if len <= SHORT && (w.ascii || as_is) {
                if let Some(block) = w.tail.first_chunk::<SHORT>() {
                    words += 1;
                    let key = key_from_block(block, len, opts.lowercase);
                    return self.count_short(key, 1);
                }
            }
            words += u64::from(self.count_rewritten(w, opts, scratch));
        });
        self.words += words;
        self.invalid_bytes += invalid;
    }

    /// The general path: skip the word if it is too long, else rewrite it if
    /// needed and count it. Returns whether it counted.
    #[inline(never)]
    fn count_rewritten(&mut self, w: Word<'_>, opts: Options, scratch: &mut Scratch) -> bool {
        if w.too_long() {
            self.skipped_tokens += 1;
            return false;
        }
        if opts.lowercase {
            let folded = fold(w, opts.encoding, scratch);
            self.count_word(folded, 1);
        } else if opts.encoding == Encoding::Latin1 && !w.ascii {
            let utf8 = latin1_to_utf8(w.bytes, &mut scratch.bytes);
            self.count_word(utf8, 1);
        } else {
            self.count_word(w.bytes, 1);
        }
        true
    }

    /// Adds every count of `other` into `self`.
    pub fn merge(&mut self, mut other: WordCounts) {
        if other.distinct() > self.distinct() {
            std::mem::swap(self, &mut other);
        }
        self.words += other.words;
        self.invalid_bytes += other.invalid_bytes;
        self.skipped_tokens += other.skipped_tokens;
        for e in &other.short {
            self.count_short(e.key, e.count);
        }
        for (w, n) in other.long {
            self.count_long(&w, n);
        }
    }

    /// Iterates `(word, count)` in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        let short = self.short.iter().map(|e| (as_str(unpad(&e.key)), e.count));
        let long = self.long.iter().map(|(w, &n)| (as_str(w), n));
        short.chain(long)
    }

    /// All `(word, count)` pairs, by count descending, then word ascending
    /// (byte order).
    pub fn sorted(&self) -> Vec<(&str, u64)> {
        let mut v: Vec<(&str, u64)> = self.iter().collect();
        v.sort_unstable_by(|a, b| {
            b.1.cmp(&a.1)
                .then_with(|| a.0.as_bytes().cmp(b.0.as_bytes()))
        });
        v
    }
}

fn as_str(w: &[u8]) -> &str {
    // Keys are built only from valid characters, so they are valid UTF-8.
    std::str::from_utf8(w).expect("word keys are UTF-8")
}

fn latin1_to_utf8<'a>(bytes: &[u8], out: &'a mut Vec<u8>) -> &'a [u8] {
    out.clear();
    for &b in bytes {
        let mut buf = [0u8; 2];
        out.extend_from_slice(char::from(b).encode_utf8(&mut buf).as_bytes());
    }
    out
}

/// The lowercase form of a word, written into `scratch`.
fn fold<'a>(w: Word<'_>, enc: Encoding, scratch: &'a mut Scratch) -> &'a [u8] {
    if w.ascii {
        scratch.bytes.clear();
        scratch
            .bytes
            .extend(w.bytes.iter().map(u8::to_ascii_lowercase));
        return &scratch.bytes;
    }
    let word: &str = match enc {
        Encoding::Utf8 => as_str(w.bytes),
        Encoding::Latin1 => as_str(latin1_to_utf8(w.bytes, &mut scratch.bytes)),
    };
    scratch.text.clear();
    charclass::lower_into(word, &mut scratch.text);
    scratch.text.as_bytes()
}

/// Counts a stream fed in chunks of any size, on the calling thread.
pub struct Counter {
    opts: Options,
    splitter: Splitter,
    counts: WordCounts,
    scratch: Scratch,
    bytes: u64,
}

impl Counter {
    /// A counter for one stream.
    pub fn new(opts: Options) -> Self {
        Counter {
            opts,
            splitter: Splitter::new(opts.encoding),
            counts: WordCounts::new(),
            scratch: Scratch::default(),
            bytes: 0,
        }
    }

    /// Feeds the next chunk.
    pub fn feed(&mut self, chunk: &[u8]) {
        self.bytes += chunk.len() as u64;
        let (counts, scratch, opts) = (&mut self.counts, &mut self.scratch, self.opts);
        self.splitter
            .push(chunk, |seg| counts.add_segment_with(seg, opts, scratch));
    }

    /// Bytes fed so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Ends the stream and returns the counts.
    pub fn finish(mut self) -> WordCounts {
        let (counts, scratch, opts) = (&mut self.counts, &mut self.scratch, self.opts);
        self.splitter
            .finish(|seg| counts.add_segment_with(seg, opts, scratch));
        self.counts
    }
}

/// Counts complete segments on several threads: each thread keeps its own
/// map across calls; [`ParallelCounter::finish`] merges them.
pub struct ParallelCounter {
    opts: Options,
    maps: Vec<WordCounts>,
}

/// Below this size a buffer is counted on one thread.
const MIN_PARALLEL: usize = 256 * 1024;

impl ParallelCounter {
    /// A counter using `threads` threads (at least 1).
    pub fn new(opts: Options, threads: usize) -> Self {
        ParallelCounter {
            opts,
            maps: (0..threads.max(1)).map(|_| WordCounts::new()).collect(),
        }
    }

    /// Counts a buffer that holds only complete segments (it starts and
    /// ends on token boundaries, e.g. segments from a [`Splitter`] or whole
    /// streams joined by a separator).
    pub fn count(&mut self, buf: &[u8]) {
        let opts = self.opts;
        let threads = self.maps.len();
        if threads == 1 || buf.len() < MIN_PARALLEL {
            self.maps[0].add_segment(buf, opts);
            return;
        }
        let pieces = split_pieces(buf, threads, opts.encoding);
        std::thread::scope(|s| {
            for (map, piece) in self.maps.iter_mut().zip(pieces) {
                s.spawn(move || map.add_segment(piece, opts));
            }
        });
    }

    /// Merges the per-thread maps.
    pub fn finish(self) -> WordCounts {
        self.maps.into_iter().fold(WordCounts::new(), |mut acc, m| {
            acc.merge(m);
            acc
        })
    }
}

/// Splits `buf` into `n` pieces of about equal size at token boundaries.
fn split_pieces(buf: &[u8], n: usize, enc: Encoding) -> Vec<&[u8]> {
    let mut pieces = Vec::with_capacity(n);
    let mut start = 0;
    for k in 1..n {
        let target = buf.len() * k / n;
        let cut = if target <= start {
            start
        } else {
            start + tokenize::last_boundary(&buf[start..target], enc)
        };
        pieces.push(&buf[start..cut]);
        start = cut;
    }
    pieces.push(&buf[start..]);
    pieces
}

/// Counts a whole in-memory input with `threads` threads.
pub fn count_bytes(buf: &[u8], opts: Options, threads: usize) -> WordCounts {
    let mut pc = ParallelCounter::new(opts, threads);
    pc.count(buf);
    pc.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_order() {
        let c = count_bytes(b"b a b c a b 1x", Options::default(), 1);
        assert_eq!(c.sorted(), [("b", 3), ("a", 2), ("c", 1)]);
        assert_eq!((c.words, c.distinct()), (6, 3));
    }

    #[test]
    fn lowercase() {
        let opts = Options {
            lowercase: true,
            ..Options::default()
        };
        let c = count_bytes("The the THE Ünïcode ünïcode".as_bytes(), opts, 1);
        assert_eq!(c.sorted(), [("the", 3), ("ünïcode", 2)]);
    }

    /// Words of 1 to 40 bytes, in the short table and the long map, reached
    /// through the block path (16 bytes readable) and the slice path (near
    /// the end of a segment) alike.
    #[test]
    fn short_and_long_words_on_every_path() {
        for lowercase in [false, true] {
            let opts = Options {
                lowercase,
                ..Options::default()
            };
            for len in 1..=40 {
                let word = "Ab".repeat(len).into_bytes()[..len].to_vec();
                let mut text = Vec::new();
                for _ in 0..3 {
                    text.extend_from_slice(&word);
                    text.push(b' ');
                }
                text.extend_from_slice(&word); // the last one ends the segment
                let c = count_bytes(&text, opts, 1);
                let expected = if lowercase {
                    word.to_ascii_lowercase()
                } else {
                    word.clone()
                };
                let expected = String::from_utf8(expected).unwrap();
                assert_eq!(c.sorted(), [(expected.as_str(), 4)], "len {len}");
                assert_eq!(c.get(&expected), 4);
                let mut m = c.clone();
                m.merge(c.clone());
                assert_eq!(m.get(&expected), 8);
                assert_eq!((m.words, m.distinct()), (8, 1));
            }
        }
    }

    #[test]
    fn keys_round_trip() {
        for w in ["a", "ΟΔΟΣ", "sixteen_bytes_xx", "中文字符"] {
            assert!(w.len() <= SHORT);
            assert_eq!(unpad(&pad(w.as_bytes())), w.as_bytes());
            let mut block = [b'!'; SHORT];
            block[..w.len()].copy_from_slice(w.as_bytes());
            assert_eq!(key_from_block(&block, w.len(), false), pad(w.as_bytes()));
        }
        let block = *b"HeLLo, world!!!!";
        assert_eq!(key_from_block(&block, 5, true), pad(b"hello"));
    }

    /// Inputs with tokens around and far over the limit, of every kind, and
    /// the words skipped in UTF-8 and in Latin-1.
    fn long_token_cases() -> Vec<(&'static str, Vec<u8>, [u64; 2])> {
        let l = tokenize::MAX_TOKEN_BYTES;
        let cat = |parts: &[&[u8]]| parts.concat();
        let a = |n: usize| vec![b'a'; n];
        let e_acute = |n: usize| "é".repeat(n).into_bytes();
        vec![
            (
                "2 MiB word",
                cat(&[b"head ", &a(2 << 20), b" tail words"]),
                [1, 1],
            ),
            (
                "at the limit, one over",
                cat(&[b"x ", &a(l), b" ", &a(l + 1), b" y"]),
                [1, 1],
            ),
            (
                "unicode words",
                cat(&[&e_acute(l / 2), b" ", &e_acute(l / 2 + 1), b" z"]),
                [1, 0],
            ),
            (
                "non-word token",
                cat(&[&vec![b'x'; 3 * l], b"1 next"]),
                [0, 0],
            ),
            ("a word until its end", cat(&[&a(3 * l), b"_ x"]), [0, 0]),
            (
                "ends on invalid bytes",
                cat(&[&a(3 * l), b"\xe2\x82bc def"]),
                [1, 1],
            ),
            (
                "after invalid bytes",
                cat(&[b"q\xe2\x82", &a(3 * l), b" z"]),
                [1, 1],
            ),
            (
                "incomplete char at the end",
                cat(&[&a(3 * l), b"\xf0\x9f\x98"]),
                [1, 1],
            ),
            (
                "ends on a non-word char",
                cat(&[&a(3 * l), "—b".as_bytes()]),
                [1, 1],
            ),
            (
                "multibyte word",
                cat(&["aé中".repeat(l).as_bytes(), " end\u{10348}".as_bytes()]),
                [1, 0],
            ),
            (
                "multibyte non-word",
                cat(&["aé中_1".repeat(l).as_bytes(), b" end"]),
                [0, 0],
            ),
            (
                "after a stray continuation",
                cat(&[b"\xc3\xa9\x80", &a(3 * l), b" z"]),
                [1, 1],
            ),
            (
                "three in a row",
                cat(&[&a(l + 1), b" ", &a(3 * l), b"\xff", &a(5 * l), b"\xe9end"]),
                [3, 2],
            ),
            (
                "latin1 letters",
                cat(&[&vec![0xe9; 3 * l], b" \xd7x"]),
                [0, 1],
            ),
        ]
    }

    /// Streamed in chunks of any size, a long token is skipped exactly as
    /// in one piece (same words, invalid bytes, skipped tokens), and the
    /// stream never carries much more than twice the limit.
    #[test]
    fn long_tokens_are_skipped_alike_streamed_or_whole() {
        let l = tokenize::MAX_TOKEN_BYTES;
        for (name, input, skipped) in long_token_cases() {
            for (encoding, lowercase) in [
                (Encoding::Utf8, false),
                (Encoding::Latin1, false),
                (Encoding::Utf8, true),
            ] {
                let opts = Options {
                    encoding,
                    lowercase,
                };
                let whole = count_bytes(&input, opts, 1);
                let want = skipped[usize::from(encoding == Encoding::Latin1)];
                assert_eq!(whole.skipped_tokens, want, "{name} {encoding:?}");
                assert_eq!(count_bytes(&input, opts, 3), whole, "{name} {encoding:?}");
                for size in [1, 3, 7, 4096, l - 1, l + 5, 3 * l] {
                    let mut c = Counter::new(opts);
                    let mut most = 0;
                    for chunk in input.chunks(size) {
                        c.feed(chunk);
                        most = most.max(c.splitter.carried());
                    }
                    assert!(most <= 2 * l + size, "{name}: carried {most} bytes");
                    assert_eq!(c.finish(), whole, "{name} {encoding:?} in chunks of {size}");
                    // Segments joined count alike (as count-local batches them).
                    let mut sp = Splitter::new(encoding);
                    let mut joined = Vec::new();
                    for chunk in input.chunks(size) {
                        sp.push(chunk, |s| joined.extend_from_slice(s));
                    }
                    sp.finish(|s| joined.extend_from_slice(s));
                    let what = format!("{name} {encoding:?} joined, chunks of {size}");
                    assert_eq!(count_bytes(&joined, opts, 1), whole, "{what}");
                }
            }
        }
    }

    #[test]
    fn a_long_token_leaves_the_other_words_exact() {
        let mut input = b"the cat ".to_vec();
        input.extend(vec![b'z'; 2 << 20]);
        input.extend_from_slice(b" the end");
        let c = count_bytes(&input, Options::default(), 1);
        assert_eq!(c.sorted(), [("the", 2), ("cat", 1), ("end", 1)]);
        assert_eq!((c.words, c.skipped_tokens), (4, 1));
    }
}
