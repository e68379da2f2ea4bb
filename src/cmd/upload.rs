//! `wordstream upload PATH…`: local files into the bucket (DESIGN §5).
//!
//! Small files go up in one streaming PutObject; files above
//! `--multipart-threshold` go up in parts (CreateMultipartUpload, UploadPart
//! concurrently, CompleteMultipartUpload). A multipart upload that fails (or
//! is interrupted) is always aborted, so no orphan parts stay in the bucket.
//! Each object is HEADed afterwards: its size must equal the file's.
//!
//! `--concurrency` bounds the requests in flight (single PUTs and parts
//! together), and so memory: at most that many parts are buffered.

use crate::config::S3Args;
use crate::s3;
use anyhow::{anyhow, bail, Context, Result};
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use comfy_table::{presets, Cell, CellAlignment, ContentArrangement, Table};
use futures::{StreamExt, TryStreamExt};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::io::{IsTerminal, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// S3's smallest part (all but the last).
pub const MIN_PART: u64 = 5 << 20;
/// S3's largest part count.
pub const MAX_PARTS: u64 = 10_000;
/// Test hook: fail the multipart upload of a file right after this many of
/// its parts are uploaded (deterministic failure injection for the tests).
pub const FAIL_AFTER_PARTS_ENV: &str = "WORDSTREAM_TEST_FAIL_AFTER_PARTS";

/// Flags of `upload`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Files, and directories with --recursive.
    #[arg(value_name = "PATH", required = true)]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub s3: S3Args,
    /// Key prefix ("folder"); a `/` is added when missing. Keys are the prefix
    /// plus the file name, or the path relative to a directory argument.
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

/// Parses `123`, `64KiB`, `16MiB`, `1GiB` (also `K`, `KB`, `M`, `MB`, … all
/// binary, as the aws cli reads them).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a size (e.g. 8MiB)"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(format!("'{s}': unknown unit (use B, KiB, MiB or GiB)")),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("'{s}' is too large"))
}

fn parse_part_size(s: &str) -> Result<u64, String> {
    let n = parse_size(s)?;
    if n < MIN_PART {
        return Err(format!("{s} is below S3's minimum part size of 5MiB"));
    }
    if n > 5 << 30 {
        return Err(format!("{s} is above S3's maximum part size of 5GiB"));
    }
    Ok(n)
}

/// One file to upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// The local file.
    pub path: PathBuf,
    /// Its object key.
    pub key: String,
    /// Its size when listed.
    pub size: u64,
}

/// `prefix` as a folder: empty, or ending in `/`.
fn folder(prefix: &str) -> String {
    if prefix.is_empty() || prefix.ends_with('/') {
        prefix.to_string()
    } else {
        format!("{prefix}/")
    }
}

fn utf8_name(p: &Path) -> Result<&str> {
    p.to_str()
        .ok_or_else(|| anyhow!("{}: file name is not UTF-8", p.display()))
}

