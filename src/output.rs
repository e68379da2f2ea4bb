//! Rendering word counts for people and scripts: comfy-table, TSV, JSON.

use comfy_table::{presets, Cell, CellAlignment, ContentArrangement, Table};
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

/// One word's count, as printed by `--output json`.
#[derive(serde::Serialize)]
struct Entry<'a> {
    word: &'a str,
    count: u64,
}

/// A comfy-table tally of `rows` (already sorted and cut).
pub fn tally_table(rows: &[(&str, u64)]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(vec!["word", "count"]);
    if let Some(col) = table.column_mut(1) {
        col.set_cell_alignment(CellAlignment::Right);
    }
    for (word, count) in rows {
        table.add_row(vec![Cell::new(word), Cell::new(count)]);
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

/// Turns a broken pipe (`| head`) into success: the reader has what it wanted.
pub fn ignore_broken_pipe(r: io::Result<()>) -> io::Result<()> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}
