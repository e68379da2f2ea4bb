//! `wordstream consume`: print the changelog (or any topic), like
//! kafka-console-consumer with `print.key=true` (docs/design.md §5).
//!
//! Always `isolation.level=read_committed`: records of aborted transactions
//! never show. Without `--group` no offsets are committed anywhere: the
//! partitions are assigned by hand. With `--group`, only the offsets of
//! records printed are committed (per partition, offset + 1), so records
//! fetched but not shown (`--max-messages`, a signal, a closed stdout) are
//! delivered to the group next time.

use crate::config::KafkaArgs;
use crate::kafka::{self, QuietContext};
use crate::output;
use crate::shutdown::Shutdown;
use crate::wire::Serde;
use anyhow::{anyhow, bail, Context, Result};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{HashMap, HashSet};
use std::io::{self, IsTerminal, Write};
use std::time::{Duration, Instant};

/// How records are printed (`--output`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// `word<TAB>count` per record.
    Lines,
    /// One JSON object per record: topic, partition, offset, timestamp, key, value.
    Json,
    /// The latest count per word as a table, sorted by count.
    Table,
}

/// Flags of `consume`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Topic to read [default: the changelog, <app-id>-<table>-changelog].
    #[arg(long, short = 't')]
    pub topic: Option<String>,
    /// Wire format of keys and values.
    #[arg(long, value_enum, default_value_t = Serde::Faust)]
    pub serde: Serde,
    /// Start at the oldest record (default: only records written from now on).
    #[arg(long)]
    pub from_beginning: bool,
    /// Exit once every partition's end (as of the start) is reached.
    #[arg(short = 'e', long)]
    pub exit_at_end: bool,
    /// Exit after printing this many records (undecodable ones, skipped
    /// with a warning, do not count).
    #[arg(long, value_name = "N")]
    pub max_messages: Option<u64>,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Lines)]
    pub output: Output,
    /// With --output table: only the N most frequent words
    /// [default: all; 25 when redrawing on a terminal].
    #[arg(long, value_name = "N")]
    pub top: Option<usize>,
    /// Print each record with this format, like kcat: %k key, %s value,
    /// %t topic, %p partition, %o offset, %T timestamp (ms), %% a percent
    /// sign; \n newline, \t tab, \\ backslash.
    #[arg(short = 'f', long, value_name = "FMT", conflicts_with = "output")]
    pub format_string: Option<String>,
    /// Consume as this consumer group and commit its offsets (default: no
    /// group offsets are read or committed).
    #[arg(long, short = 'g', value_name = "GROUP")]
    pub group: Option<String>,
}

/// One piece of a `--format-string`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Token {
    /// Literal text.
    Lit(String),
    /// `%k`
    Key,
    /// `%s`
    Value,
    /// `%t`
    Topic,
    /// `%p`
    Partition,
    /// `%o`
    Offset,
    /// `%T`
    Timestamp,
}

/// Parses a kcat-style format string.
pub fn parse_format(s: &str) -> Result<Vec<Token>> {
    let mut out = Vec::new();
    let mut lit = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '%' => {
                let tok = match chars.next() {
                    Some('k') => Token::Key,
                    Some('s') => Token::Value,
                    Some('t') => Token::Topic,
                    Some('p') => Token::Partition,
                    Some('o') => Token::Offset,
                    Some('T') => Token::Timestamp,
                    Some('%') => {
                        lit.push('%');
                        continue;
                    }
                    Some(o) => bail!("--format-string: unknown token %{o} (use %k %s %t %p %o %T)"),
                    None => bail!("--format-string: a lone % at the end"),
                };
                if !lit.is_empty() {
                    out.push(Token::Lit(std::mem::take(&mut lit)));
                }
                out.push(tok);
            }
            '\\' => match chars.next() {
                Some('n') => lit.push('\n'),
                Some('t') => lit.push('\t'),
                Some('\\') => lit.push('\\'),
                Some(o) => bail!("--format-string: unknown escape \\{o} (use \\n \\t \\\\)"),
                None => bail!("--format-string: a lone \\ at the end"),
            },
            c => lit.push(c),
        }
    }
    if !lit.is_empty() {
        out.push(Token::Lit(lit));
    }
    Ok(out)
}

