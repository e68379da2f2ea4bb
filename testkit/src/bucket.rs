//! A model of one test bucket's contents (key → bytes) kept in step with
//! the bucket as the test uploads, overwrites and deletes objects, so the
//! totals the worker must reach are the counts of what the model holds
//! (issue 14: the totals follow the bucket). Texts are small, generated
//! from a seeded [`Rng`] over a fixed vocabulary, so versions differ.

use crate::app::App;
use crate::corpus::Rng;
use crate::counts::{add_counts, count_bytes, Counts};
use std::collections::BTreeMap;

/// Words the generated texts are made of (shared by every version, so an
/// overwrite moves some counts up, some down and some words to 0).
const VOCABULARY: &[&str] = &[
    "the",
    "of",
    "and",
    "naïve",
    "Ωmega",
    "river",
    "stone",
    "light",
    "atom",
    "field",
    "wave",
    "paper",
    "corrected",
    "retracted",
    "version",
    "alpha",
    "beta",
    "gamma",
    "delta",
    "ocean",
    "forest",
    "planet",
    "signal",
    "noise",
    "graph",
    "theorem",
    "lemma",
    "proof",
    "data",
    "model",
];

/// A small text: 5 to 40 words, from the vocabulary and a few words of
/// its own (`tag`, so that some words live in one version only).
pub fn small_text(rng: &mut Rng, tag: &str) -> Vec<u8> {
    let n = 5 + rng.below(36);
    let mut words: Vec<String> = (0..n)
        .map(|_| VOCABULARY[rng.below(VOCABULARY.len())].to_string())
        .collect();
    if rng.below(2) == 0 {
        // Digits spelled as letters: a word of this object (version) only.
        let own: String = tag
            .chars()
            .filter_map(|c| match c.to_digit(10) {
                Some(d) => char::from_u32('a' as u32 + d),
                None => c.is_alphabetic().then_some(c),
            })
            .collect();
        words.push(format!("only{own}"));
    }
    words.join(" ").into_bytes()
}

/// What a test bucket holds.
#[derive(Default)]
pub struct Model {
    pub objects: BTreeMap<String, Vec<u8>>,
}

impl Model {
    /// Uploads `objects` (concurrently) and records them.
    pub async fn put_all(&mut self, app: &App, objects: Vec<(String, Vec<u8>)>) {
        crate::stack::stack()
            .put_objects(&app.bucket, &objects, 16)
            .await;
        self.objects.extend(objects);
    }

    /// Deletes `keys` and forgets them.
    pub async fn delete_all(&mut self, app: &App, keys: &[String]) {
        for k in keys {
            app.delete(k).await;
            self.objects.remove(k);
        }
    }

    /// The totals of what the bucket holds.
    pub fn totals(&self) -> Counts {
        let mut want = Counts::new();
        for data in self.objects.values() {
            add_counts(&mut want, &count_bytes(data), 1);
        }
        want
    }
}