/// Expands the command-line paths into files and their keys: a file's key
/// is its name, a directory's files (with `recursive`) are keyed by their
/// path relative to it, `/`-separated, in sorted order.
pub fn expand(paths: &[PathBuf], recursive: bool, prefix: &str) -> Result<Vec<Item>> {
    let prefix = folder(prefix);
    let mut items = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                anyhow!(
                    "cannot upload {}: no such file or directory",
                    path.display()
                )
            }
            _ => anyhow!("cannot upload {}: {e}", path.display()),
        })?;
        if meta.is_file() {
            let name = path
                .file_name()
                .ok_or_else(|| anyhow!("cannot upload {}: no file name", path.display()))?;
            let name = utf8_name(Path::new(name))?;
            items.push(Item {
                path: path.clone(),
                key: format!("{prefix}{name}"),
                size: meta.len(),
            });
        } else if meta.is_dir() {
            if !recursive {
                bail!(
                    "{} is a directory (use --recursive to upload its files)",
                    path.display()
                );
            }
            for entry in walkdir::WalkDir::new(path)
                .follow_links(true)
                .sort_by_file_name()
            {
                let entry = entry.map_err(|e| {
                    let at = e.path().unwrap_or(path).display().to_string();
                    match e.into_io_error() {
                        Some(io) => anyhow!("cannot upload {at}: {io}"),
                        None => anyhow!("cannot upload {at}: symlink loop"),
                    }
                })?;
                if !entry.file_type().is_file() {
                    continue;
                }
                let rel = entry
                    .path()
                    .strip_prefix(path)
                    .expect("walkdir yields paths under its root");
                let mut key = prefix.clone();
                for (i, c) in rel.components().enumerate() {
                    if i > 0 {
                        key.push('/');
                    }
                    key.push_str(utf8_name(Path::new(c.as_os_str()))?);
                }
                let size = entry
                    .metadata()
                    .with_context(|| format!("cannot upload {}", entry.path().display()))?
                    .len();
                items.push(Item {
                    path: entry.into_path(),
                    key,
                    size,
                });
            }
        } else {
            bail!("cannot upload {}: not a regular file", path.display());
        }
    }
    let mut seen: HashMap<&str, &Path> = HashMap::new();
    for it in &items {
        if let Some(other) = seen.insert(&it.key, &it.path) {
            bail!(
                "{} and {} would both upload to key {}",
                other.display(),
                it.path.display(),
                it.key
            );
        }
    }
    Ok(items)
}

/// How one file goes up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plan {
    /// One PutObject.
    Single,
    /// Multipart: part size and count.
    Multipart { part_size: u64, parts: u64 },
}

/// The plan for a file of `size` bytes: multipart above `threshold`, with
/// parts of `part_size` grown (to whole MiB) when S3's 10,000-part limit
/// needs it.
pub fn plan(size: u64, threshold: u64, part_size: u64) -> Plan {
    if size <= threshold {
        return Plan::Single;
    }
    let mut part = part_size.max(MIN_PART);
    if size.div_ceil(part) > MAX_PARTS {
        part = size.div_ceil(MAX_PARTS).div_ceil(1 << 20) << 20;
    }
    Plan::Multipart {
        part_size: part,
        parts: size.div_ceil(part).max(1),
    }
}

/// What one upload did.
#[derive(Clone, Debug)]
struct Outcome {
    key: String,
    bytes: u64,
    parts: u64,
    secs: f64,
    etag: String,
}

/// The progress bars: one per file in flight plus a total, on a terminal.
struct Progress {
    multi: Option<MultiProgress>,
    total: ProgressBar,
}

impl Progress {
    fn new(enabled: bool, total_bytes: u64, files: usize) -> Self {
        if !enabled {
            return Progress {
                multi: None,
                total: ProgressBar::hidden(),
            };
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let total = multi.add(ProgressBar::new(total_bytes));
        total.set_style(
            ProgressStyle::with_template(
                "{prefix:>12} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta} {msg}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        total.set_prefix("total");
        total.set_message(format!("0/{files} files"));
        Progress {
            multi: Some(multi),
            total,
        }
    }

    fn file(&self, key: &str, size: u64) -> ProgressBar {
        let Some(multi) = &self.multi else {
            return ProgressBar::hidden();
        };
        let bar = multi.insert_before(&self.total, ProgressBar::new(size));
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>12} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} {wide_msg}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix("uploading");
        bar.set_message(key.to_string());
        bar
    }

    fn finish(&self, bar: &ProgressBar) {
        bar.finish_and_clear();
        if let Some(multi) = &self.multi {
            multi.remove(bar);
        }
    }
}

/// Everything the uploads share.
struct Ctx {
    client: Client,
    bucket: String,
    content_type: String,
    threshold: u64,
    part_size: u64,
    concurrency: usize,
    /// Requests in flight.
    permits: Arc<Semaphore>,
    progress: Progress,
    /// Multipart uploads started and not yet completed or aborted, by key,
    /// so an interrupted run can abort them.
    open: Mutex<HashMap<String, String>>,
    fail_after_parts: Option<u32>,
    /// Skip SHA-256 payload signing (HTTPS only: TLS and the CRC32 checksum
    /// the SDK adds keep the bytes intact, as botocore does by default).
    unsigned_payload: bool,
}

/// A spawned task that is aborted when dropped (so dropping an upload stops
/// its requests at once).
struct Task<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> std::future::Future for Task<T> {
    type Output = Result<T>;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0)
            .poll(cx)
            .map(|r| r.map_err(|e| anyhow!("upload task failed: {e}")))
    }
}

