//! Reading one S3 object and counting it: streamed (constant memory
//! whatever the size, words over [`crate::tokenize::MAX_TOKEN_BYTES`]
//! skipped), retried, classified as counted or failed, and interruptible (a
//! stop request ends a read within ~100 ms).
//!
//! Transient errors (no answer, a refused connection, 5xx, a stalled or
//! broken body) are retried for as long as they last, with backoff capped
//! at [`MAX_BACKOFF`]: an S3 outage of minutes delays counting and never
//! fails an object. Errors that say the object cannot be read (missing,
//! access denied) get [`DENIED_PAUSES`]`.len() + 1` spaced attempts; then
//! the object is failed, and discovery retries it later (see
//! [`super::discover`]).
//!
//! The first bytes decide the object's format ([`crate::format::detect`],
//! with its Content-Type and Content-Encoding as hints). Plain text is
//! counted on the spot as the body streams in. Any other format is
//! extracted on a blocking thread ([`crate::format::count`], the same code
//! as `count-local`) fed with the body through a bounded channel; when the
//! format fails (corrupt, truncated, a bomb), the object is failed at once
//! with that reason: reading it again would give the same bytes.

use super::ranged::Ranged;
use super::throttle::Throttle;
use crate::count::{Counter, Options, WordCounts};
use crate::format;
use crate::s3;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::get_object::{GetObjectError, GetObjectOutput};
use aws_sdk_s3::Client;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A GetObject that sends no response, or a body that sends no bytes, for
/// this long is abandoned and retried (an S3 server that hangs).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(15);
/// The first pause after a transient error; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// The longest pause between attempts after transient errors: once S3
/// answers again, an object is read again within this (plus
/// [`IDLE_TIMEOUT`] if the attempt in flight hangs).
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Pauses between the attempts for errors saying the object cannot be read
/// (a missing key may be a moment of eventual consistency, a denied one a
/// policy being changed): 3 attempts over 10 s, then failed.
pub const DENIED_PAUSES: [Duration; 2] = [Duration::from_secs(3), Duration::from_secs(7)];
/// A transient error of one object is logged at most this often (at debug
/// level in between).
const WARN_EVERY: Duration = Duration::from_secs(30);

/// Objects read whole, never in ranges.
pub const NO_RANGES: Ranged = Ranged {
    size: 0,
    concurrency: 1,
};

/// What became of an object. (`Counted` is the common variant and moves
/// once per object: boxing it would cost more than its size.)
#[allow(clippy::large_enum_variant)]
pub enum Outcome {
    /// Read completely and counted.
    Counted {
        /// The counts (with the words skipped for their length).
        counts: WordCounts,
        /// Bytes read.
        size: u64,
        /// ETag of what was read.
        etag: String,
        /// Time spent.
        elapsed: Duration,
        /// Its format, text bytes, tar members.
        text: format::Record,
    },
    /// Plain text above `--range-size`: to be counted range by range by
    /// the group (docs/design.md §9); nothing was counted.
    Split {
        /// The version to split.
        etag: String,
        size: u64,
        /// The ranges `[start, end)`.
        ranges: Vec<(u64, u64)>,
    },
    /// A range's version is gone (`412`, or the object missing): it
    /// counted nothing.
    Changed,
    /// Given up on, with the reason.
    Failed(String),
    /// Shutting down: neither counted nor failed; it stays discovered.
    Interrupted,
}

/// How an attempt's failure is retried.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Retry {
    /// For as long as it lasts: the object may well be readable.
    Transient,
    /// [`DENIED_PAUSES`] apart, then failed: S3 says it cannot be read.
    Denied,
    /// Never: the bytes were read and their format failed.
    Never,
}

/// One failed attempt.
pub(super) enum AttemptError {
    Failed {
        message: String,
        retry: Retry,
    },
    /// The pinned version is no longer there (`412 Precondition Failed`).
    Changed,
    Interrupted,
}

pub(super) fn failed(message: String, retry: Retry) -> AttemptError {
    AttemptError::Failed { message, retry }
}

