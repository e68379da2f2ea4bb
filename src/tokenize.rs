//! The tokenizer: bytes in, words out. No I/O, no allocation per word.
//!
//! Semantics are those of the original Python app (see docs/design.md §1): a token is
//! a maximal run of `\w` characters and it is a word only when every
//! character is alphabetic. Input is UTF-8 (invalid bytes are separators and
//! are counted) or ISO-8859-1.
//!
//! Input arrives in chunks of any size. [`Splitter`] turns them into
//! *segments* that start and end on token boundaries, carrying a partial
//! token (or a partial UTF-8 sequence) over to the next chunk; [`scan`]
//! tokenizes one segment. Concatenated segments of one stream tokenize
//! exactly like the whole stream.
//!
//! A word longer than [`MAX_TOKEN_BYTES`] is skipped and counted as
//! skipped, alike on every path: [`scan`] emits it marked
//! ([`Word::too_long`]) for the counter to skip, and [`Splitter`] drops any
//! token that long as it streams by, without keeping it (a word is replaced
//! by a placeholder that the counter skips alike), so a stream's memory
//! stays bounded whatever its tokens.

use crate::charclass::{self, ascii};

/// Longest word (in input bytes) that is counted. Longer ones are skipped:
/// a word that long could not be published (the changelog's key,
/// JSON-escaped to at most 3× its UTF-8 length, must fit in one Kafka record
/// of 1 MB), and a stream must not hold it (nor any token that long) in
/// memory.
pub const MAX_TOKEN_BYTES: usize = 64 << 10;

/// How object bytes are decoded into characters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Encoding {
    /// UTF-8; invalid bytes are separators and are counted.
    #[default]
    Utf8,
    /// ISO-8859-1 (every byte is one character), what the original app used.
    Latin1,
}

/// One word found by [`scan`].
#[derive(Clone, Copy, Debug)]
pub struct Word<'a> {
    /// The word's bytes in the input's encoding.
    pub bytes: &'a [u8],
    /// All bytes are ASCII (then the bytes are also valid UTF-8 as they are).
    pub ascii: bool,
    /// The segment from the word's first byte to its end (`bytes` and what
    /// follows), so that a counter can load the word in fixed-size blocks.
    pub tail: &'a [u8],
}

impl Word<'_> {
    /// Longer than [`MAX_TOKEN_BYTES`]: to be skipped, not counted.
    #[inline]
    pub fn too_long(&self) -> bool {
        self.bytes.len() > MAX_TOKEN_BYTES
    }
}

/// Decodes the UTF-8 character at the start of `b` (non-empty, `b[0] >= 0x80`).
/// `Err(n)`: the first `n` bytes are one maximal invalid subpart, the unit
/// Python's decoder (and the Unicode standard) replaces with one U+FFFD.
#[inline]
fn decode_utf8(b: &[u8]) -> Result<(char, usize), usize> {
    let cont = |i: usize| b.get(i).is_some_and(|&x| x & 0xC0 == 0x80);
    let b0 = b[0];
    let (len, lo, hi) = match b0 {
        0xC2..=0xDF => (2, 0x80, 0xBF),
        0xE0 => (3, 0xA0, 0xBF),
        0xE1..=0xEC | 0xEE..=0xEF => (3, 0x80, 0xBF),
        0xED => (3, 0x80, 0x9F),
        0xF0 => (4, 0x90, 0xBF),
        0xF1..=0xF3 => (4, 0x80, 0xBF),
        0xF4 => (4, 0x80, 0x8F),
        _ => return Err(1),
    };
    match b.get(1) {
        Some(&b1) if (lo..=hi).contains(&b1) => {}
        _ => return Err(1),
    }
    for i in 2..len {
        if !cont(i) {
            return Err(i);
        }
    }
    let cp = match len {
        2 => (u32::from(b0 & 0x1F) << 6) | u32::from(b[1] & 0x3F),
        3 => (u32::from(b0 & 0x0F) << 12) | (u32::from(b[1] & 0x3F) << 6) | u32::from(b[2] & 0x3F),
        _ => {
            (u32::from(b0 & 0x07) << 18)
                | (u32::from(b[1] & 0x3F) << 12)
                | (u32::from(b[2] & 0x3F) << 6)
                | u32::from(b[3] & 0x3F)
        }
    };
    // The ranges above exclude surrogates and overlongs, so this cannot fail.
    Ok((char::from_u32(cp).unwrap_or('\u{fffd}'), len))
}

