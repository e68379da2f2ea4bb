//! `wordstream worker`: run the pipeline (see [`crate::worker`]) until
//! SIGINT/SIGTERM.

use crate::cmd::count_local::CountFlags;
use crate::config::{KafkaArgs, S3Args};
use crate::shutdown::Shutdown;
use crate::wire::Serde;
use crate::worker::notify::Spec;
use crate::worker::{Settings, Worker};
use anyhow::{bail, Result};
use std::time::Duration;

/// The shortest `--interval`: ten listings a second at most.
pub const MIN_INTERVAL: f64 = 0.1;
/// The longest `--interval`: a day.
pub const MAX_INTERVAL: f64 = 86_400.0;

/// Flags of `worker`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Limits:
  A token (a run of word characters) longer than 64 KiB is skipped, not
  counted; the rest of its object is (the ledger's skipped_tokens counts them).
  New keys are found at the next listing (--interval) when they sort after the
  keys already seen; keys that sort before them (random names) wait for the
  next full pass (--reconcile-interval after the last one ends, plus the pass
  itself): up to about 10 minutes with the defaults. With --events, new
  objects are found from their event notifications whatever their keys.")]
pub struct Args {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub s3: S3Args,
    #[command(flatten)]
    pub count: CountFlags,
    /// Only count objects whose key starts with this.
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// Seconds between bucket listings (0.1 to 86400). A new key that sorts
    /// after the keys already seen is found at the next listing; one that
    /// sorts before them (random keys) waits for the next full pass
    /// (--reconcile-interval).
    #[arg(long, value_name = "SECS", default_value_t = 1.0)]
    pub interval: f64,
    /// Changelog wire format.
    #[arg(long, value_enum, default_value_t = Serde::Faust)]
    pub serde: Serde,
    /// This worker's id: names its transactional id, so a restarted worker
    /// with the same id fences its zombie. Given explicitly, it also makes
    /// the worker a static group member: restarted with the same id it takes
    /// its partitions back at once, without a rebalance; stopped for good,
    /// its partitions move to other workers after the session timeout
    /// (10 s). The default id is hostname-pid, with dynamic membership.
    #[arg(long, env = "WORDSTREAM_WORKER_ID")]
    pub worker_id: Option<String>,
    /// Print the top N words after each committed batch ("$$ TALLY $$").
    #[arg(long, value_name = "N")]
    pub tally: Option<usize>,
    /// Partitions of topics the worker creates (an existing changelog's
    /// count wins).
    #[arg(long, default_value_t = 8)]
    pub partitions: i32,
    /// Replication factor of topics the worker creates.
    #[arg(long, default_value_t = 1)]
    pub replication: i32,
    /// Seconds between status lines (1 to 86400).
    #[arg(long, value_name = "SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub status_interval: u64,
    /// Seconds between purges of consumed records of the repartition topic.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub purge_interval: u64,
    /// Warn (in the status line) when the worker's local state (tables,
    /// done sets, known objects) is estimated above this many bytes.
    #[arg(long, value_name = "BYTES")]
    pub max_table_memory: Option<u64>,
    /// Plain-text objects larger than this are read as byte ranges of this
    /// size, several ranged GETs at a time (e.g. 64MiB, 512KiB; 0: never
    /// split). Compressed files, archives, PDF and markup are read whole.
    #[arg(long, value_name = "SIZE", default_value = "64MiB",
          value_parser = crate::cmd::upload::plan::parse_size)]
    pub range_size: u64,
    /// Ranges of big objects this worker reads and counts at the same time
    /// (1 to 64); the ranges of one object are shared by the whole group.
    #[arg(long, value_name = "N", default_value_t = 2,
          value_parser = clap::value_parser!(u16).range(1..=64))]
    pub range_concurrency: u16,
    /// Retry every object the ledger says failed (e.g. after fixing a
    /// permission) at the first listing; otherwise a failed object is
    /// retried 10 minutes after it failed, or once replaced. Takes effect
    /// on the worker that lists the bucket.
    #[arg(long)]
    pub retry_failed: bool,
    /// Seconds from the end of one full listing of the bucket to the start
    /// of the next (reconciliation passes: they find keys that sort before
    /// the keys already seen, e.g. random names, and retry failed objects).
    /// A pass lists one page (1,000 keys) per loop iteration and resumes
    /// where it stood after a restart or a hand-over. Its LIST cost per hour
    /// is about objects / 1000 × 3600 / (this + the pass's duration): 6,000
    /// calls an hour on a bucket of 1 M objects at the default.
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    pub reconcile_interval: u64,
    /// Event-driven discovery, next to the listing: S3 Event Notifications
    /// from an SQS queue (sqs:QUEUE_URL; endpoint AWS_ENDPOINT_URL_SQS, else
    /// the queue URL's) or a Kafka topic of the same cluster that an S3
    /// server publishes them to (kafka:TOPIC; offsets of the group
    /// <app-id>-events). New objects are found within a loop iteration,
    /// whatever their keys; the listing stays the safety net for lost
    /// events. An event is acknowledged once its objects are in the ledger.
    #[arg(long, env = "WORDSTREAM_EVENTS", value_name = "sqs:URL|kafka:TOPIC",
          value_parser = parse_events)]
    pub events: Option<Spec>,
    /// Keys per ListObjectsV2 page (tests: many pages on a small bucket).
    #[arg(long, value_name = "N", hide = true, value_parser = clap::value_parser!(i32).range(1..=1000))]
    pub list_page_size: Option<i32>,
    /// What an overwritten or deleted object does to the totals: `recount`
    /// replaces its contribution with the new version's (a delete takes it
    /// out; a word at 0 leaves the table, a tombstone in the changelog);
    /// `ignore` counts each key once, ever (the original's behaviour).
    #[arg(long, value_enum, default_value_t = OnChange::Recount)]
    pub on_change: OnChange,
    #[command(flatten)]
    pub web: WebFlags,
}

