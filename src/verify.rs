//! `count-local --verify`: compare a local count with the changelog topic,
//! word by word, to check the pipeline end to end.

use crate::config::KafkaArgs;
use crate::count::WordCounts;
use crate::kafka;
use crate::wire::Serde;
use crate::worker::restore;
use anyhow::{bail, Result};
use std::collections::HashMap;

/// The latest total per word in `topic` (read_committed, to the end).
pub fn read_changelog(args: &KafkaArgs, topic: &str, serde: Serde) -> Result<HashMap<String, i64>> {
    let Some(n) = kafka::partition_count(args, topic)? else {
        bail!("topic {topic} does not exist");
    };
    let partitions: Vec<i32> = (0..n).collect();
    let mut table = HashMap::new();
    let mut bad = 0u64;
    restore::read_to_end(args, topic, &partitions, |_, k, v| {
        match (serde.decode_key(k), v.map(|v| serde.decode_value(v))) {
            (Ok(word), Some(Ok(total))) => {
                table.insert(word, total);
            }
            (Ok(word), None) => {
                table.remove(&word);
            }
            _ => bad += 1,
        }
    })?;
    if bad > 0 {
        tracing::warn!("{bad} records of {topic} do not decode with --serde {serde:?}; ignored");
    }
    Ok(table)
}

/// A word whose counts differ.
#[derive(Debug, PartialEq, Eq)]
pub struct Difference {
    /// The word.
    pub word: String,
    /// Its local count (0 if absent).
    pub local: u64,
    /// Its total in the changelog (0 if absent).
    pub changelog: i64,
}

/// The outcome of a comparison.
#[derive(Debug, Default)]
pub struct Report {
    /// Words with equal counts.
    pub matching: usize,
    /// Words whose counts differ, sorted by word.
    pub differences: Vec<Difference>,
}

/// Compares `local` with `changelog` over the union of their words.
pub fn compare(local: &WordCounts, changelog: &HashMap<String, i64>) -> Report {
    let mut report = Report::default();
    for (word, n) in local.iter() {
        let remote = changelog.get(word).copied().unwrap_or(0);
        if remote == n as i64 {
            report.matching += 1;
        } else {
            report.differences.push(Difference {
                word: word.to_string(),
                local: n,
                changelog: remote,
            });
        }
    }
    for (word, &remote) in changelog {
        if remote != 0 && local.get(word) == 0 {
            report.differences.push(Difference {
                word: word.clone(),
                local: 0,
                changelog: remote,
            });
        }
    }
    report.differences.sort_by(|a, b| a.word.cmp(&b.word));
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::count::{count_bytes, Options};

    #[test]
    fn finds_every_difference() {
        let local = count_bytes(b"a a b c", Options::default(), 1);
        let remote: HashMap<String, i64> = [
            ("a".to_string(), 2),
            ("b".to_string(), 2),
            ("d".to_string(), 1),
        ]
        .into();
        let r = compare(&local, &remote);
        assert_eq!(r.matching, 1);
        let words: Vec<_> = r
            .differences
            .iter()
            .map(|d| (d.word.as_str(), d.local, d.changelog))
            .collect();
        assert_eq!(words, [("b", 1, 2), ("c", 1, 0), ("d", 0, 1)]);
    }
}