/// A decoded record.
struct Record<'a> {
    topic: &'a str,
    partition: i32,
    offset: i64,
    timestamp: Option<i64>,
    key: String,
    /// `None` for a tombstone (null value: the word was deleted).
    value: Option<i64>,
}

/// A record as `--output json` prints it.
#[derive(serde::Serialize)]
struct JsonRecord<'a> {
    topic: &'a str,
    partition: i32,
    offset: i64,
    timestamp: Option<i64>,
    key: &'a str,
    value: Option<i64>,
}

/// A value as lines and `-f` show it: a tombstone (the word left the
/// table: its total reached 0) is `NULL`, as kcat prints a null value.
fn value_text(v: Option<i64>) -> String {
    v.map_or_else(|| "NULL".to_string(), |v| v.to_string())
}

/// Where records go.
enum Sink {
    Lines,
    Json,
    Format(Vec<Token>),
    Table(Tally),
}

/// The `--output table` state: the latest count per word.
struct Tally {
    counts: HashMap<String, i64>,
    top: Option<usize>,
    /// Redraw while following (else: print once at the end).
    live: bool,
    /// Redraw in place (on a terminal).
    in_place: bool,
    dirty: bool,
    drawn_lines: usize,
    last_draw: Option<Instant>,
}

impl Tally {
    fn render(&self) -> String {
        let mut rows: Vec<(&str, i64)> =
            self.counts.iter().map(|(w, c)| (w.as_str(), *c)).collect();
        rows.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        if let Some(n) = self.top {
            rows.truncate(n);
        }
        format!("{}\n", output::tally_table(&rows))
    }

    /// Draws the table (replacing the previous one on a terminal).
    fn draw(&mut self, out: &mut impl Write) -> io::Result<()> {
        let text = self.render();
        if self.in_place && self.drawn_lines > 0 {
            // cursor up to the first line of the last table, clear to the end
            write!(out, "\x1b[{}F\x1b[J", self.drawn_lines)?;
        }
        out.write_all(text.as_bytes())?;
        out.flush()?;
        self.drawn_lines = text.lines().count();
        self.dirty = false;
        self.last_draw = Some(Instant::now());
        Ok(())
    }

    /// While following: redraw when changed, at most once a second.
    /// Returns whether it drew.
    fn tick(&mut self, out: &mut impl Write) -> io::Result<bool> {
        if self.live
            && self.dirty
            && self
                .last_draw
                .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
        {
            self.draw(out)?;
            return Ok(true);
        }
        Ok(false)
    }
}

impl Sink {
    /// Writes (or, for the table, records) one record. Keys are escaped in
    /// lines and tables ([`output::escape`]); JSON and `-f` print them exactly.
    fn write(&mut self, out: &mut impl Write, r: &Record) -> io::Result<()> {
        match self {
            Sink::Lines => {
                out.write_all(output::escape(&r.key).as_bytes())?;
                out.write_all(b"\t")?;
                out.write_all(value_text(r.value).as_bytes())?;
                out.write_all(b"\n")
            }
            Sink::Json => {
                serde_json::to_writer(
                    &mut *out,
                    &JsonRecord {
                        topic: r.topic,
                        partition: r.partition,
                        offset: r.offset,
                        timestamp: r.timestamp,
                        key: &r.key,
                        value: r.value,
                    },
                )?;
                out.write_all(b"\n")
            }
            Sink::Format(tokens) => {
                for t in tokens.iter() {
                    match t {
                        Token::Lit(s) => out.write_all(s.as_bytes())?,
                        Token::Key => out.write_all(r.key.as_bytes())?,
                        Token::Value => out.write_all(value_text(r.value).as_bytes())?,
                        Token::Topic => out.write_all(r.topic.as_bytes())?,
                        Token::Partition => write!(out, "{}", r.partition)?,
                        Token::Offset => write!(out, "{}", r.offset)?,
                        Token::Timestamp => write!(out, "{}", r.timestamp.unwrap_or(-1))?,
                    }
                }
                Ok(())
            }
            Sink::Table(t) => {
                match r.value {
                    Some(v) => {
                        if let Some(c) = t.counts.get_mut(r.key.as_str()) {
                            *c = v;
                        } else {
                            t.counts.insert(r.key.clone(), v);
                        }
                    }
                    None => {
                        t.counts.remove(r.key.as_str());
                    }
                }
                t.dirty = true;
                Ok(())
            }
        }
    }
}

