//! Kafka helpers: client configs for the stack, topic admin, producing raw
//! records (a few, or millions for a benchmark's table), reading topics back
//! (read_committed or not) to their end, and tailing them in a thread.

use crate::counts::Counts;
use crate::names::unique_name;
use crate::stack::Stack;
use crate::wait::wait_for;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use wordstream::kafka::partition_for;
use wordstream::wire::Serde;

/// The timeout of the helpers' sends and admin calls.
pub const T: Duration = Duration::from_secs(30);

impl Stack {
    /// Base rdkafka config: `bootstrap.servers` only; add client settings on top.
    pub fn kafka_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers);
        c
    }

    /// A producer config with acks=all and idempotence (safe defaults for tests).
    pub fn producer_config(&self) -> ClientConfig {
        let mut c = self.kafka_config();
        c.set("acks", "all")
            .set("enable.idempotence", "true")
            .set("message.timeout.ms", "30000");
        c
    }

    /// A consumer config reading from the start, no auto commit, unique group.
    pub fn consumer_config(&self) -> ClientConfig {
        let mut c = self.kafka_config();
        c.set("group.id", unique_name("group"))
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false");
        c
    }

    pub fn admin(&self) -> AdminClient<DefaultClientContext> {
        self.kafka_config()
            .create()
            .expect("creating the Kafka admin client")
    }

    /// Creates a topic (the broker's default replication factor: 1 on the
    /// single node, 3 on the 3-node cluster) and waits until its partition
    /// leaders are known. Auto-creation is off on the stack.
    pub async fn create_topic(&self, name: &str, partitions: i32, config: &[(&str, &str)]) {
        let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(-1));
        for (k, v) in config {
            topic = topic.set(k, v);
        }
        let opts = AdminOptions::new().operation_timeout(Some(T));
        let res = self
            .admin()
            .create_topics([&topic], &opts)
            .await
            .unwrap_or_else(|e| panic!("create_topics({name}): {e}"));
        for r in res {
            if let Err((t, code)) = r {
                panic!("creating topic {t}: {code:?}");
            }
        }
        let name_owned = name.to_string();
        let this = self.clone();
        wait_for(T, &format!("leaders of topic {name}"), || {
            let ok = this
                .layout(&name_owned)
                .is_some_and(|l| l.len() == partitions as usize && l.iter().all(|p| p.1 >= 0));
            async move { ok }
        })
        .await;
    }

    /// Creates a topic of a unique name starting with `prefix` (see
    /// [`Stack::create_topic`]); returns the name.
    pub async fn new_topic(
        &self,
        prefix: &str,
        partitions: i32,
        config: &[(&str, &str)],
    ) -> String {
        let topic = unique_name(prefix);
        self.create_topic(&topic, partitions, config).await;
        topic
    }

    /// (partition, leader, number of replicas) of each partition of `topic`,
    /// `None` if the topic is unknown (or metadata fails).
    pub fn layout(&self, topic: &str) -> Option<Vec<(i32, i32, usize)>> {
        let c: BaseConsumer = self.kafka_config().create().expect("metadata client");
        let md = c.fetch_metadata(Some(topic), Duration::from_secs(5)).ok()?;
        let t = md.topics().first()?;
        if t.error().is_some() {
            return None;
        }
        Some(
            t.partitions()
                .iter()
                .map(|p| (p.id(), p.leader(), p.replicas().len()))
                .collect(),
        )
    }

    /// Plain (not transactional) records, (key, value), to `partition` of
    /// `topic` (`None`: the producer's partitioner).
    pub async fn produce(&self, topic: &str, partition: Option<i32>, recs: &[(&[u8], &[u8])]) {
        let p: FutureProducer = self.producer_config().create().expect("producer");
        for (k, v) in recs {
            let mut r = FutureRecord::to(topic).key(*k).payload(*v);
            if let Some(partition) = partition {
                r = r.partition(partition);
            }
            p.send(r, T)
                .await
                .unwrap_or_else(|(e, _)| panic!("producing to {topic}: {e}"));
        }
    }

    /// Writes `txns` (records, commit?) to `topic` with one transactional
    /// producer, one transaction each, committed or aborted; to `partition`,
    /// or where the producer's partitioner puts them.
    pub async fn produce_transactions(
        &self,
        topic: &str,
        partition: Option<i32>,
        txns: &[(Vec<TxnRecord>, bool)],
    ) {
        let p: FutureProducer = self
            .producer_config()
            .set("transactional.id", unique_name("test-txn"))
            .create()
            .expect("transactional producer");
        // the transactional API is blocking: off the async workers' hot path
        tokio::task::block_in_place(|| p.init_transactions(T)).expect("init_transactions");
        for (records, commit) in txns {
            p.begin_transaction().expect("begin_transaction");
            for (key, value, ts) in records {
                let mut r = FutureRecord::to(topic).key(key);
                if let Some(v) = value {
                    r = r.payload(v);
                }
                if let Some(p) = partition {
                    r = r.partition(p);
                }
                if let Some(ts) = ts {
                    r = r.timestamp(*ts);
                }
                p.send(r, T)
                    .await
                    .unwrap_or_else(|(e, _)| panic!("producing to {topic} in a transaction: {e}"));
            }
            tokio::task::block_in_place(|| match commit {
                true => p.commit_transaction(T),
                false => p.abort_transaction(T),
            })
            .expect("ending a transaction");
        }
        self.wait_for_markers(topic).await;
    }

    /// Waits until every partition of `topic` is stable: its last stable
    /// offset (the end a read_committed reader sees) is its high watermark.
    /// `commit_transaction` returns once the coordinator logged the decision;
    /// the markers reach the partitions after that, so a reader started at
    /// once may stop before the last transaction.
    pub async fn wait_for_markers(&self, topic: &str) {
        let this = self.clone();
        let topic_owned = topic.to_string();
        wait_for(T, &format!("the transaction markers of {topic}"), || {
            let (this, topic) = (this.clone(), topic_owned.clone());
            async move {
                tokio::task::spawn_blocking(move || this.stable(&topic))
                    .await
                    .expect("watermarks task")
            }
        })
        .await;
    }

    /// Whether every partition's read_committed end equals its high watermark.
    pub fn stable(&self, topic: &str) -> bool {
        let ends = |isolation: &str| -> Option<Vec<i64>> {
            let c: BaseConsumer = self
                .consumer_config()
                .set("isolation.level", isolation)
                .create()
                .ok()?;
            let md = c.fetch_metadata(Some(topic), T).ok()?;
            md.topics()
                .first()?
                .partitions()
                .iter()
                .map(|p| c.fetch_watermarks(topic, p.id(), T).ok().map(|w| w.1))
                .collect()
        };
        matches!((ends("read_committed"), ends("read_uncommitted")), (Some(a), Some(b)) if a == b)
    }

    /// Low and high watermarks of every partition of `topic`:
    /// (partition, low, high).
    pub async fn watermarks(&self, topic: &str) -> Vec<(i32, i64, i64)> {
        let (config, topic) = (self.consumer_config(), topic.to_string());
        tokio::task::spawn_blocking(move || {
            let c: BaseConsumer = config.create().expect("creating a consumer");
            let md = c
                .fetch_metadata(Some(&topic), T)
                .expect("metadata of the topic");
            md.topics()[0]
                .partitions()
                .iter()
                .map(|p| {
                    let (low, high) = c.fetch_watermarks(&topic, p.id(), T).expect("watermarks");
                    (p.id(), low, high)
                })
                .collect()
        })
        .await
        .expect("watermarks task")
    }

    /// Reads every partition of `topic` from the beginning to its current end
    /// (`isolation`: "read_committed" stops at the last stable offset, and
    /// skips aborted records) and returns the records in partition, offset
    /// order. Panics if the end is not reached within 60 s.
    pub async fn read_to_end(&self, topic: &str, isolation: &str) -> Vec<Record> {
        let consumer: StreamConsumer = self
            .consumer_config()
            .set("isolation.level", isolation)
            .set("enable.partition.eof", "true")
            .create()
            .expect("creating a consumer");
        // Retried: a broker restarted by a fault test may still be coming back.
        let deadline = Instant::now() + Duration::from_secs(60);
        let md = loop {
            match consumer.fetch_metadata(Some(topic), Duration::from_secs(10)) {
                Ok(md) => break md,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("metadata of {topic}: {e}; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(e) => panic!("metadata of {topic}: {e}"),
            }
        };
        let partitions: Vec<i32> = md.topics()[0].partitions().iter().map(|p| p.id()).collect();
        assert!(
            !partitions.is_empty(),
            "topic {topic} has no partitions (does it exist?)"
        );
        let mut tpl = TopicPartitionList::new();
        for p in &partitions {
            tpl.add_partition_offset(topic, *p, Offset::Beginning)
                .expect("adding a partition");
        }
        consumer.assign(&tpl).expect("assign");
        let mut at_end = BTreeSet::new();
        let mut out = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while at_end.len() < partitions.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, consumer.recv()).await {
                Err(_) => panic!(
                    "reading {topic} ({isolation}): partitions {at_end:?} of {partitions:?} at their end after 60 s; \
                     read {} records",
                    out.len()
                ),
                Ok(Err(KafkaError::PartitionEOF(p))) => {
                    at_end.insert(p);
                }
                Ok(Err(e)) => panic!("reading {topic}: {e}"),
                Ok(Ok(m)) => out.push(Record {
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key().map(<[u8]>::to_vec),
                    value: m.payload().map(<[u8]>::to_vec),
                }),
            }
        }
        out.sort_by_key(|r| (r.partition, r.offset));
        out
    }

    /// A changelog written with Faust's serde, read_committed: the latest
    /// total per word (a tombstone removes the word).
    pub async fn changelog(&self, topic: &str) -> Counts {
        let mut out = Counts::new();
        for r in self.read_to_end(topic, "read_committed").await {
            let key = r.key.as_deref().expect("changelog record without key");
            let word: String = serde_json::from_slice(key)
                .unwrap_or_else(|e| panic!("changelog key {key:?} is not a JSON string: {e}"));
            match r.value.as_deref() {
                Some(v) => {
                    let n: i64 = serde_json::from_slice(v).unwrap_or_else(|e| {
                        panic!("changelog value {v:?} is not a JSON integer: {e}")
                    });
                    out.insert(word, n);
                }
                None => {
                    out.remove(&word);
                }
            }
        }
        out
    }
}

