//! The group consumer (Kafka Streams' `StreamThread` side of the loop): the
//! worker's membership in the consumer group of its app id, the rebalance
//! callbacks, polling a batch of the ledger and repartition topics, and
//! rewinding to the committed offsets after a failure.
//!
//! With an explicit `--worker-id`, membership is static
//! (`group.instance.id` = the worker id): a worker restarted with the same id
//! takes its partitions back at once, without a rebalance. A consumer that
//! fails fatally (e.g. a static member fenced by its own rejoin after its
//! session expired during a coordinator outage, librdkafka issue #3437) is
//! created again, unless that happens twice within [`FENCE_WINDOW`]: then
//! another process runs with this worker id.

use super::batch::{Input, Polled};
use super::ledger::Entry;
use super::txn::FENCE_WINDOW;
use super::Fatal;
use crate::config::{KafkaArgs, Topics};
use crate::events::{Event, Partitions};
use crate::kafka::{self, QuietContext};
use anyhow::{anyhow, Context, Result};
use rdkafka::client::{ClientContext, OAuthToken};
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{
    BaseConsumer, Consumer, ConsumerContext, ConsumerGroupMetadata, Rebalance,
};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most ledger records (objects) handled in one batch.
pub const MAX_OBJECTS_PER_BATCH: usize = 128;
/// Most bytes of objects counted in one batch.
pub const MAX_BYTES_PER_BATCH: u64 = 256 << 20;
/// Most records polled in one batch.
pub const MAX_RECORDS_PER_BATCH: usize = 50_000;

/// The consumer's context: the shared client behaviour ([`QuietContext`]),
/// and rebalance notifications.
#[derive(Default)]
pub struct GroupContext {
    /// Bumped by every rebalance callback.
    epoch: AtomicU64,
    /// Partitions revoked since the worker last looked: their local state
    /// is stale even if they come back.
    revoked: Mutex<HashSet<(String, i32)>>,
}

impl ClientContext for GroupContext {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn log(&self, level: RDKafkaLogLevel, fac: &str, msg: &str) {
        QuietContext.log(level, fac, msg)
    }

    fn error(&self, error: KafkaError, reason: &str) {
        QuietContext.error(error, reason)
    }

    fn generate_oauth_token(
        &self,
        config: Option<&str>,
    ) -> std::result::Result<OAuthToken, Box<dyn std::error::Error>> {
        QuietContext.generate_oauth_token(config)
    }
}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            Event::Revoked {
                partitions: partitions_of(tpl),
            }
            .emit();
            let mut revoked = self.revoked.lock().unwrap_or_else(|e| e.into_inner());
            for e in tpl.elements() {
                revoked.insert((e.topic().to_string(), e.partition()));
            }
            self.epoch.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                Event::Assigned {
                    partitions: partitions_of(tpl),
                }
                .emit();
                self.epoch.fetch_add(1, Ordering::SeqCst);
            }
            Rebalance::Error(e) => tracing::warn!("rebalance error: {e}"),
            Rebalance::Revoke(_) => {}
        }
    }
}

fn partitions_of(tpl: &TopicPartitionList) -> Partitions {
    let mut by_topic = Partitions::new();
    for e in tpl.elements() {
        by_topic
            .entry(e.topic().to_string())
            .or_default()
            .push(e.partition());
    }
    by_topic
}

/// How the consumer is made.
#[derive(Clone, Debug)]
pub struct GroupConfig {
    pub kafka: KafkaArgs,
    pub worker_id: String,
    pub static_membership: bool,
    /// `-X` properties the worker must not take (exactly once depends on them).
    pub own_properties: &'static [&'static str],
}

/// The partitions this worker owns, by input topic.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Assignment {
    pub ledger: BTreeSet<i32>,
    pub repartition: BTreeSet<i32>,
}

impl Assignment {
    /// Owns nothing.
    pub fn is_empty(&self) -> bool {
        self.ledger.is_empty() && self.repartition.is_empty()
    }
}

