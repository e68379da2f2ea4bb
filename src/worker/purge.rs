//! Purging the repartition topic: its records are deltas that matter only
//! until the aggregate stage has committed past them, so the worker deletes
//! them up to its committed offsets (Kafka's DeleteRecords), as Kafka Streams
//! does with its repartition topics. The topic itself keeps records forever
//! (`retention.ms=-1`): a delta can never expire before it was aggregated,
//! however long the group is down.
//!
//! Purging also makes the group's offset expiry harmless for this topic:
//! committed offsets that expired (a group empty for longer than the
//! broker's `offsets.retention.minutes`) fall back to the earliest offset,
//! which is then the purge point, i.e. the last committed one.

use super::batch::Input;
use crate::config::KafkaArgs;
use crate::kafka::{self, QuietContext};
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Deletes consumed repartition records, at most once per interval.
pub struct Purger {
    topic: String,
    interval: Duration,
    /// Committed offsets not purged yet, by repartition partition.
    due: BTreeMap<i32, i64>,
    last: Instant,
    admin: Option<Arc<AdminClient<QuietContext>>>,
}

impl Purger {
    /// Purges `topic` every `interval`.
    pub fn new(topic: &str, interval: Duration) -> Purger {
        Purger {
            topic: topic.to_string(),
            interval,
            due: BTreeMap::new(),
            last: Instant::now(),
            admin: None,
        }
    }

    /// Notes the offsets a transaction committed.
    pub fn committed(&mut self, offsets: &BTreeMap<(Input, i32), i64>) {
        for (&(input, p), &off) in offsets {
            if input == Input::Repartition {
                self.due.insert(p, off);
            }
        }
    }

    /// Forgets partitions this worker no longer owns.
    pub fn retain(&mut self, owned: impl Fn(i32) -> bool) {
        self.due.retain(|&p, _| owned(p));
    }

    /// Deletes the records before the committed offsets when the interval
    /// has passed, in the background (a failure is logged and retried at the
    /// next interval: the records stay until then, nothing else happens).
    pub fn maybe_purge(&mut self, rt: &tokio::runtime::Runtime, args: &KafkaArgs) {
        if self.due.is_empty() || self.last.elapsed() < self.interval {
            return;
        }
        self.last = Instant::now();
        let admin = match &self.admin {
            Some(a) => Arc::clone(a),
            None => match rt.block_on(kafka::admin_client(args)) {
                Ok(a) => Arc::clone(self.admin.insert(Arc::new(a))),
                Err(e) => {
                    tracing::warn!("cannot purge {}: {e:#}", self.topic);
                    return;
                }
            },
        };
        let mut tpl = TopicPartitionList::new();
        for (&p, &off) in &self.due {
            let _ = tpl.add_partition_offset(&self.topic, p, Offset::Offset(off));
        }
        self.due.clear();
        let topic = self.topic.clone();
        rt.spawn(async move {
            let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
            match admin.delete_records(&tpl, &opts).await {
                Ok(res) => {
                    for e in res.elements().iter().filter(|e| e.error().is_err()) {
                        tracing::debug!("purging {topic}[{}]: {:?}", e.partition(), e.error());
                    }
                }
                Err(e) => tracing::warn!("cannot purge {topic}: {e}"),
            }
        });
    }
}
