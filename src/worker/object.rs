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

use super::throttle::Throttle;
use crate::count::{Counter, Options, WordCounts};
use crate::s3;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
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

/// What became of an object.
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
    },
    /// Given up on, with the reason.
    Failed(String),
    /// Shutting down: neither counted nor failed; it stays discovered.
    Interrupted,
}

/// How an attempt's failure is retried.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// For as long as it lasts: the object may well be readable.
    Transient,
    /// [`DENIED_PAUSES`] apart, then failed: S3 says it cannot be read.
    Denied,
}

/// One failed attempt.
enum AttemptError {
    Failed {
        message: String,
        retry: Retry,
    },
    /// The pinned version is no longer there (`412 Precondition Failed`).
    Changed,
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

/// Reads and counts `s3://bucket/key`, retrying as described above. With
/// `pin` (the ETag discovery listed), reads ask for that version
/// (`If-Match`); when the object changed since, the read goes on with the
/// version there is now, and every later attempt asks for that one: the
/// counts are always of one version, the one [`Outcome::Counted`] names.
pub async fn count(
    client: Client,
    bucket: String,
    key: String,
    opts: Options,
    stop: Arc<AtomicBool>,
    mut pin: Option<String>,
) -> Outcome {
    let started = Instant::now();
    let mut backoff = FIRST_BACKOFF;
    let mut denied = 0;
    let mut warnings = Throttle::new(WARN_EVERY);
    for attempt in 1.. {
        let pause = match attempt_count(&client, &bucket, &key, opts, &stop, &mut pin).await {
            Ok((counts, size, etag)) => {
                return Outcome::Counted {
                    counts,
                    size,
                    etag,
                    elapsed: started.elapsed(),
                }
            }
            Err(AttemptError::Interrupted) => return Outcome::Interrupted,
            Err(AttemptError::Changed) => continue, // at once, unpinned
            Err(AttemptError::Failed { message, retry }) => {
                let pause = match retry {
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

/// Whether an S3 error says the object cannot be read (rather than that S3
/// could not answer).
fn is_denied<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    matches!(e, SdkError::ServiceError(se)
        if matches!(se.err().code(), Some("NoSuchKey" | "AccessDenied" | "InvalidObjectState" | "NoSuchBucket")))
}

/// Whether an S3 error says the `If-Match` version is gone.
fn is_changed<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    matches!(e, SdkError::ServiceError(se) if se.err().code() == Some("PreconditionFailed"))
}

async fn attempt_count(
    client: &Client,
    bucket: &str,
    key: &str,
    opts: Options,
    stop: &AtomicBool,
    pin: &mut Option<String>,
) -> Result<(WordCounts, u64, String), AttemptError> {
    let request = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .set_if_match(pin.clone())
        .send();
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
        if is_changed(&e) {
            *pin = None;
            return AttemptError::Changed;
        }
        let retry = if is_denied(&e) {
            Retry::Denied
        } else {
            Retry::Transient
        };
        failed(format!("{:#}", s3::describe("cannot read", &e)), retry)
    })?;
    let etag = resp.e_tag().unwrap_or_default().to_string();
    if !etag.is_empty() {
        *pin = Some(etag.clone()); // a retry reads this version again
    }
    let mut body = resp.body;
    let mut counter = Counter::new(opts);
    loop {
        let next =
            match unless_stopped(stop, tokio::time::timeout(IDLE_TIMEOUT, body.try_next())).await {
                None => return Err(AttemptError::Interrupted),
                Some(Err(_)) => {
                    return Err(failed(
                        format!(
                            "cannot read: body stalled for {} s after {} bytes",
                            IDLE_TIMEOUT.as_secs(),
                            counter.bytes()
                        ),
                        Retry::Transient,
                    ))
                }
                Some(Ok(n)) => n,
            };
        match next {
            Ok(Some(chunk)) => counter.feed(&chunk),
            Ok(None) => break,
            Err(e) => {
                return Err(failed(
                    format!(
                        "cannot read: body stream failed after {} bytes: {e}",
                        counter.bytes()
                    ),
                    Retry::Transient,
                ))
            }
        }
    }
    let size = counter.bytes();
    Ok((counter.finish(), size, etag))
}
