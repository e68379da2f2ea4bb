//! Publication formats: turns the bytes of an object or file into the text a
//! reader sees, for the core to count. One entry point, [`count`], serves
//! both `count-local` and the worker, so `count-local --verify` holds.
//!
//! A document's format is found by [`detect`] (magic bytes, then
//! Content-Encoding/Content-Type, then the file extension). Compressed
//! streams ([`compress`]) are decoded and detected again (a `.tar.gz` is a
//! tar, a `.xml.gz` is XML); a tar ([`tar`]) holds one document per member;
//! XML and HTML ([`markup`]) yield their text nodes. Everything streams in
//! constant memory; a decompression bomb is cut off by the expansion limit
//! ([`Config::max_expansion`]).
//!
//! Plain text is counted as it always was: callers detect it with
//! [`detect`] on the first bytes and keep their fast path; [`count`] is for
//! everything else (and also counts plain text correctly).
//!
//! Plain text bytes decode as `--encoding` says; markup is read in the
//! encoding it declares ([`charset`]: BOM, Content-Type, XML declaration,
//! HTML `<meta>`; else UTF-8), and its text is counted as UTF-8.

pub mod charset;
pub mod compress;
pub mod detect;
pub mod markup;
pub mod pdf;
pub mod sink;
pub mod tar;

pub use detect::{detect, Hints, Kind, SNIFF_BYTES};
pub use sink::{Counted, Member, Record};

use anyhow::{bail, Result};
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// `--format`: how bytes are read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Detect compression, archives, markup (magic bytes, then
    /// Content-Type, then extension).
    #[default]
    Auto,
    /// Every byte is text (no detection).
    Text,
}

/// What the format layer may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Detect formats or read every byte as text.
    pub mode: Mode,
    /// Decompressed bytes may not exceed this many times the compressed
    /// bytes read (plus [`EXPANSION_SLACK`]): a bomb fails its document.
    pub max_expansion: u64,
    /// A PDF larger than this fails (it is read whole into memory).
    pub pdf_max_bytes: u64,
    /// A PDF whose text takes longer than this to extract fails.
    pub pdf_timeout: std::time::Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            mode: Mode::Auto,
            max_expansion: DEFAULT_MAX_EXPANSION,
            pdf_max_bytes: DEFAULT_PDF_MAX_MIB << 20,
            pdf_timeout: std::time::Duration::from_secs(DEFAULT_PDF_TIMEOUT_S),
        }
    }
}

/// The default expansion limit: text compresses 3–10× with gzip, zstd or
/// bzip2; a few hundred is already highly repetitive data.
pub const DEFAULT_MAX_EXPANSION: u64 = 200;
/// The default PDF size cap, in MiB.
pub const DEFAULT_PDF_MAX_MIB: u64 = 128;
/// The default time limit of a PDF's extraction, in seconds.
pub const DEFAULT_PDF_TIMEOUT_S: u64 = 60;
/// Decompressed bytes always allowed, whatever the ratio (small files).
pub const EXPANSION_SLACK: u64 = 1 << 20;
/// Containers nested deeper than this (gzip in gzip in tar…) fail.
pub const MAX_DEPTH: usize = 4;

/// Receives the documents of an input and their text, in order.
pub trait Sink {
    /// A document starts. `name` is the tar member path (empty for the
    /// input itself), `format` its detected format, `unicode` whether its
    /// text is UTF-8 extracted from markup (else the input's own bytes, to
    /// be decoded as `--encoding` says).
    fn begin(&mut self, name: &str, format: &str, unicode: bool);
    /// Text of the current document (any chunking).
    fn text(&mut self, bytes: &[u8]);
    /// The current document ended.
    fn end(&mut self);
}

/// Where the expansion limit stands: compressed bytes read from the input.
#[derive(Clone, Default)]
pub(crate) struct Budget {
    raw: Arc<AtomicU64>,
    max_expansion: u64,
    cfg: Config,
}

impl Budget {
    /// Output allowed for `raw` input bytes read so far.
    fn allowed(&self) -> u64 {
        self.raw
            .load(Ordering::Relaxed)
            .saturating_mul(self.max_expansion)
            .saturating_add(EXPANSION_SLACK)
    }
}

/// Counts the bytes read from the raw input.
struct RawCounter<R> {
    inner: R,
    raw: Arc<AtomicU64>,
}

impl<R: Read> Read for RawCounter<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self
            .inner
            .read(buf)
            .map_err(|e| describe("cannot read the input", e))?;
        self.raw.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Reads the first [`SNIFF_BYTES`] of `reader` (fewer at its end).
pub fn sniff(reader: &mut dyn Read) -> std::io::Result<Vec<u8>> {
    let mut prefix = Vec::with_capacity(SNIFF_BYTES);
    reader.take(SNIFF_BYTES as u64).read_to_end(&mut prefix)?;
    Ok(prefix)
}

