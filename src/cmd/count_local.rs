//! `wordstream count-local`: the core over local files or stdin, offline.
//!
//! The same tokenizer and counter as the worker, so its output is the
//! reference the pipeline's changelog must equal.
//!
//! Paths named on the command line are read whatever they are (a FIFO,
//! `/dev/stdin`, `<(cmd)`: as streams, to their end, as `wc` does); a
//! directory walk counts regular files only and, with `-v`, names what it
//! skips.

mod s3;

use crate::count::{Options, WordCounts};
use crate::format;
use crate::output::{self, Format};
use crate::tokenize::{last_boundary_from, Encoding};
use anyhow::{bail, Context, Result};
use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::sync::{mpsc, Mutex};
use std::time::Instant;

/// Counting flags shared by `count-local` and `worker`.
#[derive(Clone, Copy, Debug, clap::Args)]
pub struct CountFlags {
    /// Fold case with Python's `str.lower()` (default: case preserved).
    #[arg(long)]
    pub lowercase: bool,
    /// How object bytes decode (latin1 is what the original app did).
    #[arg(long, value_enum, default_value_t = Encoding::Utf8)]
    pub encoding: Encoding,
    /// How bytes are read: `auto` detects gzip, zstd, bzip2, tar, XML,
    /// HTML, PDF (magic bytes, then Content-Type, then extension) and
    /// counts their text; `text` counts every byte as text.
    #[arg(long, value_enum, default_value_t = format::Mode::Auto)]
    pub format: format::Mode,
    /// Decompressed bytes may be at most N times the compressed bytes read
    /// (plus 1 MiB); past that the input fails as a decompression bomb.
    #[arg(long, value_name = "N", default_value_t = format::DEFAULT_MAX_EXPANSION,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_expansion: u64,
    /// A PDF larger than this many MiB fails (a PDF is read whole into
    /// memory; its extractor may use 8 times as much plus 512 MiB).
    #[arg(long, value_name = "MIB", default_value_t = format::DEFAULT_PDF_MAX_MIB,
          value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub pdf_max_mib: u64,
    /// A PDF whose text takes longer than this many seconds to extract
    /// fails.
    #[arg(long, value_name = "SECS", default_value_t = format::DEFAULT_PDF_TIMEOUT_S,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub pdf_timeout: u64,
}

impl CountFlags {
    /// The core's options.
    pub fn options(self) -> Options {
        Options {
            encoding: self.encoding,
            lowercase: self.lowercase,
        }
    }

    /// The format layer's configuration.
    pub fn formats(self) -> format::Config {
        format::Config {
            mode: self.format,
            max_expansion: self.max_expansion,
            pdf_max_bytes: self.pdf_max_mib << 20,
            pdf_timeout: std::time::Duration::from_secs(self.pdf_timeout),
        }
    }
}

/// Flags of `count-local`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Limits:
  A token (a run of word characters) longer than 64 KiB is skipped, not
  counted, as the worker skips it.")]
pub struct Args {
    /// Files and directories (recursive, sorted); `-` is stdin; FIFOs and
    /// devices named here are read to their end. Default: `-`. Or one
    /// `s3://BUCKET[/PREFIX]`: every object there, as it is now (endpoint
    /// and region from AWS_ENDPOINT_URL, AWS_REGION).
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub count: CountFlags,
    /// Output format [default: table on a terminal, tsv otherwise].
    #[arg(long, short = 'o', value_enum)]
    pub output: Option<Format>,
    /// Print only the N most frequent words (with --verify: at most N
    /// differences; default all, 20 in a table).
    #[arg(long, value_name = "N")]
    pub top: Option<usize>,
    /// Counting threads, 1 to 256 [default: all cores; never more than the
    /// input has 1 MiB batches].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: Option<u16>,
    /// Name what a directory walk skips (FIFOs, sockets, devices) and the
    /// format found in each input.
    #[arg(long, short = 'v')]
    pub verbose: bool,
    /// Warn about unreadable paths and count the rest (still exits 1).
    #[arg(long)]
    pub keep_going: bool,
    /// No summary line on stderr.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Compare the counts with the changelog topic instead of printing them;
    /// exit 1 on any difference. The differences are printed as --output
    /// says (word, local, changelog).
    #[arg(long)]
    pub verify: bool,
    /// Wire format of the changelog read by --verify.
    #[arg(long, value_enum, default_value_t = crate::wire::Serde::Faust)]
    pub serde: crate::wire::Serde,
    /// Topic read by --verify [default: the app's changelog].
    #[arg(long)]
    pub topic: Option<String>,
    #[command(flatten)]
    pub kafka: crate::config::KafkaArgs,
}