/// Flags of the web server (metrics, health, table queries, dashboard).
#[derive(Debug, clap::Args)]
pub struct WebFlags {
    /// Port of the web server (/metrics, /health, /ready, /table/word_counts/WORD,
    /// /top, /objects, the dashboard at /); 0 picks a free port (announced in
    /// the log).
    #[arg(
        long,
        value_name = "PORT",
        default_value_t = 6066,
        env = "WORDSTREAM_WEB_PORT"
    )]
    pub web_port: u16,
    /// Address the web server listens on (loopback by default: it has no
    /// authentication; bind 0.0.0.0 only behind a firewall or a proxy).
    #[arg(long, value_name = "IP", default_value = "127.0.0.1")]
    pub web_bind: std::net::IpAddr,
    /// The URL other workers reach this one at (default: http://BIND:PORT,
    /// or the host name when bound to all interfaces).
    #[arg(long, value_name = "URL")]
    pub web_advertise: Option<String>,
    /// No web server (no metrics, no queries).
    #[arg(long)]
    pub no_web: bool,
}

impl WebFlags {
    /// The server's settings, `None` with `--no-web`.
    pub fn settings(&self) -> Option<crate::web::WebSettings> {
        (!self.no_web).then(|| crate::web::WebSettings {
            bind: self.web_bind,
            port: self.web_port,
            advertise: self.web_advertise.clone(),
        })
    }
}

/// `--on-change`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OnChange {
    /// Overwrites recount, deletes retract.
    Recount,
    /// Each key is counted once (its first version), ever.
    Ignore,
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<()> {
    if !(MIN_INTERVAL..=MAX_INTERVAL).contains(&args.interval) {
        bail!("--interval must be between {MIN_INTERVAL} and {MAX_INTERVAL} seconds");
    }
    if args.partitions < 1 || args.replication < 1 {
        bail!("--partitions and --replication must be at least 1");
    }
    // SIGINT, SIGTERM, SIGHUP: a clean stop; a second one exits at once.
    let stop = Shutdown::install()?.flag();
    let static_membership = args.worker_id.is_some();
    let worker_id = args.worker_id.unwrap_or_else(|| {
        format!(
            "{}-{}",
            gethostname::gethostname().to_string_lossy(),
            std::process::id()
        )
    });
    let settings = Settings {
        kafka: args.kafka,
        s3: args.s3,
        prefix: args.prefix,
        interval: Duration::from_secs_f64(args.interval),
        count: args.count.options(),
        formats: args.count.formats(),
        serde: args.serde,
        worker_id,
        static_membership,
        tally: args.tally,
        partitions: args.partitions,
        replication: args.replication,
        status_interval: Duration::from_secs(args.status_interval.max(1)),
        purge_interval: Duration::from_secs(args.purge_interval.min(86_400)),
        max_table_memory: args.max_table_memory,
        retry_failed: args.retry_failed,
        reconcile_interval: Duration::from_secs(args.reconcile_interval.min(30 * 86_400)),
        list_page_size: args.list_page_size,
        recount: args.on_change == OnChange::Recount,
        events: args.events,
        web: args.web.settings(),
        ranged: crate::worker::ranged::Ranged {
            size: args.range_size,
            concurrency: usize::from(args.range_concurrency),
        },
    };
    Worker::start(settings, stop)?.run()
}

/// `--events`: `sqs:QUEUE_URL` or `kafka:TOPIC`.
fn parse_events(s: &str) -> Result<Spec, String> {
    s.parse()
}
