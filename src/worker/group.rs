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
use crate::kafka;
use anyhow::{anyhow, bail, Context, Result};
use rdkafka::consumer::{
    BaseConsumer, Consumer, ConsumerContext, ConsumerGroupMetadata, Rebalance,
};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Most ledger records (objects) handled in one batch.
pub const MAX_OBJECTS_PER_BATCH: usize = 512;
/// Most bytes of objects counted in one batch.
pub const MAX_BYTES_PER_BATCH: u64 = 256 << 20;
/// Most records polled in one batch.
pub const MAX_RECORDS_PER_BATCH: usize = 50_000;
/// Longest wait for committed offsets to become stable (longer than the
/// transaction timeout, after which the coordinator aborts an open one).
const STABLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The consumer's context: the shared client behaviour ([`QuietContext`]),
/// and rebalance notifications.
#[derive(Default)]
pub struct GroupContext {
    /// Bumped by every rebalance callback.
    epoch: AtomicU64,
}

kafka::context::quiet_client_context!(GroupContext);

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            Event::Revoked {
                partitions: partitions_of(tpl),
            }
            .emit();
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

/// Committed offsets by input partition (-1: none yet).
pub type Committed = BTreeMap<(Input, i32), i64>;

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

    /// The input a topic is, if it is one.
    fn input_of(&self, topic: &str) -> Option<Input> {
        if topic == self.topics.ledger {
            Some(Input::Ledger)
        } else if topic == self.topics.repartition {
            Some(Input::Repartition)
        } else {
            None
        }
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
    pub fn offsets(&self, offsets: &Committed) -> Result<TopicPartitionList> {
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

    /// Waits until the committed offsets of the whole assignment are stable:
    /// no transaction that commits offsets for them is still open. A worker
    /// that stalled inside its commit (a VM pause, `kill -STOP`) may still
    /// complete that transaction after its partitions moved here; restoring
    /// before it resolves would miss its totals (KIP-447's rule). librdkafka
    /// asks for stable offsets under read_committed and retries while they
    /// are not; an open transaction resolves within the transaction timeout.
    ///
    /// Returns the committed offsets (-1: none yet).
    pub fn wait_stable(&self, stop: &dyn Fn() -> bool) -> Result<Committed> {
        let started = Instant::now();
        let assignment = self
            .consumer
            .assignment()
            .context("cannot read assignment")?;
        if assignment.count() == 0 {
            return Ok(Committed::new());
        }
        loop {
            match self
                .consumer
                .committed_offsets(assignment.clone(), Duration::from_secs(5))
            {
                Ok(tpl) => {
                    return Ok(tpl
                        .elements()
                        .iter()
                        .filter_map(|e| {
                            let input = self.input_of(e.topic())?;
                            let off = match e.offset() {
                                Offset::Offset(o) => o,
                                _ => -1,
                            };
                            Some(((input, e.partition()), off))
                        })
                        .collect())
                }
                Err(e) if started.elapsed() > STABLE_TIMEOUT || stop() => {
                    return Err(e).context("committed offsets did not become stable")
                }
                Err(e) => tracing::debug!("committed offsets not stable yet: {e}"),
            }
        }
    }

    /// The offsets a transaction without consumed records commits, so that
    /// it is fenced like any other (KIP-447: a zombie of an older group
    /// generation cannot commit): the current position of ledger partition
    /// 0, which the lister owns, as its committed offset. Empty when this
    /// worker does not own it.
    pub fn fence_offsets(&self) -> Result<TopicPartitionList> {
        let mut tpl = TopicPartitionList::new();
        let positions = self.consumer.position().context("cannot read positions")?;
        let p0 = positions
            .elements_for_topic(&self.topics.ledger)
            .into_iter()
            .find(|e| e.partition() == 0);
        let Some(p0) = p0 else { return Ok(tpl) };
        let offset = match p0.offset() {
            Offset::Offset(o) => o,
            _ => {
                let mut one = TopicPartitionList::new();
                one.add_partition(&self.topics.ledger, 0);
                let committed = self
                    .consumer
                    .committed_offsets(one, Duration::from_secs(10))
                    .context("cannot read committed offsets")?;
                match committed.elements().first().map(|e| e.offset()) {
                    Some(Offset::Offset(o)) => o,
                    _ => 0,
                }
            }
        };
        tpl.add_partition_offset(&self.topics.ledger, 0, Offset::Offset(offset))?;
        Ok(tpl)
    }

    /// Serves the group while `work` runs on other threads (reading and
    /// counting objects can take longer than `max.poll.interval.ms`): after
    /// [`SERVE_AFTER`], the assigned partitions are paused, the consumer is polled every 100 ms
    /// so that the member stays in the group, then the partitions resume at
    /// the positions they had. Returns `work`'s output.
    pub fn serve_while<T>(&mut self, mut work: impl FnMut(Duration) -> Option<T>) -> Result<T> {
        // Most batches are done long before the group needs a poll
        // (`max.poll.interval.ms`, 300 s; heartbeats have their own
        // thread): pausing costs the prefetched records, so only work that
        // lasts goes on with the partitions paused.
        let started = Instant::now();
        while started.elapsed() < SERVE_AFTER {
            if let Some(out) = work(Duration::from_millis(100)) {
                return Ok(out);
            }
        }
        let assignment = self
            .consumer
            .assignment()
            .context("cannot read assignment")?;
        let positions = self.consumer.position().context("cannot read positions")?;
        let paused = assignment.count() > 0 && self.consumer.pause(&assignment).is_ok();
        let mut discarded = false;
        let out = loop {
            if let Some(out) = work(Duration::from_millis(100)) {
                break out;
            }
            let error = match self.consumer.poll(Duration::ZERO) {
                Some(Ok(_)) => {
                    discarded = true;
                    None
                }
                Some(Err(e)) => Some(e),
                None => None,
            };
            if let Some(e) = error {
                if self.lost(&e)? {
                    bail!("the group consumer was lost while counting; the batch is done again");
                }
            }
        };
        if paused {
            let _ = self.consumer.resume(&assignment);
        }
        if discarded {
            let mut tpl = TopicPartitionList::new();
            for e in positions.elements() {
                if let Offset::Offset(o) = e.offset() {
                    tpl.add_partition_offset(e.topic(), e.partition(), Offset::Offset(o))?;
                }
            }
            if tpl.count() > 0 {
                let _ = self.consumer.seek_partitions(tpl, Duration::from_secs(10));
            }
        }
        Ok(out)
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
                match msg.payload().map(Entry::parse) {
                    Some(Ok(Entry::Discovered { size, .. })) => {
                        objects += 1;
                        bytes += size;
                    }
                    // A range of a split object (§9): its bytes.
                    Some(Ok(Entry::Range(w))) => {
                        objects += 1;
                        bytes += w.end - w.start;
                    }
                    _ => {}
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

/// How long a batch's counting runs before [`Group::serve_while`] starts
/// polling the consumer (with the partitions paused) to stay in the group.
const SERVE_AFTER: Duration = Duration::from_secs(2);

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
        .set("fetch.wait.max.ms", "100")
        // Its group coordinator found at once, not on a timer (see txn.rs).
        .set("enable.sparse.connections", "false");
    kafka::reapply_properties(&mut c, &config.kafka, config.own_properties);
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
