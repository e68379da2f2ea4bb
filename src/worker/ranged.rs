//! Ranged reads of a big plain-text object (docs/design.md §9): an object
//! larger than `--range-size` whose first bytes say it is plain text is
//! counted as byte ranges read with concurrent ranged GETs
//! (`Range: bytes=a-b`), each pinned with `If-Match` to the ETag the
//! object's first GetObject returned, and counted on its own thread of the
//! runtime. The ranges add up exactly to the whole object
//! ([`crate::count::RangeCounter`]: a word belongs to the range it starts
//! in). The object's counts are then committed like any object's, in one
//! transaction, so exactly-once is the object's.
//!
//! An object overwritten while its ranges are read fails the pinned GETs
//! (`412`): the attempt fails as [`AttemptError::Changed`] and the object
//! is read again whole-consistently at its new version (the newer version
//! wins; counts never mix two versions). A transient error of a range is
//! retried for that range alone a few times; then, like any other error,
//! it fails the attempt and [`super::object::count`] retries the object as
//! it retries any read. Compressed files, archives, PDF and markup are never
//! split: the format is decided from the first bytes (and the key and
//! Content-Type) before splitting.

use super::object::{answer, failed, unless_stopped, AttemptError, Body, Retry};
use crate::count::{Options, RangeCounter, WordCounts};
use crate::s3;
use aws_sdk_s3::Client;
use futures::StreamExt;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Default `--range-size`: objects above it are read in ranges of it.
pub const DEFAULT_RANGE_SIZE: u64 = 64 << 20;
/// Default `--range-concurrency`: ranges of one object read at once.
pub const DEFAULT_CONCURRENCY: usize = 2;
/// Bytes asked for past a range's end to finish its last word (a longer
/// word is rare: the rest of the object is then asked for).
const TAIL: u64 = crate::tokenize::MAX_TOKEN_BYTES as u64 + 1024;

/// How big objects are split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ranged {
    /// Range size in bytes; objects above it are split (0: never).
    pub size: u64,
    /// Ranges of one object read at the same time.
    pub concurrency: usize,
}

impl Default for Ranged {
    fn default() -> Self {
        Ranged {
            size: DEFAULT_RANGE_SIZE,
            concurrency: DEFAULT_CONCURRENCY,
        }
    }
}

impl Ranged {
    /// Whether an object of `size` bytes is read in ranges.
    pub fn splits(&self, size: u64) -> bool {
        self.size > 0 && size > self.size
    }

    /// The ranges `[start, end)` of an object of `size` bytes.
    pub fn ranges(&self, size: u64) -> Vec<(u64, u64)> {
        let step = self.size.max(crate::tokenize::RESUME_BACK as u64 * 2);
        (0..size.div_ceil(step))
            .map(|i| (i * step, ((i + 1) * step).min(size)))
            .collect()
    }
}

/// What the object to split is: its version, size and where it is.
pub(super) struct Target<'a> {
    pub client: &'a Client,
    pub bucket: &'a str,
    pub key: &'a str,
    pub etag: &'a str,
    pub size: u64,
}

/// Counts a plain-text object in ranges: range 0 from `first` (the object's
/// GetObject, whose first bytes `prefix` were read already), the others with
/// ranged GETs, `cfg.concurrency` at a time (range 0 included). Returns the
/// counts and the number of ranges.
pub(super) async fn count(
    t: Target<'_>,
    mut first: Body<'_>,
    prefix: Vec<u8>,
    opts: Options,
    stop: &Arc<AtomicBool>,
    cfg: Ranged,
) -> Result<(WordCounts, u64), AttemptError> {
    let ranges = cfg.ranges(t.size);
    tracing::debug!(
        "{}: {} bytes read in {} ranges",
        crate::output::escape(&s3::url(t.bucket, t.key)),
        t.size,
        ranges.len()
    );
    let (s0, e0) = ranges[0];
    let zero = async {
        let mut r = RangeCounter::new(opts, s0, e0);
        let mut done = r.push(&prefix);
        while !done {
            match first.next().await? {
                Some(chunk) => done = r.push(&chunk),
                None => break,
            }
        }
        Ok::<_, AttemptError>(r.finish())
    };
    let rest = futures::stream::iter(ranges[1..].iter().copied().map(|(a, b)| {
        tokio::spawn(count_range(
            t.client.clone(),
            t.bucket.to_string(),
            t.key.to_string(),
            t.etag.to_string(),
            t.size,
            (a, b),
            opts,
            Arc::clone(stop),
        ))
    }))
    .buffer_unordered(cfg.concurrency.max(2) - 1)
    .map(|joined| {
        joined.unwrap_or_else(|e| {
            Err(failed(
                format!("counting a range panicked: {e}"),
                Retry::Never,
            ))
        })
    })
    .collect::<Vec<_>>();
    let (zero, rest) = futures::join!(zero, rest);
    let mut total = zero?;
    for counts in rest {
        total.merge(counts?);
    }
    Ok((total, ranges.len() as u64))
}

