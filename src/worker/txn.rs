//! The transactional producer (what Kafka Streams calls its
//! `StreamsProducer`): one per worker, with transactional id
//! `<app id>-<worker id>`. A batch is one transaction: begin, send its
//! records, add the consumed offsets, commit. A failure is classified for the
//! loop as a [`TxnError`]:
//! - `Retry`: the transaction was aborted; the batch is done again;
//! - `Lost`: the producer is gone (fenced, or a fatal error); it is created
//!   again (fencing its older self) before the next batch;
//! - `Fatal`: fenced twice in a short time: another process runs with this
//!   worker id; the worker exits.

use super::batch::{Output, Record};
use super::watchdog::step;
use super::Fatal;
use crate::config::{KafkaArgs, Topics};
use crate::kafka;
use anyhow::{anyhow, bail, Context, Result};
use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::TopicPartitionList;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The producer's context: [`QuietContext`], plus the offsets the records
/// sent with an index (their delivery opaque) landed at, so that a record
/// of the transaction can say where an earlier one is (see
/// [`Txn::commit_staged`]).
#[derive(Default)]
pub struct DeliveryContext {
    offsets: Mutex<HashMap<usize, i64>>,
    /// The changelog topic, and the last offset of the open transaction's
    /// records in each of its partitions.
    changelog: String,
    changelog_last: Mutex<BTreeMap<i32, i64>>,
}

impl DeliveryContext {
    fn new(changelog: &str) -> DeliveryContext {
        DeliveryContext {
            changelog: changelog.to_string(),
            ..DeliveryContext::default()
        }
    }
}

/// The delivery opaque of records whose offset nobody needs.
const UNTRACKED: usize = usize::MAX;

kafka::context::quiet_client_context!(DeliveryContext);

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, index: usize) {
        match result {
            Ok(m) => {
                if index != UNTRACKED {
                    if let Ok(mut o) = self.offsets.lock() {
                        o.insert(index, m.offset());
                    }
                }
                if m.topic() == self.changelog {
                    if let Ok(mut last) = self.changelog_last.lock() {
                        let e = last.entry(m.partition()).or_insert(m.offset());
                        *e = (*e).max(m.offset());
                    }
                }
            }
            // A failed delivery fails the transaction's commit.
            Err((e, _)) => tracing::debug!("delivery failed: {e}"),
        }
    }
}

type TxnProducer = ThreadedProducer<DeliveryContext>;

/// Timeout of transactional calls.
pub const TXN_TIMEOUT: Duration = Duration::from_secs(30);
/// A producer fenced twice within this time: another process has our id.
pub const FENCE_WINDOW: Duration = Duration::from_secs(60);

/// Why a batch's transaction did not commit.
#[derive(Debug)]
pub enum TxnError {
    /// Aborted; do the batch again.
    Retry(anyhow::Error),
    /// The producer is lost; it is recreated before the next batch.
    Lost(anyhow::Error),
    /// Retrying cannot help: exit.
    Fatal(anyhow::Error),
}

/// How the producer is made.
#[derive(Clone, Debug)]
pub struct TxnConfig {
    pub kafka: KafkaArgs,
    pub worker_id: String,
    /// `-X` properties the worker must not take (exactly once depends on them).
    pub own_properties: &'static [&'static str],
}

impl TxnConfig {
    /// The transactional id: `<app id>-<worker id>`.
    pub fn transactional_id(&self) -> String {
        format!("{}-{}", self.kafka.app_id, self.worker_id)
    }
}

/// The worker's transactional producer.
pub struct Txn {
    config: TxnConfig,
    topics: Topics,
    /// `None` after the producer was lost: recreated by [`Txn::ensure`].
    producer: Option<Arc<TxnProducer>>,
    fenced_at: Option<Instant>,
}

impl Txn {
    /// Creates the producer and initialises its transactions, which fences
    /// any older process with the same transactional id and aborts its open
    /// transaction.
    pub fn start(config: TxnConfig, topics: Topics) -> Result<Txn> {
        let producer = create(&config, &topics.changelog)?;
        Ok(Txn {
            config,
            topics,
            producer: Some(Arc::new(producer)),
            fenced_at: None,
        })
    }

    /// Recreates the producer if it was lost.
    pub fn ensure(&mut self) -> Result<()> {
        if self.producer.is_none() {
            self.producer = Some(Arc::new(create(&self.config, &self.topics.changelog)?));
        }
        Ok(())
    }