/// Decodes a record's key and value with `serde`.
fn decode(serde: Serde, m: &BorrowedMessage) -> Result<(String, Option<i64>)> {
    let key = m.key().ok_or_else(|| anyhow!("the record has no key"))?;
    let key = serde.decode_key(key)?;
    let value = match m.payload() {
        None => None,
        Some(v) => Some(serde.decode_value(v)?),
    };
    Ok((key, value))
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<()> {
    let topic = args
        .topic
        .clone()
        .unwrap_or_else(|| args.kafka.topics().changelog);
    let tokens = args
        .format_string
        .as_deref()
        .map(parse_format)
        .transpose()?;
    if args.top.is_some() && (args.output != Output::Table || tokens.is_some()) {
        bail!("--top needs --output table");
    }
    let stop = Shutdown::install()?;
    let timeout = Duration::from_secs(args.kafka.connect_timeout);
    let partitions = kafka::partition_count(&args.kafka, &topic)?
        .ok_or_else(|| anyhow!("topic {topic} does not exist"))?;

    let mut cfg = kafka::client_config(&args.kafka);
    cfg.set("enable.partition.eof", "true");
    // Offsets are committed by hand, and only of records printed (or
    // reported undecodable): never of records fetched and not shown.
    cfg.set("enable.auto.commit", "false");
    cfg.set("enable.auto.offset.store", "false");
    match &args.group {
        Some(g) => {
            cfg.set("group.id", g);
            cfg.set(
                "auto.offset.reset",
                if args.from_beginning {
                    "earliest"
                } else {
                    "latest"
                },
            );
        }
        None => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            cfg.set(
                "group.id",
                format!("wordstream-consume-{}-{nanos}", std::process::id()),
            );
        }
    }
    // -X may tune anything above; the isolation level is not negotiable.
    for (k, v) in &args.kafka.property {
        cfg.set(k, v);
    }
    cfg.set("isolation.level", "read_committed");
    let consumer: BaseConsumer<QuietContext> = cfg
        .create_with_context(QuietContext)
        .context("cannot create Kafka consumer")?;
    kafka::prime(consumer.client()); // OAUTHBEARER: a token before the first poll

    // Where each partition ends (read_committed: the last stable offset).
    let mut ends: HashMap<i32, i64> = HashMap::new();
    let mut done: HashSet<i32> = HashSet::new();
    if args.exit_at_end {
        for p in 0..partitions {
            let (low, high) = consumer
                .fetch_watermarks(&topic, p, timeout)
                .map_err(|e| kafka::unreachable_error(&args.kafka, timeout, e))?;
            ends.insert(p, high);
            if high <= low || (args.group.is_none() && !args.from_beginning) {
                done.insert(p);
            }
        }
    }

    if let Some(g) = &args.group {
        consumer
            .subscribe(&[&topic])
            .with_context(|| format!("cannot subscribe to {topic} as group {g}"))?;
    } else {
        let mut tpl = TopicPartitionList::new();
        let start = if args.from_beginning {
            Offset::Beginning
        } else {
            Offset::End
        };
        for p in 0..partitions {
            tpl.add_partition_offset(&topic, p, start)
                .context("cannot assign partitions")?;
        }
        consumer
            .assign(&tpl)
            .with_context(|| format!("cannot assign the partitions of {topic}"))?;
    }

    let stdout_tty = io::stdout().is_terminal();
    let sink = match (tokens, args.output) {
        (Some(t), _) => Sink::Format(t),
        (None, Output::Lines) => Sink::Lines,
        (None, Output::Json) => Sink::Json,
        (None, Output::Table) => {
            let live = !args.exit_at_end;
            Sink::Table(Tally {
                counts: HashMap::new(),
                top: args
                    .top
                    .or(if live && stdout_tty { Some(25) } else { None }),
                live,
                in_place: stdout_tty,
                dirty: false,
                drawn_lines: 0,
                last_draw: None,
            })
        }
    };

    let stdout = io::stdout();
    let mut session = Session {
        args: &args,
        topic: &topic,
        consumer: &consumer,
        sink,
        out: io::BufWriter::with_capacity(1 << 16, stdout.lock()),
        mine: if args.group.is_some() {
            Vec::new()
        } else {
            (0..partitions).collect()
        },
        ends,
        done,
        stop,
        printed: 0,
        pending: HashMap::new(),
        shown: HashMap::new(),
        last_commit: Instant::now(),
    };
    let r = session.run().and_then(|()| session.finish());
    session.commit(CommitMode::Sync);
    r?;
    tracing::info!("processed a total of {} records", session.printed);
    Ok(())
}

