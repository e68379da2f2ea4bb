//! Reading one S3 object and counting it: streamed (constant memory
//! whatever the size), retried with backoff, classified as counted or failed.

use crate::count::{Counter, Options, WordCounts};
use crate::s3;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::Client;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long transient errors (S3 unreachable, 5xx, a broken stream) are
/// retried before the object is marked failed.
pub const TRANSIENT_BUDGET: Duration = Duration::from_secs(120);
/// Attempts for errors that will not go away by themselves (missing, denied).
const PERMANENT_ATTEMPTS: u32 = 2;

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

/// One failed attempt.
struct AttemptError {
    message: String,
    permanent: bool,
}

/// Reads and counts `s3://bucket/key`, retrying as described above.
pub async fn count(
    client: &Client,
    bucket: &str,
    key: &str,
    opts: Options,
    stop: &AtomicBool,
) -> Outcome {
    let started = Instant::now();
    let mut backoff = Duration::from_millis(250);
    let mut attempt = 0;
    loop {
        attempt += 1;
        match attempt_count(client, bucket, key, opts).await {
            Ok((counts, size, etag)) => {
                return Outcome::Counted {
                    counts,
                    size,
                    etag,
                    elapsed: started.elapsed(),
                }
            }
            Err(e) => {
                let give_up = if e.permanent {
                    attempt >= PERMANENT_ATTEMPTS
                } else {
                    started.elapsed() + backoff > TRANSIENT_BUDGET
                };
                if give_up {
                    return Outcome::Failed(e.message);
                }
                tracing::warn!(
                    "{}: {} (attempt {attempt}, retrying in {:.1} s)",
                    s3::url(bucket, key),
                    e.message,
                    backoff.as_secs_f64()
                );
            }
        }
        let until = Instant::now() + backoff;
        while Instant::now() < until {
            if stop.load(Ordering::Relaxed) {
                return Outcome::Interrupted;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        backoff = (backoff * 2).min(Duration::from_secs(8));
    }
}

async fn attempt_count(
    client: &Client,
    bucket: &str,
    key: &str,
    opts: Options,
) -> Result<(WordCounts, u64, String), AttemptError> {
    let resp = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| {
            let permanent = matches!(&e, SdkError::ServiceError(se)
                if matches!(se.err().code(), Some("NoSuchKey" | "AccessDenied" | "InvalidObjectState" | "NoSuchBucket")));
            AttemptError {
                message: format!("{:#}", s3::describe("cannot read", &e)),
                permanent,
            }
        })?;
    let etag = resp.e_tag().unwrap_or_default().to_string();
    let mut body = resp.body;
    let mut counter = Counter::new(opts);
    loop {
        match body.try_next().await {
            Ok(Some(chunk)) => counter.feed(&chunk),
            Ok(None) => break,
            Err(e) => {
                return Err(AttemptError {
                    message: format!("cannot read: body stream failed: {e}"),
                    permanent: false,
                })
            }
        }
    }
    let size = counter.bytes();
    Ok((counter.finish(), size, etag))
}