/// Resolves when `stop` is set (checked every 100 ms).
pub async fn stopped(stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs `fut` unless `stop` is set first (`None` then).
pub async fn unless_stopped<T>(stop: &AtomicBool, fut: impl Future<Output = T>) -> Option<T> {
    tokio::select! {
        v = fut => Some(v),
        _ = stopped(stop) => None,
    }
}

/// Reads and counts `s3://bucket/key`, retrying as described above. With
/// `pin` (the ETag discovery listed), reads ask for that version
/// (`If-Match`); when the object changed since, the read goes on with the
/// version there is now, and every later attempt asks for that one: the
/// counts are always of one version, the one [`Outcome::Counted`] names.
#[allow(clippy::too_many_arguments)] // the object, its version, and how to read it
pub async fn count(
    client: Client,
    bucket: String,
    key: String,
    opts: Options,
    formats: format::Config,
    stop: Arc<AtomicBool>,
    mut pin: Option<String>,
    ranged: Ranged,
) -> Outcome {
    let started = Instant::now();
    let mut backoff = FIRST_BACKOFF;
    let mut denied = 0;
    let mut warnings = Throttle::new(WARN_EVERY);
    for attempt in 1.. {
        let read = attempt_count(
            &client, &bucket, &key, opts, formats, &stop, &mut pin, ranged,
        );
        let pause = match read.await {
            Ok(Read {
                split: Some(ranges),
                size,
                etag,
                ..
            }) => return Outcome::Split { etag, size, ranges },
            Ok(Read {
                counts,
                size,
                etag,
                text,
                split: None,
            }) => {
                return Outcome::Counted {
                    counts,
                    size,
                    etag,
                    elapsed: started.elapsed(),
                    text,
                }
            }
            Err(AttemptError::Interrupted) => return Outcome::Interrupted,
            Err(AttemptError::Changed) => continue, // at once, unpinned
            Err(AttemptError::Failed { message, retry }) => {
                let pause = match retry {
                    Retry::Never => return Outcome::Failed(message),
                    Retry::Denied => match DENIED_PAUSES.get(denied) {
                        None => return Outcome::Failed(message),
                        Some(&p) => {
                            denied += 1;
                            p
                        }
                    },
                    Retry::Transient => {
                        let p = backoff;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        p
                    }
                };
                warnings.warn(format_args!(
                    "{}: {} (attempt {attempt}, for {:.0} s; retrying in {:.1} s)",
                    crate::output::escape(&s3::url(&bucket, &key)),
                    crate::output::escape(&message),
                    started.elapsed().as_secs_f64(),
                    pause.as_secs_f64()
                ));
                pause
            }
        };
        if unless_stopped(&stop, tokio::time::sleep(pause))
            .await
            .is_none()
        {
            return Outcome::Interrupted;
        }
    }
    unreachable!("attempts are numbered without end")
}

/// Whether an S3 error says the `If-Match` version is gone.
fn is_changed<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    matches!(e, SdkError::ServiceError(se) if se.err().code() == Some("PreconditionFailed"))
}

/// Whether an S3 error says the object cannot be read (rather than that S3
/// could not answer).
fn is_denied<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    matches!(e, SdkError::ServiceError(se)
        if matches!(se.err().code(), Some("NoSuchKey" | "AccessDenied" | "InvalidObjectState" | "NoSuchBucket")))
}

/// The answer to a GetObject `request`, classified: no answer within
/// [`IDLE_TIMEOUT`] and S3's errors as [`AttemptError`]s (`what` starts
/// their message).
pub(super) async fn answer(
    request: impl Future<Output = Result<GetObjectOutput, SdkError<GetObjectError, HttpResponse>>>,
    stop: &AtomicBool,
    what: &str,
) -> Result<GetObjectOutput, AttemptError> {
    let resp = match unless_stopped(stop, tokio::time::timeout(IDLE_TIMEOUT, request)).await {
        None => return Err(AttemptError::Interrupted),
        Some(Err(_)) => {
            return Err(failed(
                format!("{what}: no response within {} s", IDLE_TIMEOUT.as_secs()),
                Retry::Transient,
            ))
        }
        Some(Ok(r)) => r,
    };
    resp.map_err(|e| {
        if is_changed(&e) {
            return AttemptError::Changed;
        }
        let retry = if is_denied(&e) {
            Retry::Denied
        } else {
            Retry::Transient
        };
        failed(format!("{:#}", s3::describe(what, &e)), retry)
    })
}

/// What one successful attempt read.
struct Read {
    counts: WordCounts,
    size: u64,
    etag: String,
    text: format::Record,
    /// Not read: the ranges to split it in.
    split: Option<Vec<(u64, u64)>>,
}

/// The body of a GetObject, chunk by chunk, with the idle timeout and the
/// stop flag applied.
pub(super) struct Body<'a> {
    pub(super) body: aws_sdk_s3::primitives::ByteStream,
    pub(super) stop: &'a AtomicBool,
    /// Bytes received so far.
    pub(super) bytes: u64,
}

