//! The pipeline (DESIGN §3): discover → count → aggregate, each step a Kafka
//! consume-transform-produce loop, exactly once through Kafka transactions.
//!
//! One worker runs all three stages; workers with the same app id share the
//! ledger and repartition partitions as one consumer group. Every iteration
//! of [`Worker::run`] polls a batch, computes its results, and commits them
//! in one transaction together with the input offsets: a crash anywhere
//! loses nothing and counts nothing twice.
//!
//! Local state (the tables of owned changelog partitions, the set of done
//! objects of owned ledger partitions, discovery's set of known keys) is a
//! cache of what Kafka committed. Whenever a transaction fails, or the
//! brokers go away, the worker throws that state away, seeks back to the
//! committed offsets and rebuilds it from the topics ("resync"): what was
//! not committed is simply done again.
//!
//! With an explicit `--worker-id`, membership is static (`group.instance.id`
//! = the worker id): a worker restarted with the same id takes its
//! partitions back at once, without a rebalance, and its transactional id
//! fences its zombie. The price, as in Kafka Streams: a static member never
//! leaves the group, so one that stops for good hands its partitions over
//! only after the session timeout (10 s). With the default id
//! (hostname-pid), membership is dynamic and a stopping worker leaves the
//! group at once.

pub mod discover;
pub mod ledger;
pub mod object;
pub mod restore;

use crate::config::{KafkaArgs, S3Args, Topics};
use crate::count::{Options, WordCounts};
use crate::events::{Event, Partitions, Status};
use crate::kafka::{self, partition_for};
use crate::output;
use crate::s3;
use crate::wire::Serde;
use anyhow::{anyhow, bail, Context, Result};
use discover::{Discovery, Found};
use futures::StreamExt;
use ledger::Entry;
use object::Outcome;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
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
    /// Join the group as a static member named by the worker id.
    pub static_membership: bool,
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
const MAX_OBJECTS_PER_BATCH: usize = 128;
/// Most bytes of objects counted in one transaction.
const MAX_BYTES_PER_BATCH: u64 = 256 << 20;
/// Most records polled in one batch.
const MAX_RECORDS_PER_BATCH: usize = 50_000;
/// Objects read and counted at the same time (small objects are bound by
/// the S3 round trip, large ones by the CPU).
const COUNT_CONCURRENCY: usize = 16;
/// Timeout of transactional calls.
const TXN_TIMEOUT: Duration = Duration::from_secs(30);
/// Timeout of one bucket listing (all its pages).
const LIST_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause after a failed iteration before the next attempt.
const RETRY_PAUSE: Duration = Duration::from_secs(1);
/// A client fenced twice within this time: another process has our id.
const FENCE_WINDOW: Duration = Duration::from_secs(60);

/// An error retrying cannot fix: the worker exits with it.
#[derive(Debug)]
pub struct Fatal(pub String);

impl std::fmt::Display for Fatal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Fatal {}

fn is_fatal(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<Fatal>())
}

/// librdkafka's own log lines and error events go to `tracing` at debug
/// level: it retries by itself, and the worker reports what matters.
fn librdkafka_log(level: RDKafkaLogLevel, fac: &str, msg: &str) {
    kafka::record_log(level, msg);
    tracing::debug!("librdkafka {level:?} {fac}: {msg}");
}

/// OAUTHBEARER tokens (MSK IAM) for the worker's contexts: see [`kafka`].
fn oauth_token(
    config: Option<&str>,
) -> std::result::Result<rdkafka::client::OAuthToken, Box<dyn std::error::Error>> {
    kafka::oauth_token(config)
}

/// The consumer's context: quiet logs, and rebalance notifications.
#[derive(Default)]
struct GroupContext {
    /// Bumped by every rebalance callback.
    epoch: AtomicU64,
    /// Partitions revoked since the worker last looked: their local state
    /// is stale even if they come back.
    revoked: Mutex<HashSet<(String, i32)>>,
}

