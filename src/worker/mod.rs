//! The pipeline (DESIGN §3): discover → count → aggregate, each step a Kafka
//! consume-transform-produce loop, exactly once through Kafka transactions.
//!
//! One worker runs all three stages; workers with the same app id share the
//! ledger and repartition partitions as one consumer group. Every iteration
//! of [`Worker::run`] polls a batch, computes its results, and commits them
//! in one transaction together with the input offsets: a crash anywhere
//! loses nothing and counts nothing twice.

pub mod discover;
pub mod ledger;
pub mod object;
pub mod restore;

use crate::config::{KafkaArgs, S3Args, Topics};
use crate::count::{Options, WordCounts};
use crate::kafka::{self, partition_for};
use crate::output;
use crate::s3;
use crate::wire::Serde;
use anyhow::{anyhow, bail, Context, Result};
use discover::{Discovery, Found};
use ledger::Entry;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Everything a worker needs to know.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Kafka connection and topic naming.
    pub kafka: KafkaArgs,
    /// The bucket.
    pub s3: S3Args,
    /// Only objects under this prefix.
    pub prefix: String,
    /// Time between bucket listings.
    pub interval: Duration,
    /// Counting options.
    pub count: Options,
    /// Changelog wire format.
    pub serde: Serde,
    /// This worker's id (names its transactional id).
    pub worker_id: String,
    /// Print the top N after each committed batch.
    pub tally: Option<usize>,
    /// Partitions of topics this worker creates.
    pub partitions: i32,
    /// Replication factor of topics this worker creates.
    pub replication: i32,
    /// Time between status lines.
    pub status_interval: Duration,
}

/// Most ledger records (objects) handled in one transaction.
const MAX_OBJECTS_PER_BATCH: usize = 32;
/// Most bytes of objects counted in one transaction.
const MAX_BYTES_PER_BATCH: u64 = 256 << 20;
/// Most records polled in one batch.
const MAX_RECORDS_PER_BATCH: usize = 50_000;
/// Timeout of transactional calls.
const TXN_TIMEOUT: Duration = Duration::from_secs(60);

/// Rebalance notifications from the consumer's callbacks.
#[derive(Default)]
struct GroupContext {
    epoch: AtomicU64,
}

impl ClientContext for GroupContext {}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            tracing::info!("partitions revoked: {}", describe_tpl(tpl));
            self.epoch.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                tracing::info!("partitions assigned: {}", describe_tpl(tpl));
                self.epoch.fetch_add(1, Ordering::SeqCst);
            }
            Rebalance::Error(e) => tracing::warn!("rebalance error: {e}"),
            Rebalance::Revoke(_) => {}
        }
    }
}

