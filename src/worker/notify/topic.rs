//! `--events kafka:TOPIC`: S3 event notifications that an S3 server
//! (versitygw, MinIO, Ceph) publishes to a Kafka topic of the worker's
//! cluster.
//!
//! The lister reads every partition of the topic (assigned, not
//! subscribed: no group rebalance delays the first event) from the offsets
//! committed by the group `<app-id>-events` (the earliest ones the first
//! time: old events only name known keys or keys under other prefixes),
//! and commits an offset only after the ledger transaction with the
//! messages' discoveries committed ([`Topic::ack`]). A new lister after a
//! hand-over, or this one after an abandoned batch (a new consumer),
//! starts again from there.

use super::{notices_of, Taken, MAX_TAKE};
use crate::config::KafkaArgs;
use crate::kafka;
use crate::kafka::context::{base_consumer, QuietContext};
use anyhow::{anyhow, bail, Context, Result};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::time::Duration;

/// The group whose committed offsets say where the events stand.
pub fn group_id(app_id: &str) -> String {
    format!("{app_id}-events")
}

/// Checks that `topic` exists on the cluster (and may be described).
pub fn check(k: &KafkaArgs, topic: &str) -> Result<()> {
    match kafka::admin::partition_count(k, topic)
        .with_context(|| format!("cannot read events topic {topic}"))?
    {
        Some(_) => Ok(()),
        None => bail!(
            "events topic {topic} does not exist on {} (--events kafka:{topic})",
            k.brokers
        ),
    }
}

/// The topic, read by the lister.
pub struct Topic {
    name: String,
    consumer: BaseConsumer<QuietContext>,
}

impl Topic {
    /// A consumer of every partition of `topic`, from the committed offsets.
    pub fn open(k: &KafkaArgs, topic: &str) -> Result<Topic> {
        let mut c = kafka::client_config(k);
        c.set("client.id", format!("wordstream-events-{}", k.app_id))
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", "50");
        kafka::reapply_properties(&mut c, k, &["group.id", "enable.auto.commit"]);
        c.set("group.id", group_id(&k.app_id))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false");
        let consumer = base_consumer(&c)?;
        let md = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(k.connect_timeout))
            .with_context(|| format!("cannot read events topic {topic}"))?;
        let partitions = md
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .map(|t| t.partitions().len())
            .unwrap_or(0);
        if partitions == 0 {
            bail!("events topic {topic} does not exist");
        }
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions as i32 {
            tpl.add_partition_offset(topic, p, Offset::Stored)
                .map_err(|e| anyhow!("events topic {topic}: {e}"))?;
        }
        consumer
            .assign(&tpl)
            .with_context(|| format!("cannot read events topic {topic}"))?;
        Ok(Topic {
            name: topic.to_string(),
            consumer,
        })
    }

    /// What the consumer has fetched, without waiting.
    pub fn take(&mut self) -> Taken {
        let mut taken = Taken::default();
        let mut next: Vec<(i32, i64)> = Vec::new();
        for _ in 0..MAX_TAKE {
            match self.consumer.poll(Duration::ZERO) {
                None => break,
                Some(Ok(m)) => {
                    let (p, o) = (m.partition(), m.offset());
                    match next.iter_mut().find(|(q, _)| *q == p) {
                        Some(e) => e.1 = e.1.max(o + 1),
                        None => next.push((p, o + 1)),
                    }
                    let at = format!("events topic {} partition {p} offset {o}", self.name);
                    notices_of(m.payload().unwrap_or_default(), &at, &mut taken);
                }
                Some(Err(e)) => {
                    taken.error = Some(anyhow!("cannot read events topic {}: {e}", self.name));
                    break;
                }
            }
        }
        taken.ack.offsets = next;
        taken
    }

    /// Commits the offsets after the messages taken (in the background).
    pub fn ack(&mut self, offsets: &[(i32, i64)]) {
        let mut tpl = TopicPartitionList::new();
        for &(p, o) in offsets {
            if tpl
                .add_partition_offset(&self.name, p, Offset::Offset(o))
                .is_err()
            {
                return;
            }
        }
        if let Err(e) = self.consumer.commit(&tpl, CommitMode::Async) {
            tracing::warn!(
                "cannot commit the offsets of events topic {}: {e} (its events come again)",
                self.name
            );
        }
    }
}