impl Body<'_> {
    /// The next chunk, `None` at the end.
    pub(super) async fn next(&mut self) -> Result<Option<bytes::Bytes>, AttemptError> {
        let next = match unless_stopped(
            self.stop,
            tokio::time::timeout(IDLE_TIMEOUT, self.body.try_next()),
        )
        .await
        {
            None => return Err(AttemptError::Interrupted),
            Some(Err(_)) => {
                return Err(failed(
                    format!(
                        "cannot read: body stalled for {} s after {} bytes",
                        IDLE_TIMEOUT.as_secs(),
                        self.bytes
                    ),
                    Retry::Transient,
                ))
            }
            Some(Ok(n)) => n,
        };
        match next {
            Ok(Some(chunk)) => {
                self.bytes += chunk.len() as u64;
                Ok(Some(chunk))
            }
            Ok(None) => Ok(None),
            Err(e) => Err(failed(
                format!(
                    "cannot read: body stream failed after {} bytes: {e}",
                    self.bytes
                ),
                Retry::Transient,
            )),
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn attempt_count(
    client: &Client,
    bucket: &str,
    key: &str,
    opts: Options,
    formats: format::Config,
    stop: &Arc<AtomicBool>,
    pin: &mut Option<String>,
    ranged: Ranged,
) -> Result<Read, AttemptError> {
    let request = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .set_if_match(pin.clone())
        .send();
    let resp = match answer(request, stop, "cannot read").await {
        Err(AttemptError::Changed) => {
            *pin = None;
            return Err(AttemptError::Changed);
        }
        r => r?,
    };
    let etag = resp.e_tag().unwrap_or_default().to_string();
    if !etag.is_empty() {
        *pin = Some(etag.clone()); // a retry reads this version again
    }
    let hints = format::Hints {
        name: key.to_string(),
        content_type: resp.content_type().map(String::from),
        content_encoding: resp.content_encoding().map(String::from),
    };
    let resp_size = resp.content_length().unwrap_or(0).max(0) as u64;
    let mut body = Body {
        body: resp.body,
        stop,
        bytes: 0,
    };
    // The first bytes, to detect the format.
    let mut prefix = Vec::new();
    let mut ended = false;
    if formats.mode == format::Mode::Auto {
        while prefix.len() < format::SNIFF_BYTES {
            match body.next().await? {
                Some(chunk) => prefix.extend_from_slice(&chunk),
                None => {
                    ended = true;
                    break;
                }
            }
        }
        let sniffed = &prefix[..prefix.len().min(format::SNIFF_BYTES)];
        if format::detect(sniffed, &hints) != format::Kind::Text {
            return extract(body, prefix, ended, hints, opts, formats, etag).await;
        }
    }
    let size = resp_size;
    if !ended && !etag.is_empty() && ranged.splits(size) {
        // Counted range by range by the group (docs/design.md §9): this
        // body is dropped unread.
        return Ok(Read {
            counts: WordCounts::new(),
            size,
            etag,
            text: format::Record::text(size),
            split: Some(ranged.ranges(size)),
        });
    }
    let mut counter = Counter::new(opts);
    counter.feed(&prefix);
    while !ended {
        match body.next().await? {
            Some(chunk) => counter.feed(&chunk),
            None => ended = true,
        }
    }
    let size = counter.bytes();
    Ok(Read {
        counts: counter.finish(),
        size,
        etag,
        text: format::Record::text(size),
        split: None,
    })
}

/// Chunks in flight between the body and the extracting thread.
const EXTRACT_QUEUE: usize = 16;

/// Counts a non-text object: [`format::count`] on a blocking thread, fed
/// the body through a bounded channel.
async fn extract(
    mut body: Body<'_>,
    prefix: Vec<u8>,
    mut ended: bool,
    hints: format::Hints,
    opts: Options,
    formats: format::Config,
    etag: String,
) -> Result<Read, AttemptError> {
    let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(EXTRACT_QUEUE);
    let task = tokio::task::spawn_blocking(move || {
        let reader = ChannelReader {
            rx,
            chunk: bytes::Bytes::new(),
        };
        format::count(prefix, reader, &hints, formats, opts)
    });
    while !ended {
        match body.next().await {
            Ok(Some(chunk)) => {
                // Fails when the extractor is done early (or failed): its
                // result says which.
                if tx.send(chunk).await.is_err() {
                    break;
                }
            }
            Ok(None) => ended = true,
            // The extractor sees the end of its input; its result is moot.
            Err(e) => return Err(e),
        }
    }
    drop(tx);
    let joined = match unless_stopped(body.stop, task).await {
        None => return Err(AttemptError::Interrupted),
        Some(j) => j,
    };
    match joined {
        Ok(Ok(c)) => Ok(Read {
            counts: c.counts,
            size: body.bytes,
            etag,
            text: c.record,
            split: None,
        }),
        Ok(Err(e)) => Err(failed(format!("{e:#}"), Retry::Never)),
        Err(e) => Err(failed(format!("extraction panicked: {e}"), Retry::Never)),
    }
}

/// The body chunks from the channel as a [`std::io::Read`] (for the
/// extracting thread).
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<bytes::Bytes>,
    chunk: bytes::Bytes,
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rx.blocking_recv() {
                Some(c) => self.chunk = c,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}
