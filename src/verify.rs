//! `count-local --verify`: compare a local count with the changelog topic,
//! word by word, to check the pipeline end to end, and render the
//! differences as a table, TSV or JSON.

use crate::config::KafkaArgs;
use crate::count::WordCounts;
use crate::kafka;
use crate::output::{self, Format};
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
        tracing::warn!(
            "{bad} records of {topic} do not decode with --serde {}; ignored",
            crate::output::flag_value(&serde)
        );
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

/// Differences a table shows when `--top` does not say.
pub const TABLE_DIFFERENCES: usize = 20;

/// A difference as `--output json` prints it.
#[derive(serde::Serialize)]
struct JsonDifference<'a> {
    word: &'a str,
    local: u64,
    changelog: i64,
}

/// The whole report as `--output json` prints it.
#[derive(serde::Serialize)]
struct JsonReport<'a> {
    matching: usize,
    differing: usize,
    differences: Vec<JsonDifference<'a>>,
}

/// `report` in `format`, at most `top` differences (default: all; in a
/// table, [`TABLE_DIFFERENCES`]). A table starts with `headline` and says
/// how many differences it leaves out; TSV is `word<TAB>local<TAB>changelog`
/// per difference; JSON is one object with the counts and the differences.
pub fn render(
    report: &Report,
    headline: &str,
    format: Format,
    top: Option<usize>,
) -> Result<String> {
    let limit = top.unwrap_or(match format {
        Format::Table => TABLE_DIFFERENCES,
        _ => usize::MAX,
    });
    let shown = &report.differences[..report.differences.len().min(limit)];
    let mut text = String::new();
    match format {
        Format::Table => {
            text.push_str(headline);
            text.push('\n');
            if !shown.is_empty() {
                let mut table = comfy_table::Table::new();
                table
                    .load_preset(comfy_table::presets::UTF8_FULL_CONDENSED)
                    .set_content_arrangement(comfy_table::ContentArrangement::Disabled)
                    .set_header(vec!["word", "local", "changelog"]);
                for d in shown {
                    table.add_row(vec![
                        output::cell_text(&d.word),
                        d.local.to_string(),
                        d.changelog.to_string(),
                    ]);
                }
                text.push_str(&format!("{table}\n"));
            }
            let left = report.differences.len() - shown.len();
            if left > 0 {
                text.push_str(&format!(
                    "… and {left} more (--top {} or --output tsv shows them all)\n",
                    report.differences.len()
                ));
            }
        }
        Format::Tsv => {
            for d in shown {
                text.push_str(&format!("{}\t{}\t{}\n", d.word, d.local, d.changelog));
            }
        }
        Format::Json => {
            let json = JsonReport {
                matching: report.matching,
                differing: report.differences.len(),
                differences: shown
                    .iter()
                    .map(|d| JsonDifference {
                        word: &d.word,
                        local: d.local,
                        changelog: d.changelog,
                    })
                    .collect(),
            };
            text = serde_json::to_string(&json)?;
            text.push('\n');
        }
    }
    Ok(text)
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

    #[test]
    fn renders_every_format() {
        let local = count_bytes(b"a a b c", Options::default(), 1);
        let remote: HashMap<String, i64> = [("a".to_string(), 2), ("d".to_string(), -1)].into();
        let r = compare(&local, &remote);
        assert_eq!(
            render(&r, "h", Format::Tsv, None).unwrap(),
            "b\t1\t0\nc\t1\t0\nd\t0\t-1\n"
        );
        assert_eq!(render(&r, "h", Format::Tsv, Some(1)).unwrap(), "b\t1\t0\n");
        assert_eq!(
            render(&r, "h", Format::Json, Some(2)).unwrap(),
            "{\"matching\":1,\"differing\":3,\"differences\":[{\"word\":\"b\",\"local\":1,\"changelog\":0},{\"word\":\"c\",\"local\":1,\"changelog\":0}]}\n"
        );
        let table = render(&r, "h", Format::Table, Some(1)).unwrap();
        assert!(table.starts_with("h\n"), "{table}");
        assert!(
            table.ends_with("… and 2 more (--top 3 or --output tsv shows them all)\n"),
            "{table}"
        );
    }
}
