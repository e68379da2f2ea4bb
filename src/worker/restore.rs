//! Reading a topic partition from the beginning to its end (read_committed):
//! how a worker rebuilds its table from the changelog and its view of the
//! ledger when it is assigned partitions.

use crate::config::KafkaArgs;
use crate::kafka;
use anyhow::{Context, Result};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// Calls `f(partition, key, value)` for every committed record of the given
/// partitions of `topic`, from the start to the end as of now. Logs progress
/// like Faust's recovery.
pub fn read_to_end(
    args: &KafkaArgs,
    topic: &str,
    partitions: &[i32],
    mut f: impl FnMut(i32, &[u8], Option<&[u8]>),
) -> Result<u64> {
    if partitions.is_empty() {
        return Ok(0);
    }
    let consumer: BaseConsumer = kafka::client_config(args)
        .set("group.id", format!("{}-restore", args.app_id))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", "read_committed")
        .create()
        .context("cannot create Kafka consumer")?;
    let timeout = Duration::from_secs(args.connect_timeout);
    let mut tpl = TopicPartitionList::new();
    let mut remaining: HashSet<i32> = HashSet::new();
    let mut total: i64 = 0;
    for &p in partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, p, timeout)
            .with_context(|| format!("cannot read offsets of {topic}[{p}]"))?;
        if high > low {
            tpl.add_partition_offset(topic, p, Offset::Beginning)?;
            remaining.insert(p);
            total += high - low;
        }
    }
    if remaining.is_empty() {
        return Ok(0);
    }
    consumer.assign(&tpl).context("cannot assign partitions")?;
    let started = Instant::now();
    let mut last_log = Instant::now();
    let mut read = 0u64;
    while !remaining.is_empty() {
        match consumer.poll(Duration::from_millis(500)) {
            Some(Ok(m)) => {
                read += 1;
                if let Some(key) = m.key() {
                    f(m.partition(), key, m.payload());
                }
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                remaining.remove(&p);
            }
            Some(Err(e)) => tracing::warn!("reading {topic}: {e}"),
            None => {}
        }
        if last_log.elapsed() > Duration::from_secs(2) {
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
    Ok(read)
}