/// Bytes handed to a counting thread at a time: small enough to share the
/// work evenly, large enough to make the hand-over cost nothing.
const BATCH: usize = 1 << 20;
/// Inputs larger than this get a progress bar (on a terminal).
const PROGRESS_MIN: u64 = 50_000_000;

/// One input: a file, a stream named on the command line, or stdin.
enum Input {
    Stdin,
    File(PathBuf),
    /// A FIFO, a device, `/dev/stdin`: no size known.
    Stream(PathBuf),
}

impl Input {
    fn name(&self) -> String {
        match self {
            Input::Stdin => "-".into(),
            Input::File(p) | Input::Stream(p) => p.display().to_string(),
        }
    }
}

/// What a count of inputs found.
pub struct Tally {
    /// The counts.
    pub counts: WordCounts,
    /// Inputs read completely.
    pub files: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Inputs that could not be read (with --keep-going).
    pub failed: u64,
}

/// Expands the command-line paths into inputs: directories recursively, in
/// sorted order, regular files only (`verbose` names the others); anything
/// else named on the command line is read as a stream. An unreadable path
/// is an error (or a warning, with keep_going).
fn expand(
    paths: &[PathBuf],
    keep_going: bool,
    verbose: bool,
    failed: &mut u64,
) -> Result<Vec<(Input, u64)>> {
    let mut inputs = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            inputs.push((Input::Stdin, 0));
            continue;
        }
        match std::fs::metadata(path) {
            // a FIFO, /dev/stdin, <(cmd), a device: a stream
            Ok(meta) if !meta.is_dir() && !meta.is_file() => {
                inputs.push((Input::Stream(path.clone()), 0));
                continue;
            }
            Ok(_) => {}
            Err(e) if keep_going => {
                tracing::warn!("cannot read {}: {e}", path.display());
                *failed += 1;
                continue;
            }
            Err(e) => bail!("cannot read {}: {e}", path.display()),
        }
        for entry in walkdir::WalkDir::new(path)
            .follow_links(true)
            .sort_by_file_name()
        {
            let found = entry
                .and_then(|e| {
                    let len = e.metadata()?.len();
                    Ok((e, len))
                })
                .map_err(|e| {
                    let at = e.path().unwrap_or(path).display().to_string();
                    match e.into_io_error() {
                        Some(io) => anyhow::anyhow!("cannot read {at}: {io}"),
                        None => anyhow::anyhow!("cannot read {at}: symlink loop"),
                    }
                });
            match found {
                Ok((e, len)) if e.file_type().is_file() => {
                    inputs.push((Input::File(e.into_path()), len))
                }
                Ok((e, _)) if e.file_type().is_dir() => {}
                Ok((e, _)) => {
                    if verbose {
                        tracing::info!(
                            "skipping {}: not a regular file",
                            output::escape(&e.path().display().to_string())
                        );
                    }
                }
                Err(e) if keep_going => {
                    tracing::warn!("{e:#}");
                    *failed += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
    Ok(inputs)
}

/// How to count: the core's options, the format layer's, and what to say.
#[derive(Clone, Copy)]
pub struct Plan {
    /// The core's options.
    pub opts: Options,
    /// The format layer's.
    pub formats: format::Config,
    /// Counting threads.
    pub threads: usize,
    /// Warn about unreadable inputs (and those whose format fails) and
    /// count the rest.
    pub keep_going: bool,
    /// Name what directory walks skip, and each input's format.
    pub verbose: bool,
}

/// Counts `paths` as `plan` says (a progress bar on big inputs).
///
/// This thread reads plain-text inputs straight into batches of about
/// [`BATCH`] bytes, cut on token boundaries (the partial token at the end
/// moves to the next batch), while counting threads take batches from a
/// queue, each into its own map; the maps are merged at the end. Reading
/// overlaps counting, and batch buffers are recycled. Other formats
/// (compressed, tar, markup) are extracted and counted on this thread, each
/// input on its own until it is complete: one that fails adds nothing, as
/// in the worker.
pub fn count_paths(paths: &[PathBuf], plan: Plan) -> Result<Tally> {
    let Plan {
        opts,
        threads,
        keep_going,
        verbose,
        ..
    } = plan;
    let mut failed = 0;
    let inputs = expand(paths, keep_going, verbose, &mut failed)?;
    let total: u64 = inputs.iter().map(|(_, len)| len).sum();
    let bar = progress_bar(total);
    let threads = useful_threads(threads, &inputs);
    let (full_tx, full_rx) = mpsc::sync_channel::<Vec<u8>>(threads);
    let full_rx = Mutex::new(full_rx);
    let (empty_tx, empty_rx) = mpsc::channel::<Vec<u8>>();

    std::thread::scope(|scope| {
        let mut counters = Vec::with_capacity(threads);
        for i in 0..threads {
            let (full_rx, empty_tx) = (&full_rx, empty_tx.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("count-{i}"))
                .spawn_scoped(scope, move || {
                    let mut counts = WordCounts::new();
                    loop {
                        // The lock is held only while waiting for a batch.
                        let next = full_rx.lock().map(|rx| rx.recv());
                        let Ok(Ok(batch)) = next else { break };
                        counts.add_segment(&batch, opts);
                        let _ = empty_tx.send(batch); // back to the reader
                    }
                    counts
                });
            match spawned {
                Ok(h) => counters.push(h),
                // fewer threads than asked is fine, none is not
                Err(e) if !counters.is_empty() => {
                    tracing::warn!("counting with {i} threads: cannot start more: {e}");
                    break;
                }
                Err(e) => bail!("cannot start a counting thread: {e}"),
            }
        }

        let mut batcher = Batcher {
            enc: opts.encoding,
            batch: Vec::with_capacity(BATCH),
            checked: 0,
            full_tx,
            empty_rx,
        };
        let mut extracted = WordCounts::new();
        let read = read_inputs(&inputs, plan, &mut batcher, &mut extracted, &bar);
        batcher.flush();
        drop(batcher); // closes the queue: the counting threads finish

        let mut counts = extracted;
        for c in counters {
            match c.join() {
                Ok(c) => counts.merge(c),
                Err(_) => bail!("a counting thread failed"),
            }
        }
        bar.finish_and_clear();
        let (files, bytes, unreadable) = read?;
        Ok(Tally {
            counts,
            files,
            bytes,
            failed: failed + unreadable,
        })
    })
}

/// Reads every input: plain text into `batcher`, other formats counted into
/// `extracted`; returns (files, bytes, unreadable).
fn read_inputs(
    inputs: &[(Input, u64)],
    plan: Plan,
    batcher: &mut Batcher,
    extracted: &mut WordCounts,
    bar: &indicatif::ProgressBar,
) -> Result<(u64, u64, u64)> {
    let keep_going = plan.keep_going;
    let (mut files, mut bytes, mut unreadable) = (0, 0, 0);
    for (input, _) in inputs {
        let opened = open(input).and_then(|r| sniff(input, r, plan.formats.mode));
        let (mut reader, prefix) = match opened {
            Ok(r) => r,
            Err(e) if keep_going => {
                tracing::warn!("{e:#}");
                unreadable += 1;
                continue;
            }
            Err(e) => return Err(e),
        };
        if let Some(prefix) = prefix {
            let hints = format::Hints::named(input.name());
            let kind = format::detect(&prefix, &hints);
            if kind != format::Kind::Text {
                match format::count(prefix, reader, &hints, plan.formats, plan.opts) {
                    Ok(c) => {
                        if plan.verbose {
                            tracing::info!(
                                "{}: {}, {} bytes, {} bytes of text, {} words{}",
                                output::escape(&input.name()),
                                c.record.format,
                                c.input_bytes,
                                c.record.text_bytes,
                                c.counts.words,
                                members_note(&c)
                            );
                        }
                        bar.inc(c.input_bytes);
                        bytes += c.input_bytes;
                        files += 1;
                        extracted.merge(c.counts);
                    }
                    Err(e) => {
                        let e = e.context(format!("cannot count {}", input.name()));
                        if !keep_going {
                            return Err(e);
                        }
                        tracing::warn!("{e:#}");
                        unreadable += 1;
                    }
                }
                continue;
            }
            if plan.verbose {
                tracing::info!("{}: text", output::escape(&input.name()));
            }
            reader = Box::new(std::io::Cursor::new(prefix).chain(reader));
        }
        // A failure after the first byte is fatal even with --keep-going:
        // part of the input would already be counted.
        loop {
            let n = batcher
                .read_from(&mut reader)
                .with_context(|| format!("cannot read {}", input.name()))?;
            if n == 0 {
                break;
            }
            bar.inc(n as u64);
            bytes += n as u64;
        }
        batcher.end_input();
        files += 1;
    }
    Ok((files, bytes, unreadable))
}

/// Fills batches from readers and hands the complete ones to the counters.
struct Batcher {
    enc: Encoding,
    /// The batch being filled.
    batch: Vec<u8>,
    /// `batch[..checked]` holds no token boundary (see `last_boundary_from`).
    checked: usize,
    full_tx: mpsc::SyncSender<Vec<u8>>,
    empty_rx: mpsc::Receiver<Vec<u8>>,
}

impl Batcher {
    /// Reads up to the rest of the batch from `reader` (0 at its end) and
    /// sends the batch when it is full.
    fn read_from(&mut self, reader: &mut dyn Read) -> std::io::Result<usize> {
        let room = BATCH.saturating_sub(self.batch.len()).max(64 << 10);
        let n = reader.take(room as u64).read_to_end(&mut self.batch)?;
        if self.batch.len() >= BATCH {
            self.send_complete();
        }
        Ok(n)
    }

    /// The end of an input ends its last token.
    fn end_input(&mut self) {
        self.batch.push(b'\n');
        self.checked = self.batch.len();
        if self.batch.len() >= BATCH {
            self.flush();
        }
    }

    /// Sends the batch up to its last token boundary; the rest starts the
    /// next batch. A batch without any boundary (one huge token) grows.
    fn send_complete(&mut self) {
        let Some(cut) = last_boundary_from(&self.batch, self.checked, self.enc) else {
            self.checked = self.batch.len();
            return;
        };
        let mut next = self.empty_buffer();
        next.extend_from_slice(&self.batch[cut..]);
        self.batch.truncate(cut);
        self.checked = 0;
        self.send(next);
    }

    /// Sends the whole batch (it ends on a boundary).
    fn flush(&mut self) {
        let next = self.empty_buffer();
        self.checked = 0;
        self.send(next);
    }

    /// A recycled buffer if one is back from the counters, else a new one.
    fn empty_buffer(&self) -> Vec<u8> {
        let mut buf = self.empty_rx.try_recv().unwrap_or_default();
        buf.clear();
        buf.reserve(BATCH);
        buf
    }

    /// Sends the current batch and continues with `next`.
    fn send(&mut self, next: Vec<u8>) {
        let full = std::mem::replace(&mut self.batch, next);
        if !full.is_empty() {
            // Fails only if every counting thread is gone (a panic, reported
            // when it is joined).
            let _ = self.full_tx.send(full);
        }
    }
}

/// `threads`, but no more than the inputs have batches (streams may be of
/// any size: as asked).
fn useful_threads(threads: usize, inputs: &[(Input, u64)]) -> usize {
    if inputs.iter().any(|(i, _)| !matches!(i, Input::File(_))) {
        return threads.max(1);
    }
    let bytes: u64 = inputs.iter().map(|(_, len)| len).sum();
    let batches = usize::try_from(bytes.div_ceil(BATCH as u64)).unwrap_or(usize::MAX);
    threads.min(batches).max(1)
}

/// The first bytes of an input, read to detect its format.
type Prefix = Vec<u8>;

/// With `auto`, reads the first bytes of an input to detect its format.
fn sniff(
    input: &Input,
    mut reader: Box<dyn Read>,
    mode: format::Mode,
) -> Result<(Box<dyn Read>, Option<Prefix>)> {
    if mode == format::Mode::Text {
        return Ok((reader, None));
    }
    let prefix =
        format::sniff(&mut reader).with_context(|| format!("cannot read {}", input.name()))?;
    Ok((reader, Some(prefix)))
}

/// `, N members` for archives (`-v`).
fn members_note(c: &format::Counted) -> String {
    if c.record.member_count == 0 {
        return String::new();
    }
    format!(", {} members", c.record.member_count)
}

/// Opens an input for reading.
fn open(input: &Input) -> Result<Box<dyn Read>> {
    Ok(match input {
        Input::Stdin => Box::new(std::io::stdin().lock()),
        Input::File(p) | Input::Stream(p) => Box::new(
            std::fs::File::open(p).with_context(|| format!("cannot read {}", p.display()))?,
        ),
    })
}

fn progress_bar(total: u64) -> indicatif::ProgressBar {
    if total < PROGRESS_MIN || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .expect("valid template"),
    );
    bar
}

/// The default thread count: every core.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<()> {
    let started = Instant::now();
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from("-")]
    } else {
        args.paths.clone()
    };
    let threads = args.threads.map_or_else(default_threads, usize::from);
    let plan = Plan {
        opts: args.count.options(),
        formats: args.count.formats(),
        threads,
        keep_going: args.keep_going,
        verbose: args.verbose,
    };
    let bucket = match paths.as_slice() {
        [one] => s3::parse(&one.to_string_lossy()).transpose()?,
        _ => None,
    };
    let tally = match bucket {
        // What a bucket holds now (issue 14: the totals follow the bucket).
        Some((bucket, prefix)) => s3::count(&bucket, &prefix, plan.opts, plan.formats)?,
        None => count_paths(&paths, plan)?,
    };
    let secs = started.elapsed().as_secs_f64();
    if args.verify {
        if !args.quiet {
            output::stderr_line(&summary(&tally, secs));
        }
        return verify(&args, &tally.counts);
    }

    let mut rows = tally.counts.sorted();
    if let Some(n) = args.top {
        rows.truncate(n);
    }
    let format = Format::or_default(args.output);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    output::ignore_broken_pipe(
        output::write_counts(&mut out, &rows, format)
            .and_then(|()| std::io::Write::flush(&mut out)),
    )
    .context("cannot write to stdout")?;

    if !args.quiet {
        output::stderr_line(&summary(&tally, secs));
    }
    if tally.failed > 0 {
        bail!("{} input(s) could not be read", tally.failed);
    }
    Ok(())
}

