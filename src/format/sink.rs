//! Counting the documents of an input: a [`Sink`] with one core
//! [`Counter`] per document (plain text decoded as `--encoding` says,
//! extracted text as UTF-8), merged into the input's counts, with a
//! summary per tar member for the ledger.

use super::Sink;
use crate::count::{Counter, Options, WordCounts};
use crate::tokenize::Encoding;
use serde::{Deserialize, Serialize};

/// Members listed one by one in a ledger record; past this only their
/// number is kept (a record stays far below Kafka's 1 MB: at most ~300
/// bytes a member).
pub const MAX_LISTED_MEMBERS: usize = 500;
/// Member names longer than this (in bytes) are cut in the ledger.
const MAX_NAME: usize = 200;

/// One tar member, as the ledger records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Path in the archive (nested archives: `outer/inner.tar/path`).
    pub name: String,
    /// Detected format.
    pub format: String,
    /// Bytes of text it yielded.
    pub text_bytes: u64,
    /// Word occurrences.
    pub words: u64,
}

/// What the ledger's `counted` record says of an object's format (fields
/// flattened into the record; absent in records older than them).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Format chain, e.g. `text`, `gzip+tar`, `xml` (empty in older
    /// records: text).
    #[serde(default)]
    pub format: String,
    /// Bytes of text counted (the input's size for plain text).
    #[serde(default)]
    pub text_bytes: u64,
    /// Tar members (documents with a name), the first
    /// [`MAX_LISTED_MEMBERS`] of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<Member>,
    /// Tar members counted (all of them, listed or not).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub member_count: u64,
    /// Byte ranges it was read in (ranged reads of a big object,
    /// `--range-size`; absent: read whole).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub ranges: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Record {
    /// The record of plain text of `bytes` bytes.
    pub fn text(bytes: u64) -> Record {
        Record {
            format: super::Kind::Text.name().into(),
            text_bytes: bytes,
            ..Record::default()
        }
    }
}

/// The result of counting an input.
#[derive(Debug)]
pub struct Counted {
    /// The counts of all its documents.
    pub counts: WordCounts,
    /// Its format, text bytes, members.
    pub record: Record,
    /// Bytes of the input read.
    pub input_bytes: u64,
}

/// A [`Sink`] counting every document with its own counter.
pub struct DocCounter {
    opts: Options,
    total: WordCounts,
    current: Option<(Counter, Member)>,
    members: Vec<Member>,
    member_count: u64,
    text_bytes: u64,
}

impl DocCounter {
    /// A counter of one input's documents.
    pub fn new(opts: Options) -> Self {
        DocCounter {
            opts,
            total: WordCounts::new(),
            current: None,
            members: Vec::new(),
            member_count: 0,
            text_bytes: 0,
        }
    }

    /// The counts, with the input's format chain.
    pub fn finish(mut self, format: String, input_bytes: u64) -> Counted {
        self.end();
        Counted {
            counts: self.total,
            record: Record {
                format,
                text_bytes: self.text_bytes,
                members: self.members,
                member_count: self.member_count,
                ranges: 0,
            },
            input_bytes,
        }
    }
}

impl Sink for DocCounter {
    fn begin(&mut self, name: &str, format: &str, unicode: bool) {
        self.end();
        let opts = Options {
            encoding: if unicode {
                Encoding::Utf8
            } else {
                self.opts.encoding
            },
            ..self.opts
        };
        let mut cut = name.len().min(MAX_NAME);
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        let member = Member {
            name: name[..cut].to_string(),
            format: format.to_string(),
            text_bytes: 0,
            words: 0,
        };
        self.current = Some((Counter::new(opts), member));
    }

    fn text(&mut self, bytes: &[u8]) {
        if let Some((counter, _)) = &mut self.current {
            counter.feed(bytes);
        }
    }

    fn end(&mut self) {
        let Some((counter, mut member)) = self.current.take() else {
            return;
        };
        member.text_bytes = counter.bytes();
        self.text_bytes += member.text_bytes;
        let counts = counter.finish();
        member.words = counts.words;
        self.total.merge(counts);
        if !member.name.is_empty() {
            self.member_count += 1;
            if self.members.len() < MAX_LISTED_MEMBERS {
                self.members.push(member);
            }
        }
    }
}
