//! Sending files to S3: one streaming PutObject per small file, a multipart
//! upload per big one (aborted on any failure or interruption), then a HEAD
//! to check the size. `--concurrency` bounds the requests in flight.

use super::plan::{plan, Item, Plan};
use crate::output;
use crate::s3;
use anyhow::{anyhow, bail, Context, Result};
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use futures::{StreamExt, TryStreamExt};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Test hook: fail the multipart upload of a file right after this many of
/// its parts are uploaded (deterministic failure injection for the tests).
pub const FAIL_AFTER_PARTS_ENV: &str = "WORDSTREAM_TEST_FAIL_AFTER_PARTS";

/// What one upload did.
#[derive(Clone, Debug)]
pub(super) struct Outcome {
    /// The object key.
    pub key: String,
    /// Its size.
    pub bytes: u64,
    /// Parts sent (1 for a single PUT).
    pub parts: u64,
    /// Seconds from start to verified.
    pub secs: f64,
    /// The ETag S3 answered.
    pub etag: String,
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
        bar.set_message(output::escape(key).into_owned());
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
pub(super) struct Ctx {
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
    /// CreateMultipartUpload requests in flight: an interrupted run waits
    /// for their answers, so an upload the server started is aborted too.
    creating: AtomicUsize,
    fail_after_parts: Option<u32>,
    /// Skip SHA-256 payload signing (HTTPS only: TLS and the CRC32 checksum
    /// the SDK adds keep the bytes intact, as botocore does by default).
    unsigned_payload: bool,
    /// `--s3-timeout`, for the requests that send data.
    timeout_secs: u64,
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
    /// The shared state of one `upload` run.
    pub(super) fn new(
        client: Client,
        args: &super::Args,
        show_progress: bool,
        total_bytes: u64,
        files: usize,
        fail_after_parts: Option<u32>,
    ) -> Ctx {
        let concurrency = usize::from(args.concurrency);
        Ctx {
            client,
            bucket: args.s3.bucket.clone(),
            content_type: args.content_type.clone(),
            threshold: args.multipart_threshold,
            part_size: args.part_size,
            concurrency,
            permits: Arc::new(Semaphore::new(concurrency)),
            progress: Progress::new(show_progress, total_bytes, files),
            open: Mutex::new(HashMap::new()),
            creating: AtomicUsize::new(0),
            fail_after_parts,
            unsigned_payload: args
                .s3
                .endpoint_url
                .as_deref()
                .is_none_or(|u| u.to_ascii_lowercase().starts_with("https://")),
            timeout_secs: args.s3.s3_timeout,
        }
    }

    /// `s3://bucket/key` for messages (escaped).
    fn url(&self, key: &str) -> String {
        output::escape(&s3::url(&self.bucket, key)).into_owned()
    }

    /// Sets the total bar's message.
    pub(super) fn progress_message(&self, msg: String) {
        self.progress.total.set_message(msg);
    }

    /// Runs `f` (a log line) with the bars hidden.
    pub(super) fn suspend_progress(&self, f: impl FnOnce()) {
        self.progress.total.suspend(f);
    }

    /// Removes the bars.
    pub(super) fn clear_progress(&self) {
        self.progress.total.finish_and_clear();
        if let Some(m) = &self.progress.multi {
            let _ = m.clear();
        }
    }

    /// Aborts every multipart upload still open (after an interruption),
    /// once the ones being started have their ids (for at most
    /// `--s3-timeout`); returns how many it aborted.
    pub(super) async fn abort_open(&self) -> usize {
        let started = Instant::now();
        while self.creating.load(Ordering::SeqCst) > 0
            && started.elapsed() < Duration::from_secs(self.timeout_secs.max(1))
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let open: Vec<(String, String)> = match self.open.lock() {
            Ok(mut m) => m.drain().collect(),
            Err(poisoned) => poisoned.into_inner().drain().collect(),
        };
        let mut aborted = 0;
        for (key, id) in &open {
            match abort(&self.client, &self.bucket, key, id).await {
                Ok(()) => aborted += 1,
                Err(e) => tracing::error!("{e:#}"),
            }
        }
        aborted
    }

    /// Records or forgets an open multipart upload.
    fn set_open(&self, key: &str, upload_id: Option<&str>) {
        let mut open = match self.open.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        match upload_id {
            Some(id) => open.insert(key.to_string(), id.to_string()),
            None => open.remove(key),
        };
    }

    /// Uploads one file, checks its size with HEAD and returns the outcome.
    pub(super) async fn upload(self: Arc<Self>, item: Item) -> Result<Outcome> {
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
            .customize()
            .config_override(s3::sending(self.timeout_secs, item.size));
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

    /// Starts a multipart upload of `key` and records it as open. The
    /// request runs on a task of its own that an interruption does not
    /// cancel: once the server has started the upload, its id is recorded,
    /// so that [`Ctx::abort_open`] aborts it (cancelled mid-request, it
    /// would stay in progress on the server, unknown to this run).
    async fn create(self: Arc<Self>, key: &str, url: &str) -> Result<String> {
        /// Counts a request in flight until dropped.
        struct InFlight(Arc<Ctx>);
        impl Drop for InFlight {
            fn drop(&mut self) {
                self.0.creating.fetch_sub(1, Ordering::SeqCst);
            }
        }
        self.creating.fetch_add(1, Ordering::SeqCst);
        let in_flight = InFlight(Arc::clone(&self));
        let (key, url) = (key.to_string(), url.to_string());
        let request = tokio::spawn(async move {
            let ctx = &in_flight.0;
            let created = ctx
                .client
                .create_multipart_upload()
                .bucket(&ctx.bucket)
                .key(&key)
                .content_type(&ctx.content_type)
                .send()
                .await
                .map_err(|e| {
                    s3::describe(&format!("cannot start multipart upload to {url}"), &e)
                })?;
            let upload_id = created
                .upload_id()
                .ok_or_else(|| anyhow!("cannot start multipart upload to {url}: no upload id"))?
                .to_string();
            // A test's moment between the server's start and its record here.
            let _ = tokio::task::spawn_blocking(|| crate::failpoint::hit("upload.created")).await;
            ctx.set_open(&key, Some(&upload_id));
            Ok(upload_id)
        });
        request
            .await
            .map_err(|e| anyhow!("starting a multipart upload: {e}"))?
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
        let upload_id = self.clone().create(&item.key, &url).await?;

        let t0 = Instant::now();
        let result = self
            .clone()
            .parts(item, &upload_id, part_size, parts, bar)
            .await;
        let t1 = Instant::now();
        tracing::debug!(
            "{}: {parts} parts in {:.3} s",
            output::escape(&item.key),
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
                output::escape(&item.key),
                t1.elapsed().as_secs_f64()
            );
        }
        if let Err(e) = result {
            let aborted = abort(&self.client, &self.bucket, &item.key, &upload_id).await;
            self.set_open(&item.key, None);
            return Err(match aborted {
                Ok(()) => e.context(format!("multipart upload to {url} aborted")),
                Err(a) => e.context(format!("{a:#}")),
            });
        }
        self.set_open(&item.key, None);
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
                        .customize()
                        .config_override(s3::sending(ctx.timeout_secs, len));
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
                    output::escape(&s3::url(bucket, key))
                ),
                &e,
            )
        })?;
    tracing::debug!(
        "aborted multipart upload {upload_id} of {}",
        output::escape(key)
    );
    Ok(())
}
