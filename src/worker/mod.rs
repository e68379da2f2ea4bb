//! The pipeline (docs/design.md §3): discover → count → aggregate, each step
//! a Kafka consume-transform-produce loop, exactly once through Kafka
//! transactions.
//!
//! One worker runs all three stages; workers with the same app id share the
//! ledger and repartition partitions as one consumer group. Every iteration
//! of the loop ([`Worker::run`]) polls a batch, computes its results, and
//! commits them in one transaction together with the input offsets: a crash
//! anywhere loses nothing and counts nothing twice.
//!
//! The parts, one file each (after Kafka Streams' split of the same loop):
//! - [`group`]: the consumer group membership, polling, rebalances, rewind;
//! - [`txn`]: the transactional producer (begin, send, commit with offsets);
//! - [`state`]: the tables, done sets and discovery, restored from Kafka;
//! - [`batch`]: planning a batch and settling its outcomes (pure functions);
//! - [`here`]: small objects the lister counts in the batch that found them;
//! - [`discover`], [`object`], [`ledger`], [`restore`]: listing the bucket,
//!   counting one object, the ledger's records, reading a topic to its end.
//!
//! Local state is a cache of what Kafka committed. Whenever a transaction
//! fails, or the brokers go away, the worker throws that state away, seeks
//! back to the committed offsets and rebuilds it from the topics ("resync"):
//! what was not committed is simply done again.
//!
//! With an explicit `--worker-id`, membership is static (see [`group`]) and
//! the transactional id fences a zombie of the same id. The price, as in
//! Kafka Streams: a static member never leaves the group, so one that stops
//! for good hands its partitions over only after the session timeout (10 s).
//! With the default id (hostname-pid), a stopping worker leaves at once.

pub mod batch;
pub mod contrib;
pub mod discover;
pub mod group;
pub mod here;
pub mod keyset;
mod known;
pub mod ledger;
pub mod notify;
pub mod object;
mod process;
pub mod purge;
pub mod ranged;
mod report;
pub mod restore;
pub mod split;
pub mod state;
mod throttle;
pub mod txn;
pub mod watchdog;

use crate::config::{KafkaArgs, S3Args, Topics};
use crate::count::Options;
use crate::events::{Event, Status};
use crate::failpoint;
use crate::kafka;
use crate::output;
use crate::s3;
use crate::wire::Serde;
use anyhow::{anyhow, Context, Result};
use batch::{Layout, Polled};
use discover::Listed;
use futures::StreamExt;
use group::{Group, GroupConfig, Poll};
use ledger::Entry;
use object::Outcome;
use purge::Purger;
use state::{Done, Restore, State};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::time::{Duration, Instant};
use throttle::Throttle;
use txn::{Txn, TxnConfig, TxnError};

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
    /// Format detection and its limits (issue 16).
    pub formats: crate::format::Config,
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
    /// Time between purges of consumed repartition records.
    pub purge_interval: Duration,
    /// Warn when the local state's estimated size passes this many bytes.
    pub max_table_memory: Option<u64>,
    /// Discovery retries every failed object at its first listing.
    pub retry_failed: bool,
    /// Time between full listings of the bucket (reconciliation passes).
    pub reconcile_interval: Duration,
    /// Keys per listed page (`None`: S3's default, 1,000).
    pub list_page_size: Option<i32>,
    /// `--on-change recount`: overwrites recount, deletes retract
    /// (otherwise each key is counted once).
    pub recount: bool,
    /// Event notifications to read (`--events`), next to the listing.
    pub events: Option<notify::Spec>,
    /// The web server (`None`: `--no-web`).
    pub web: Option<crate::web::WebSettings>,
    /// Big objects read in ranges (`--range-size`, `--range-concurrency`).
    pub ranged: ranged::Ranged,
}

/// Objects read and counted at the same time (small objects are bound by
/// the S3 round trip, large ones by the CPU).
const COUNT_CONCURRENCY: usize = 32;
/// Bytes of objects read and counted at the same time, in KiB: a batch of
/// big objects reads fewer at once than one of small ones (a PDF is held
/// whole in memory while its text is extracted), and an object bigger than
/// this is read alone.
const COUNT_KIB_AT_ONCE: u32 = 256 << 10;
/// Timeout of one page of a bucket listing (a page that times out is
/// listed again; a pass is never started over for it).
const PAGE_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause after a failed iteration before the next attempt.
const RETRY_PAUSE: Duration = Duration::from_secs(1);
/// Longest wait for input of the lister's idle iterations with `--events`:
/// events are taken at the start of each iteration.
const EVENTS_WAIT: Duration = Duration::from_millis(20);
/// Longest wait for the Kafka clients to close when stopping.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// Properties exactly-once depends on: the worker sets them whatever `-X`
/// says.
const OWN_PROPERTIES: &[&str] = &[
    "group.id",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "isolation.level",
    "transactional.id",
];

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