fn spawn<T: Send + 'static>(f: impl std::future::Future<Output = T> + Send + 'static) -> Task<T> {
    Task(tokio::spawn(f))
}

impl Ctx {
    fn url(&self, key: &str) -> String {
        s3::url(&self.bucket, key)
    }

    /// Uploads one file, checks its size with HEAD and returns the outcome.
    async fn upload(self: Arc<Self>, item: Item) -> Result<Outcome> {
        let started = Instant::now();
        let bar = self.progress.file(&item.key, item.size);
        let sent = match plan(item.size, self.threshold, self.part_size) {
            Plan::Single => self.clone().put(&item, &bar).await.map(|()| 1),
            Plan::Multipart { part_size, parts } => self
                .clone()
                .multipart(&item, part_size, parts, &bar)
                .await
                .map(|()| parts),
        };
        self.progress.finish(&bar);
        let parts = sent?;
        let etag = self.verify(&item).await?;
        Ok(Outcome {
            key: item.key,
            bytes: item.size,
            parts,
            secs: started.elapsed().as_secs_f64(),
            etag,
        })
    }

    /// One streaming PutObject.
    async fn put(self: Arc<Self>, item: &Item, bar: &ProgressBar) -> Result<()> {
        let _permit = self.permits.clone().acquire_owned().await?;
        let body = ByteStream::read_from()
            .path(&item.path)
            .length(Length::Exact(item.size))
            .build()
            .await
            .with_context(|| format!("cannot read {}", item.path.display()))?;
        let req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&item.key)
            .content_type(&self.content_type)
            .content_length(item.size as i64)
            .body(body)
            .customize();
        let req = if self.unsigned_payload {
            req.disable_payload_signing()
        } else {
            req
        };
        let url = self.url(&item.key);
        spawn(async move {
            req.send()
                .await
                .map_err(|e| s3::describe(&format!("cannot upload to {url}"), &e))
        })
        .await??;
        bar.inc(item.size);
        self.progress.total.inc(item.size);
        Ok(())
    }

    /// A multipart upload, aborted on any failure.
    async fn multipart(
        self: Arc<Self>,
        item: &Item,
        part_size: u64,
        parts: u64,
        bar: &ProgressBar,
    ) -> Result<()> {
        let url = self.url(&item.key);
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(&item.key)
            .content_type(&self.content_type)
            .send()
            .await
            .map_err(|e| s3::describe(&format!("cannot start multipart upload to {url}"), &e))?;
        let upload_id = created
            .upload_id()
            .ok_or_else(|| anyhow!("cannot start multipart upload to {url}: no upload id"))?
            .to_string();
        self.open
            .lock()
            .expect("not poisoned")
            .insert(item.key.clone(), upload_id.clone());

        let t0 = Instant::now();
        let result = self
            .clone()
            .parts(item, &upload_id, part_size, parts, bar)
            .await;
        let t1 = Instant::now();
        tracing::debug!(
            "{}: {parts} parts in {:.3} s",
            item.key,
            (t1 - t0).as_secs_f64()
        );
        let result = match result {
            Ok(done) => self
                .client
                .complete_multipart_upload()
                .bucket(&self.bucket)
                .key(&item.key)
                .upload_id(&upload_id)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(done))
                        .build(),
                )
                .send()
                .await
                .map(|_| ())
                .map_err(|e| {
                    s3::describe(&format!("cannot complete multipart upload to {url}"), &e)
                }),
            Err(e) => Err(e),
        };
        if result.is_ok() {
            tracing::debug!(
                "{}: CompleteMultipartUpload in {:.3} s",
                item.key,
                t1.elapsed().as_secs_f64()
            );
        }
        if let Err(e) = result {
            let aborted = abort(&self.client, &self.bucket, &item.key, &upload_id).await;
            self.open.lock().expect("not poisoned").remove(&item.key);
            return Err(match aborted {
                Ok(()) => e.context(format!("multipart upload to {url} aborted")),
                Err(a) => e.context(format!("{a:#}")),
            });
        }
        self.open.lock().expect("not poisoned").remove(&item.key);
        Ok(())
    }

    /// Uploads the parts, `concurrency` at a time; the first failure stops
    /// (and cancels) the others.
    async fn parts(
        self: Arc<Self>,
        item: &Item,
        upload_id: &str,
        part_size: u64,
        parts: u64,
        bar: &ProgressBar,
    ) -> Result<Vec<CompletedPart>> {
        let uploaded = Arc::new(AtomicU32::new(0));
        let mut done: Vec<CompletedPart> = futures::stream::iter(1..=parts)
            .map(|n| {
                let ctx = self.clone();
                let item = item.clone();
                let upload_id = upload_id.to_string();
                let uploaded = uploaded.clone();
                let bar = bar.clone();
                async move {
                    let permit = ctx.permits.clone().acquire_owned().await?;
                    let offset = (n - 1) * part_size;
                    let len = part_size.min(item.size - offset);
                    if let Some(after) = ctx.fail_after_parts {
                        if n == u64::from(after) + 1 {
                            // Let the parts before it finish: a failure in
                            // the middle of an upload with parts stored.
                            while uploaded.load(Ordering::SeqCst) < after {
                                tokio::time::sleep(Duration::from_millis(10)).await;
                            }
                            bail!("injected failure after {after} parts ({FAIL_AFTER_PARTS_ENV})");
                        }
                    }
                    let path = item.path.clone();
                    let data = tokio::task::spawn_blocking(move || read_part(&path, offset, len))
                        .await??;
                    let req = ctx
                        .client
                        .upload_part()
                        .bucket(&ctx.bucket)
                        .key(&item.key)
                        .upload_id(&upload_id)
                        .part_number(n as i32)
                        .content_length(len as i64)
                        .body(ByteStream::from(data))
                        .customize();
                    let req = if ctx.unsigned_payload {
                        req.disable_payload_signing()
                    } else {
                        req
                    };
                    let url = ctx.url(&item.key);
                    let resp = spawn(async move {
                        req.send().await.map_err(|e| {
                            s3::describe(&format!("cannot upload part {n} to {url}"), &e)
                        })
                    })
                    .await??;
                    drop(permit);
                    uploaded.fetch_add(1, Ordering::SeqCst);
                    bar.inc(len);
                    ctx.progress.total.inc(len);
                    let etag = resp.e_tag().unwrap_or_default().to_string();
                    Ok(CompletedPart::builder()
                        .part_number(n as i32)
                        .e_tag(etag)
                        .build())
                }
            })
            .buffer_unordered(self.concurrency)
            .try_collect()
            .await?;
        done.sort_by_key(|p| p.part_number());
        Ok(done)
    }

    /// HEADs the object: its size must equal the file's (and the file must
    /// not have changed meanwhile). Returns the ETag.
    async fn verify(&self, item: &Item) -> Result<String> {
        let url = self.url(&item.key);
        let head = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(&item.key)
            .send()
            .await
            .map_err(|e| s3::describe(&format!("cannot check {url} after upload"), &e))?;
        let now = std::fs::metadata(&item.path)
            .map(|m| m.len())
            .with_context(|| format!("cannot read {}", item.path.display()))?;
        if now != item.size {
            bail!(
                "{} changed while uploading ({} bytes before, {now} after)",
                item.path.display(),
                item.size
            );
        }
        let got = head.content_length().unwrap_or(-1);
        if got != item.size as i64 {
            bail!(
                "{url} has {got} bytes after upload, but {} has {}",
                item.path.display(),
                item.size
            );
        }
        Ok(head.e_tag().unwrap_or_default().to_string())
    }
}

