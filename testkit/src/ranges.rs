//! Texts for ranged reads (issue 15): big objects whose byte ranges of a
//! given size all start inside something hard to cut: a multi-byte UTF-8
//! word (the cut inside one of its characters), a run of separators, an
//! ASCII word, or an invalid UTF-8 sequence.

use crate::corpus::Rng;

/// Words with multi-byte characters (2, 3 and 4 bytes) to cut.
const MULTI: &[&str] = &[
    "naïveté",
    "Zoë",
    "日本語の文章",
    "Ωμέγα",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "résumé",
    "ünïcödé",
    "Ελληνικά",
];

/// Filler words.
const FILLER: &[&str] = &[
    "the",
    "of",
    "and",
    "word",
    "count",
    "théorème",
    "stream",
    "range",
    "x1",
    "données",
];

/// About `ranges` × `range_size` bytes of text where, at every multiple of
/// `range_size`, a cut falls inside a multi-byte word (at a different byte
/// of it each time), inside a run of separators, inside an ASCII word or
/// inside an invalid UTF-8 sequence, in turn.
pub fn straddling_text(rng: &mut Rng, range_size: usize, ranges: usize) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::with_capacity(range_size * ranges + 64);
    for k in 1..ranges {
        let cut = k * range_size;
        // What straddles this cut, and where in it the cut falls.
        let piece: Vec<u8> = match k % 4 {
            0 => b" \n\t   \r\n  ".to_vec(),
            1 | 2 => MULTI[rng.below(MULTI.len())].as_bytes().to_vec(),
            _ if k % 8 == 3 => b"straddling".to_vec(),
            _ => b"ok\xe2\x82stray\xf0\x9f\x98".to_vec(),
        };
        let inside = 1 + rng.below(piece.len() - 1);
        let start = cut - inside;
        while out.len() < start {
            let w = FILLER[rng.below(FILLER.len())].as_bytes();
            let room = start - out.len();
            if w.len() < room {
                out.extend_from_slice(w);
                out.push(if rng.below(9) == 0 { b'\n' } else { b' ' });
            } else {
                out.extend(std::iter::repeat_n(b' ', room));
            }
        }
        out.extend_from_slice(&piece);
        out.push(b' ');
    }
    while out.len() < ranges * range_size - range_size / 2 {
        out.extend_from_slice(FILLER[rng.below(FILLER.len())].as_bytes());
        out.push(b' ');
    }
    out
}