/// One run of `consume`: the consumer, where records go, and what was
/// printed (the only offsets a group commits).
struct Session<'a, W: Write> {
    args: &'a Args,
    topic: &'a str,
    consumer: &'a BaseConsumer<QuietContext>,
    sink: Sink,
    out: W,
    /// Partitions whose end counts for -e: all, or (in a group) ours.
    mine: Vec<i32>,
    /// With -e: where each partition ended when we started.
    ends: HashMap<i32, i64>,
    /// With -e: partitions read to their end.
    done: HashSet<i32>,
    stop: Shutdown,
    /// Records printed (what --max-messages counts).
    printed: u64,
    /// Next offset per partition of records handed to the sink, not yet
    /// flushed to stdout.
    pending: HashMap<i32, i64>,
    /// Next offset per partition of records on stdout: what a group commits.
    shown: HashMap<i32, i64>,
    last_commit: Instant,
}

/// How often a group commits while following.
const COMMIT_EVERY: Duration = Duration::from_secs(5);

impl<W: Write> Session<'_, W> {
    /// Polls until the end (with -e), --max-messages, a signal, or a closed
    /// stdout.
    fn run(&mut self) -> Result<()> {
        let mut last_check = Instant::now();
        let mut last_flush = Instant::now();
        loop {
            if self.stop.is_requested()
                || self.args.max_messages.is_some_and(|m| self.printed >= m)
                || (self.args.exit_at_end
                    && !self.mine.is_empty()
                    && self.mine.iter().all(|p| self.done.contains(p)))
            {
                return Ok(());
            }
            let polled = self.consumer.poll(Duration::from_millis(100));
            let idle = polled.is_none();
            match polled {
                None => {}
                Some(Err(KafkaError::PartitionEOF(p))) if self.args.exit_at_end => {
                    self.done.insert(p);
                }
                Some(Err(e)) => {
                    if let Some(code) = e.rdkafka_error_code() {
                        if matches!(
                            code,
                            RDKafkaErrorCode::UnknownTopicOrPartition
                                | RDKafkaErrorCode::UnknownTopic
                        ) {
                            bail!("topic {} does not exist", self.topic);
                        }
                    }
                    tracing::debug!("consumer: {e}");
                }
                Some(Ok(m)) => {
                    if let Err(e) = self.handle(&m) {
                        return closed(e);
                    }
                }
            }
            if idle || last_flush.elapsed() >= Duration::from_millis(200) {
                last_flush = Instant::now();
                if let Err(e) = self.flush(false) {
                    return closed(e);
                }
            }
            if self.args.group.is_some() && self.last_commit.elapsed() >= COMMIT_EVERY {
                self.commit(CommitMode::Async);
            }
            if self.args.exit_at_end && (idle || last_check.elapsed() >= Duration::from_millis(100))
            {
                last_check = Instant::now();
                self.check_ends();
            }
        }
    }

    /// Prints one record (or warns that it does not decode).
    fn handle(&mut self, m: &BorrowedMessage) -> io::Result<()> {
        let (p, o) = (m.partition(), m.offset());
        if let Some(&end) = self.ends.get(&p) {
            if o >= end {
                // written after we started: not ours to print
                self.done.insert(p);
                return Ok(());
            }
            if o + 1 >= end {
                self.done.insert(p);
            }
        }
        let serde = self.args.serde;
        match decode(serde, m) {
            Ok((key, value)) => {
                let rec = Record {
                    topic: self.topic,
                    partition: p,
                    offset: o,
                    timestamp: m.timestamp().to_millis(),
                    key,
                    value,
                };
                self.sink.write(&mut self.out, &rec)?;
                self.printed += 1;
            }
            Err(e) => tracing::warn!(
                "skipping the record at partition {p} offset {o} of {}: {e:#} (--serde {})",
                self.topic,
                output::flag_value(&serde)
            ),
        }
        self.pending.insert(p, o + 1);
        Ok(())
    }

    /// Flushes stdout (the table: redraws it when due, or, with `last`,
    /// when it must); what reached stdout may then be committed.
    fn flush(&mut self, last: bool) -> io::Result<()> {
        let shown = match &mut self.sink {
            Sink::Table(t) if last => {
                if !t.live || t.dirty || t.drawn_lines == 0 {
                    t.draw(&mut self.out)?;
                }
                true
            }
            Sink::Table(t) => t.tick(&mut self.out)?,
            _ => {
                self.out.flush()?;
                true
            }
        };
        if shown {
            self.shown.extend(self.pending.drain());
        }
        Ok(())
    }

    /// The last flush; a reader that went away is fine.
    fn finish(&mut self) -> Result<()> {
        match self.flush(true) {
            Ok(()) => Ok(()),
            Err(e) => closed(e),
        }
    }

    /// With -e: a partition whose position passed its end (aborted records
    /// or control markers at the end) is done too.
    fn check_ends(&mut self) {
        if self.args.group.is_some() {
            self.mine = self
                .consumer
                .assignment()
                .map(|tpl| tpl.elements().iter().map(|e| e.partition()).collect())
                .unwrap_or_default();
        }
        if let Ok(pos) = self.consumer.position() {
            for e in pos.elements() {
                if let (Offset::Offset(at), Some(&end)) =
                    (e.offset(), self.ends.get(&e.partition()))
                {
                    if at >= end {
                        self.done.insert(e.partition());
                    }
                }
            }
        }
    }

    /// In a group: commits the offsets of what reached stdout.
    fn commit(&mut self, mode: CommitMode) {
        self.last_commit = Instant::now();
        let Some(group) = &self.args.group else {
            return;
        };
        if self.shown.is_empty() {
            return;
        }
        let mut tpl = TopicPartitionList::new();
        for (&p, &next) in &self.shown {
            if let Err(e) = tpl.add_partition_offset(self.topic, p, Offset::Offset(next)) {
                tracing::warn!("cannot commit the offsets of group {group}: {e}");
                return;
            }
        }
        match self.consumer.commit(&tpl, mode) {
            Ok(()) => self.shown.clear(),
            Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => tracing::warn!("cannot commit the offsets of group {group}: {e}"),
        }
    }
}