impl ClientContext for GroupContext {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn log(&self, level: RDKafkaLogLevel, fac: &str, msg: &str) {
        librdkafka_log(level, fac, msg);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        kafka::record_error(&error, reason);
        tracing::debug!("librdkafka consumer error: {error}: {reason}");
    }

    fn generate_oauth_token(
        &self,
        config: Option<&str>,
    ) -> std::result::Result<rdkafka::client::OAuthToken, Box<dyn std::error::Error>> {
        oauth_token(config)
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

/// The transactional producer's context: quiet logs.
struct TxnContext;

impl ClientContext for TxnContext {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn log(&self, level: RDKafkaLogLevel, fac: &str, msg: &str) {
        librdkafka_log(level, fac, msg);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        kafka::record_error(&error, reason);
        tracing::debug!("librdkafka producer error: {error}: {reason}");
    }

    fn generate_oauth_token(
        &self,
        config: Option<&str>,
    ) -> std::result::Result<rdkafka::client::OAuthToken, Box<dyn std::error::Error>> {
        oauth_token(config)
    }
}

impl ProducerContext for TxnContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        // A failed delivery fails the transaction's commit, which is handled.
        if let Err((e, _)) = result {
            tracing::debug!("delivery failed: {e}");
        }
    }
}

type TxnProducer = ThreadedProducer<TxnContext>;

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

/// Logs a recurring warning at most once per period, saying how many
/// were left out meanwhile (a broker outage must not flood the log).
struct Throttle {
    last: Option<Instant>,
    suppressed: u64,
    period: Duration,
}

impl Throttle {
    fn new(period: Duration) -> Self {
        Throttle {
            last: None,
            suppressed: 0,
            period,
        }
    }

    fn warn(&mut self, msg: impl std::fmt::Display) {
        if self.last.is_some_and(|t| t.elapsed() < self.period) {
            self.suppressed += 1;
            tracing::debug!("{msg}");
            return;
        }
        if self.suppressed > 0 {
            tracing::warn!("{msg} ({} similar messages suppressed)", self.suppressed);
        } else {
            tracing::warn!("{msg}");
        }
        self.last = Some(Instant::now());
        self.suppressed = 0;
    }
}

/// A record polled in this batch (owned: the batch outlives the poll).
struct Polled {
    topic_is_ledger: bool,
    partition: i32,
    offset: i64,
    key: Vec<u8>,
    value: Option<Vec<u8>>,
}

/// An object to count in this batch.
struct Job {
    partition: i32,
    ledger_key: String,
    object_key: String,
    listed: Entry,
}