    /// Writes `records` and commits them with the consumed `offsets` (when
    /// any) in one transaction, on behalf of the group `cgm`.
    pub fn commit(
        &mut self,
        records: &[Record],
        offsets: &TopicPartitionList,
        cgm: Option<ConsumerGroupMetadata>,
    ) -> std::result::Result<(), TxnError> {
        self.commit_staged(&[], |_| records.to_vec(), offsets, cgm)
    }

    /// [`Txn::commit`] in two stages: `first` is sent and delivered (not
    /// committed) before `rest` is made from the offsets it landed at (in
    /// the order of `first`) and sent; then all of it commits at once.
    pub fn commit_staged(
        &mut self,
        first: &[Record],
        rest: impl FnOnce(&[i64]) -> Vec<Record>,
        offsets: &TopicPartitionList,
        cgm: Option<ConsumerGroupMetadata>,
    ) -> std::result::Result<(), TxnError> {
        let Some(producer) = self.producer.clone() else {
            return Err(TxnError::Lost(anyhow!("no transactional producer")));
        };
        let p = &producer;
        let topic_of = |o: Output| match o {
            Output::Ledger => &self.topics.ledger,
            Output::Repartition => &self.topics.repartition,
            Output::Changelog => &self.topics.changelog,
            Output::Contributions => &self.topics.contributions,
        };
        let result = (|| -> Result<()> {
            step("commit: send the records");
            if let Ok(mut last) = p.context().changelog_last.lock() {
                last.clear();
            }
            p.begin_transaction()?;
            let mut landed = Vec::new();
            if !first.is_empty() {
                if let Ok(mut o) = p.context().offsets.lock() {
                    o.clear();
                }
                for (i, r) in first.iter().enumerate() {
                    send(p, topic_of(r.topic), r, i)?;
                }
                step("commit: wait for deliveries");
                drain(p)?;
                landed = delivered(p, first.len())?;
                step("commit: send the records");
            }
            let records = rest(&landed);
            for r in &records {
                send(p, topic_of(r.topic), r, UNTRACKED)?;
            }
            if offsets.count() > 0 {
                let cgm = cgm.ok_or_else(|| anyhow!("no consumer group metadata"))?;
                step("commit: send the offsets");
                send_offsets(p, offsets, cgm, TXN_TIMEOUT, OFFSETS_HANG)?;
                if records.iter().any(|r| r.topic == Output::Changelog) {
                    // A test's stall between offsets accepted and commit.
                    crate::failpoint::hit("commit.after_offsets_with_totals");
                }
            }
            step("commit: wait for deliveries");
            drain(p)?; // commit_transaction's own flush then returns at once
            step("commit: commit the transaction");
            p.commit_transaction(TXN_TIMEOUT)?;
            Ok(())
        })();
        let Err(e) = result else { return Ok(()) };
        if e.is::<Hung>() {
            // Another call on it could block as well: abandoned, not aborted.
            return Err(self.lost(e));
        }
        if let Some(KafkaError::Transaction(te)) = e.downcast_ref::<KafkaError>() {
            if te.is_fatal() {
                return Err(self.lost(e));
            }
        }
        step("commit: abort the transaction");
        match p.abort_transaction(TXN_TIMEOUT) {
            Ok(()) => Err(TxnError::Retry(e)),
            Err(ae) => Err(self.lost(anyhow!(ae).context(format!("cannot abort ({e:#})")))),
        }
    }

    /// Where each changelog partition the last committed transaction wrote
    /// to ends now: after its last record and the commit marker (last + 2).
    /// Call right after a successful commit.
    pub fn changelog_ends(&self) -> BTreeMap<i32, i64> {
        let Some(p) = self.producer.as_ref() else {
            return BTreeMap::new();
        };
        p.context()
            .changelog_last
            .lock()
            .map(|last| last.iter().map(|(&part, &o)| (part, o + 2)).collect())
            .unwrap_or_default()
    }

