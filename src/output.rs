//! Rendering for people and scripts: comfy-table, TSV and JSON counts; the
//! escaping of control characters in human output; writes to stdout and
//! stderr that never panic.
//!
//! Human output (tables, `word<TAB>count` lines, log lines) shows text from
//! outside (object keys, changelog keys) through [`escape`], so a key with a
//! newline or an ESC sequence cannot forge lines or drive the terminal;
//! JSON output stays exact. Tables cut long words ([`cell_text`]).

use comfy_table::{presets, Cell, CellAlignment, ContentArrangement, Table};
use std::borrow::Cow;
use std::fmt::Display;
use std::io::{self, IsTerminal, Write};

/// How counts are printed (`--output`, the aws cli's flag name).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A table for people (default on a terminal).
    Table,
    /// `word<TAB>count` lines (default when stdout is not a terminal).
    Tsv,
    /// A JSON array of `{"word": ..., "count": ...}`.
    Json,
}

impl Format {
    /// `explicit`, or the default for the current stdout.
    pub fn or_default(explicit: Option<Format>) -> Format {
        explicit.unwrap_or(if io::stdout().is_terminal() {
            Format::Table
        } else {
            Format::Tsv
        })
    }
}

/// Whether `c` must not reach a terminal raw: C0/C1 controls, DEL, and the
/// bidirectional overrides that reorder what is shown ("trojan source").
fn is_unsafe(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `s` as it may be shown to people: unchanged when it holds no control
/// character, else in double quotes with C escapes (`\n`, `\t`, `\r`,
/// `\x1b`, `\u{202e}`, `\\`, `\"`), as git quotes odd path names.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    out.push('"');
    for c in s.chars() {
        if let Some(e) = crate::wire::short_escape(c) {
            out.push_str(e);
            continue;
        }
        match c {
            c if (c as u32) < 0x100 && is_unsafe(c) => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if is_unsafe(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    Cow::Owned(out)
}

/// Characters of a word shown in a table cell before it is cut.
pub const CELL_CHARS: usize = 64;

/// `s` for a table cell: escaped, and cut after [`CELL_CHARS`] characters
/// with its full length in bytes, so a 2 MB "word" takes one line.
pub fn cell_text(s: &str) -> String {
    let escaped = escape(s);
    match escaped.char_indices().nth(CELL_CHARS) {
        None => escaped.into_owned(),
        Some((cut, _)) => format!("{}… ({} bytes)", &escaped[..cut], s.len()),
    }
}

/// One word's count, as printed by `--output json`.
#[derive(serde::Serialize)]
struct Entry<'a> {
    word: &'a str,
    count: u64,
}

/// A comfy-table tally of `rows` (already sorted and cut); words are
/// escaped and cut ([`cell_text`]), counts shown as they are (negative
/// totals included).
pub fn tally_table<C: Display>(rows: &[(&str, C)]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(vec!["word", "count"]);
    if let Some(col) = table.column_mut(1) {
        col.set_cell_alignment(CellAlignment::Right);
    }
    for (word, count) in rows {
        table.add_row(vec![Cell::new(cell_text(word)), Cell::new(count)]);
    }
    table
}

/// Writes `rows` in `format`.
pub fn write_counts(out: &mut impl Write, rows: &[(&str, u64)], format: Format) -> io::Result<()> {
    match format {
        Format::Table => writeln!(out, "{}", tally_table(rows)),
        Format::Tsv => {
            for (word, count) in rows {
                writeln!(out, "{word}\t{count}")?;
            }
            Ok(())
        }
        Format::Json => {
            out.write_all(b"[")?;
            for (i, (word, count)) in rows.iter().enumerate() {
                out.write_all(if i == 0 { b"\n" } else { b",\n" })?;
                serde_json::to_writer(
                    &mut *out,
                    &Entry {
                        word,
                        count: *count,
                    },
                )?;
            }
            out.write_all(if rows.is_empty() { b"]\n" } else { b"\n]\n" })
        }
    }
}

/// How a `ValueEnum` value is written on the command line (`kstreams`),
/// for messages that name a flag's value.
pub fn flag_value<T: clap::ValueEnum>(v: &T) -> String {
    v.to_possible_value()
        .map(|p| p.get_name().to_string())
        .unwrap_or_default()
}

/// Turns a broken pipe (`| head`) into success: the reader has what it wanted.
pub fn ignore_broken_pipe(r: io::Result<()>) -> io::Result<()> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Writes `text` to stdout and flushes. A reader that went away (`| head`,
/// `| true`) ends the output quietly; any other failure (`> /dev/full`) is
/// the error `cannot write to stdout: …`.
pub fn stdout(text: &str) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    ignore_broken_pipe(out.write_all(text.as_bytes()).and_then(|()| out.flush()))
        .map_err(|e| anyhow::anyhow!("cannot write to stdout: {e}"))
}

/// Writes `line` and a newline to stderr; a closed or full stderr loses
/// the line, never the process.
pub fn stderr_line(line: &str) {
    let mut err = io::stderr().lock();
    let _ = err
        .write_all(line.as_bytes())
        .and_then(|()| err.write_all(b"\n"))
        .and_then(|()| err.flush());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_only_what_needs_it() {
        assert_eq!(escape("plain/key name.txt"), "plain/key name.txt");
        assert_eq!(escape("naïve"), "naïve");
        assert_eq!(escape("a\u{1}b"), "\"a\\x01b\"");
        assert_eq!(escape("l1\nl2\t\"q\"\\"), "\"l1\\nl2\\t\\\"q\\\"\\\\\"");
        assert_eq!(escape("\u{1b}[31mred"), "\"\\x1b[31mred\"");
        assert_eq!(escape("x\u{7f}\u{85}"), "\"x\\x7f\\x85\"");
        assert_eq!(escape("evil\u{202e}txt"), "\"evil\\u{202e}txt\"");
        // a backslash alone is not a control character: unchanged
        assert_eq!(escape("a\\b"), "a\\b");
    }

    #[test]
    fn cells_are_cut() {
        assert_eq!(cell_text("short"), "short");
        let long = "é".repeat(100);
        assert_eq!(
            cell_text(&long),
            format!("{}… (200 bytes)", "é".repeat(CELL_CHARS))
        );
        let table = tally_table(&[("w", -3i64), ("v", i64::MIN)]).to_string();
        assert!(table.contains("-3"), "{table}");
        assert!(table.contains("-9223372036854775808"), "{table}");
    }
}