/// Reads `len` bytes at `offset` of `path` (a part).
fn read_part(path: &Path, offset: u64, len: u64) -> Result<Vec<u8>> {
    let mut f =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    f.seek(SeekFrom::Start(offset))
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mut buf = vec![0u8; len as usize];
    f.read_exact(&mut buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => anyhow!(
            "{} changed while uploading: it ends before byte {}",
            path.display(),
            offset + len
        ),
        _ => anyhow!("cannot read {}: {e}", path.display()),
    })?;
    Ok(buf)
}

/// AbortMultipartUpload, so the parts stored so far are deleted.
async fn abort(client: &Client, bucket: &str, key: &str, upload_id: &str) -> Result<()> {
    client
        .abort_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(upload_id)
        .send()
        .await
        .map_err(|e| {
            s3::describe(
                &format!(
                    "cannot abort multipart upload {upload_id} of {} (abort it by hand)",
                    s3::url(bucket, key)
                ),
                &e,
            )
        })?;
    tracing::debug!("aborted multipart upload {upload_id} of {key}");
    Ok(())
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
            Cell::new(&o.key),
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

/// Writes `text` to stdout; a reader that went away (`| head`) is fine.
fn print(text: &str) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    crate::output::ignore_broken_pipe(out.write_all(text.as_bytes()).and_then(|()| out.flush()))
        .context("cannot write to stdout")
}

