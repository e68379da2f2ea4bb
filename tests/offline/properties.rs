//! Property tests of the core (proptest).
//!
//! - Streaming: any chunking of an input gives the counts of the whole input
//!   (`count::Counter::feed`), down to one byte at a time.
//! - Parallel: `ParallelCounter` with 1 to 4 threads equals one thread.
//! - The tokenizer equals a naive character-by-character reference built on
//!   the standard library's UTF-8 decoder (`str::Utf8Chunks`, which replaces
//!   maximal invalid subparts exactly as Python does).
//!
//! Inputs are arbitrary bytes biased toward the interesting cases: words in
//! many scripts, marks, word characters that are not letters, final sigma,
//! and invalid UTF-8. Every property runs for both encodings with and
//! without `--lowercase`.

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::sample::Index;
use testkit::corpus::SNIPPETS;
use testkit::counts::ALL_OPTIONS;
use wordstream::charclass;
use wordstream::count::{self, Counter, Options, ParallelCounter, WordCounts};
use wordstream::tokenize::{Encoding, Splitter};

fn atom() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => prop::sample::select(SNIPPETS).prop_map(<[u8]>::to_vec),
        3 => "[a-zA-Z]{1,6}".prop_map(String::into_bytes),
        1 => any::<u8>().prop_map(|b| vec![b]),
        1 => any::<char>().prop_map(|c| c.to_string().into_bytes()),
        1 => prop::collection::vec(0x80u8..=0xBF, 1..5),
    ]
}

/// Arbitrary bytes, biased toward interesting UTF-8 and word characters.
fn input() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(atom(), 0..48).prop_map(|atoms| atoms.concat())
}

fn options() -> impl Strategy<Value = Options> {
    prop::sample::select(&ALL_OPTIONS[..])
}

/// `input` cut at the given points (sorted, possibly repeated: empty pieces).
fn pieces<'a>(input: &'a [u8], cuts: &[Index]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|i| i.index(input.len() + 1)).collect();
    at.sort_unstable();
    let mut out = Vec::with_capacity(at.len() + 1);
    let mut start = 0;
    for p in at {
        out.push(&input[start..p]);
        start = p;
    }
    out.push(&input[start..]);
    out
}

fn streamed<'a>(chunks: impl IntoIterator<Item = &'a [u8]>, opts: Options) -> WordCounts {
    let mut c = Counter::new(opts);
    for chunk in chunks {
        c.feed(chunk);
    }
    c.finish()
}

fn whole(input: &[u8], opts: Options) -> WordCounts {
    let mut c = WordCounts::new();
    c.add_segment(input, opts);
    c
}

/// The naive reference: decode to characters (U+FFFD for each maximal
/// invalid subpart), split on non-word characters, keep all-alphabetic
/// tokens, lowercase each word.
fn reference(input: &[u8], opts: Options) -> (BTreeMap<String, u64>, u64) {
    let mut chars = Vec::new();
    let mut invalid = 0;
    match opts.encoding {
        Encoding::Latin1 => chars.extend(input.iter().map(|&b| char::from(b))),
        Encoding::Utf8 => {
            for chunk in input.utf8_chunks() {
                chars.extend(chunk.valid().chars());
                if !chunk.invalid().is_empty() {
                    invalid += chunk.invalid().len() as u64;
                    chars.push('\u{fffd}');
                }
            }
        }
    }
    let mut counts = BTreeMap::new();
    let is_word = |c: &char| charclass::flags(*c) & charclass::WORD != 0;
    for token in chars.split(|c| !is_word(c)).filter(|t| !t.is_empty()) {
        if token
            .iter()
            .all(|&c| charclass::flags(c) & charclass::ALPHA != 0)
        {
            let token: String = token.iter().collect();
            let word = if opts.lowercase {
                let mut s = String::new();
                charclass::lower_into(&token, &mut s);
                s
            } else {
                token
            };
            *counts.entry(word).or_insert(0) += 1;
        }
    }
    (counts, invalid)
}