/// Extracts the text of the input `reader` (whose first bytes, already
/// read, are `prefix`) into `sink`; returns the format chain (e.g.
/// `gzip+tar`) and the input bytes read. An error is the one-line reason
/// the input is not counted (the sink may have received part of it:
/// discard it).
pub fn extract(
    prefix: Vec<u8>,
    reader: impl Read,
    hints: &Hints,
    cfg: Config,
    sink: &mut dyn Sink,
) -> Result<(String, u64)> {
    let raw = Arc::new(AtomicU64::new(prefix.len() as u64));
    let read = Arc::clone(&raw);
    let budget = Budget {
        raw: Arc::clone(&raw),
        max_expansion: cfg.max_expansion,
        cfg,
    };
    let reader = RawCounter { inner: reader, raw };
    let mut chain = Vec::new();
    let input = std::io::Cursor::new(prefix).chain(reader);
    if cfg.mode == Mode::Text {
        sink.begin("", Kind::Text.name(), false);
        copy_text(input, sink).map_err(|e| reason(&["text"], &e))?;
        sink.end();
        return Ok((Kind::Text.name().into(), read.load(Ordering::Relaxed)));
    }
    document(Box::new(input), hints, &budget, "", &mut chain, sink)?;
    Ok((chain.join("+"), read.load(Ordering::Relaxed)))
}

/// One document (the input, a decompressed stream, a tar member): detects
/// its format and extracts it; `chain` gets the format names met on the way
/// down (only for the top-level document).
pub(crate) fn document(
    mut reader: Box<dyn Read + '_>,
    hints: &Hints,
    budget: &Budget,
    name: &str,
    chain: &mut Vec<&'static str>,
    sink: &mut dyn Sink,
) -> Result<()> {
    let depth = chain.len();
    if depth > MAX_DEPTH {
        bail!("more than {MAX_DEPTH} nested containers");
    }
    let prefix = sniff(&mut reader).map_err(|e| reason(chain, &e))?;
    let kind = detect(&prefix, hints);
    chain.push(kind.name());
    let head = matches!(kind, Kind::Xml | Kind::Html).then(|| prefix.clone());
    let reader: Box<dyn Read + '_> = Box::new(std::io::Cursor::new(prefix).chain(reader));
    match kind {
        Kind::Gzip | Kind::Zstd | Kind::Bzip2 => {
            let inner = compress::decoder(kind, reader, budget.clone())?;
            document(inner, &hints.inside(kind), budget, name, chain, sink)
        }
        Kind::Tar => tar::members(reader, hints, budget, name, chain, sink),
        Kind::Xml | Kind::Html => {
            sink.begin(name, kind.name(), true);
            let head = head.unwrap_or_default();
            let reader = charset::utf8(kind, &head, hints.content_type.as_deref(), reader);
            let r = markup::extract(kind, reader, sink).map_err(|e| reason(chain, &e));
            sink.end();
            r
        }
        Kind::Pdf => {
            sink.begin(name, kind.name(), true);
            let r = pdf::extract(reader, budget.cfg, sink);
            sink.end();
            r
        }
        Kind::Text => {
            sink.begin(name, kind.name(), false);
            let r = copy_text(reader, sink).map_err(|e| reason(chain, &e));
            sink.end();
            r
        }
    }
}

/// A failure of reading or parsing, as the one-line reason: described
/// where it happened (see [`Described`]), else by the innermost format.
pub(crate) fn reason(chain: &[&str], e: &std::io::Error) -> anyhow::Error {
    match e.get_ref().and_then(|i| i.downcast_ref::<Described>()) {
        Some(d) => anyhow::anyhow!("{}", d.0),
        None => anyhow::anyhow!("{}: {e}", chain.last().copied().unwrap_or("input")),
    }
}

/// An I/O error already described for the reason line (a decoder's, the
/// expansion limit's, the input's), passed through the layers above it.
#[derive(Debug)]
pub(crate) struct Described(pub String);

impl std::fmt::Display for Described {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Described {}

/// An I/O error carrying `message` as its reason line.
pub(crate) fn described(message: String) -> std::io::Error {
    std::io::Error::other(Described(message))
}

/// `e` described as a failure of `what`, unless a layer below described it.
pub(crate) fn describe(what: &str, e: std::io::Error) -> std::io::Error {
    let already = e.get_ref().is_some_and(|i| i.is::<Described>());
    if already {
        e
    } else {
        described(format!("{what}: {e}"))
    }
}

/// Copies a plain-text stream into the sink.
fn copy_text(mut reader: impl Read, sink: &mut dyn Sink) -> std::io::Result<()> {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => sink.text(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Counts an input's text with the core: every document of it with its
/// own counter, merged. See [`extract`].
pub fn count(
    prefix: Vec<u8>,
    reader: impl Read,
    hints: &Hints,
    cfg: Config,
    opts: crate::count::Options,
) -> Result<Counted> {
    let mut sink = sink::DocCounter::new(opts);
    let (format, input_bytes) = extract(prefix, reader, hints, cfg, &mut sink)?;
    Ok(sink.finish(format, input_bytes))
}