/// Transient failures of one range retried on their own (the range read
/// again from its start) before the object's attempt fails.
const RANGE_ATTEMPTS: u32 = 4;

/// Counts the range `[a, b)` of version `etag`, a transient failure
/// retried on its own [`RANGE_ATTEMPTS`] times (250 ms, 0.5 s, 1 s apart),
/// so that a hiccup does not read the whole object again.
#[allow(clippy::too_many_arguments)]
async fn count_range(
    client: Client,
    bucket: String,
    key: String,
    etag: String,
    size: u64,
    range: (u64, u64),
    opts: Options,
    stop: Arc<AtomicBool>,
) -> Result<WordCounts, AttemptError> {
    let mut pause = std::time::Duration::from_millis(250);
    for attempt in 1.. {
        let read = read_range(&client, &bucket, &key, &etag, size, range, opts, &stop);
        match read.await {
            Err(AttemptError::Failed {
                message,
                retry: Retry::Transient,
            }) if attempt < RANGE_ATTEMPTS => {
                tracing::debug!(
                    "{}: {} (range attempt {attempt}; again in {:.2} s)",
                    crate::output::escape(&s3::url(&bucket, &key)),
                    crate::output::escape(&message),
                    pause.as_secs_f64()
                );
                if unless_stopped(&stop, tokio::time::sleep(pause))
                    .await
                    .is_none()
                {
                    return Err(AttemptError::Interrupted);
                }
                pause *= 2;
            }
            other => return other,
        }
    }
    unreachable!("attempts are numbered without end")
}

/// Reads and counts the range `[a, b)` of version `etag` with ranged GETs.
#[allow(clippy::too_many_arguments)]
async fn read_range(
    client: &Client,
    bucket: &str,
    key: &str,
    etag: &str,
    size: u64,
    (a, b): (u64, u64),
    opts: Options,
    stop: &AtomicBool,
) -> Result<WordCounts, AttemptError> {
    // A test's range in flight (see crate::failpoint): held, or the
    // process killed mid-read.
    let _ = tokio::task::spawn_blocking(|| crate::failpoint::hit("range.read")).await;
    let mut r = RangeCounter::new(opts, a, b);
    let mut last = (b + TAIL).min(size);
    while !r.is_done() && r.position() < size {
        let from = r.position();
        if from >= last {
            last = size; // a word runs past the tail: read on to the end
        }
        let request = client
            .get_object()
            .bucket(bucket)
            .key(key)
            .range(format!("bytes={from}-{}", last - 1))
            .if_match(etag)
            .send();
        let what = format!("cannot read bytes {from}-{}", last - 1);
        let resp = answer(request, stop, &what).await?;
        let mut body = Body {
            body: resp.body,
            stop,
            bytes: 0,
        };
        let before = r.position();
        while let Some(chunk) = body.next().await? {
            if r.push(&chunk) {
                break;
            }
        }
        if !r.is_done() && r.position() == before {
            return Err(failed(
                format!("bytes {from}-{}: an empty answer", last - 1),
                Retry::Transient,
            ));
        }
    }
    Ok(r.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_the_object() {
        let cfg = Ranged {
            size: 10,
            concurrency: 2,
        };
        assert!(!cfg.splits(10));
        assert!(cfg.splits(11));
        assert_eq!(cfg.ranges(25), vec![(0, 10), (10, 20), (20, 25)]);
        assert_eq!(cfg.ranges(20), vec![(0, 10), (10, 20)]);
        assert!(!Ranged { size: 0, ..cfg }.splits(1 << 40));
    }
}
