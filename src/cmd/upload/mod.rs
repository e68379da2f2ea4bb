//! `wordstream upload PATH…`: local files into the bucket (docs/design.md §5).
//!
//! Small files go up in one streaming PutObject; files above
//! `--multipart-threshold` go up in parts (CreateMultipartUpload, UploadPart
//! concurrently, CompleteMultipartUpload). A multipart upload that fails (or
//! is interrupted: SIGINT, SIGTERM or SIGHUP) is always aborted, so no
//! orphan parts stay in the bucket. Each object is HEADed afterwards: its
//! size must equal the file's. Every request is bounded in time
//! (`--s3-timeout`, see [`crate::s3`]).
//!
//! [`plan`] decides what goes where (no I/O but the local file system);
//! [`transfer`] sends it. `--concurrency` bounds the requests in flight
//! (single PUTs and parts together), and so memory: at most that many parts
//! are buffered.

pub mod plan;
mod transfer;

pub use plan::{expand, parse_size, plan, Item, Plan, MAX_PARTS, MIN_PART};
pub use transfer::FAIL_AFTER_PARTS_ENV;

use crate::config::S3Args;
use crate::output;
use crate::s3;
use crate::shutdown::Shutdown;
use anyhow::{anyhow, bail, Context, Result};
use comfy_table::{presets, Cell, CellAlignment, ContentArrangement, Table};
use futures::StreamExt;
use plan::parse_part_size;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use transfer::{Ctx, Outcome};

/// Flags of `upload`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Files, and directories with --recursive.
    #[arg(value_name = "PATH", required = true)]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub s3: S3Args,
    /// Key prefix ("folder"); a `/` is added when missing. Keys are the prefix
    /// plus the file name, or the path relative to a directory argument. It
    /// may not start with `/` or hold `//`, `.` or `..` segments.
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// Upload the files of directories, recursively.
    #[arg(short, long)]
    pub recursive: bool,
    /// Files larger than this go up in parts (bytes, or with KiB/MiB/GiB).
    #[arg(long, value_name = "SIZE", default_value = "16MiB", value_parser = parse_size)]
    pub multipart_threshold: u64,
    /// Part size of multipart uploads (at least 5 MiB).
    #[arg(long, value_name = "SIZE", default_value = "8MiB", value_parser = parse_part_size)]
    pub part_size: u64,
    /// Requests in flight (whole files and parts together).
    #[arg(long, value_name = "N", default_value_t = 4,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// Content-Type of the objects.
    #[arg(long, value_name = "TYPE", default_value = "text/plain; charset=utf-8")]
    pub content_type: String,
    /// List what would be uploaded; send nothing to S3.
    #[arg(long)]
    pub dry_run: bool,
    /// Create the bucket if it does not exist.
    #[arg(long)]
    pub create_bucket: bool,
    /// No progress bars and no summary table.
    #[arg(short, long)]
    pub quiet: bool,
}

fn mbps(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / 1e6 / secs.max(1e-9)
}