/// Counters for the status line.
#[derive(Default)]
struct Stats {
    objects: u64,
    failed: u64,
    words: u64,
    bytes: u64,
    transactions: u64,
    aborted: u64,
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
    /// `None` after a fatal producer error: recreated (fencing the old one)
    /// at the next iteration.
    producer: Option<TxnProducer>,
    stop: Arc<AtomicBool>,
    seen_epoch: u64,
    /// Local state must be rebuilt from Kafka before the next batch.
    resync: bool,
    ready: bool,
    /// Owned repartition (= changelog) partitions and their tables.
    tables: BTreeMap<i32, HashMap<String, i64>>,
    /// Owned ledger partitions: for each, the keys already done.
    done: BTreeMap<i32, HashSet<String>>,
    discovery: Option<Discovery>,
    last_listing: Option<Instant>,
    stats: Stats,
    kafka_warnings: Throttle,
    s3_warnings: Throttle,
    producer_fenced_at: Option<Instant>,
    consumer_fenced_at: Option<Instant>,
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
            .map_err(|_| {
                anyhow!(
                    "cannot list s3://{}: no answer within {} s",
                    settings.s3.bucket,
                    settings.kafka.connect_timeout
                )
            })?
        })?;

        for (k, _) in &settings.kafka.property {
            if OWN_PROPERTIES.contains(&k.as_str()) {
                tracing::warn!("-X {k}=… ignored: the worker sets {k} itself (exactly once)");
            }
        }
        let topics = settings.kafka.topics();
        let (partitions, ledger_partitions) = prepare_topics(&settings, &topics, &rt)?;
        let producer = create_producer(&settings)?;

        let consumer = create_consumer(&settings, &topics)?;
        Event::Joining {
            worker: settings.worker_id.clone(),
            group: settings.kafka.app_id.clone(),
            changelog: topics.changelog.clone(),
            partitions,
            serde: serde_name(settings.serde).into(),
        }
        .emit();
        Ok(Worker {
            settings,
            topics,
            partitions,
            ledger_partitions,
            rt,
            s3,
            consumer,
            producer: Some(producer),
            stop,
            seen_epoch: 0,
            resync: false,
            ready: false,
            tables: BTreeMap::new(),
            done: BTreeMap::new(),
            discovery: None,
            last_listing: None,
            stats: Stats::default(),
            kafka_warnings: Throttle::new(Duration::from_secs(10)),
            s3_warnings: Throttle::new(Duration::from_secs(10)),
            producer_fenced_at: None,
            consumer_fenced_at: None,
        })
    }

    /// Runs until `stop` is set; then leaves the group cleanly. Returns an
    /// error only for what retrying cannot fix (e.g. fenced by a newer
    /// process with the same worker id).
    pub fn run(mut self) -> Result<()> {
        let mut last_status = Instant::now();
        while !self.stop.load(Ordering::Relaxed) {
            if let Err(e) = self.iteration() {
                if is_fatal(&e) {
                    return Err(e);
                }
                if !self.stop.load(Ordering::Relaxed) {
                    self.kafka_warnings.warn(format_args!("{e:#} (retrying)"));
                }
                self.resync = true;
                if let Err(e) = self.idle_poll(RETRY_PAUSE) {
                    if is_fatal(&e) {
                        return Err(e);
                    }
                    self.kafka_warnings.warn(format_args!("{e:#} (retrying)"));
                }
            }
            if last_status.elapsed() >= self.settings.status_interval {
                self.status();
                last_status = Instant::now();
            }
        }
        Event::Stopping {
            static_member: self.settings.static_membership,
        }
        .emit();
        self.consumer.unsubscribe();
        self.status();
        Ok(())
    }

    /// Waits before retrying a failed iteration, polling the consumer all
    /// along: librdkafka delivers rebalances and fatal errors only through
    /// poll, and a consumer that is not polled cannot rejoin its group.
    /// Records polled meanwhile are dropped: the resync that follows seeks
    /// back to the committed offsets.
    fn idle_poll(&mut self, d: Duration) -> Result<()> {
        debug_assert!(self.resync);
        let until = Instant::now() + d;
        while Instant::now() < until && !self.stop.load(Ordering::Relaxed) {
            if let Some(Err(e)) = self.consumer.poll(Duration::from_millis(100)) {
                if matches!(
                    e.rdkafka_error_code(),
                    Some(RDKafkaErrorCode::Fatal | RDKafkaErrorCode::FencedInstanceId)
                ) {
                    self.recreate_consumer(&e)?;
                }
            }
        }
        Ok(())
    }

    fn status(&self) {
        Event::Status(Status {
            objects: self.stats.objects,
            failed: self.stats.failed,
            bytes: self.stats.bytes,
            words: self.stats.words,
            transactions: self.stats.transactions,
            aborted: self.stats.aborted,
            ledger: self.done.keys().copied().collect(),
            repartition: self.tables.keys().copied().collect(),
            lister: self.discovery.is_some(),
            table_words: self.tables.values().map(HashMap::len).sum::<usize>() as u64,
            list_calls: discover::LIST_CALLS.load(Ordering::Relaxed),
        })
        .emit();
    }

    /// One batch: discover, poll, count, aggregate, commit.
    fn iteration(&mut self) -> Result<()> {
        if self.producer.is_none() {
            self.producer = Some(create_producer(&self.settings)?);
        }
        let epoch = self.consumer.context().epoch.load(Ordering::SeqCst);
        if self.resync {
            self.rewind()?;
            self.resync = false;
            self.seen_epoch = epoch;
        } else if epoch != self.seen_epoch {
            self.on_assignment()?;
            self.seen_epoch = epoch;
        }

        let mut discovered: Vec<Found> = Vec::new();
        if let Some(d) = self.discovery.as_mut() {
            if self
                .last_listing
                .is_none_or(|t| t.elapsed() >= self.settings.interval)
            {
                self.last_listing = Some(Instant::now());
                let (stop, s3) = (&self.stop, &self.s3);
                let listing = async move {
                    object::unless_stopped(stop, tokio::time::timeout(LIST_TIMEOUT, d.poll(s3)))
                        .await
                };
                match self.rt.block_on(listing) {
                    None => return Ok(()), // stopping
                    Some(Ok(Ok(found))) => discovered = found,
                    Some(Ok(Err(e))) => self.s3_warnings.warn(format_args!(
                        "{e:#} (retrying in {:?})",
                        self.settings.interval
                    )),
                    Some(Err(_)) => self.s3_warnings.warn(format_args!(
                        "cannot list s3://{}: no answer within {} s (retrying)",
                        self.settings.s3.bucket,
                        LIST_TIMEOUT.as_secs()
                    )),
                }
            }
        }

        let polled = self.poll_batch(epoch)?;
        if self.consumer.context().epoch.load(Ordering::SeqCst) != epoch {
            // A rebalance happened while polling: positions were reset to the
            // committed offsets, so everything polled comes again. Keep nothing.
            self.abandon(discovered);
            return Ok(());
        }
        if polled.is_empty() && discovered.is_empty() {
            return Ok(());
        }
        self.process(polled, discovered)
    }

    /// Polls records until the batch is full or nothing more comes quickly.
    fn poll_batch(&mut self, epoch: u64) -> Result<Vec<Polled>> {
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
                    if matches!(
                        e.rdkafka_error_code(),
                        Some(RDKafkaErrorCode::Fatal | RDKafkaErrorCode::FencedInstanceId)
                    ) {
                        self.recreate_consumer(&e)?;
                        return Ok(Vec::new());
                    }
                    self.kafka_warnings.warn(format_args!("consumer: {e}"));
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
        Ok(polled)
    }

    /// Computes the batch's results and commits them in one transaction.
    fn process(&mut self, polled: Vec<Polled>, discovered: Vec<Found>) -> Result<()> {
        let bucket = self.settings.s3.bucket.clone();
        let mut offsets: BTreeMap<(bool, i32), i64> = BTreeMap::new();
        let mut jobs: Vec<Job> = Vec::new();
        let mut pending: HashSet<String> = HashSet::new();
        let mut totals: HashMap<String, (i32, i64)> = HashMap::new();

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
                if done.contains(&key) || pending.contains(&key) {
                    continue; // counted already: a duplicate discovery
                }
                let Some(object_key) = Discovery::key_of(&bucket, &key) else {
                    continue; // another bucket's ledger entry
                };
                jobs.push(Job {
                    partition: rec.partition,
                    ledger_key: key.clone(),
                    object_key: object_key.to_string(),
                    listed: entry,
                });
                pending.insert(key);
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

        let started = Instant::now();
        let outcomes = self.count_objects(&jobs);
        let counted_in = started.elapsed();
        if outcomes.iter().any(|o| matches!(o, Outcome::Interrupted)) {
            // Shutting down mid-batch: commit nothing; the records come again.
            self.abandon(discovered);
            return Ok(());
        }
        let mut delta = WordCounts::new();
        let mut ledger_out: Vec<(i32, String, Entry)> = Vec::new();
        let mut objects = 0u64;
        for (job, outcome) in jobs.into_iter().zip(outcomes) {
            let entry = match outcome {
                Outcome::Counted {
                    counts,
                    size,
                    etag,
                    elapsed,
                } => {
                    Event::ObjectCounted {
                        key: job.ledger_key.clone(),
                        bytes: size,
                        words: counts.words,
                        distinct: counts.distinct() as u64,
                        invalid_bytes: counts.invalid_bytes,
                        ms: elapsed.as_millis() as u64,
                    }
                    .emit();
                    let e = Entry::Counted {
                        etag,
                        size,
                        words: counts.words,
                        distinct: counts.distinct() as u64,
                        invalid_bytes: counts.invalid_bytes,
                        ms: elapsed.as_millis() as u64,
                        worker: self.settings.worker_id.clone(),
                    };
                    objects += 1;
                    delta.merge(counts);
                    e
                }
                Outcome::Failed(reason) => {
                    Event::ObjectFailed {
                        key: job.ledger_key.clone(),
                        reason: reason.clone(),
                    }
                    .emit();
                    let (etag, size) = match job.listed {
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
                Outcome::Interrupted => unreachable!("handled above"),
            };
            ledger_out.push((job.partition, job.ledger_key, entry));
        }

        let started = Instant::now();
        let result = self.commit(&discovered, &ledger_out, &delta, &totals, &offsets);
        match result {
            Ok(()) => {
                Event::BatchCommitted {
                    discovered: discovered.len() as u64,
                    objects: ledger_out.len() as u64,
                    failed: ledger_out
                        .iter()
                        .filter(|(_, _, e)| matches!(e, Entry::Failed { .. }))
                        .count() as u64,
                    deltas: delta.distinct() as u64,
                    totals: totals.len() as u64,
                    count_ms: counted_in.as_millis() as u64,
                    txn_ms: started.elapsed().as_millis() as u64,
                }
                .emit();
                self.stats.transactions += 1;
                self.stats.objects += objects;
                self.stats.words += delta.words;
                for (p, key, e) in ledger_out {
                    match &e {
                        Entry::Failed { .. } => self.stats.failed += 1,
                        Entry::Counted { size, .. } => self.stats.bytes += size,
                        Entry::Discovered { .. } => {}
                    }
                    self.done.entry(p).or_default().insert(key);
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
                self.stats.aborted += 1;
                self.abandon(discovered);
                self.resync = true;
                let producer = self.producer.take().expect("producer exists in a batch");
                if let Some(KafkaError::Transaction(te)) = e.downcast_ref::<KafkaError>() {
                    if te.is_fatal() {
                        // Dropped: recreated (with init_transactions) next
                        // iteration.
                        return self.producer_lost(&e);
                    }
                }
                Event::BatchAborted {
                    reason: format!("{e:#}"),
                }
                .emit();
                match producer.abort_transaction(TXN_TIMEOUT) {
                    Ok(()) => self.producer = Some(producer),
                    Err(ae) => return self.producer_lost(&anyhow!(ae).context("cannot abort")),
                }
                Ok(())
            }
        }
    }

    /// The producer failed fatally (it was dropped): recreated at the next
    /// iteration, unless it was fenced twice within [`FENCE_WINDOW`].
    ///
    /// A fenced producer does not always mean another process with this
    /// worker id: a transaction left open across a broker outage longer
    /// than `transaction.timeout.ms` is aborted by the coordinator, which
    /// bumps the producer epoch exactly as a newer instance would. Fenced
    /// again soon after re-initialising, though, there is another process.
    fn producer_lost(&mut self, e: &anyhow::Error) -> Result<()> {
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
            if self
                .producer_fenced_at
                .is_some_and(|t| t.elapsed() < FENCE_WINDOW)
            {
                return Err(anyhow!(Fatal(format!(
                    "fenced twice within {} s: another process runs with --worker-id {} (transactional id {}-{}): {e:#}",
                    FENCE_WINDOW.as_secs(),
                    self.settings.worker_id,
                    self.settings.kafka.app_id,
                    self.settings.worker_id
                ))));
            }
            self.producer_fenced_at = Some(Instant::now());
        }
        tracing::warn!(
            "transactional producer lost ({e:#}); re-initialising it and retrying the batch"
        );
        Ok(())
    }

    /// The consumer failed fatally: usually a static member fenced by its
    /// own rejoin after its session expired during a coordinator outage
    /// (librdkafka issue #3437). Rejoins with a new consumer, unless that
    /// happened twice within [`FENCE_WINDOW`] (then another process runs
    /// with this worker id).
    fn recreate_consumer(&mut self, e: &KafkaError) -> Result<()> {
        if self
            .consumer_fenced_at
            .is_some_and(|t| t.elapsed() < FENCE_WINDOW)
        {
            return Err(anyhow!(Fatal(format!(
                "consumer fenced twice within {} s: another process runs with --worker-id {} in group {} ({e})",
                FENCE_WINDOW.as_secs(),
                self.settings.worker_id,
                self.settings.kafka.app_id
            ))));
        }
        tracing::warn!(
            "consumer lost ({e}); rejoining group {}",
            self.settings.kafka.app_id
        );
        self.consumer = create_consumer(&self.settings, &self.topics)?;
        self.consumer_fenced_at = Some(Instant::now());
        self.resync = true;
        Ok(())
    }

    /// Reads and counts the batch's objects, [`COUNT_CONCURRENCY`] at a
    /// time; outcomes in the order of `jobs`.
    fn count_objects(&self, jobs: &[Job]) -> Vec<Outcome> {
        if jobs.is_empty() {
            return Vec::new();
        }
        let handle = self.rt.handle().clone();
        let tasks = jobs.iter().map(|job| {
            handle.spawn(object::count(
                self.s3.clone(),
                self.settings.s3.bucket.clone(),
                job.object_key.clone(),
                self.settings.count,
                Arc::clone(&self.stop),
            ))
        });
        self.rt.block_on(
            futures::stream::iter(tasks)
                .buffered(COUNT_CONCURRENCY)
                .map(|r| r.unwrap_or_else(|e| Outcome::Failed(format!("counting panicked: {e}"))))
                .collect(),
        )
    }

    /// Forgets an uncommitted batch's discoveries.
    fn abandon(&mut self, discovered: Vec<Found>) {
        if let Some(d) = self.discovery.as_mut() {
            d.forget(discovered.into_iter().map(|f| f.key));
        }
    }

    /// Produces a batch's output and commits it with the input offsets.
    fn commit(
        &self,
        discovered: &[Found],
        ledger_out: &[(i32, String, Entry)],
        delta: &WordCounts,
        totals: &HashMap<String, (i32, i64)>,
        offsets: &BTreeMap<(bool, i32), i64>,
    ) -> Result<()> {
        let p = self.producer.as_ref().expect("producer exists in a batch");
        let n = self.partitions;
        let serde = self.settings.serde;
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
        for (word, n_occ) in delta.iter() {
            let part = partition_for(&serde.key(word), n);
            send(
                p,
                &self.topics.repartition,
                part,
                word.as_bytes(),
                n_occ.to_string().as_bytes(),
            )?;
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

    /// After a failed transaction or an outage: back to the committed
    /// offsets, and local state rebuilt from the topics.
    fn rewind(&mut self) -> Result<()> {
        Event::Resync.emit();
        let assignment = self
            .consumer
            .assignment()
            .context("cannot read assignment")?;
        if assignment.count() > 0 {
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
                self.consumer
                    .subscribe(&[&self.topics.ledger, &self.topics.repartition])
                    .context("cannot subscribe")?;
            }
        }
        self.tables.clear();
        self.done.clear();
        self.discovery = None;
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
        let revoked: HashSet<(String, i32)> = std::mem::take(
            &mut *self
                .consumer
                .context()
                .revoked
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        let mut ledger = BTreeSet::new();
        let mut repart = BTreeSet::new();
        for e in assignment.elements() {
            if e.topic() == self.topics.ledger {
                ledger.insert(e.partition());
            } else if e.topic() == self.topics.repartition {
                repart.insert(e.partition());
            }
        }
        let kept = |topic: &str, p: i32, owned: &BTreeSet<i32>| {
            owned.contains(&p) && !revoked.contains(&(topic.to_string(), p))
        };
        let (lt, rt) = (self.topics.ledger.clone(), self.topics.repartition.clone());
        self.tables.retain(|&p, _| kept(&rt, p, &repart));
        self.done.retain(|&p, _| kept(&lt, p, &ledger));
        if revoked.contains(&(lt.clone(), 0)) {
            self.discovery = None;
        }
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
            let mut records = 0u64;
            restore::read_to_end_until(
                &self.settings.kafka,
                &self.topics.changelog,
                &restore_tables,
                &self.stop,
                |p, k, v| {
                    records += 1;
                    match (serde.decode_key(k), v.map(|v| serde.decode_value(v))) {
                        (Ok(word), Some(Ok(total))) => {
                            tables.entry(p).or_default().insert(word, total);
                        }
                        (Ok(word), None) => {
                            tables.entry(p).or_default().remove(&word);
                        }
                        _ => bad += 1,
                    }
                },
            )?;
            if bad > 0 {
                return Err(anyhow!(Fatal(format!(
                    "{} records of {} do not decode with --serde {}: is the topic written in another format?",
                    bad,
                    self.topics.changelog,
                    serde_name(serde)
                ))));
            }
            let words: usize = tables.values().map(HashMap::len).sum();
            Event::Restored {
                what: "table".into(),
                topic: self.topics.changelog.clone(),
                partitions: restore_tables.clone(),
                records,
                entries: words as u64,
                seconds: started.elapsed().as_secs_f64(),
            }
            .emit();
            self.tables.extend(tables);
        }
        if !restore_ledger.is_empty() {
            let started = Instant::now();
            let mut records = 0u64;
            let mut done: BTreeMap<i32, HashSet<String>> = restore_ledger
                .iter()
                .map(|&p| (p, HashSet::new()))
                .collect();
            restore::read_to_end_until(
                &self.settings.kafka,
                &self.topics.ledger,
                &restore_ledger,
                &self.stop,
                |p, k, v| {
                    records += 1;
                    if let Some(Ok(e)) = v.map(Entry::parse) {
                        // Done once is done for good: a later discovery
                        // of the same key is a duplicate.
                        if e.is_done() {
                            done.entry(p)
                                .or_default()
                                .insert(String::from_utf8_lossy(k).into_owned());
                        }
                    }
                },
            )?;
            Event::Restored {
                what: "ledger".into(),
                topic: self.topics.ledger.clone(),
                partitions: restore_ledger.clone(),
                records,
                entries: done.values().map(HashSet::len).sum::<usize>() as u64,
                seconds: started.elapsed().as_secs_f64(),
            }
            .emit();
            self.done.extend(done);
        }

        let owns_p0 = ledger.contains(&0);
        if owns_p0 && self.discovery.is_none() {
            let bucket = self.settings.s3.bucket.clone();
            let all: Vec<i32> = (0..self.ledger_partitions).collect();
            let mut seen = HashSet::new();
            restore::read_to_end_until(
                &self.settings.kafka,
                &self.topics.ledger,
                &all,
                &self.stop,
                |_, k, _| {
                    if let Some(key) = std::str::from_utf8(k)
                        .ok()
                        .and_then(|k| Discovery::key_of(&bucket, k))
                    {
                        seen.insert(key.to_string());
                    }
                },
            )?;
            Event::ListerStarted {
                bucket: bucket.clone(),
                prefix: self.settings.prefix.clone(),
                interval_s: self.settings.interval.as_secs_f64(),
                known: seen.len() as u64,
            }
            .emit();
            self.discovery = Some(Discovery::new(&bucket, &self.settings.prefix, seen));
            self.last_listing = None;
        } else if !owns_p0 && self.discovery.is_some() {
            Event::ListerStopped.emit();
            self.discovery = None;
        }
        if !self.ready && assignment.count() > 0 {
            self.ready = true;
            Event::Ready {
                worker: self.settings.worker_id.clone(),
            }
            .emit();
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

/// Properties exactly-once depends on: the worker sets them whatever `-X`
/// says.
const OWN_PROPERTIES: [&str; 5] = [
    "group.id",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "isolation.level",
    "transactional.id",
];

/// Applies the `-X` properties again over the worker's defaults (they win),
/// except [`OWN_PROPERTIES`] (warned about in [`Worker::start`]).
fn with_user_properties(config: &mut rdkafka::ClientConfig, settings: &Settings) {
    for (k, v) in &settings.kafka.property {
        if !OWN_PROPERTIES.contains(&k.as_str()) {
            config.set(k, v);
        }
    }
}

/// The group consumer of the ledger and repartition topics, subscribed.
fn create_consumer(settings: &Settings, topics: &Topics) -> Result<BaseConsumer<GroupContext>> {
    let mut config = kafka::client_config(&settings.kafka);
    if settings.static_membership {
        config.set("group.instance.id", &settings.worker_id);
    }
    config
        .set("client.id", format!("wordstream-{}", settings.worker_id))
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "2000")
        .set("fetch.wait.max.ms", "100");
    with_user_properties(&mut config, settings);
    let consumer: BaseConsumer<GroupContext> = config
        .set("group.id", &settings.kafka.app_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("isolation.level", "read_committed")
        .create_with_context(GroupContext::default())
        .context("cannot create Kafka consumer")?;
    kafka::prime(consumer.client()); // OAUTHBEARER: the first token at once
    consumer
        .subscribe(&[&topics.ledger, &topics.repartition])
        .context("cannot subscribe")?;
    Ok(consumer)
}

/// The transactional producer, with its transactions initialised (which
/// fences any older process with the same worker id and aborts its open
/// transaction).
fn create_producer(settings: &Settings) -> Result<TxnProducer> {
    let mut config = kafka::client_config(&settings.kafka);
    config
        .set("transaction.timeout.ms", "30000")
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000");
    with_user_properties(&mut config, settings);
    let producer: TxnProducer = config
        .set(
            "transactional.id",
            format!("{}-{}", settings.kafka.app_id, settings.worker_id),
        )
        .create_with_context(TxnContext)
        .context("cannot create Kafka producer")?;
    kafka::prime(producer.client()); // OAUTHBEARER: the first token at once
    producer
        .init_transactions(Duration::from_secs(settings.kafka.connect_timeout.max(30)))
        .map_err(|e| {
            anyhow!(
                "cannot initialise transactions on {}: {e}",
                settings.kafka.brokers
            )
        })?;
    Ok(producer)
}

/// The `--serde` value naming `serde`.
fn serde_name(serde: Serde) -> &'static str {
    match serde {
        Serde::Faust => "faust",
        Serde::Kstreams => "kstreams",
        Serde::Text => "text",
    }
}

/// Sends one record, waiting while the producer's queue is full.
fn send(p: &TxnProducer, topic: &str, partition: i32, key: &[u8], value: &[u8]) -> Result<()> {
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

/// Checks existing topics and creates missing ones, then waits until every
/// partition has a leader. Returns the partition counts of the changelog
/// (= repartition) and of the ledger.
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
    if ledger.is_some() {
        rt.block_on(kafka::check_compacted(k, &topics.ledger))
            .map_err(|e| anyhow!("{e:#} (the ledger keeps one record per object)"))?;
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
    if changelog.is_none() || repart.is_none() || ledger.is_none() {
        rt.block_on(kafka::ensure_topics(k, &specs))?;
    }
    wait_for_leaders(k, &specs)?;
    Ok((n, ledger.unwrap_or(n)))
}

/// Waits until every partition of the topics has a leader (new topics take
/// a moment), at most the connect timeout.
fn wait_for_leaders(k: &KafkaArgs, specs: &[kafka::TopicSpec]) -> Result<()> {
    let timeout = Duration::from_secs(k.connect_timeout.max(10));
    let started = Instant::now();
    for spec in specs {
        loop {
            let md = kafka::metadata(k, Some(&spec.name), timeout)?;
            let ok = md.topics().iter().any(|t| {
                t.name() == spec.name
                    && t.error().is_none()
                    && !t.partitions().is_empty()
                    && t.partitions()
                        .iter()
                        .all(|p| p.leader() >= 0 && p.error().is_none())
            });
            if ok {
                break;
            }
            if started.elapsed() > timeout {
                bail!(
                    "topic {} has partitions without a leader after {} s",
                    spec.name,
                    timeout.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Ok(())
}
