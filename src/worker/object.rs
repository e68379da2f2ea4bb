//! Reading one S3 object and counting it: streamed (constant memory
//! whatever the size), retried with backoff, classified as counted or failed,
//! and interruptible (a stop request ends a read within ~100 ms).

use crate::count::{Options, WordCounts};
use crate::s3;
use crate::tokenize::Splitter;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::Client;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long transient errors (S3 unreachable, 5xx, a broken stream) are
/// retried before the object is marked failed.
pub const TRANSIENT_BUDGET: Duration = Duration::from_secs(120);
/// Attempts for errors that will not go away by themselves (missing, denied).
const PERMANENT_ATTEMPTS: u32 = 2;
/// A GetObject that sends no response, or a body that sends no bytes, for
/// this long is abandoned and retried (an S3 server that hangs).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(15);
/// Longest word the changelog can carry: its key (JSON-escaped: at most 3×
/// the UTF-8 length) must fit in one Kafka record (1 MB by default).
pub const MAX_WORD_BYTES: usize = 64 << 10;
/// Longest token (run of word characters) carried between chunks. The
/// streaming tokenizer keeps a partial token in memory and rescans it with
/// every chunk (quadratic in its length): objects with a longer token fail
/// at once instead. Words that long could not be published anyway.
pub const MAX_TOKEN_BYTES: usize = MAX_WORD_BYTES;

/// What became of an object.
pub enum Outcome {
    /// Read completely and counted.
    Counted {
        /// The counts.
        counts: WordCounts,
        /// Bytes read.
        size: u64,
        /// ETag of what was read.
        etag: String,
        /// Time spent.
        elapsed: Duration,
    },
    /// Given up on, with the reason.
    Failed(String),
    /// Shutting down: neither counted nor failed; it stays discovered.
    Interrupted,
}

/// How an attempt's failure is retried.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// Until [`TRANSIENT_BUDGET`] is spent.
    Transient,
    /// [`PERMANENT_ATTEMPTS`] times in all (a missing key may be a moment
    /// of eventual consistency).
    Permanent,
    /// Never: the content itself is the problem.
    Never,
}

/// One failed attempt.
enum AttemptError {
    Failed { message: String, retry: Retry },
    Interrupted,
}

fn failed(message: String, retry: Retry) -> AttemptError {
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

/// Reads and counts `s3://bucket/key`, retrying as described above.
pub async fn count(
    client: Client,
    bucket: String,
    key: String,
    opts: Options,
    stop: Arc<AtomicBool>,
) -> Outcome {
    let started = Instant::now();
    let mut backoff = Duration::from_millis(250);
    let mut attempt = 0;
    loop {
        attempt += 1;
        match attempt_count(&client, &bucket, &key, opts, &stop).await {
            Ok((counts, size, etag)) => {
                if let Some((w, _)) = counts.iter().find(|(w, _)| w.len() > MAX_WORD_BYTES) {
                    return Outcome::Failed(format!(
                        "holds a word of {} bytes; the changelog takes words of at most {MAX_WORD_BYTES} bytes",
                        w.len()
                    ));
                }
                return Outcome::Counted {
                    counts,
                    size,
                    etag,
                    elapsed: started.elapsed(),
                };
            }
            Err(AttemptError::Interrupted) => return Outcome::Interrupted,
            Err(AttemptError::Failed { message, retry }) => {
                let give_up = match retry {
                    Retry::Never => true,
                    Retry::Permanent => attempt >= PERMANENT_ATTEMPTS,
                    Retry::Transient => started.elapsed() + backoff > TRANSIENT_BUDGET,
                };
                if give_up {
                    return Outcome::Failed(message);
                }
                tracing::warn!(
                    "{}: {} (attempt {attempt}, retrying in {:.1} s)",
                    s3::url(&bucket, &key),
                    message,
                    backoff.as_secs_f64()
                );
            }
        }
        if unless_stopped(&stop, tokio::time::sleep(backoff))
            .await
            .is_none()
        {
            return Outcome::Interrupted;
        }
        backoff = (backoff * 2).min(Duration::from_secs(8));
    }
}

async fn attempt_count(
    client: &Client,
    bucket: &str,
    key: &str,
    opts: Options,
    stop: &AtomicBool,
) -> Result<(WordCounts, u64, String), AttemptError> {
    let request = client.get_object().bucket(bucket).key(key).send();
    let resp = match unless_stopped(stop, tokio::time::timeout(IDLE_TIMEOUT, request)).await {
        None => return Err(AttemptError::Interrupted),
        Some(Err(_)) => {
            return Err(failed(
                format!(
                    "cannot read: no response within {} s",
                    IDLE_TIMEOUT.as_secs()
                ),
                Retry::Transient,
            ))
        }
        Some(Ok(r)) => r,
    };
    let resp = resp.map_err(|e| {
        let permanent = matches!(&e, SdkError::ServiceError(se)
            if matches!(se.err().code(), Some("NoSuchKey" | "AccessDenied" | "InvalidObjectState" | "NoSuchBucket")));
        let retry = if permanent {
            Retry::Permanent
        } else {
            Retry::Transient
        };
        failed(format!("{:#}", s3::describe("cannot read", &e)), retry)
    })?;
    let etag = resp.e_tag().unwrap_or_default().to_string();
    let mut body = resp.body;
    // The core's streaming counter, unrolled to watch the carried token.
    let mut splitter = Splitter::new(opts.encoding);
    let mut counts = WordCounts::new();
    let mut size = 0u64;
    loop {
        let next =
            match unless_stopped(stop, tokio::time::timeout(IDLE_TIMEOUT, body.try_next())).await {
                None => return Err(AttemptError::Interrupted),
                Some(Err(_)) => {
                    return Err(failed(
                        format!(
                            "cannot read: body stalled for {} s after {size} bytes",
                            IDLE_TIMEOUT.as_secs()
                        ),
                        Retry::Transient,
                    ))
                }
                Some(Ok(n)) => n,
            };
        match next {
            Ok(Some(chunk)) => {
                size += chunk.len() as u64;
                splitter.push(&chunk, |seg| counts.add_segment(seg, opts));
                if splitter.carried() > MAX_TOKEN_BYTES {
                    return Err(failed(
                        format!(
                            "holds a token (run of word characters) of more than {MAX_TOKEN_BYTES} bytes"
                        ),
                        Retry::Never,
                    ));
                }
            }
            Ok(None) => break,
            Err(e) => {
                return Err(failed(
                    format!("cannot read: body stream failed after {size} bytes: {e}"),
                    Retry::Transient,
                ))
            }
        }
    }
    splitter.finish(|seg| counts.add_segment(seg, opts));
    Ok((counts, size, etag))
}
