//! The counter: word → occurrences, fed by the tokenizer. No I/O.
//!
//! [`WordCounts`] holds the map plus the totals count-local and the worker
//! report. It looks words up by borrowed bytes and allocates only when a new
//! distinct word appears. [`Counter`] adds streaming (chunks of any size) and
//! [`ParallelCounter`] splits large buffers between threads, one map each,
//! merged at the end.

use crate::charclass;
use crate::tokenize::{self, Encoding, Splitter, Word};
use hashbrown::HashMap;

/// What to count and how (the flags count-local and the worker share).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// How bytes decode into characters.
    pub encoding: Encoding,
    /// Fold words with Python's `str.lower()`.
    pub lowercase: bool,
}

/// Word counts and the totals of what was counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WordCounts {
    map: HashMap<Box<[u8]>, u64>,
    /// Word occurrences.
    pub words: u64,
    /// Invalid UTF-8 bytes met (treated as separators).
    pub invalid_bytes: u64,
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
        self.map.len()
    }

    /// Occurrences of `word` (0 if absent).
    pub fn get(&self, word: &str) -> u64 {
        self.map.get(word.as_bytes()).copied().unwrap_or(0)
    }

    /// Adds `n` occurrences of `word` (UTF-8 bytes).
    #[inline]
    pub fn add(&mut self, word: &[u8], n: u64) {
        self.words += n;
        if let Some(c) = self.map.get_mut(word) {
            *c += n;
        } else {
            self.map.insert(word.into(), n);
        }
    }

    /// Counts the words of one complete segment (see [`tokenize::scan`]).
    pub fn add_segment(&mut self, seg: &[u8], opts: Options) {
        let mut scratch = Scratch::default();
        self.add_segment_with(seg, opts, &mut scratch);
    }

    fn add_segment_with(&mut self, seg: &[u8], opts: Options, scratch: &mut Scratch) {
        let invalid = if !opts.lowercase {
            match opts.encoding {
                Encoding::Utf8 => tokenize::scan(seg, opts.encoding, |w| self.add(w.bytes, 1)),
                Encoding::Latin1 => tokenize::scan(seg, opts.encoding, |w| {
                    if w.ascii {
                        self.add(w.bytes, 1)
                    } else {
                        let s = latin1_to_utf8(w.bytes, &mut scratch.bytes);
                        self.add(s, 1)
                    }
                }),
            }
        } else {
            tokenize::scan(seg, opts.encoding, |w| {
                let folded = fold(w, opts.encoding, scratch);
                self.add(folded, 1)
            })
        };
        self.invalid_bytes += invalid;
    }

    /// Adds every count of `other` into `self`.
    pub fn merge(&mut self, mut other: WordCounts) {
        if other.map.len() > self.map.len() {
            std::mem::swap(self, &mut other);
        }
        self.invalid_bytes += other.invalid_bytes;
        for (w, n) in other.map {
            self.add(&w, n);
        }
    }

    /// Iterates `(word, count)` in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        self.map.iter().map(|(w, &n)| (as_str(w), n))
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
}