    /// Drops the producer (recreated before the next batch), unless it was
    /// fenced twice within [`FENCE_WINDOW`].
    ///
    /// A fenced producer does not always mean another process with this
    /// worker id: a transaction left open across a broker outage longer
    /// than `transaction.timeout.ms` is aborted by the coordinator, which
    /// bumps the producer epoch exactly as a newer instance would. Fenced
    /// again soon after re-initialising, though, there is another process.
    fn lost(&mut self, e: anyhow::Error) -> TxnError {
        step("close the lost transactional producer");
        self.producer = None;
        let fenced = e.chain().any(|c| {
            matches!(
                c.downcast_ref::<KafkaError>(),
                Some(KafkaError::Transaction(te)) if matches!(
                    te.code(),
                    RDKafkaErrorCode::Fenced
                        | RDKafkaErrorCode::ProducerFenced
                        | RDKafkaErrorCode::InvalidProducerEpoch
                )
            )
        });
        if fenced {
            if self.fenced_at.is_some_and(|t| t.elapsed() < FENCE_WINDOW) {
                return TxnError::Fatal(anyhow!(Fatal(format!(
                    "fenced twice within {} s: another process runs with --worker-id {} (transactional id {}): {e:#}",
                    FENCE_WINDOW.as_secs(),
                    self.config.worker_id,
                    self.config.transactional_id()
                ))));
            }
            self.fenced_at = Some(Instant::now());
        }
        TxnError::Lost(e)
    }
}

/// The transactional producer, with its transactions initialised.
fn create(config: &TxnConfig, changelog: &str) -> Result<TxnProducer> {
    let mut c = kafka::client_config(&config.kafka);
    // As Kafka Streams under exactly-once: a transaction is open only while
    // a batch's output is sent and committed (counting happens before), and
    // a killed worker's open transaction holds back the restore of its
    // partitions (see group::Group::wait_stable) until this timeout.
    c.set("transaction.timeout.ms", "10000")
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        // Connect to the brokers as soon as they are known (see below).
        .set("enable.sparse.connections", "false");
    kafka::reapply_properties(&mut c, &config.kafka, config.own_properties);
    let producer: TxnProducer = c
        .set("transactional.id", config.transactional_id())
        .create_with_context(DeliveryContext::new(changelog))
        .context("cannot create Kafka producer")?;
    // OAUTHBEARER: the first token at once.
    kafka::prime(producer.client());
    // Brokers first: init_transactions asks for its coordinator at once and,
    // with no broker connected yet, only again on librdkafka's 500 ms
    // coordinator timer. The answer to one metadata request (of a small
    // topic, not looked at) names the brokers, and without sparse
    // connections librdkafka connects to them at once: measured on the local
    // stack, init_transactions in 4-5 ms instead of 505 ms (with the
    // metadata request alone: 505 ms in most starts, the broker it names not
    // yet connected).
    let _ = producer.client().fetch_metadata(
        Some("__transaction_state"),
        Duration::from_secs(config.kafka.connect_timeout),
    );
    producer
        .init_transactions(Duration::from_secs(config.kafka.connect_timeout.max(30)))
        .map_err(|e| {
            anyhow!(
                "cannot initialise transactions on {}: {e}",
                config.kafka.brokers
            )
        })?;
    Ok(producer)
}

/// How long [`send_offsets`] waits beyond its timeout before it takes the
/// call for hung.
const OFFSETS_HANG: Duration = Duration::from_secs(5);

/// `send_offsets_to_transaction` that returns within `timeout + hang`
/// whatever librdkafka does. librdkafka (2.12, issues #5456 and #5511) can
/// block in this call forever, past its own timeout, when the group
/// coordinator goes down (seen: a broker of the 3-node cluster stopped for
/// 37 s left the lister blocked for good). The call runs on a thread of its
/// own that holds a reference to the producer: if it does not return in
/// time the error is [`Hung`], the caller abandons the producer (its
/// memory and threads stay with the blocked call) and a new one with the
/// same transactional id fences it and aborts its transaction.
fn send_offsets(
    p: &Arc<TxnProducer>,
    offsets: &TopicPartitionList,
    cgm: ConsumerGroupMetadata,
    timeout: Duration,
    hang: Duration,
) -> Result<()> {
    let (done, answer) = std::sync::mpsc::channel();
    let (p, offsets) = (Arc::clone(p), offsets.clone());
    std::thread::Builder::new()
        .name("txn-offsets".into())
        .spawn(move || {
            let _ = done.send(p.send_offsets_to_transaction(&offsets, &cgm, timeout));
        })
        .context("cannot start a thread")?;
    match answer.recv_timeout(timeout + hang) {
        Ok(r) => Ok(r?),
        Err(_) => Err(anyhow!(Hung(timeout + hang))),
    }
}