/// A batch of polled records.
pub enum Poll {
    /// Records (maybe none) polled within one rebalance epoch.
    Batch(Vec<Polled>),
    /// The consumer was lost and created again: local state must be rebuilt.
    Rejoined,
}

/// The worker's group membership.
pub struct Group {
    config: GroupConfig,
    topics: Topics,
    consumer: BaseConsumer<GroupContext>,
    fenced_at: Option<Instant>,
}

impl Group {
    /// Creates the consumer and subscribes to the ledger and repartition
    /// topics (the group forms at the first poll).
    pub fn join(config: GroupConfig, topics: Topics) -> Result<Group> {
        let consumer = create(&config, &topics)?;
        Ok(Group {
            config,
            topics,
            consumer,
            fenced_at: None,
        })
    }

    /// Bumped by every rebalance callback.
    pub fn epoch(&self) -> u64 {
        self.consumer.context().epoch.load(Ordering::SeqCst)
    }

    /// Partitions revoked since the last call.
    pub fn take_revoked(&self) -> HashSet<(String, i32)> {
        std::mem::take(
            &mut *self
                .consumer
                .context()
                .revoked
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        )
    }

    /// The current assignment.
    pub fn assignment(&self) -> Result<Assignment> {
        let tpl = self
            .consumer
            .assignment()
            .context("cannot read assignment")?;
        let mut a = Assignment::default();
        for e in tpl.elements() {
            if e.topic() == self.topics.ledger {
                a.ledger.insert(e.partition());
            } else if e.topic() == self.topics.repartition {
                a.repartition.insert(e.partition());
            }
        }
        Ok(a)
    }

    /// The group metadata a transaction commits offsets for.
    pub fn metadata(&self) -> Option<ConsumerGroupMetadata> {
        self.consumer.group_metadata()
    }

    /// The offsets to commit, as a partition list.
    pub fn offsets(
        &self,
        offsets: &std::collections::BTreeMap<(Input, i32), i64>,
    ) -> Result<TopicPartitionList> {
        let mut tpl = TopicPartitionList::new();
        for (&(input, part), &off) in offsets {
            let topic = match input {
                Input::Ledger => &self.topics.ledger,
                Input::Repartition => &self.topics.repartition,
            };
            tpl.add_partition_offset(topic, part, Offset::Offset(off))?;
        }
        Ok(tpl)
    }

    /// Polls records until the batch is full, nothing more comes quickly, or
    /// a rebalance starts. Waits at most `first_wait` for the first record.
    pub fn poll_batch(&mut self, epoch: u64, first_wait: Duration) -> Result<Poll> {
        let mut polled = Vec::new();
        let mut objects = 0;
        let mut bytes = 0u64;
        let mut wait = first_wait;
        while polled.len() < MAX_RECORDS_PER_BATCH
            && objects < MAX_OBJECTS_PER_BATCH
            && bytes < MAX_BYTES_PER_BATCH
        {
            let msg = match self.consumer.poll(wait) {
                None => break,
                Some(Err(e)) => {
                    if self.lost(&e)? {
                        return Ok(Poll::Rejoined);
                    }
                    tracing::debug!("consumer: {e}");
                    break;
                }
                Some(Ok(m)) => m,
            };
            wait = Duration::from_millis(5);
            if self.epoch() != epoch {
                break;
            }
            let Some(key) = msg.key() else { continue };
            let input = if msg.topic() == self.topics.ledger {
                Input::Ledger
            } else {
                Input::Repartition
            };
            if input == Input::Ledger {
                if let Some(Ok(Entry::Discovered { size, .. })) = msg.payload().map(Entry::parse) {
                    objects += 1;
                    bytes += size;
                }
            }
            polled.push(Polled {
                input,
                partition: msg.partition(),
                offset: msg.offset(),
                key: key.to_vec(),
                value: msg.payload().map(<[u8]>::to_vec),
            });
        }
        Ok(Poll::Batch(polled))
    }