/// `--verify`: compares `counts` with the changelog and reports.
fn verify(args: &Args, counts: &WordCounts) -> Result<()> {
    let topic = args
        .topic
        .clone()
        .unwrap_or_else(|| args.kafka.topics().changelog);
    let table = crate::verify::read_changelog(&args.kafka, &topic, args.serde)?;
    let report = crate::verify::compare(counts, &table);
    let format = Format::or_default(args.output);
    let headline = format!(
        "verify {topic}: {} words match, {} differ",
        report.matching,
        report.differences.len()
    );
    // The headline goes with the table; scripts get only the data on stdout.
    if format != Format::Table && !args.quiet {
        output::stderr_line(&headline);
    }
    let text = crate::verify::render(&report, &headline, format, args.top)?;
    output::stdout(&text)?;
    if report.differences.is_empty() {
        return Ok(());
    }
    bail!(
        "{} words differ between the local count and {topic}",
        report.differences.len()
    )
}

/// The one-line summary printed on stderr.
pub fn summary(t: &Tally, secs: f64) -> String {
    format!(
        "count-local: {} files, {} bytes, {} words, {} distinct, {} invalid bytes, {:.3} s, {:.1} MB/s",
        t.files,
        t.bytes,
        t.counts.words,
        t.counts.distinct(),
        t.counts.invalid_bytes,
        secs,
        t.bytes as f64 / 1e6 / secs.max(1e-9)
    )
}