/// A librdkafka call that did not return within its bound.
#[derive(Debug)]
struct Hung(Duration);

impl std::fmt::Display for Hung {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "send_offsets_to_transaction did not return within {} s (librdkafka #5456); the producer is abandoned",
            self.0.as_secs()
        )
    }
}

impl std::error::Error for Hung {}

/// Waits until every record sent is delivered and its report served.
///
/// Not `flush`: rust-rdkafka's flush polls the producer's queue in 100 ms
/// slices that always run to their end, while the ThreadedProducer's own
/// thread serves the delivery reports; every flush with a record in flight
/// cost 100 ms, three times per object (docs/design.md §3).
fn drain(p: &TxnProducer) -> Result<()> {
    let started = Instant::now();
    let mut pause = Duration::from_micros(100);
    while p.in_flight_count() > 0 {
        if started.elapsed() > TXN_TIMEOUT {
            bail!(
                "{} records not delivered within {} s",
                p.in_flight_count(),
                TXN_TIMEOUT.as_secs()
            );
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(2));
    }
    Ok(())
}

/// The offsets records `0..n` landed at (their deliveries are reported
/// right after the flush that waited for them).
fn delivered(p: &TxnProducer, n: usize) -> Result<Vec<i64>> {
    let started = Instant::now();
    loop {
        {
            let o = p
                .context()
                .offsets
                .lock()
                .map_err(|_| anyhow!("delivery offsets poisoned"))?;
            if (0..n).all(|i| o.contains_key(&i)) {
                return Ok((0..n).map(|i| o[&i]).collect());
            }
        }
        if started.elapsed() > Duration::from_secs(5) {
            bail!("no delivery report for records of the transaction");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Sends one record (with delivery opaque `index`), waiting while the
/// producer's queue is full.
fn send(p: &TxnProducer, topic: &str, r: &Record, index: usize) -> Result<()> {
    let mut record: BaseRecord<'_, [u8], [u8], usize> = BaseRecord::with_opaque_to(topic, index);
    record.partition = Some(r.partition);
    record.key = Some(&r.key[..]);
    record.payload = r.value.as_deref();
    loop {
        match p.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                record = r;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err((e, _)) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::config::ClientConfig;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::mocking::{MockCluster, MockCoordinator};
    use rdkafka::Offset;

    /// librdkafka's mock cluster (the real-stack test of this path is the
    /// 3-node cluster's broker stop): the group coordinator goes down inside
    /// a transaction, and `send_offsets` still answers, within its bound,
    /// with [`Hung`] or an error. librdkafka's own call blocks for good.
    #[test]
    fn offsets_for_a_downed_group_coordinator_do_not_block_forever() {
        let mock = MockCluster::new(3).expect("mock cluster");
        mock.create_topic("in", 1, 1).expect("topic");
        mock.coordinator(MockCoordinator::Transaction("t".into()), 1)
            .expect("txn coordinator");
        mock.coordinator(MockCoordinator::Group("g".into()), 2)
            .expect("group coordinator");
        let producer: TxnProducer = ClientConfig::new()
            .set("bootstrap.servers", mock.bootstrap_servers())
            .set("transactional.id", "t")
            .create_with_context(DeliveryContext::default())
            .expect("producer");
        producer
            .init_transactions(Duration::from_secs(10))
            .expect("init");
        producer.begin_transaction().expect("begin");
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", mock.bootstrap_servers())
            .set("group.id", "g")
            .create()
            .expect("consumer");
        let cgm = consumer.group_metadata().expect("group metadata");
        mock.broker_down(2).expect("down");
        let mut offsets = TopicPartitionList::new();
        offsets
            .add_partition_offset("in", 0, Offset::Offset(1))
            .expect("offset");
        let producer = Arc::new(producer);
        let (done, answer) = std::sync::mpsc::channel();
        let p = Arc::clone(&producer);
        std::thread::spawn(move || {
            let r = send_offsets(
                &p,
                &offsets,
                cgm,
                Duration::from_secs(2),
                Duration::from_secs(2),
            );
            let _ = done.send(r.map_err(|e| e.to_string()));
        });
        let r = answer
            .recv_timeout(Duration::from_secs(20))
            .expect("send_offsets blocked past its bound");
        assert!(r.is_err(), "offsets sent to a downed coordinator: {r:?}");
        std::mem::forget(mock); // a blocked call may still use it
    }
}
