//! `wordstream consume`: print the changelog (or any topic), like
//! kafka-console-consumer with `print.key=true` (DESIGN §5).
//!
//! Always `isolation.level=read_committed`: records of aborted transactions
//! never show. Without `--group` no offsets are committed anywhere: the
//! partitions are assigned by hand.

use crate::config::KafkaArgs;
use crate::kafka::{self, QuietContext};
use crate::output;
use crate::wire::Serde;
use anyhow::{anyhow, bail, Context, Result};
use clap::ValueEnum;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{HashMap, HashSet};
use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
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
    /// Exit after this many records.
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

fn value_text(v: Option<i64>) -> String {
    v.map_or_else(|| "null".to_string(), |v| v.to_string())
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
        let mut rows: Vec<(&str, u64)> = self
            .counts
            .iter()
            .map(|(w, c)| (w.as_str(), u64::try_from(*c).unwrap_or(0)))
            .collect();
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
    fn tick(&mut self, out: &mut impl Write) -> io::Result<()> {
        if self.live
            && self.dirty
            && self
                .last_draw
                .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
        {
            self.draw(out)?;
        }
        Ok(())
    }
}

impl Sink {
    fn write(&mut self, out: &mut impl Write, r: &Record) -> io::Result<()> {
        match self {
            Sink::Lines => {
                out.write_all(r.key.as_bytes())?;
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

fn serde_name(s: Serde) -> String {
    s.to_possible_value()
        .map(|v| v.get_name().to_string())
        .unwrap_or_default()
}

/// Sets a flag on SIGINT/SIGTERM (a second one exits at once).
fn stop_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    let spawned = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                #[cfg(unix)]
                let mut term =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
                loop {
                    #[cfg(unix)]
                    let term_fut = async {
                        match term.as_mut() {
                            Some(t) => {
                                t.recv().await;
                            }
                            None => std::future::pending::<()>().await,
                        }
                    };
                    #[cfg(not(unix))]
                    let term_fut = std::future::pending::<()>();
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = term_fut => {}
                    }
                    if f.swap(true, Ordering::SeqCst) {
                        std::process::exit(130);
                    }
                }
            });
        });
    if let Err(e) = spawned {
        tracing::debug!("no signal handler: {e}");
    }
    flag
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
    let timeout = Duration::from_secs(args.kafka.connect_timeout);
    let partitions = kafka::partition_count(&args.kafka, &topic)?
        .ok_or_else(|| anyhow!("topic {topic} does not exist"))?;

    let mut cfg = kafka::client_config(&args.kafka);
    cfg.set("enable.partition.eof", "true");
    match &args.group {
        Some(g) => {
            cfg.set("group.id", g);
            cfg.set("enable.auto.commit", "true");
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
            cfg.set("enable.auto.commit", "false");
            cfg.set("enable.auto.offset.store", "false");
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
    let mut sink = match (tokens, args.output) {
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

    let stop = stop_flag();
    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let r = consume_loop(
        &args, &topic, partitions, &consumer, &mut sink, &mut out, &mut ends, &mut done, &stop,
    );
    let r = r.and_then(|n| {
        if let Sink::Table(t) = &mut sink {
            if !t.live || t.dirty || t.drawn_lines == 0 {
                output::ignore_broken_pipe(t.draw(&mut out)).context("cannot write to stdout")?;
            }
        }
        output::ignore_broken_pipe(out.flush()).context("cannot write to stdout")?;
        Ok(n)
    });
    if args.group.is_some() {
        match consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) => {}
            Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
            Err(e) => tracing::warn!("cannot commit the offsets of group: {e}"),
        }
    }
    let n = r?;
    tracing::info!("processed a total of {n} records");
    Ok(())
}

/// Polls until the end (with -e), --max-messages, a signal, or a closed
/// stdout; returns the number of records read.
#[allow(clippy::too_many_arguments)]
fn consume_loop(
    args: &Args,
    topic: &str,
    partitions: i32,
    consumer: &BaseConsumer<QuietContext>,
    sink: &mut Sink,
    out: &mut impl Write,
    ends: &mut HashMap<i32, i64>,
    done: &mut HashSet<i32>,
    stop: &AtomicBool,
) -> Result<u64> {
    let serde = args.serde;
    let mut n: u64 = 0;
    let mut last_check = Instant::now();
    let mut last_flush = Instant::now();
    // partitions whose end counts: all of them, or (in a group) ours
    let mut mine: Vec<i32> = if args.group.is_some() {
        Vec::new()
    } else {
        (0..partitions).collect()
    };
    loop {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        if args.max_messages.is_some_and(|m| n >= m) {
            break;
        }
        if args.exit_at_end && !mine.is_empty() && mine.iter().all(|p| done.contains(p)) {
            break;
        }
        let polled = consumer.poll(Duration::from_millis(100));
        let idle = polled.is_none();
        match polled {
            None => {}
            Some(Err(KafkaError::PartitionEOF(p))) if args.exit_at_end => {
                done.insert(p);
            }
            Some(Err(e)) => {
                if let Some(code) = e.rdkafka_error_code() {
                    if matches!(
                        code,
                        RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic
                    ) {
                        bail!("topic {topic} does not exist");
                    }
                }
                tracing::debug!("consumer: {e}");
            }
            Some(Ok(m)) => {
                let (p, o) = (m.partition(), m.offset());
                if let Some(&end) = ends.get(&p) {
                    if o >= end {
                        // written after we started: not ours to print
                        done.insert(p);
                        continue;
                    }
                    if o + 1 >= end {
                        done.insert(p);
                    }
                }
                n += 1;
                match decode(serde, &m) {
                    Ok((key, value)) => {
                        let rec = Record {
                            topic,
                            partition: p,
                            offset: o,
                            timestamp: m.timestamp().to_millis(),
                            key,
                            value,
                        };
                        if let Err(e) = sink.write(out, &rec) {
                            return closed(e).map(|()| n);
                        }
                    }
                    Err(e) => tracing::warn!(
                        "skipping the record at partition {p} offset {o} of {topic}: {e:#} \
                         (--serde {})",
                        serde_name(serde)
                    ),
                }
            }
        }
        if idle || last_flush.elapsed() >= Duration::from_millis(200) {
            last_flush = Instant::now();
            let r = match sink {
                Sink::Table(t) => t.tick(out),
                _ => out.flush(),
            };
            if let Err(e) = r {
                return closed(e).map(|()| n);
            }
        }
        if args.exit_at_end && (idle || last_check.elapsed() >= Duration::from_millis(100)) {
            last_check = Instant::now();
            if args.group.is_some() {
                mine = consumer
                    .assignment()
                    .map(|tpl| tpl.elements().iter().map(|e| e.partition()).collect())
                    .unwrap_or_default();
            }
            // a partition whose position passed its end (e.g. aborted
            // records or control markers at the end) is done too
            if let Ok(pos) = consumer.position() {
                for e in pos.elements() {
                    if let (Offset::Offset(at), Some(&end)) = (e.offset(), ends.get(&e.partition()))
                    {
                        if at >= end {
                            done.insert(e.partition());
                        }
                    }
                }
            }
        }
    }
    Ok(n)
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
