//! `wordstream worker`: run the pipeline (see [`crate::worker`]) until
//! SIGINT/SIGTERM.

use crate::cmd::count_local::CountFlags;
use crate::config::{KafkaArgs, S3Args};
use crate::wire::Serde;
use crate::worker::{Settings, Worker};
use anyhow::{bail, Context, Result};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

/// Flags of `worker`.
#[derive(Debug, clap::Args)]
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
    /// Seconds between bucket listings.
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
    /// Seconds between status lines.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub status_interval: u64,
    /// Seconds between purges of consumed records of the repartition topic.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub purge_interval: u64,
    /// Warn (in the status line) when the worker's local state (tables,
    /// done sets, known objects) is estimated above this many bytes.
    #[arg(long, value_name = "BYTES")]
    pub max_table_memory: Option<u64>,
    /// Retry every object the ledger says failed (e.g. after fixing a
    /// permission) at the first listing; otherwise a failed object is
    /// retried 10 minutes after it failed, or once replaced. Takes effect
    /// on the worker that lists the bucket.
    #[arg(long)]
    pub retry_failed: bool,
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<()> {
    if !(args.interval > 0.0 && args.interval.is_finite()) {
        bail!("--interval must be a positive number of seconds");
    }
    if args.partitions < 1 || args.replication < 1 {
        bail!("--partitions and --replication must be at least 1");
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second signal while stopping exits at once.
        signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&stop))
            .context("cannot install signal handler")?;
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("cannot install signal handler")?;
    }
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
    };
    Worker::start(settings, stop)?.run()
}
