//! How workers find each other: the compacted topic `<app-id>-members`
//! (one partition), keyed by worker id. Every worker writes its record
//! there (its web address, owned partitions, readiness, lag, totals) when
//! its assignment changes and every [`HEARTBEAT`], reads everybody's
//! records back, and writes a tombstone when it stops. A record older than
//! [`FRESH`] is ignored (a worker killed with -9 leaves one behind).
//!
//! The owner of a partition is the fresh member that claims it; during a
//! rebalance two may claim it (the newest record wins) or none (queries
//! answer 503 with Retry-After until the new owner has restored it and
//! said so).
//!
//! One background thread does all of it, and also measures the lag of the
//! owned partitions (log end − committed offset) for the metrics.

use super::metrics;
use super::view::Shared;
use crate::config::{KafkaArgs, Topics};
use crate::kafka::{self, QuietContext, TopicSpec};
use anyhow::{Context, Result};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Time between a worker's records (and lag measurements).
pub const HEARTBEAT: Duration = Duration::from_secs(2);
/// A record older than this is a worker gone.
pub const FRESH: f64 = 15.0;

/// One worker, as its record says.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Member {
    pub worker: String,
    /// Base URL of its web server (`http://host:port`).
    pub url: String,
    pub ready: bool,
    pub restoring: bool,
    pub lister: bool,
    pub repartition: Vec<i32>,
    pub ledger: Vec<i32>,
    /// Lag of its repartition partitions (records), summed.
    pub lag: i64,
    /// Ledger records not yet processed in its ledger partitions.
    pub backlog: i64,
    /// Words and objects it committed since it started.
    pub words: u64,
    pub objects: u64,
    /// When the record was written (Unix s).
    pub ts: f64,
}

/// Everybody's latest records.
pub struct Members {
    me: String,
    all: RwLock<BTreeMap<String, Member>>,
}

/// Which input a partition number is of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Of {
    Repartition,
    Ledger,
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Members {
    /// This worker's id.
    pub fn me(&self) -> &str {
        &self.me
    }

    /// The members whose records are fresh, by worker id.
    pub fn fresh(&self) -> Vec<Member> {
        let t = now();
        self.all
            .read()
            .expect("not poisoned")
            .values()
            .filter(|m| t - m.ts < FRESH)
            .cloned()
            .collect()
    }

    /// The member (other than this one) that owns partition `p` of `of`:
    /// the newest fresh record that claims it.
    pub fn owner(&self, of: Of, p: i32) -> Option<Member> {
        self.fresh()
            .into_iter()
            .filter(|m| m.worker != self.me)
            .filter(|m| match of {
                Of::Repartition => m.repartition.contains(&p),
                Of::Ledger => m.ledger.contains(&p),
            })
            .max_by(|a, b| a.ts.total_cmp(&b.ts))
    }

    fn set(&self, m: Member) {
        self.all
            .write()
            .expect("not poisoned")
            .insert(m.worker.clone(), m);
    }

    fn remove(&self, worker: &str) {
        self.all.write().expect("not poisoned").remove(worker);
    }
}

