//! Reading a topic partition from the beginning to its end (read_committed):
//! how a worker rebuilds its table from the changelog and its view of the
//! ledger when it is assigned partitions.

use crate::config::KafkaArgs;
use crate::kafka::{self, QuietContext};
use anyhow::{bail, Context, Result};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A restore that makes no progress for this long fails (the caller
/// retries it later): the brokers are gone.
const STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// A read_committed consumer for assigned partitions (no group
/// membership, no commits) that reports each partition's end, its group
/// id `<app id>-<purpose>`.
pub fn reader(args: &KafkaArgs, purpose: &str) -> Result<BaseConsumer<QuietContext>> {
    let consumer: BaseConsumer<QuietContext> = kafka::client_config(args)
        .set("group.id", format!("{}-{purpose}", args.app_id))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", "read_committed")
        // The end shows as an empty fetch: do not let the broker hold it.
        .set("fetch.wait.max.ms", "10")
        // The partitions' leaders connected at once (see txn.rs).
        .set("enable.sparse.connections", "false")
        .create_with_context(QuietContext)
        .context("cannot create Kafka consumer")?;
    kafka::prime(consumer.client()); // OAUTHBEARER: a token before the first poll
    Ok(consumer)
}

/// Calls `f(partition, key, value)` for every committed record of the given
/// partitions of `topic`, from the start to the end as of now. Logs progress
/// like Faust's recovery. Fails when the brokers do not answer for
/// [`STALL_TIMEOUT`].
pub fn read_to_end(
    args: &KafkaArgs,
    topic: &str,
    partitions: &[i32],
    f: impl FnMut(i32, &[u8], Option<&[u8]>),
) -> Result<u64> {
    read_to_end_until(args, topic, partitions, &AtomicBool::new(false), f)
}

/// A consumer closed on a thread of its own when dropped: librdkafka's
/// close of a consumer with a group id waits for its group handler (which
/// looks for a coordinator, though the consumer only reads assigned
/// partitions) to end: measured, 100 ms of most restores, 0.5-0.7 s of
/// some, spent after the restore was done.
struct ClosedAside(Option<BaseConsumer<QuietContext>>);

impl std::ops::Deref for ClosedAside {
    type Target = BaseConsumer<QuietContext>;
    fn deref(&self) -> &Self::Target {
        self.0.as_ref().expect("a consumer until dropped")
    }
}

impl Drop for ClosedAside {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            // Without a thread (none left), it closes here.
            let _ = std::thread::Builder::new()
                .name("restore-close".into())
                .spawn(move || drop(c));
        }
    }
}

/// [`read_to_end`] that also gives up (with an error) when `stop` is set.
pub fn read_to_end_until(
    args: &KafkaArgs,
    topic: &str,
    partitions: &[i32],
    stop: &AtomicBool,
    f: impl FnMut(i32, &[u8], Option<&[u8]>),
) -> Result<u64> {
    read_to_ends(args, topic, partitions, stop, f).map(|(read, _)| read)
}