/// A record of [`Stack::produce_transactions`]: key, value (`None`: a
/// tombstone), timestamp (ms since the epoch; `None`: now).
pub type TxnRecord = (Vec<u8>, Option<Vec<u8>>, Option<i64>);

/// One record read back by [`Stack::read_to_end`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
}

impl Record {
    /// Key as UTF-8 (panics if absent or not UTF-8).
    pub fn key_str(&self) -> &str {
        std::str::from_utf8(self.key.as_deref().expect("record has no key"))
            .expect("key is not UTF-8")
    }
    /// Value as UTF-8 (panics if absent or not UTF-8).
    pub fn value_str(&self) -> &str {
        std::str::from_utf8(self.value.as_deref().expect("record has no value"))
            .expect("value is not UTF-8")
    }
}

/// A read_committed consumer of every partition of some topics, from their
/// beginning, in a thread of its own: each record goes to a callback
/// (topic, key, value). Stops when dropped.
pub struct Tail {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Stack {
    /// Starts tailing `topics` (they must exist).
    pub fn tail(
        &self,
        topics: &[String],
        mut on_record: impl FnMut(&str, &[u8], Option<&[u8]>) + Send + 'static,
    ) -> Tail {
        let consumer: BaseConsumer = self
            .kafka_config()
            .set("group.id", unique_name("tail"))
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .set("fetch.wait.max.ms", "10")
            .create()
            .expect("tail consumer");
        let mut tpl = TopicPartitionList::new();
        for t in topics {
            let layout = self
                .layout(t)
                .unwrap_or_else(|| panic!("tailing {t}: no such topic"));
            for (p, _, _) in layout {
                tpl.add_partition_offset(t, p, Offset::Beginning)
                    .expect("adding a partition");
            }
        }
        consumer.assign(&tpl).expect("assign");
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Some(Ok(m)) = consumer.poll(Duration::from_millis(50)) {
                        if let Some(k) = m.key() {
                            on_record(m.topic(), k, m.payload());
                        }
                    }
                }
            })
        };
        Tail {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Tail {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Fills changelog `topic` of `brokers` (created compacted with
/// `partitions` partitions if missing) with `n` records in Faust's serde,
/// `record(i)` = (word, count), each in the partition the worker would
/// choose (murmur2). Returns the seconds it took.
pub fn fill_changelog(
    brokers: &str,
    topic: &str,
    partitions: i32,
    n: u64,
    record: impl Fn(u64) -> (String, i64),
) -> f64 {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", brokers);
    let admin: AdminClient<DefaultClientContext> = config.create().expect("admin client");
    let spec = NewTopic::new(topic, partitions, TopicReplication::Fixed(-1))
        .set("cleanup.policy", "compact");
    let created = futures::executor::block_on(
        admin.create_topics([&spec], &AdminOptions::new().operation_timeout(Some(T))),
    )
    .expect("create_topics");
    for r in created {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, e)) => panic!("creating {t}: {e}"),
        }
    }
    let producer: BaseProducer = config
        .set("linger.ms", "20")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.messages", "1000000")
        .set("compression.type", "lz4")
        .create()
        .expect("producer");
    let start = Instant::now();
    for i in 0..n {
        let (word, count) = record(i);
        let key = Serde::Faust.key(&word);
        let value = Serde::Faust.value(count);
        let p = partition_for(&key, partitions);
        let mut rec = BaseRecord::to(topic).key(&key).payload(&value).partition(p);
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((e, r)) => {
                    // queue full: let deliveries drain
                    if e.rdkafka_error_code() != Some(RDKafkaErrorCode::QueueFull) {
                        panic!("producing to {topic}: {e}");
                    }
                    producer.poll(Duration::from_millis(10));
                    rec = r;
                }
            }
        }
        if i % 10_000 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    producer.flush(Duration::from_secs(120)).expect("flush");
    start.elapsed().as_secs_f64()
}