/// The summary table: one row per object, then the total.
fn summary(outcomes: &[Outcome], wall: f64) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(vec!["key", "bytes", "parts", "seconds", "MB/s", "ETag"]);
    for col in 1..=4 {
        if let Some(c) = t.column_mut(col) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    for o in outcomes {
        t.add_row(vec![
            Cell::new(output::escape(&o.key)),
            Cell::new(o.bytes),
            Cell::new(o.parts),
            Cell::new(format!("{:.3}", o.secs)),
            Cell::new(format!("{:.1}", mbps(o.bytes, o.secs))),
            Cell::new(&o.etag),
        ]);
    }
    let bytes: u64 = outcomes.iter().map(|o| o.bytes).sum();
    let parts: u64 = outcomes.iter().map(|o| o.parts).sum();
    t.add_row(vec![
        Cell::new(format!("total: {} objects", outcomes.len())),
        Cell::new(bytes),
        Cell::new(parts),
        Cell::new(format!("{wall:.3}")),
        Cell::new(format!("{:.1}", mbps(bytes, wall))),
        Cell::new(""),
    ]);
    t
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<()> {
    let items = expand(&args.paths, args.recursive, &args.prefix)?;
    if args.dry_run {
        return output::stdout(&plan::dry_run(
            &items,
            &args.s3.bucket,
            args.multipart_threshold,
            args.part_size,
        ));
    }
    if items.is_empty() {
        tracing::warn!("no files to upload");
        return Ok(());
    }
    let fail_after_parts = match std::env::var(FAIL_AFTER_PARTS_ENV) {
        Ok(v) => Some(
            v.parse::<u32>()
                .map_err(|_| anyhow!("{FAIL_AFTER_PARTS_ENV}={v} is not a number"))?,
        ),
        Err(_) => None,
    };
    let stop = Shutdown::install()?;
    tokio::runtime::Runtime::new()
        .context("cannot start the async runtime")?
        .block_on(upload_all(args, items, fail_after_parts, stop))
}

/// "interrupted by SIGTERM" (or by whatever asked for the stop).
fn interrupted(stop: &Shutdown) -> String {
    match stop.signal_name() {
        Some(sig) => format!("interrupted by {sig}"),
        None => "interrupted".into(),
    }
}

async fn upload_all(
    args: Args,
    items: Vec<Item>,
    fail_after_parts: Option<u32>,
    stop: Shutdown,
) -> Result<()> {
    let client = s3::client(&args.s3).await;
    tokio::select! {
        r = s3::ensure_bucket(&client, &args.s3.bucket, args.create_bucket) => r?,
        () = stop.requested() => bail!("{} before the first upload", interrupted(&stop)),
    }

    let started = Instant::now();
    let total_bytes = items.iter().map(|i| i.size).sum();
    let files = items.len();
    let show = !args.quiet && std::io::stderr().is_terminal();
    let ctx = Arc::new(Ctx::new(
        client,
        &args,
        show,
        total_bytes,
        files,
        fail_after_parts,
    ));

    let mut done = 0usize;
    let mut outcomes: Vec<(usize, Outcome)> = Vec::with_capacity(files);
    let mut failures: Vec<anyhow::Error> = Vec::new();
    // Boxed, so dropping it (on a signal) cancels the uploads in flight.
    let mut work = Box::pin({
        let ctx = ctx.clone();
        futures::stream::iter(items.into_iter().enumerate())
            .map(move |(i, item)| {
                let ctx = ctx.clone();
                async move {
                    let key = item.key.clone();
                    (i, key, ctx.upload(item).await)
                }
            })
            .buffer_unordered(usize::from(args.concurrency))
    });
    let stopped = loop {
        tokio::select! {
            next = work.next() => match next {
                None => break false,
                Some((i, key, r)) => {
                    done += 1;
                    ctx.progress_message(format!("{done}/{files} files"));
                    match r {
                        Ok(o) => outcomes.push((i, o)),
                        Err(e) => {
                            if files > 1 {
                                ctx.suspend_progress(|| {
                                    tracing::error!("{}: {e:#}", output::escape(&key))
                                });
                            }
                            failures.push(e);
                        }
                    }
                }
            },
            () = stop.requested() => break true,
        }
    };
    drop(work);
    ctx.clear_progress();
    if stopped {
        let aborted = ctx.abort_open().await;
        bail!(
            "{} after {} of {files} files (aborted {aborted} multipart upload(s))",
            interrupted(&stop),
            outcomes.len(),
        );
    }
    // The summary lists the files in the order given.
    outcomes.sort_by_key(|(i, _)| *i);
    let outcomes: Vec<Outcome> = outcomes.into_iter().map(|(_, o)| o).collect();
    if !args.quiet && !outcomes.is_empty() {
        output::stdout(&format!(
            "{}\n",
            summary(&outcomes, started.elapsed().as_secs_f64())
        ))?;
    }
    match failures.len() {
        0 => Ok(()),
        1 if files == 1 => Err(failures.remove(0)),
        n => Err(failures
            .remove(0)
            .context(format!("{n} of {files} uploads failed; the first"))),
    }
}