/// Counters for the status line.
#[derive(Default)]
struct Stats {
    objects: u64,
    failed: u64,
    words: u64,
    bytes: u64,
    transactions: u64,
    aborted: u64,
    skipped_tokens: u64,
}

/// A running worker.
pub struct Worker {
    settings: Settings,
    topics: Topics,
    /// Partitions of the changelog (= repartition) topic.
    partitions: i32,
    ledger_partitions: i32,
    rt: tokio::runtime::Runtime,
    s3: aws_sdk_s3::Client,
    group: Group,
    txn: Txn,
    stop: Arc<AtomicBool>,
    /// The group's rebalance epoch the state was last aligned with.
    seen_epoch: u64,
    /// Local state must be rebuilt from Kafka before the next batch.
    resync: bool,
    ready: bool,
    state: State,
    stats: Stats,
    purge: Purger,
    kafka_warnings: Throttle,
    s3_warnings: Throttle,
    memory_warnings: Throttle,
    /// Reads old contributions back (`--on-change recount`).
    contributions: Option<contrib::Reader>,
    /// `--events`: the event source, while this worker lists the bucket.
    events: notify::Events,
    /// The web server's view of this worker (see [`crate::web`]).
    web: Option<crate::web::Web>,
    /// Announces a step of the loop that makes no progress.
    _watchdog: watchdog::Watchdog,
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
        let started = std::time::Instant::now();
        let step = |what: &str| tracing::debug!("startup: {what} at {:?}", started.elapsed());
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
        step("bucket checked");
        for (k, _) in &settings.kafka.property {
            if OWN_PROPERTIES.contains(&k.as_str()) {
                tracing::warn!("-X {k}=… ignored: the worker sets {k} itself (exactly once)");
            }
        }
        if let Some(spec) = &settings.events {
            rt.block_on(notify::Notices::check(spec, &settings.kafka, &settings.s3))?;
        }
        let topics = settings.kafka.topics();
        // The transactional producer starts (init_transactions: a few round
        // trips, sometimes a 500 ms librdkafka timer) while the topics are
        // checked and created: it needs none of them.
        let txn_config = TxnConfig {
            kafka: settings.kafka.clone(),
            worker_id: settings.worker_id.clone(),
            own_properties: OWN_PROPERTIES,
        };
        let txn_topics = topics.clone();
        let txn = std::thread::Builder::new()
            .name("txn-start".into())
            .spawn(move || Txn::start(txn_config, txn_topics))
            .context("cannot start a thread")?;
        let members_topic = settings.web.as_ref().map(|_| {
            rt.spawn(crate::web::members::create_topic(
                settings.kafka.clone(),
                settings.replication,
            ))
        });
        // Under --on-change recount the contributions topic is made with the
        // others; without it, when a big object's ranges first need it
        // (`Worker::range_contributions`).
        let (partitions, ledger_partitions) = kafka::prepare_pipeline_topics(
            &settings.kafka,
            &topics,
            settings.partitions,
            settings.replication,
            settings.recount,
            &rt,
        )?;
        step("topics ready");
        let contributions = match settings.recount {
            true => Some(contrib::Reader::new(
                &settings.kafka,
                &topics.contributions,
            )?),
            false => None,
        };
        let txn = txn
            .join()
            .map_err(|_| anyhow!("the transactional producer's start panicked"))??;
        step("transactions initialised");
        let group = Group::join(
            GroupConfig {
                kafka: settings.kafka.clone(),
                worker_id: settings.worker_id.clone(),
                static_membership: settings.static_membership,
                own_properties: OWN_PROPERTIES,
            },
            topics.clone(),
        )?;
        step("group joined");
        let web = match (&settings.web, members_topic) {
            (Some(w), Some(members_topic)) => Some(crate::web::start(
                w,
                crate::web::Pipeline {
                    kafka: &settings.kafka,
                    topics: &topics,
                    worker_id: &settings.worker_id,
                    serde: settings.serde,
                    partitions,
                    ledger_partitions,
                    replication: settings.replication,
                    bucket: &settings.s3.bucket,
                    members_topic,
                },
                &rt,
            )?),
            _ => None,
        };
        Event::Joining {
            worker: settings.worker_id.clone(),
            group: settings.kafka.app_id.clone(),
            changelog: topics.changelog.clone(),
            partitions,
            serde: settings.serde.name().into(),
        }
        .emit();
        Ok(Worker {
            partitions,
            ledger_partitions,
            rt,
            s3,
            group,
            txn,
            stop,
            seen_epoch: 0,
            resync: false,
            ready: false,
            state: State::default(),
            stats: Stats::default(),
            purge: Purger::new(&topics.repartition, settings.purge_interval),
            kafka_warnings: Throttle::new(Duration::from_secs(10)),
            s3_warnings: Throttle::new(Duration::from_secs(10)),
            memory_warnings: Throttle::new(Duration::from_secs(60)),
            contributions,
            events: notify::Events::new(settings.events.clone()),
            web,
            settings,
            topics,
            _watchdog: watchdog::Watchdog::start(),
        })
    }

    /// Runs until `stop` is set; then leaves the group cleanly. Returns an
    /// error only for what retrying cannot fix (e.g. fenced by a newer
    /// process with the same worker id). Closing the Kafka clients takes at
    /// most [`CLOSE_TIMEOUT`], whatever state they are in.
    pub fn run(mut self) -> Result<()> {
        let result = self.run_until_stopped();
        self.close();
        result
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn run_until_stopped(&mut self) -> Result<()> {
        let mut last_status = Instant::now();
        while !self.stopping() {
            if let Err(e) = self.iteration() {
                if is_fatal(&e) {
                    return Err(e);
                }
                if !self.stopping() {
                    self.kafka_warnings.warn(format_args!("{e:#} (retrying)"));
                    crate::web::metrics::error("iteration");
                }
                self.resync = true;
                watchdog::step("pause after an error");
                let stop = Arc::clone(&self.stop);
                if let Err(e) = self
                    .group
                    .idle_poll(RETRY_PAUSE, &|| stop.load(Ordering::Relaxed))
                {
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
        watchdog::step("leave the group");
        self.group.leave();
        self.status();
        if let Some(w) = self.web.as_mut() {
            w.stop();
        }
        Ok(())
    }

    /// Drops the Kafka clients on a thread of their own and waits for them at
    /// most [`CLOSE_TIMEOUT`]: a client that cannot reach its brokers must
    /// not keep the process alive.
    fn close(self) {
        let (done, closed) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            drop(self);
            let _ = done.send(());
        });
        if closed.recv_timeout(CLOSE_TIMEOUT).is_err() {
            tracing::warn!(
                "the Kafka clients did not close within {} s; exiting anyway",
                CLOSE_TIMEOUT.as_secs()
            );
        }
    }

    /// One batch: align the state with the group, discover, poll, process.
    fn iteration(&mut self) -> Result<()> {
        watchdog::step("start the transactional producer");
        self.txn.ensure()?;
        let epoch = self.group.epoch();
        if self.resync || epoch != self.seen_epoch {
            if let Some(w) = self.web.as_mut() {
                w.served.restoring();
            }
        }
        if self.resync {
            watchdog::step("rewind and restore");
            self.rewind()?;
            self.resync = false;
            self.seen_epoch = epoch;
            self.publish_web();
        } else if epoch != self.seen_epoch {
            watchdog::step("align with the group (restore)");
            self.align()?;
            self.seen_epoch = epoch;
            self.publish_web();
        }
        if let Some(w) = self.web.as_mut() {
            w.served.serve(&self.state);
        }
        self.purge.maybe_purge(&self.rt, &self.settings.kafka);
        watchdog::step("list the bucket");
        let Some(listed) = self.list() else {
            return Ok(()); // stopping
        };
        // What the listing found commits now: waiting for records that may
        // not come would only delay it (the first page of a backlog: the
        // ledger holds nothing to count yet).
        let found = !listed.found.is_empty() || listed.progress.is_some();
        let first_wait = match self.state.last_listing {
            _ if found => Duration::ZERO,
            Some(t) if self.state.discovery.is_some() => {
                self.settings.interval.saturating_sub(t.elapsed())
            }
            _ => Duration::from_millis(200),
        }
        .min(if self.events.is_open() {
            EVENTS_WAIT // the lister takes events at the start of each iteration
        } else {
            Duration::from_millis(200)
        });
        watchdog::step("poll");
        let polled = match self.group.poll_batch(epoch, first_wait)? {
            Poll::Batch(polled) => polled,
            Poll::Rejoined => {
                self.abandon(listed);
                self.resync = true;
                return Ok(());
            }
        };
        if self.group.epoch() != epoch {
            // A rebalance happened while polling: positions were reset to the
            // committed offsets, so everything polled comes again. Keep nothing.
            self.abandon(listed);
            return Ok(());
        }
        if polled.is_empty()
            && listed.found.is_empty()
            && listed.removed.is_empty()
            && listed.progress.is_none()
        {
            // Nothing to commit: the events taken named known keys only.
            self.events.ack(listed.ack);
            return Ok(());
        }
        self.process(polled, listed)
    }

    /// Brings local state in line with the current assignment.
    fn align(&mut self) -> Result<()> {
        let owned = self.group.assignment()?;
        let stop = Arc::clone(&self.stop);
        let committed = self.group.wait_stable(&|| stop.load(Ordering::Relaxed))?;
        let restore = Restore {
            kafka: &self.settings.kafka,
            topics: &self.topics,
            serde: self.settings.serde,
            bucket: &self.settings.s3.bucket,
            prefix: &self.settings.prefix,
            interval: self.settings.interval,
            ledger_partitions: self.ledger_partitions,
            stop: &self.stop,
            retry_failed: self.settings.retry_failed,
            reconcile: self.settings.reconcile_interval,
            page_size: self.settings.list_page_size,
            recount: self.settings.recount,
        };
        if !owned.is_empty() {
            failpoint::hit("restore.slow"); // a test's long restore
        }
        self.state.align(&restore, &owned, &committed)?;
        self.purge.retain(|p| owned.repartition.contains(&p));
        if self.state.discovery.is_some() {
            self.settings.retry_failed = false; // once per process
        }
        if !self.ready && !owned.is_empty() {
            self.ready = true;
            Event::Ready {
                worker: self.settings.worker_id.clone(),
            }
            .emit();
        }
        Ok(())
    }

    /// After a failed transaction or an outage: back to the committed
    /// offsets, and local state rebuilt from the topics.
    fn rewind(&mut self) -> Result<()> {
        Event::Resync.emit();
        self.group.rewind()?;
        self.state.clear();
        self.align()?;
        failpoint::hit("resync.aligned"); // a test's pause before the next poll
        Ok(())
    }

    /// Discovery, when this worker is the lister: the bucket's listing
    /// ([`Worker::list_bucket`]) and the event notices that arrived
    /// ([`notify::Events::take`]). `None` when stopping.
    fn list(&mut self) -> Option<Listed> {
        let mut listed = self.list_bucket()?;
        match self.state.discovery.as_mut() {
            Some(d) if !self.state.parked => {
                let (k, s3) = (&self.settings.kafka, &self.settings.s3);
                self.events.take(&self.rt, k, s3, d, &mut listed);
                // Removal notices, once HeadObject confirms the objects are
                // gone (`--on-change recount`).
                let (stop, client) = (&self.stop, &self.s3);
                let confirm = d.confirm_removals(client, &mut listed);
                self.rt
                    .block_on(async move { object::unless_stopped(stop, confirm).await });
            }
            // Another worker lists: its own source reads the events; the
            // ones this one took and did not acknowledge come again.
            _ => self.events.close(),
        }
        Some(listed)
    }

    /// Lists the bucket when this worker is the lister: a page of the quick
    /// listing when the interval has passed, a page of the full pass while
    /// one runs (see [`discover::Discovery::poll`]). `None` when stopping.
    fn list_bucket(&mut self) -> Option<Listed> {
        if !self.state.lists() {
            return Some(Listed::default());
        }
        let Some(d) = self.state.discovery.as_mut() else {
            return Some(Listed::default());
        };
        let quick = self
            .state
            .last_listing
            .is_none_or(|t| t.elapsed() >= self.settings.interval);
        // A full pass is due on its own schedule, not only at a quick
        // listing (with a long --interval, events are the fast path).
        if !quick && !d.listing_under_way() && !d.full_due() {
            return Some(Listed::default());
        }
        if quick {
            self.state.last_listing = Some(Instant::now());
        }
        let (stop, s3) = (&self.stop, &self.s3);
        let listing =
            async move { object::unless_stopped(stop, d.poll(s3, quick, PAGE_TIMEOUT)).await };
        let mut listed = self.rt.block_on(listing)?;
        if let Some(e) = listed.error.take() {
            self.s3_warnings.warn(format_args!("{e:#} (retrying)"));
            crate::web::metrics::error("s3_list");
        }
        if !listed.gone.is_empty() {
            // A full pass found objects gone: their keys, from the ledger.
            match discover::names_of(
                &self.settings.kafka,
                &self.topics.ledger,
                self.ledger_partitions,
                &self.settings.s3.bucket,
                &listed.gone,
            ) {
                Ok(names) => listed.removed.extend(names),
                Err(e) => {
                    self.kafka_warnings
                        .warn(format_args!("{e:#} (finding removed objects; retrying)"));
                    self.abandon(listed);
                    return Some(Listed::default());
                }
            }
        }
        Some(listed)
    }
}