fn describe_tpl(tpl: &TopicPartitionList) -> String {
    let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for e in tpl.elements() {
        by_topic
            .entry(e.topic().to_string())
            .or_default()
            .push(e.partition());
    }
    if by_topic.is_empty() {
        return "none".into();
    }
    by_topic
        .iter()
        .map(|(t, ps)| format!("{t}{ps:?}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A record polled in this batch (owned: the batch outlives the poll).
struct Polled {
    topic_is_ledger: bool,
    partition: i32,
    offset: i64,
    key: Vec<u8>,
    value: Option<Vec<u8>>,
}

/// Counters for the status line.
#[derive(Default)]
struct Stats {
    objects: u64,
    failed: u64,
    words: u64,
    bytes: u64,
    transactions: u64,
}

/// A running worker.
pub struct Worker {
    settings: Settings,
    topics: Topics,
    partitions: i32,
    ledger_partitions: i32,
    rt: tokio::runtime::Runtime,
    s3: aws_sdk_s3::Client,
    consumer: BaseConsumer<GroupContext>,
    producer: ThreadedProducer<DefaultProducerContext>,
    stop: Arc<AtomicBool>,
    seen_epoch: u64,
    ready: bool,
    /// Owned repartition (= changelog) partitions and their tables.
    tables: BTreeMap<i32, HashMap<String, i64>>,
    /// Owned ledger partitions: for each, the keys already done.
    done: BTreeMap<i32, HashSet<String>>,
    discovery: Option<Discovery>,
    last_listing: Option<Instant>,
    stats: Stats,
}

impl Worker {
    /// Checks the configuration against S3 and Kafka, creates missing topics
    /// and joins the group. Fails fast (one line) on bad configuration.
    pub fn start(settings: Settings, stop: Arc<AtomicBool>) -> Result<Worker> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        let s3 = rt.block_on(s3::client(&settings.s3));
        rt.block_on(async {
            tokio::time::timeout(
                Duration::from_secs(settings.kafka.connect_timeout),
                s3::check_bucket(&s3, &settings.s3.bucket),
            )
            .await
            .map_err(|_| anyhow!("cannot list s3://{}: timed out", settings.s3.bucket))?
        })?;

        let topics = settings.kafka.topics();
        let (partitions, ledger_partitions) = prepare_topics(&settings, &topics, &rt)?;

        let producer: ThreadedProducer<DefaultProducerContext> =
            kafka::client_config(&settings.kafka)
                .set(
                    "transactional.id",
                    format!("{}-{}", settings.kafka.app_id, settings.worker_id),
                )
                .set("transaction.timeout.ms", "30000")
                .set("linger.ms", "5")
                .set("queue.buffering.max.messages", "1000000")
                .create()
                .context("cannot create Kafka producer")?;
        producer
            .init_transactions(Duration::from_secs(settings.kafka.connect_timeout.max(30)))
            .map_err(|e| {
                anyhow!(
                    "cannot initialise transactions on {}: {e}",
                    settings.kafka.brokers
                )
            })?;

        let consumer: BaseConsumer<GroupContext> = kafka::client_config(&settings.kafka)
            .set("group.id", &settings.kafka.app_id)
            .set("client.id", format!("wordstream-{}", settings.worker_id))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("isolation.level", "read_committed")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "10000")
            .set("heartbeat.interval.ms", "2000")
            .create_with_context(GroupContext::default())
            .context("cannot create Kafka consumer")?;
        consumer
            .subscribe(&[&topics.ledger, &topics.repartition])
            .context("cannot subscribe")?;
        tracing::info!(
            "worker {} joining group {} (changelog {}, {} partitions, serde {:?})",
            settings.worker_id,
            settings.kafka.app_id,
            topics.changelog,
            partitions,
            settings.serde
        );
        Ok(Worker {
            settings,
            topics,
            partitions,
            ledger_partitions,
            rt,
            s3,
            consumer,
            producer,
            stop,
            seen_epoch: 0,
            ready: false,
            tables: BTreeMap::new(),
            done: BTreeMap::new(),
            discovery: None,
            last_listing: None,
            stats: Stats::default(),
        })
    }

    /// Runs until `stop` is set; then leaves the group cleanly.
    pub fn run(mut self) -> Result<()> {
        let mut last_status = Instant::now();
        while !self.stop.load(Ordering::Relaxed) {
            self.iteration()?;
            if last_status.elapsed() >= self.settings.status_interval {
                self.status();
                last_status = Instant::now();
            }
        }
        tracing::info!("stopping: leaving group {}", self.settings.kafka.app_id);
        self.consumer.unsubscribe();
        let _ = self.producer.flush(Duration::from_secs(5));
        self.status();
        Ok(())
    }

    fn status(&self) {
        let owned = |m: Vec<i32>| format!("{m:?}");
        tracing::info!(
            "status: {} objects counted, {} failed, {} bytes, {} words, {} transactions; ledger {} repartition {}{}; table {} words; {} list calls",
            self.stats.objects,
            self.stats.failed,
            self.stats.bytes,
            self.stats.words,
            self.stats.transactions,
            owned(self.done.keys().copied().collect()),
            owned(self.tables.keys().copied().collect()),
            if self.discovery.is_some() { " (lists the bucket)" } else { "" },
            self.tables.values().map(HashMap::len).sum::<usize>(),
            discover::LIST_CALLS.load(Ordering::Relaxed),
        );
    }

    /// One batch: discover, poll, count, aggregate, commit.
    fn iteration(&mut self) -> Result<()> {
        let epoch = self.consumer.context().epoch.load(Ordering::SeqCst);
        if epoch != self.seen_epoch {
            self.seen_epoch = epoch;
            self.on_assignment()?;
        }

        let mut discovered: Vec<Found> = Vec::new();
        if let Some(d) = self.discovery.as_mut() {
            if self
                .last_listing
                .is_none_or(|t| t.elapsed() >= self.settings.interval)
            {
                self.last_listing = Some(Instant::now());
                match self.rt.block_on(d.poll(&self.s3)) {
                    Ok(found) => discovered = found,
                    Err(e) => tracing::warn!("{e:#} (retrying in {:?})", self.settings.interval),
                }
            }
        }

        let polled = self.poll_batch(epoch);
        if self.consumer.context().epoch.load(Ordering::SeqCst) != epoch {
            // A rebalance happened while polling: positions were reset to the
            // committed offsets, so everything polled comes again. Keep nothing.
            if let Some(d) = self.discovery.as_mut() {
                d.forget(discovered.into_iter().map(|f| f.key));
            }
            return Ok(());
        }
        if polled.is_empty() && discovered.is_empty() {
            return Ok(());
        }
        self.process(polled, discovered)
    }

    /// Polls records until the batch is full or nothing more comes quickly.
    fn poll_batch(&mut self, epoch: u64) -> Vec<Polled> {
        let mut polled = Vec::new();
        let mut objects = 0;
        let mut bytes = 0u64;
        let first_wait = match self.last_listing {
            Some(t) if self.discovery.is_some() => {
                self.settings.interval.saturating_sub(t.elapsed())
            }
            _ => Duration::from_millis(200),
        }
        .min(Duration::from_millis(200));
        let mut wait = first_wait;
        while polled.len() < MAX_RECORDS_PER_BATCH
            && objects < MAX_OBJECTS_PER_BATCH
            && bytes < MAX_BYTES_PER_BATCH
        {
            let msg = match self.consumer.poll(wait) {
                None => break,
                Some(Err(e)) => {
                    tracing::warn!("consumer: {e}");
                    break;
                }
                Some(Ok(m)) => m,
            };
            wait = Duration::from_millis(5);
            if self.consumer.context().epoch.load(Ordering::SeqCst) != epoch {
                break;
            }
            let Some(key) = msg.key() else { continue };
            let topic_is_ledger = msg.topic() == self.topics.ledger;
            if topic_is_ledger {
                if let Some(Ok(Entry::Discovered { size, .. })) = msg.payload().map(Entry::parse) {
                    objects += 1;
                    bytes += size;
                }
            }
            polled.push(Polled {
                topic_is_ledger,
                partition: msg.partition(),
                offset: msg.offset(),
                key: key.to_vec(),
                value: msg.payload().map(<[u8]>::to_vec),
            });
        }
        polled
    }

    /// Computes the batch's results and commits them in one transaction.
    fn process(&mut self, polled: Vec<Polled>, discovered: Vec<Found>) -> Result<()> {
        let n = self.partitions;
        let serde = self.settings.serde;
        let bucket = self.settings.s3.bucket.clone();
        let mut offsets: BTreeMap<(bool, i32), i64> = BTreeMap::new();
        let mut ledger_out: Vec<(i32, String, Entry)> = Vec::new();
        let mut deltas: Vec<WordCounts> = Vec::new();
        let mut newly_done: Vec<(i32, String)> = Vec::new();
        let mut totals: HashMap<String, (i32, i64)> = HashMap::new();
        let mut interrupted = false;

        for rec in polled {
            offsets.insert((rec.topic_is_ledger, rec.partition), rec.offset + 1);
            let key = String::from_utf8_lossy(&rec.key).into_owned();
            if rec.topic_is_ledger {
                let entry = match rec.value.as_deref().map(Entry::parse) {
                    Some(Ok(e)) => e,
                    _ => {
                        tracing::warn!(
                            "ledger record {key} at {}[{}]@{} is not a ledger entry; skipped",
                            self.topics.ledger,
                            rec.partition,
                            rec.offset
                        );
                        continue;
                    }
                };
                let done = self.done.entry(rec.partition).or_default();
                if entry.is_done() {
                    done.insert(key);
                    continue;
                }
                if done.contains(&key) || newly_done.iter().any(|(_, k)| *k == key) {
                    continue; // counted already: a duplicate discovery
                }
                let Some(object_key) = Discovery::key_of(&bucket, &key) else {
                    continue; // another bucket's ledger entry
                };
                let object_key = object_key.to_string();
                let outcome = self.rt.block_on(object::count(
                    &self.s3,
                    &bucket,
                    &object_key,
                    self.settings.count,
                    &self.stop,
                ));
                let entry = match outcome {
                    object::Outcome::Counted {
                        counts,
                        size,
                        etag,
                        elapsed,
                    } => {
                        tracing::info!(
                            "counted {key}: {size} bytes, {} words, {} distinct, {} invalid bytes, {} ms",
                            counts.words,
                            counts.distinct(),
                            counts.invalid_bytes,
                            elapsed.as_millis()
                        );
                        let e = Entry::Counted {
                            etag,
                            size,
                            words: counts.words,
                            distinct: counts.distinct() as u64,
                            invalid_bytes: counts.invalid_bytes,
                            ms: elapsed.as_millis() as u64,
                            worker: self.settings.worker_id.clone(),
                        };
                        deltas.push(counts);
                        e
                    }
                    object::Outcome::Failed(reason) => {
                        tracing::warn!("failed {key}: {reason}");
                        let (etag, size) = match entry {
                            Entry::Discovered { etag, size } => (etag, size),
                            _ => (String::new(), 0),
                        };
                        Entry::Failed {
                            etag,
                            size,
                            reason,
                            worker: self.settings.worker_id.clone(),
                        }
                    }
                    object::Outcome::Interrupted => {
                        interrupted = true;
                        break;
                    }
                };
                newly_done.push((rec.partition, key.clone()));
                ledger_out.push((rec.partition, key, entry));
            } else {
                let Some(delta) = rec
                    .value
                    .as_deref()
                    .and_then(|v| std::str::from_utf8(v).ok())
                    .and_then(|s| s.parse::<i64>().ok())
                else {
                    tracing::warn!(
                        "repartition record at {}[{}]@{} has no count; skipped",
                        self.topics.repartition,
                        rec.partition,
                        rec.offset
                    );
                    continue;
                };
                let p = rec.partition;
                let current = match totals.get(&key) {
                    Some(&(_, t)) => t,
                    None => self
                        .tables
                        .get(&p)
                        .and_then(|t| t.get(&key))
                        .copied()
                        .unwrap_or(0),
                };
                totals.insert(key, (p, current + delta));
            }
        }
        if interrupted {
            // Shutting down mid-batch: commit nothing; the records come again.
            self.abandon(discovered);
            return Ok(());
        }

        let result = self.commit(
            &discovered,
            &ledger_out,
            &deltas,
            &totals,
            &offsets,
            n,
            serde,
        );
        match result {
            Ok(()) => {
                self.stats.transactions += 1;
                for (p, key) in newly_done {
                    self.done.entry(p).or_default().insert(key);
                }
                for d in &deltas {
                    self.stats.objects += 1;
                    self.stats.words += d.words;
                }
                for (_, _, e) in &ledger_out {
                    match e {
                        Entry::Failed { .. } => self.stats.failed += 1,
                        Entry::Counted { size, .. } => self.stats.bytes += size,
                        _ => {}
                    }
                }
                let changed = !totals.is_empty();
                for (word, (p, total)) in totals {
                    self.tables.entry(p).or_default().insert(word, total);
                }
                if changed {
                    self.print_tally();
                }
                Ok(())
            }
            Err(e) => {
                if let Some(KafkaError::Transaction(te)) = e.downcast_ref::<KafkaError>() {
                    if te.is_fatal() {
                        return Err(e.context(
                            "fatal transaction error (fenced by another worker with the same id?)",
                        ));
                    }
                }
                tracing::warn!("transaction failed, retrying the batch: {e:#}");
                let _ = self.producer.abort_transaction(TXN_TIMEOUT);
                self.abandon(discovered);
                self.rewind()?;
                std::thread::sleep(Duration::from_millis(500));
                Ok(())
            }
        }
    }

    /// Forgets an uncommitted batch's discoveries.
    fn abandon(&mut self, discovered: Vec<Found>) {
        if let Some(d) = self.discovery.as_mut() {
            d.forget(discovered.into_iter().map(|f| f.key));
        }
    }

    /// Produces a batch's output and commits it with the input offsets.
    #[allow(clippy::too_many_arguments)]
    fn commit(
        &self,
        discovered: &[Found],
        ledger_out: &[(i32, String, Entry)],
        deltas: &[WordCounts],
        totals: &HashMap<String, (i32, i64)>,
        offsets: &BTreeMap<(bool, i32), i64>,
        n: i32,
        serde: Serde,
    ) -> Result<()> {
        let p = &self.producer;
        p.begin_transaction()?;
        let bucket = &self.settings.s3.bucket;
        for f in discovered {
            let key = s3::url(bucket, &f.key);
            let value = Entry::Discovered {
                etag: f.etag.clone(),
                size: f.size,
            }
            .to_bytes();
            let part = partition_for(key.as_bytes(), self.ledger_partitions);
            send(p, &self.topics.ledger, part, key.as_bytes(), &value)?;
        }
        for counts in deltas {
            for (word, n_occ) in counts.iter() {
                let part = partition_for(&serde.key(word), n);
                send(
                    p,
                    &self.topics.repartition,
                    part,
                    word.as_bytes(),
                    n_occ.to_string().as_bytes(),
                )?;
            }
        }
        for (part, key, entry) in ledger_out {
            send(
                p,
                &self.topics.ledger,
                *part,
                key.as_bytes(),
                &entry.to_bytes(),
            )?;
        }
        for (word, (part, total)) in totals {
            send(
                p,
                &self.topics.changelog,
                *part,
                &serde.key(word),
                &serde.value(*total),
            )?;
        }
        if !offsets.is_empty() {
            let mut tpl = TopicPartitionList::new();
            for (&(is_ledger, part), &off) in offsets {
                let topic = if is_ledger {
                    &self.topics.ledger
                } else {
                    &self.topics.repartition
                };
                tpl.add_partition_offset(topic, part, Offset::Offset(off))?;
            }
            let cgm = self
                .consumer
                .group_metadata()
                .ok_or_else(|| anyhow!("no consumer group metadata"))?;
            p.send_offsets_to_transaction(&tpl, &cgm, TXN_TIMEOUT)?;
        }
        p.commit_transaction(TXN_TIMEOUT)?;
        Ok(())
    }

    /// After a failed transaction: back to the committed offsets.
    fn rewind(&mut self) -> Result<()> {
        let committed = self
            .consumer
            .committed(Duration::from_secs(30))
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
            self.consumer
                .subscribe(&[&self.topics.ledger, &self.topics.repartition])
                .context("cannot subscribe")?;
        }
        // Local state may hold what was not committed: rebuild it.
        self.tables.clear();
        self.done.clear();
        self.on_assignment()
    }

    /// Brings local state in line with the current assignment: restores the
    /// table of new changelog partitions and the ledger view of new ledger
    /// partitions; starts or stops discovery.
    fn on_assignment(&mut self) -> Result<()> {
        let assignment = self
            .consumer
            .assignment()
            .context("cannot read assignment")?;
        let mut ledger = BTreeSet::new();
        let mut repart = BTreeSet::new();
        for e in assignment.elements() {
            if e.topic() == self.topics.ledger {
                ledger.insert(e.partition());
            } else if e.topic() == self.topics.repartition {
                repart.insert(e.partition());
            }
        }
        self.tables.retain(|p, _| repart.contains(p));
        self.done.retain(|p, _| ledger.contains(p));
        let restore_tables: Vec<i32> = repart
            .iter()
            .copied()
            .filter(|p| !self.tables.contains_key(p))
            .collect();
        let restore_ledger: Vec<i32> = ledger
            .iter()
            .copied()
            .filter(|p| !self.done.contains_key(p))
            .collect();

        let serde = self.settings.serde;
        if !restore_tables.is_empty() {
            let started = Instant::now();
            let mut tables: BTreeMap<i32, HashMap<String, i64>> = restore_tables
                .iter()
                .map(|&p| (p, HashMap::new()))
                .collect();
            let mut bad = 0u64;
            restore::read_to_end(
                &self.settings.kafka,
                &self.topics.changelog,
                &restore_tables,
                |p, k, v| match (serde.decode_key(k), v.map(|v| serde.decode_value(v))) {
                    (Ok(word), Some(Ok(total))) => {
                        tables.entry(p).or_default().insert(word, total);
                    }
                    (Ok(word), None) => {
                        tables.entry(p).or_default().remove(&word);
                    }
                    _ => bad += 1,
                },
            )?;
            if bad > 0 {
                bail!(
                    "{} records of {} do not decode with --serde {:?}: is the topic written in another format?",
                    bad,
                    self.topics.changelog,
                    serde
                );
            }
            let words: usize = tables.values().map(HashMap::len).sum();
            tracing::info!(
                "restored table partitions {restore_tables:?} from {}: {words} words in {:.2} s",
                self.topics.changelog,
                started.elapsed().as_secs_f64()
            );
            self.tables.extend(tables);
        }
        if !restore_ledger.is_empty() {
            let mut done: BTreeMap<i32, HashSet<String>> = restore_ledger
                .iter()
                .map(|&p| (p, HashSet::new()))
                .collect();
            restore::read_to_end(
                &self.settings.kafka,
                &self.topics.ledger,
                &restore_ledger,
                |p, k, v| {
                    if let Some(Ok(e)) = v.map(Entry::parse) {
                        if e.is_done() {
                            done.entry(p)
                                .or_default()
                                .insert(String::from_utf8_lossy(k).into_owned());
                        }
                    }
                },
            )?;
            self.done.extend(done);
        }

        let owns_p0 = ledger.contains(&0);
        if owns_p0 && self.discovery.is_none() {
            let bucket = self.settings.s3.bucket.clone();
            let all: Vec<i32> = (0..self.ledger_partitions).collect();
            let mut seen = HashSet::new();
            restore::read_to_end(
                &self.settings.kafka,
                &self.topics.ledger,
                &all,
                |_, k, _| {
                    if let Some(key) = std::str::from_utf8(k)
                        .ok()
                        .and_then(|k| Discovery::key_of(&bucket, k))
                    {
                        seen.insert(key.to_string());
                    }
                },
            )?;
            tracing::info!(
                "this worker lists s3://{}/{} every {:?} ({} objects known)",
                bucket,
                self.settings.prefix,
                self.settings.interval,
                seen.len()
            );
            self.discovery = Some(Discovery::new(&bucket, &self.settings.prefix, seen));
            self.last_listing = None;
        } else if !owns_p0 && self.discovery.is_some() {
            tracing::info!("another worker lists the bucket now");
            self.discovery = None;
        }
        if !self.ready && !assignment.elements().is_empty() {
            self.ready = true;
            tracing::info!("Worker ready");
        }
        Ok(())
    }

    fn print_tally(&self) {
        let Some(n) = self.settings.tally else { return };
        let mut rows: Vec<(&str, u64)> = self
            .tables
            .values()
            .flat_map(|t| t.iter().map(|(w, &c)| (w.as_str(), c.max(0) as u64)))
            .collect();
        rows.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        rows.truncate(n);
        println!("$$ TALLY $$\n{}", output::tally_table(&rows));
    }
}