/// A write error: fine if the reader went away (`| head`), else fatal.
fn closed(e: io::Error) -> Result<()> {
    if e.kind() == io::ErrorKind::BrokenPipe {
        Ok(())
    } else {
        Err(anyhow!("cannot write to stdout: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_strings() {
        assert_eq!(
            parse_format("%k=%s\\n").unwrap(),
            [
                Token::Key,
                Token::Lit("=".into()),
                Token::Value,
                Token::Lit("\n".into())
            ]
        );
        assert_eq!(
            parse_format("%t/%p@%o %T\\t100%%\\\\").unwrap(),
            [
                Token::Topic,
                Token::Lit("/".into()),
                Token::Partition,
                Token::Lit("@".into()),
                Token::Offset,
                Token::Lit(" ".into()),
                Token::Timestamp,
                Token::Lit("\t100%\\".into())
            ]
        );
        assert!(parse_format("%x").is_err());
        assert!(parse_format("\\q").is_err());
        assert!(parse_format("50%").is_err());
    }

    #[test]
    fn tally_sorts_by_count_then_word() {
        let mut t = Tally {
            counts: [("b", 2), ("a", 2), ("c", 5), ("d", 1)]
                .into_iter()
                .map(|(w, c)| (w.to_string(), c))
                .collect(),
            top: Some(3),
            live: false,
            in_place: false,
            dirty: true,
            drawn_lines: 0,
            last_draw: None,
        };
        let s = t.render();
        let words: Vec<&str> = s
            .lines()
            .filter_map(|l| l.strip_prefix('│'))
            .filter_map(|l| l.split('┆').next().map(str::trim))
            .collect();
        assert_eq!(words, ["word", "c", "a", "b"]);
        let mut buf = Vec::new();
        t.draw(&mut buf).unwrap();
        assert!(!t.dirty);
    }
}