/// [`read_to_end_until`], also returning where each partition's log ended
/// when the read began (its read_uncommitted high watermark: every record
/// before it was read or was aborted).
pub fn read_to_ends(
    args: &KafkaArgs,
    topic: &str,
    partitions: &[i32],
    stop: &AtomicBool,
    mut f: impl FnMut(i32, &[u8], Option<&[u8]>),
) -> Result<(u64, BTreeMap<i32, i64>)> {
    let mut ends = BTreeMap::new();
    if partitions.is_empty() {
        return Ok((0, ends));
    }
    let consumer = ClosedAside(Some(reader(args, "restore")?));
    let log_end = log_end_client(args)?;
    let mut tpl = TopicPartitionList::new();
    let mut remaining: HashSet<i32> = HashSet::new();
    let mut total: i64 = 0;
    for &p in partitions {
        // Read up to the log's end as of now, once everything before it is
        // stable: a transaction still open there (a stalled worker's commit,
        // or its markers not yet written) resolves first, committed or
        // aborted, so the restore never stops short of a committed record.
        let started = Instant::now();
        let (_, end) = watermarks(&log_end, topic, p, stop)?;
        ends.insert(p, end);
        let (low, high) = loop {
            let (low, stable) = watermarks(&consumer, topic, p, stop)?;
            if stable >= end {
                break (low, stable);
            }
            if started.elapsed() > STALL_TIMEOUT {
                bail!(
                    "{topic}[{p}] has had a transaction open for more than {} s",
                    STALL_TIMEOUT.as_secs()
                );
            }
            tracing::debug!("{topic}[{p}]: waiting for an open transaction to end");
            std::thread::sleep(Duration::from_millis(20));
        };
        if high > low {
            tpl.add_partition_offset(topic, p, Offset::Beginning)?;
            remaining.insert(p);
            total += high - low;
        }
    }
    if remaining.is_empty() {
        return Ok((0, ends));
    }
    consumer.assign(&tpl).context("cannot assign partitions")?;
    let started = Instant::now();
    let mut last_log = Instant::now();
    let mut last_progress = Instant::now();
    let mut read = 0u64;
    while !remaining.is_empty() {
        if stop.load(Ordering::Relaxed) {
            bail!("stopping");
        }
        if last_progress.elapsed() > STALL_TIMEOUT {
            bail!(
                "reading {topic}: no progress for {} s (partitions {:?} not at their end)",
                STALL_TIMEOUT.as_secs(),
                remaining
            );
        }
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                read += 1;
                last_progress = Instant::now();
                if let Some(key) = m.key() {
                    f(m.partition(), key, m.payload());
                }
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                remaining.remove(&p);
                last_progress = Instant::now();
            }
            Some(Err(e)) => tracing::debug!("reading {topic}: {e}"),
            None => {}
        }
        if last_log.elapsed() > Duration::from_secs(2) {
            if last_progress.elapsed() < Duration::from_secs(2) {
                super::watchdog::alive();
            }
            tracing::info!(
                "recovering {topic}: {read} records read, about {} remaining",
                (total - read as i64).max(0)
            );
            last_log = Instant::now();
        }
    }
    tracing::debug!(
        "read {read} records of {topic} {partitions:?} in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok((read, ends))
}

/// The log end (read_uncommitted high watermark) of each of `partitions`
/// of `topic`: where the next record will land. A table whose partition
/// still ends where it did when this worker last wrote or read it has had
/// no other writer since (see `state::State::align`).
pub fn log_ends(
    args: &KafkaArgs,
    topic: &str,
    partitions: &[i32],
    stop: &AtomicBool,
) -> Result<BTreeMap<i32, i64>> {
    if partitions.is_empty() {
        return Ok(Default::default());
    }
    let client = log_end_client(args)?;
    partitions
        .iter()
        .map(|&p| Ok((p, watermarks(&client, topic, p, stop)?.1)))
        .collect()
}

/// A client that sees the log's true end (read_uncommitted): under
/// read_committed the watermarks stop at the last stable offset, before
/// open transactions.
fn log_end_client(args: &KafkaArgs) -> Result<BaseConsumer<QuietContext>> {
    kafka::base_consumer(kafka::client_config(args).set("isolation.level", "read_uncommitted"))
}

/// The low and high watermarks of `topic[p]` as `client` sees them (the
/// high one is the last stable offset under read_committed), retried while
/// the brokers do not answer, for at most [`STALL_TIMEOUT`].
fn watermarks<C: ConsumerContext>(
    client: &BaseConsumer<C>,
    topic: &str,
    p: i32,
    stop: &AtomicBool,
) -> Result<(i64, i64)> {
    let started = Instant::now();
    loop {
        match client.fetch_watermarks(topic, p, Duration::from_secs(5)) {
            Ok(w) => return Ok(w),
            Err(e) => {
                if stop.load(Ordering::Relaxed) {
                    bail!("stopping");
                }
                if started.elapsed() > STALL_TIMEOUT {
                    return Err(e).with_context(|| format!("cannot read offsets of {topic}[{p}]"));
                }
                tracing::debug!("offsets of {topic}[{p}]: {e} (retrying)");
                std::thread::sleep(Duration::from_millis(250));
            }
        }
    }
}
