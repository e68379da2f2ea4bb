//! Character classes and case folding with Python's exact semantics.
//!
//! A *word character* is what Python's `re` matches with `\w` on `str`; a
//! character is *alphabetic* when `str.isalpha()` says so; lowercasing is
//! `str.lower()`, final-sigma rule included. The tables in
//! [`crate::unicode_tables`] are generated from Python itself, so this module
//! agrees with the reference implementation character for character.

use crate::unicode_tables::{BLOCK_DATA, BLOCK_INDEX, BLOCK_MASK, BLOCK_SHIFT, LOWER};

/// Matches `\w`.
pub const WORD: u8 = 1;
/// `str.isalpha()`.
pub const ALPHA: u8 = 2;
/// Skipped by the final-sigma rule of `str.lower()`.
pub const CASE_IGNORABLE: u8 = 4;
/// Cased, for the final-sigma rule.
pub const CASED: u8 = 8;
/// `str.lower()` maps it to something else (see [`lower_into`]).
pub const HAS_LOWER: u8 = 16;

/// Flags of one code point.
#[inline]
pub fn flags(c: char) -> u8 {
    let cp = c as u32;
    let block = BLOCK_INDEX[(cp >> BLOCK_SHIFT) as usize] as usize;
    BLOCK_DATA[(block << BLOCK_SHIFT) | (cp & BLOCK_MASK) as usize]
}

/// Class of an ASCII byte in the tokenizer's fast path.
pub mod ascii {
    /// Not a word character.
    pub const SEP: u8 = 0;
    /// A letter: part of a word.
    pub const ALPHA: u8 = 1;
    /// A digit or `_`: part of a token, but the token is not a word.
    pub const NON_ALPHA: u8 = 2;
    /// Not ASCII: decode the character to classify it.
    pub const OTHER: u8 = 3;

    /// Class of every byte value.
    pub static CLASS: [u8; 256] = {
        let mut t = [OTHER; 256];
        let mut b = 0;
        while b < 128 {
            let c = b as u8;
            t[b] = if c.is_ascii_alphabetic() {
                ALPHA
            } else if c.is_ascii_digit() || c == b'_' {
                NON_ALPHA
            } else {
                SEP
            };
            b += 1;
        }
        t
    };
}

const CAPITAL_SIGMA: char = '\u{3a3}';

/// Appends `str.lower()` of `word` to `out`, as Python computes it for the
/// string `word` alone (so the final-sigma context is the word itself).
pub fn lower_into(word: &str, out: &mut String) {
    if word.is_ascii() {
        out.extend(word.chars().map(|c| c.to_ascii_lowercase()));
        return;
    }
    for (i, c) in word.char_indices() {
        if c == CAPITAL_SIGMA {
            out.push(if final_sigma(word, i) {
                '\u{3c2}'
            } else {
                '\u{3c3}'
            });
        } else if flags(c) & HAS_LOWER != 0 {
            let at = LOWER
                .binary_search_by_key(&(c as u32), |&(cp, _)| cp)
                .expect("HAS_LOWER characters are in LOWER");
            out.push_str(LOWER[at].1);
        } else {
            out.push(c);
        }
    }
}

/// Python's `handle_capital_sigma`: the sigma at byte `i` is final when a
/// cased letter precedes it and none follows (case-ignorables skipped).
fn final_sigma(word: &str, i: usize) -> bool {
    let significant = |c: &char| flags(*c) & CASE_IGNORABLE == 0;
    let before = word[..i].chars().rev().find(significant);
    if before.is_none_or(|c| flags(c) & CASED == 0) {
        return false;
    }
    let after = word[i + CAPITAL_SIGMA.len_utf8()..]
        .chars()
        .find(significant);
    after.is_none_or(|c| flags(c) & CASED == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert_eq!(flags('a') & (WORD | ALPHA), WORD | ALPHA);
        assert_eq!(flags('7') & (WORD | ALPHA), WORD);
        assert_eq!(flags('_') & (WORD | ALPHA), WORD);
        assert_eq!(flags('-') & WORD, 0);
        assert_eq!(flags('é') & ALPHA, ALPHA);
        assert_eq!(flags('\u{301}') & WORD, 0); // combining acute (Mn) is not \w in Python
        assert_eq!(flags('中') & ALPHA, ALPHA);
        assert_eq!(flags('²') & (WORD | ALPHA), WORD);
    }

    #[test]
    fn lower_like_python() {
        let lower = |s: &str| {
            let mut out = String::new();
            lower_into(s, &mut out);
            out
        };
        assert_eq!(lower("The"), "the");
        assert_eq!(lower("ΟΔΟΣ"), "\u{3bf}\u{3b4}\u{3bf}\u{3c2}");
        assert_eq!(lower("Σ"), "σ");
        assert_eq!(lower("ΣΑ"), "σα");
        assert_eq!(lower("İstanbul"), "i\u{307}stanbul");
    }
}