/// Sends one record, waiting while the producer's queue is full.
fn send(
    p: &ThreadedProducer<DefaultProducerContext>,
    topic: &str,
    partition: i32,
    key: &[u8],
    value: &[u8],
) -> Result<()> {
    let mut record = BaseRecord::to(topic)
        .partition(partition)
        .key(key)
        .payload(value);
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

/// Checks existing topics and creates missing ones. Returns the partition
/// counts of the changelog (= repartition) and of the ledger.
fn prepare_topics(
    settings: &Settings,
    topics: &Topics,
    rt: &tokio::runtime::Runtime,
) -> Result<(i32, i32)> {
    let k = &settings.kafka;
    let changelog = kafka::partition_count(k, &topics.changelog)?;
    let repart = kafka::partition_count(k, &topics.repartition)?;
    let ledger = kafka::partition_count(k, &topics.ledger)?;
    let n = changelog.or(repart).unwrap_or(settings.partitions);
    if let Some(r) = repart {
        if r != n {
            bail!(
                "topic {} has {r} partitions but {} has {n}: they must match (delete the repartition topic to recreate it)",
                topics.repartition,
                topics.changelog
            );
        }
    }
    if changelog.is_some() {
        rt.block_on(kafka::check_compacted(k, &topics.changelog))?;
    }
    let compact = || vec![("cleanup.policy", "compact".to_string())];
    let specs = [
        kafka::TopicSpec {
            name: topics.changelog.clone(),
            partitions: n,
            replication: settings.replication,
            config: compact(),
        },
        kafka::TopicSpec {
            name: topics.ledger.clone(),
            partitions: ledger.unwrap_or(n),
            replication: settings.replication,
            config: compact(),
        },
        kafka::TopicSpec {
            name: topics.repartition.clone(),
            partitions: n,
            replication: settings.replication,
            config: vec![("cleanup.policy", "delete".to_string())],
        },
    ];
    rt.block_on(kafka::ensure_topics(k, &specs))?;
    Ok((n, ledger.unwrap_or(n)))
}