fn as_map(c: &WordCounts) -> BTreeMap<String, u64> {
    c.iter().map(|(w, n)| (w.to_string(), n)).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any chunking gives the counts of the whole input.
    #[test]
    fn any_chunking_counts_like_the_whole(
        input in input(),
        cuts in prop::collection::vec(any::<Index>(), 0..12),
    ) {
        for opts in ALL_OPTIONS {
            let expected = whole(&input, opts);
            let got = streamed(pieces(&input, &cuts), opts);
            prop_assert_eq!(&got, &expected, "{:?}", opts);
        }
    }

    /// One byte at a time: a chunk boundary between every two bytes.
    #[test]
    fn byte_by_byte_counts_like_the_whole(input in input()) {
        for opts in ALL_OPTIONS {
            let got = streamed(input.chunks(1), opts);
            prop_assert_eq!(&got, &whole(&input, opts), "{:?}", opts);
        }
    }

    /// The splitter's segments are the input, in order, cut only on token
    /// boundaries: each segment counts like its place in the whole.
    #[test]
    fn segments_cover_the_input(
        input in input(),
        cuts in prop::collection::vec(any::<Index>(), 0..12),
        opts in options(),
    ) {
        let mut sp = Splitter::new(opts.encoding);
        let mut segments: Vec<Vec<u8>> = Vec::new();
        for chunk in pieces(&input, &cuts) {
            sp.push(chunk, |s| segments.push(s.to_vec()));
        }
        sp.finish(|s| segments.push(s.to_vec()));
        prop_assert_eq!(segments.concat(), input.clone());
        let mut sum = WordCounts::new();
        for s in &segments {
            prop_assert!(!s.is_empty(), "no empty segment");
            sum.add_segment(s, opts);
        }
        prop_assert_eq!(sum, whole(&input, opts));
    }

    /// The tokenizer agrees with the naive reference.
    #[test]
    fn tokenizer_matches_naive_reference(input in input()) {
        for opts in ALL_OPTIONS {
            let got = whole(&input, opts);
            let (expected, invalid) = reference(&input, opts);
            prop_assert_eq!(as_map(&got), expected.clone(), "{:?}", opts);
            prop_assert_eq!(got.invalid_bytes, invalid, "{:?}", opts);
            prop_assert_eq!(got.words, expected.values().sum::<u64>());
            prop_assert_eq!(got.distinct(), expected.len());
        }
    }
}

/// What joins the copies of a base input into a big one.
const JOINERS: &[&[u8]] = &[b"", b" ", b"\xc3", "\u{e9}".as_bytes(), b"\x80", b"1"];

proptest! {
    // Each case counts a few hundred kilobytes (the parallel threshold).
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// `ParallelCounter` with 1 to 4 threads counts like one thread, for a
    /// buffer and for the segments of a stream fed in big chunks.
    #[test]
    fn parallel_counts_like_sequential(
        base in input(),
        joiner in prop::sample::select(JOINERS),
        size in 300_000usize..700_000,
        threads in 1usize..=4,
        opts in options(),
        chunk in 50_000usize..400_000,
    ) {
        // An empty base and an empty joiner would never reach `size`.
        prop_assume!(!base.is_empty() || !joiner.is_empty());
        let mut big = Vec::with_capacity(size + base.len() + 4);
        while big.len() < size {
            big.extend_from_slice(&base);
            big.extend_from_slice(joiner);
        }
        let expected = whole(&big, opts);
        prop_assert_eq!(&count::count_bytes(&big, opts, threads), &expected);

        // The stream in chunks: segments collected into batches, as count-local does.
        let mut pc = ParallelCounter::new(opts, threads);
        let mut sp = Splitter::new(opts.encoding);
        let mut batch = Vec::new();
        for piece in big.chunks(chunk) {
            sp.push(piece, |s| batch.extend_from_slice(s));
            if batch.len() >= 250_000 {
                pc.count(&batch);
                batch.clear();
            }
        }
        sp.finish(|s| batch.extend_from_slice(s));
        pc.count(&batch);
        prop_assert_eq!(pc.finish(), expected);
    }
}

/// Merging per-thread maps keeps every total.
#[test]
fn merge_adds_everything() {
    let opts = ALL_OPTIONS[0];
    let a = whole("the cat the ΟΔΟΣ".as_bytes(), opts);
    let b = whole(b"the dog \xff", opts);
    let mut m = a.clone();
    m.merge(b.clone());
    assert_eq!(m.get("the"), 3);
    assert_eq!(m.words, a.words + b.words);
    assert_eq!(m.invalid_bytes, a.invalid_bytes + b.invalid_bytes);
    assert_eq!(m.distinct(), 4);
}