/// A non-ASCII unit at `b[0]`: its flags and byte length; invalid bytes have
/// flags 0 and `invalid == true`.
#[inline]
fn non_ascii(b: &[u8], enc: Encoding) -> (u8, usize, bool) {
    match enc {
        Encoding::Latin1 => (charclass::flags(char::from(b[0])), 1, false),
        Encoding::Utf8 => match decode_utf8(b) {
            Ok((c, len)) => (charclass::flags(c), len, false),
            Err(n) => (0, n, true),
        },
    }
}

/// Tokenizes one complete segment: calls `emit` for every word and returns
/// the number of invalid UTF-8 bytes seen. A word over [`MAX_TOKEN_BYTES`]
/// is emitted like any other ([`Word::too_long`]): the counter skips it off
/// its fast path (no check per word costs time there). The end of `seg`
/// ends a token, and a truncated UTF-8 sequence at its end is invalid.
#[inline]
pub fn scan(seg: &[u8], enc: Encoding, mut emit: impl FnMut(Word<'_>)) -> u64 {
    let n = seg.len();
    let mut invalid = 0u64;
    let mut i = 0;
    while i < n {
        // Between tokens: skip ASCII separators.
        if ascii::CLASS[seg[i] as usize] == ascii::SEP {
            i += 1;
            continue;
        }
        // A token (possibly empty) starts at i. Extend it unit by unit; it
        // ends at i, and scanning resumes at `next`, after the separator
        // that ended it (each unit is decoded once).
        let start = i;
        let mut is_word = true;
        let mut is_ascii = true;
        let next = loop {
            i += ascii_letters(&seg[i..]);
            let Some(&b) = seg.get(i) else { break i };
            match ascii::CLASS[b as usize] {
                ascii::SEP => break i + 1,
                ascii::NON_ALPHA => {
                    is_word = false;
                    i += 1;
                }
                ascii::OTHER => {
                    let (f, len, bad) = non_ascii(&seg[i..], enc);
                    if f & charclass::WORD == 0 {
                        if bad {
                            invalid += len as u64;
                        }
                        break i + len;
                    }
                    is_word &= f & charclass::ALPHA != 0;
                    is_ascii = false;
                    i += len;
                }
                _ => i += 1, // ascii::ALPHA, taken by ascii_letters already
            }
        };
        if is_word && i > start {
            emit(Word {
                bytes: &seg[start..i],
                ascii: is_ascii,
                tail: &seg[start..],
            });
        }
        i = next;
    }
    invalid
}

/// The number of ASCII letters at the start of `s`, the tokenizer's hot
/// loop. Tests 8 bytes at a time (SWAR): a byte is a letter when it is
/// ASCII and, with bit 0x20 set (lower case), lies in `b'a'..=b'z'`.
#[inline]
fn ascii_letters(s: &[u8]) -> usize {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let mut i = 0;
    while let Some(chunk) = s.get(i..i + 8) {
        let x = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        // Lower-cased with the high bits cleared, so the additions below
        // cannot carry from one byte into the next.
        let y = (x | (0x20 * LO)) & !HI;
        let at_least_a = y + (0x80 - u64::from(b'a')) * LO;
        let above_z = y + (0x80 - u64::from(b'z') - 1) * LO;
        let letters = at_least_a & !above_z & !x & HI;
        if letters != HI {
            // The first byte that is not a letter (little-endian: lowest).
            return i + ((!letters & HI).trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    i + s[i..]
        .iter()
        .take_while(|b| b.is_ascii_alphabetic())
        .count()
}

/// Whether the byte at `buf[i]` certainly ends a token, so that splitting the
/// stream right after it changes nothing. Looks back at most 3 bytes.
fn boundary_after(buf: &[u8], i: usize, enc: Encoding) -> bool {
    let b = buf[i];
    if b < 0x80 {
        return ascii::CLASS[b as usize] == ascii::SEP;
    }
    if enc == Encoding::Latin1 {
        return charclass::flags(char::from(b)) & charclass::WORD == 0;
    }
    match b {
        // Never part of valid UTF-8: one invalid byte on its own.
        0xC0 | 0xC1 | 0xF5..=0xFF => true,
        // Lead bytes: the character is not complete at i.
        0xC2..=0xF4 => false,
        // A continuation byte: find its lead byte.
        _ => {
            let lead = (1..=3).find(|&k| i >= k && buf[i - k] & 0xC0 != 0x80);
            match lead {
                None => i >= 3, // 4 continuation bytes in a row: a stray byte
                Some(k) => {
                    let l = i - k;
                    match decode_utf8(&buf[l..=i]) {
                        // A complete character ending exactly at i.
                        Ok((c, len)) if len == k + 1 => charclass::flags(c) & charclass::WORD == 0,
                        Ok(_) => false,
                        // Invalid before reaching i: i is a stray byte.
                        Err(bad) if bad <= k => true,
                        Err(_) => false,
                    }
                }
            }
        }
    }
}

/// The largest `p <= buf.len()` such that `buf[..p]` ends on a token
/// boundary (0 if there is none). Scans backwards from the end.
pub fn last_boundary(buf: &[u8], enc: Encoding) -> usize {
    last_boundary_from(buf, 0, enc).unwrap_or(0)
}

/// Like [`last_boundary`], but only considers cuts after `buf[from]`: when
/// `buf[..from]` is known to hold no boundary, appending to `buf` and
/// calling this again costs only the new bytes (a boundary depends only on
/// the bytes before it). `None` if there is none.
pub fn last_boundary_from(buf: &[u8], from: usize, enc: Encoding) -> Option<usize> {
    (from..buf.len())
        .rev()
        .find(|&i| boundary_after(buf, i, enc))
        .map(|i| i + 1)
}

/// How many bytes before a cut [`resume_at`] needs to see.
pub const RESUME_BACK: usize = 4;

/// Where counting resumes when a stream is cut at byte `x` into ranges
/// counted apart (ranged reads of a big object): the first `p >= x` after
/// which splitting the stream changes nothing (the unit before `p`
/// certainly ends a token). A token that started before `x` is finished by
/// the range before the cut, and a range counts its bytes from its own
/// resume point to the next range's, so ranges cut anywhere (inside a word,
/// inside a UTF-8 sequence, inside a run of separators) add up exactly to
/// the whole stream's counts, invalid bytes included.
///
/// `window` holds the stream from `x - back` on, where `back` is
/// `min(x, RESUME_BACK)`; `back == 0` means `x` is the stream's start (0).
/// Returns the resume point as an offset into `window`, or `None` when no
/// such point is in `window` yet (read on; at the stream's end, the end is
/// the resume point). Pure: both ranges around a cut compute it from the
/// same bytes, so they agree on it.
pub fn resume_at(window: &[u8], back: usize, enc: Encoding) -> Option<usize> {
    if back == 0 {
        return Some(0);
    }
    (back..=window.len()).find(|&p| boundary_after(window, p - 1, enc))
}

/// What [`Splitter`] emits for a word over [`MAX_TOKEN_BYTES`] that it
/// dropped: a word just over the limit, which counts exactly as the dropped
/// one does (skipped, and counted as skipped).
static PLACEHOLDER: [u8; MAX_TOKEN_BYTES + 1] = [b'a'; MAX_TOKEN_BYTES + 1];

/// A carry longer than this is checked for a token over [`MAX_TOKEN_BYTES`]
/// to drop. Twice the limit: a check that finds none leaves at most the
/// limit carried, so checks cost O(1) per byte whatever the chunk sizes.
const CARRY_CHECK: usize = 2 * MAX_TOKEN_BYTES;

/// Turns a stream of chunks of any size into complete segments for [`scan`].
///
/// Memory stays bounded by the chunk size plus twice [`MAX_TOKEN_BYTES`]:
/// a longer token is dropped as it streams by (never kept, never rescanned);
/// if it is a word, a placeholder segment (a word just over the limit) takes
/// its place, so that any consumer of the segments counts it as skipped,
/// as if it had seen it whole.
#[derive(Debug, Default)]
pub struct Splitter {
    enc: Encoding,
    carry: Vec<u8>,
    /// Inside a token over the limit: its bytes are dropped until it ends.
    /// The carry then holds at most an incomplete UTF-8 character.
    skipping: bool,
    /// The token being dropped is a word so far (every character a letter).
    skipping_word: bool,
}

impl Splitter {
    /// A splitter for a stream in `enc`.
    pub fn new(enc: Encoding) -> Self {
        Splitter {
            enc,
            ..Splitter::default()
        }
    }

    /// Feeds the next chunk; `emit` receives zero or more complete segments.
    pub fn push(&mut self, chunk: &[u8], mut emit: impl FnMut(&[u8])) {
        let mut rest = chunk;
        if self.skipping {
            match self.skip(rest, &mut emit) {
                Some(end) => rest = &rest[end..],
                None => return,
            }
        }
        self.split(rest, &mut emit);
        if self.carry.len() > CARRY_CHECK {
            self.shed(&mut emit);
        }
    }

    fn split(&mut self, chunk: &[u8], emit: &mut impl FnMut(&[u8])) {
        let mut rest = chunk;
        if !self.carry.is_empty() {
            // Complete the carried token with the chunk's first ASCII separator
            // (an ASCII byte is never inside a multi-byte character).
            match rest
                .iter()
                .position(|&b| b < 0x80 && ascii::CLASS[b as usize] == ascii::SEP)
            {
                Some(p) => {
                    self.carry.extend_from_slice(&rest[..=p]);
                    emit(&self.carry);
                    self.carry.clear();
                    rest = &rest[p + 1..];
                }
                None => {
                    // The carry holds no boundary: look only at the new bytes.
                    let old = self.carry.len();
                    self.carry.extend_from_slice(rest);
                    if let Some(p) = last_boundary_from(&self.carry, old, self.enc) {
                        emit(&self.carry[..p]);
                        self.carry.drain(..p);
                    }
                    return;
                }
            }
        }
        let p = last_boundary(rest, self.enc);
        if p > 0 {
            emit(&rest[..p]);
        }
        self.carry.extend_from_slice(&rest[p..]);
    }

    /// The carry is long: emits the tokens it holds before its last one (a
    /// carry holds no certain boundary, yet invalid bytes may split it), and
    /// drops that last one if it is already over the limit.
    fn shed(&mut self, emit: &mut impl FnMut(&[u8])) {
        let body = self.carry.len() - incomplete_tail(&self.carry, self.enc);
        let (start, word) = last_token(&self.carry[..body], self.enc);
        if start > 0 {
            emit(&self.carry[..start]);
        }
        if body - start > MAX_TOKEN_BYTES {
            self.skipping = true;
            self.skipping_word = word;
            self.carry.drain(..body);
        } else {
            self.carry.drain(..start);
        }
    }

    /// Drops the bytes of the skipped token at the start of `chunk`: the
    /// offset where it ends (the unit that ends it, and the carry, are then
    /// the stream's next bytes), or `None` if it goes on past the chunk.
    fn skip(&mut self, chunk: &[u8], emit: &mut impl FnMut(&[u8])) -> Option<usize> {
        let mut i = 0;
        if !self.carry.is_empty() {
            // An incomplete character from the previous chunk: complete it.
            let have = self.carry.len();
            let mut unit = [0u8; 4];
            let take = chunk.len().min(4 - have);
            unit[..have].copy_from_slice(&self.carry);
            unit[have..have + take].copy_from_slice(&chunk[..take]);
            let unit = &unit[..have + take];
            match decode_utf8(unit) {
                Err(n) if n == unit.len() => {
                    self.carry.extend_from_slice(chunk); // still incomplete
                    return None;
                }
                Ok((c, len)) if charclass::flags(c) & charclass::WORD != 0 => {
                    self.skipping_word &= charclass::flags(c) & charclass::ALPHA != 0;
                    self.carry.clear();
                    i = len - have;
                }
                _ => {
                    self.end_skip(emit); // the carry starts what follows
                    return Some(0);
                }
            }
        }
        while i < chunk.len() {
            i += ascii_letters(&chunk[i..]);
            let Some(&b) = chunk.get(i) else { break };
            let (flags, len) = match ascii::CLASS[b as usize] {
                ascii::SEP => (0, 0),
                ascii::OTHER => match self.enc {
                    Encoding::Latin1 => (charclass::flags(char::from(b)), 1),
                    Encoding::Utf8 => match decode_utf8(&chunk[i..]) {
                        Ok((c, len)) => (charclass::flags(c), len),
                        Err(n) if i + n == chunk.len() && (0xC2..=0xF4).contains(&b) => {
                            self.carry.extend_from_slice(&chunk[i..]); // incomplete
                            return None;
                        }
                        Err(_) => (0, 0),
                    },
                },
                _ => (charclass::WORD, 1), // digits, underscore (letters were taken above)
            };
            if flags & charclass::WORD == 0 {
                self.end_skip(emit);
                return Some(i);
            }
            self.skipping_word &= flags & charclass::ALPHA != 0;
            i += len;
        }
        None
    }

    /// The dropped token ended: a word's placeholder takes its place.
    fn end_skip(&mut self, emit: &mut impl FnMut(&[u8])) {
        if self.skipping_word {
            emit(&PLACEHOLDER);
        }
        self.skipping = false;
    }

    /// Ends the stream: emits what is carried as the final segment.
    pub fn finish(&mut self, mut emit: impl FnMut(&[u8])) {
        if !self.carry.is_empty() {
            emit(&self.carry);
            self.carry.clear();
        }
        if self.skipping {
            self.end_skip(&mut emit);
        }
    }

    /// Bytes currently carried over (a partial token).
    pub fn carried(&self) -> usize {
        self.carry.len()
    }
}

/// The length of an incomplete UTF-8 character at the end of `buf` (a lead
/// byte and fewer continuation bytes than it needs): 0 to 3.
fn incomplete_tail(buf: &[u8], enc: Encoding) -> usize {
    if enc == Encoding::Latin1 {
        return 0;
    }
    (1..=3.min(buf.len()))
        .find(|&k| {
            let unit = &buf[buf.len() - k..];
            (0xC2..=0xF4).contains(&unit[0]) && decode_utf8(unit) == Err(k)
        })
        .unwrap_or(0)
}

/// Where the last token of a segment starts (after its last non-word
/// unit: the segment's length if it ends on one), and whether that token is
/// a word so far (every character a letter).
fn last_token(seg: &[u8], enc: Encoding) -> (usize, bool) {
    let (mut i, mut start, mut word) = (0, 0, true);
    while i < seg.len() {
        let b = seg[i];
        let (f, len) = match ascii::CLASS[b as usize] {
            ascii::SEP => (0, 1),
            ascii::ALPHA => (charclass::WORD | charclass::ALPHA, 1),
            ascii::NON_ALPHA => (charclass::WORD, 1),
            _ => {
                let (f, len, _) = non_ascii(&seg[i..], enc);
                (f, len)
            }
        };
        i += len;
        if f & charclass::WORD == 0 {
            (start, word) = (i, true);
        } else {
            word &= f & charclass::ALPHA != 0;
        }
    }
    (start, word)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts `s` cut into ranges at `cuts` as ranged reads do: each range
    /// from its resume point to the next one's.
    fn count_cut(s: &[u8], cuts: &[usize], enc: Encoding) -> crate::count::WordCounts {
        let resume = |x: usize| {
            let back = x.min(RESUME_BACK);
            resume_at(&s[x - back..], back, enc).map_or(s.len(), |p| x - back + p)
        };
        let opts = crate::count::Options {
            encoding: enc,
            lowercase: false,
        };
        let mut points: Vec<usize> = cuts.iter().map(|&c| resume(c)).collect();
        points.insert(0, 0);
        points.push(s.len());
        let mut total = crate::count::WordCounts::new();
        for w in points.windows(2) {
            let mut c = crate::count::Counter::new(opts);
            c.feed(&s[w[0]..w[1].max(w[0])]);
            total.merge(c.finish());
        }
        total
    }

    #[test]
    fn ranges_cut_anywhere_count_like_the_whole() {
        let text =
            "Zoë naïve   ünïcödé 日本語の文章 x1 __ a\u{1F600}b ΣΑΣ  \t\n€uro ok".to_string();
        let mut bytes = text.clone().into_bytes();
        bytes.extend_from_slice(
            b" bad\xff\xfe\xc3 half \xe2\x82 \xf0\x9f\x98 tail\xc3\xa9t\xe9 end",
        );
        for enc in [Encoding::Utf8, Encoding::Latin1] {
            let opts = crate::count::Options {
                encoding: enc,
                lowercase: false,
            };
            let whole = crate::count::count_bytes(&bytes, opts, 1);
            for size in 1..=bytes.len() {
                let cuts: Vec<usize> = (1..)
                    .map(|i| i * size)
                    .take_while(|&c| c < bytes.len())
                    .collect();
                let got = count_cut(&bytes, &cuts, enc);
                assert_eq!(got, whole, "{enc:?}, ranges of {size} bytes");
                assert_eq!(got.invalid_bytes, whole.invalid_bytes, "{enc:?}, {size}");
            }
            // Every single cut.
            for c in 1..bytes.len() {
                assert_eq!(count_cut(&bytes, &[c], enc), whole, "{enc:?}, cut at {c}");
            }
        }
    }

    #[test]
    fn resume_needs_more_bytes_inside_a_word() {
        assert_eq!(resume_at(b"abcdef", 4, Encoding::Utf8), None);
        assert_eq!(resume_at(b"abcd ef", 4, Encoding::Utf8), Some(5));
        assert_eq!(resume_at(b"ab  ef", 4, Encoding::Utf8), Some(4));
        assert_eq!(resume_at(b"x", 0, Encoding::Utf8), Some(0));
    }

    fn words(s: &[u8], enc: Encoding) -> (Vec<String>, u64) {
        let mut out = Vec::new();
        let bad = scan(s, enc, |w| {
            out.push(match enc {
                Encoding::Utf8 => String::from_utf8(w.bytes.to_vec()).unwrap(),
                Encoding::Latin1 => w.bytes.iter().map(|&b| char::from(b)).collect(),
            })
        });
        (out, bad)
    }

    #[test]
    fn python_semantics() {
        let (w, bad) = words(
            "The H2O x_1 naïve 中文 café-au-lait".as_bytes(),
            Encoding::Utf8,
        );
        assert_eq!(w, ["The", "naïve", "中文", "café", "au", "lait"]);
        assert_eq!(bad, 0);
    }

    #[test]
    fn invalid_utf8_separates_and_counts() {
        let (w, bad) = words(b"ab\xffcd\xe2\x82ef\xe2", Encoding::Utf8);
        assert_eq!(w, ["ab", "cd", "ef"]);
        assert_eq!(bad, 4);
    }

    #[test]
    fn ascii_letters_every_byte() {
        for b in 0..=255u8 {
            for at in 0..20 {
                let mut s = vec![b'q'; 20];
                s[at] = b;
                let want = if b.is_ascii_alphabetic() { 20 } else { at };
                assert_eq!(ascii_letters(&s), want, "byte {b:#x} at {at}");
                assert_eq!(ascii_letters(&s[..at]), at);
            }
        }
    }

    #[test]
    fn latin1() {
        let (w, _) = words(b"na\xefve \xd7x", Encoding::Latin1);
        assert_eq!(w, ["naïve", "x"]);
    }

    #[test]
    fn splitter_every_boundary() {
        let text = "Zoë's naïve 中文\u{ff}\u{10348} x1 ab\u{301}c end"
            .as_bytes()
            .to_vec();
        let mut text = text;
        text.extend_from_slice(b"\xe2\x82 tail\xf0\x90");
        for enc in [Encoding::Utf8, Encoding::Latin1] {
            let whole = words(&text, enc);
            for cut in 0..=text.len() {
                let mut sp = Splitter::new(enc);
                let mut got = (Vec::new(), 0);
                let mut take = |seg: &[u8]| {
                    let (w, b) = words(seg, enc);
                    got.0.extend(w);
                    got.1 += b;
                };
                sp.push(&text[..cut], &mut take);
                sp.push(&text[cut..], &mut take);
                sp.finish(&mut take);
                assert_eq!(got, whole, "cut at {cut}, {enc:?}");
            }
        }
    }
}