/// The running members thread.
pub struct Registry {
    pub members: Arc<Members>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Registry {
    /// Writes this worker's tombstone and stops the thread (at most a few
    /// seconds).
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Everything the thread needs.
pub struct Config {
    pub kafka: KafkaArgs,
    pub topics: Topics,
    pub replication: i32,
    /// This worker's base URL.
    pub url: String,
}

/// The members topic of an app.
pub fn topic(app_id: &str) -> String {
    format!("{app_id}-members")
}

/// Creates the members topic if it is missing. The worker starts this
/// while it prepares its other topics, and [`start`] waits for it.
pub async fn create_topic(kafka: KafkaArgs, replication: i32) -> Result<()> {
    let name = topic(&kafka.app_id);
    kafka::ensure_topics(
        &kafka,
        &[TopicSpec {
            name: name.clone(),
            partitions: 1,
            replication,
            config: vec![
                ("cleanup.policy", "compact".to_string()),
                ("segment.ms", "600000".to_string()),
            ],
        }],
    )
    .await
    .with_context(|| format!("cannot create the members topic {name}"))
}

/// Starts the thread, once `created` ([`create_topic`]) succeeded.
pub fn start(
    config: Config,
    shared: Arc<Shared>,
    created: tokio::task::JoinHandle<Result<()>>,
    rt: &tokio::runtime::Runtime,
) -> Result<Registry> {
    let name = topic(&config.kafka.app_id);
    rt.block_on(created)
        .context("the members topic's creation panicked")??;
    let producer: BaseProducer<QuietContext> = kafka::client_config(&config.kafka)
        .set("linger.ms", "0")
        .create_with_context(QuietContext)
        .context("cannot create the members producer")?;
    kafka::prime(producer.client());
    // It reads the one partition by assignment and commits nothing; the
    // group id (librdkafka wants one) is the restore consumers' (already
    // allowed where groups need permissions, e.g. MSK IAM).
    let consumer: BaseConsumer<QuietContext> = kafka::client_config(&config.kafka)
        .set("group.id", format!("{}-restore", config.kafka.app_id))
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "200")
        .create_with_context(QuietContext)
        .context("cannot create the members consumer")?;
    kafka::prime(consumer.client());
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&name, 0, Offset::Beginning)?;
    consumer
        .assign(&tpl)
        .with_context(|| format!("cannot read {name}"))?;
    let watermarks = kafka::base_consumer(&kafka::client_config(&config.kafka))?;
    let me = shared.snapshot().worker;
    let members = Arc::new(Members {
        me: me.clone(),
        all: RwLock::new(BTreeMap::new()),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let thread = {
        let (members, stop) = (Arc::clone(&members), Arc::clone(&stop));
        let mut run = Run {
            config,
            topic: name,
            shared,
            members,
            producer,
            consumer,
            watermarks,
            lagged: BTreeSet::new(),
        };
        std::thread::Builder::new()
            .name("web-members".into())
            .spawn(move || run.run(&stop))
            .context("cannot start the members thread")?
    };
    Ok(Registry {
        members,
        stop,
        thread: Some(thread),
    })
}

struct Run {
    config: Config,
    topic: String,
    shared: Arc<Shared>,
    members: Arc<Members>,
    producer: BaseProducer<QuietContext>,
    consumer: BaseConsumer<QuietContext>,
    watermarks: BaseConsumer<QuietContext>,
    /// Partitions with a lag series.
    lagged: BTreeSet<(&'static str, i32)>,
}

impl Run {
    fn run(&mut self, stop: &AtomicBool) {
        let mut last: Option<(Instant, Member)> = None;
        while !stop.load(Ordering::Relaxed) {
            self.read();
            let snap = self.shared.snapshot();
            let due = last.as_ref().is_none_or(|(at, m)| {
                at.elapsed() >= HEARTBEAT
                    || m.repartition != snap.repartition
                    || m.ledger != snap.ledger
                    || m.ready != snap.ready
                    || m.restoring != snap.restoring
            });
            if due {
                let (lag, backlog) = self.lag(&snap);
                let me = Member {
                    worker: snap.worker.clone(),
                    url: self.config.url.clone(),
                    ready: snap.ready,
                    restoring: snap.restoring,
                    lister: snap.lister,
                    repartition: snap.repartition.clone(),
                    ledger: snap.ledger.clone(),
                    lag,
                    backlog,
                    words: metrics::WORDS_COMMITTED.load(Ordering::Relaxed),
                    objects: metrics::OBJECTS_COMMITTED.load(Ordering::Relaxed),
                    ts: now(),
                };
                self.write(&me.worker, Some(&me));
                self.members.set(me.clone());
                last = Some((Instant::now(), me));
            }
            self.producer.poll(Duration::ZERO);
        }
        self.write(self.members.me(), None);
        let _ = self.producer.flush(Duration::from_secs(3));
    }

    /// Reads the records written since the last call.
    fn read(&mut self) {
        let deadline = Instant::now() + Duration::from_millis(200);
        while let Some(msg) = self
            .consumer
            .poll(deadline.saturating_duration_since(Instant::now()))
        {
            let Ok(msg) = msg else { continue };
            let Some(key) = msg.key() else { continue };
            let worker = String::from_utf8_lossy(key);
            match msg.payload().map(serde_json::from_slice::<Member>) {
                None => self.members.remove(&worker),
                Some(Ok(m)) if m.worker != self.members.me() => self.members.set(m),
                Some(Ok(_)) => {}
                Some(Err(e)) => tracing::debug!("members: bad record of {worker}: {e}"),
            }
            if Instant::now() >= deadline {
                break;
            }
        }
    }

    fn write(&self, worker: &str, m: Option<&Member>) {
        let value = m.map(|m| serde_json::to_vec(m).unwrap_or_default());
        let mut record = BaseRecord::<[u8], [u8]>::to(&self.topic).key(worker.as_bytes());
        if let Some(v) = value.as_deref() {
            record = record.payload(v);
        }
        if let Err((e, _)) = self.producer.send(record) {
            tracing::debug!("members: cannot write the record of {worker}: {e}");
        }
    }

    /// Measures the lag of the owned partitions (log end − committed
    /// offset − the last commit marker; markers of transactions not yet
    /// consumed count as records, so the figure is exact when idle and
    /// slightly high under load) and
    /// updates the metrics. Returns the repartition lag and the ledger
    /// backlog, summed.
    fn lag(&mut self, snap: &super::view::Snapshot) -> (i64, i64) {
        let mut now_lagged = BTreeSet::new();
        let mut sums = (0, 0);
        let parts = [
            (
                "repartition",
                &self.config.topics.repartition,
                &snap.repartition_offsets,
            ),
            ("ledger", &self.config.topics.ledger, &snap.ledger_offsets),
        ];
        for (kind, topic, offsets) in parts {
            for (&p, &committed) in offsets {
                let Ok((low, high)) =
                    self.watermarks
                        .fetch_watermarks(topic, p, Duration::from_secs(2))
                else {
                    continue;
                };
                // Every transaction leaves a commit marker after its
                // records: the last one is not a record to process.
                let lag = (high - committed.max(low) - 1).max(0);
                metrics::set_lag(kind, p, lag);
                now_lagged.insert((kind, p));
                if kind == "repartition" {
                    sums.0 += lag;
                } else {
                    sums.1 += lag;
                }
            }
        }
        for &(kind, p) in self.lagged.difference(&now_lagged) {
            metrics::clear_lag(kind, p);
        }
        self.lagged = now_lagged;
        metrics::set_backlog(sums.1);
        sums
    }
}