    /// Serves the group for `d` (or until `stop`): librdkafka delivers
    /// rebalances and fatal errors only through poll, and a consumer that is
    /// not polled cannot rejoin its group. Records polled meanwhile are
    /// dropped: only call it when a rewind follows.
    pub fn idle_poll(&mut self, d: Duration, stop: &dyn Fn() -> bool) -> Result<()> {
        let until = Instant::now() + d;
        while Instant::now() < until && !stop() {
            if let Some(Err(e)) = self.consumer.poll(Duration::from_millis(100)) {
                self.lost(&e)?;
            }
        }
        Ok(())
    }

    /// Seeks every assigned partition back to its committed offset (after a
    /// failed transaction or an outage); rejoins when seeking fails.
    pub fn rewind(&mut self) -> Result<()> {
        let assignment = self
            .consumer
            .assignment()
            .context("cannot read assignment")?;
        if assignment.count() == 0 {
            return Ok(());
        }
        let committed = self
            .consumer
            .committed_offsets(assignment, Duration::from_secs(5))
            .context("cannot read committed offsets")?;
        let mut tpl = TopicPartitionList::new();
        for e in committed.elements() {
            let off = match e.offset() {
                Offset::Offset(o) => Offset::Offset(o),
                _ => Offset::Beginning,
            };
            tpl.add_partition_offset(e.topic(), e.partition(), off)?;
        }
        let failed = match self.consumer.seek_partitions(tpl, Duration::from_secs(10)) {
            Ok(res) => res.elements().iter().any(|e| e.error().is_err()),
            Err(_) => true,
        };
        if failed {
            // Rejoining resets every position to the committed offsets.
            tracing::warn!("cannot seek; rejoining the group");
            self.consumer.unsubscribe();
            subscribe(&self.consumer, &self.topics)?;
        }
        Ok(())
    }

    /// Leaves the group (a static member only stops heartbeating: its
    /// partitions stay with its id for the session timeout).
    pub fn leave(&self) {
        self.consumer.unsubscribe();
    }

    /// Whether `e` lost the consumer; if so it is created again (true), or
    /// the worker must exit (an error wrapping [`Fatal`]).
    fn lost(&mut self, e: &KafkaError) -> Result<bool> {
        if !matches!(
            e.rdkafka_error_code(),
            Some(RDKafkaErrorCode::Fatal | RDKafkaErrorCode::FencedInstanceId)
        ) {
            return Ok(false);
        }
        if self.fenced_at.is_some_and(|t| t.elapsed() < FENCE_WINDOW) {
            return Err(anyhow!(Fatal(format!(
                "consumer fenced twice within {} s: another process runs with --worker-id {} in group {} ({e})",
                FENCE_WINDOW.as_secs(),
                self.config.worker_id,
                self.config.kafka.app_id
            ))));
        }
        tracing::warn!(
            "consumer lost ({e}); rejoining group {}",
            self.config.kafka.app_id
        );
        self.consumer = create(&self.config, &self.topics)?;
        self.fenced_at = Some(Instant::now());
        Ok(true)
    }
}

fn subscribe(consumer: &BaseConsumer<GroupContext>, topics: &Topics) -> Result<()> {
    consumer
        .subscribe(&[&topics.ledger, &topics.repartition])
        .context("cannot subscribe")
}

/// The group consumer of the ledger and repartition topics, subscribed.
fn create(config: &GroupConfig, topics: &Topics) -> Result<BaseConsumer<GroupContext>> {
    let mut c = kafka::client_config(&config.kafka);
    if config.static_membership {
        c.set("group.instance.id", &config.worker_id);
    }
    c.set("client.id", format!("wordstream-{}", config.worker_id))
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "2000")
        .set("fetch.wait.max.ms", "100");
    for (k, v) in &config.kafka.property {
        if !config.own_properties.contains(&k.as_str()) {
            c.set(k, v);
        }
    }
    let consumer: BaseConsumer<GroupContext> = c
        .set("group.id", &config.kafka.app_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("isolation.level", "read_committed")
        .create_with_context(GroupContext::default())
        .context("cannot create Kafka consumer")?;
    kafka::prime(consumer.client()); // OAUTHBEARER: the first token at once
    subscribe(&consumer, topics)?;
    Ok(consumer)
}