fn dry_run(args: &Args, items: &[Item]) -> Result<()> {
    use std::fmt::Write;
    let mut text = String::new();
    let mut total = 0;
    for it in items {
        total += it.size;
        let how = match plan(it.size, args.multipart_threshold, args.part_size) {
            Plan::Single => "1 PUT".to_string(),
            Plan::Multipart { parts, .. } => format!("multipart, {parts} parts"),
        };
        let _ = writeln!(
            text,
            "would upload {} -> {} ({} bytes, {how})",
            it.path.display(),
            s3::url(&args.s3.bucket, &it.key),
            it.size
        );
    }
    let _ = writeln!(
        text,
        "dry run: {} files, {total} bytes; nothing uploaded",
        items.len()
    );
    print(&text)
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<()> {
    let items = expand(&args.paths, args.recursive, &args.prefix)?;
    if args.dry_run {
        return dry_run(&args, &items);
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
    tokio::runtime::Runtime::new()
        .context("cannot start the async runtime")?
        .block_on(upload_all(args, items, fail_after_parts))
}

async fn upload_all(args: Args, items: Vec<Item>, fail_after_parts: Option<u32>) -> Result<()> {
    let client = s3::client(&args.s3).await;
    s3::ensure_bucket(&client, &args.s3.bucket, args.create_bucket).await?;

    let started = Instant::now();
    let total_bytes = items.iter().map(|i| i.size).sum();
    let files = items.len();
    let show = !args.quiet && std::io::stderr().is_terminal();
    let ctx = Arc::new(Ctx {
        client,
        bucket: args.s3.bucket.clone(),
        content_type: args.content_type.clone(),
        threshold: args.multipart_threshold,
        part_size: args.part_size,
        concurrency: usize::from(args.concurrency),
        permits: Arc::new(Semaphore::new(usize::from(args.concurrency))),
        progress: Progress::new(show, total_bytes, files),
        open: Mutex::new(HashMap::new()),
        fail_after_parts,
        unsigned_payload: args
            .s3
            .endpoint_url
            .as_deref()
            .is_none_or(|u| u.to_ascii_lowercase().starts_with("https://")),
    });

    let mut done = 0usize;
    let mut outcomes: Vec<(usize, Outcome)> = Vec::with_capacity(files);
    let mut failures: Vec<anyhow::Error> = Vec::new();
    // Boxed, so dropping it (on Ctrl-C) cancels the uploads in flight.
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
    let interrupted = loop {
        tokio::select! {
            next = work.next() => match next {
                None => break false,
                Some((i, key, r)) => {
                    done += 1;
                    ctx.progress.total.set_message(format!("{done}/{files} files"));
                    match r {
                        Ok(o) => outcomes.push((i, o)),
                        Err(e) => {
                            if files > 1 {
                                ctx.progress.total.suspend(|| tracing::error!("{key}: {e:#}"));
                            }
                            failures.push(e);
                        }
                    }
                }
            },
            _ = tokio::signal::ctrl_c() => break true,
        }
    };
    drop(work);
    ctx.progress.total.finish_and_clear();
    if let Some(m) = &ctx.progress.multi {
        let _ = m.clear();
    }
    if interrupted {
        let open: Vec<(String, String)> = ctx.open.lock().expect("not poisoned").drain().collect();
        for (key, id) in &open {
            if let Err(e) = abort(&ctx.client, &ctx.bucket, key, id).await {
                tracing::error!("{e:#}");
            }
        }
        bail!(
            "interrupted after {} of {files} files (aborted {} multipart upload(s))",
            outcomes.len(),
            open.len()
        );
    }
    // The summary lists the files in the order given.
    outcomes.sort_by_key(|(i, _)| *i);
    let outcomes: Vec<Outcome> = outcomes.into_iter().map(|(_, o)| o).collect();
    if !args.quiet && !outcomes.is_empty() {
        print(&format!(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("123"), Ok(123));
        assert_eq!(parse_size("16MiB"), Ok(16 << 20));
        assert_eq!(parse_size("8M"), Ok(8 << 20));
        assert_eq!(parse_size("1gb"), Ok(1 << 30));
        assert_eq!(parse_size("64 KiB"), Ok(64 << 10));
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("5XB").is_err());
        assert!(parse_part_size("4MiB").is_err());
        assert_eq!(parse_part_size("5MiB"), Ok(5 << 20));
    }

    #[test]
    fn plans() {
        let t = 16 << 20;
        assert_eq!(plan(0, t, 8 << 20), Plan::Single);
        assert_eq!(plan(t, t, 8 << 20), Plan::Single);
        assert_eq!(
            plan(t + 1, t, 8 << 20),
            Plan::Multipart {
                part_size: 8 << 20,
                parts: 3
            }
        );
        // 100 GiB at 8 MiB would need 12,800 parts: the part grows.
        match plan(100 << 30, t, 8 << 20) {
            Plan::Multipart { part_size, parts } => {
                assert!(parts <= MAX_PARTS);
                assert_eq!(part_size % (1 << 20), 0);
                assert!(part_size * parts >= 100 << 30);
            }
            p => panic!("{p:?}"),
        }
    }

    #[test]
    fn keys() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("sub/deeper")).unwrap();
        std::fs::write(d.join("b.txt"), "b").unwrap();
        std::fs::write(d.join("sub/a.txt"), "aa").unwrap();
        std::fs::write(d.join("sub/deeper/c.txt"), "ccc").unwrap();
        let items = expand(&[d.to_path_buf()], true, "in").unwrap();
        let keys: Vec<_> = items.iter().map(|i| (i.key.as_str(), i.size)).collect();
        assert_eq!(
            keys,
            [
                ("in/b.txt", 1),
                ("in/sub/a.txt", 2),
                ("in/sub/deeper/c.txt", 3)
            ]
        );
        let one = expand(&[d.join("sub/a.txt")], false, "").unwrap();
        assert_eq!(one[0].key, "a.txt");
        let e = expand(&[d.to_path_buf()], false, "").unwrap_err();
        assert!(e
            .to_string()
            .ends_with("is a directory (use --recursive to upload its files)"));
        let e = expand(&[d.join("nope")], false, "").unwrap_err();
        assert!(
            e.to_string().ends_with("nope: no such file or directory"),
            "{e}"
        );
        let e = expand(&[d.join("b.txt"), d.join("b.txt")], false, "").unwrap_err();
        assert!(
            e.to_string().contains("would both upload to key b.txt"),
            "{e}"
        );
    }
}
