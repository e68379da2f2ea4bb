//! Ranged reads of a big plain-text object (docs/design.md §9): an object
//! larger than `--range-size` whose first bytes say it is plain text is
//! split into byte ranges ([`Ranged::ranges`]), each a unit of work of the
//! group ([`super::split`]); [`count_one`] reads and counts one of them with
//! ranged GETs (`Range: bytes=a-b`) pinned with `If-Match` to the version
//! split. The ranges add up exactly to the whole object
//! ([`crate::count::RangeCounter`]: a word belongs to the range it starts
//! in).
//!
//! A range whose version is gone (`412`) counts nothing and says so
//! ([`Outcome::Changed`]): the object's owner then starts the object again
//! at its new version. A transient error of a range is retried for that
//! range alone, for as long as it lasts. Compressed files, archives, PDF
//! and markup are never split: the format is decided from the first bytes
//! (and the key and Content-Type) before splitting.

use super::object::{answer, failed, unless_stopped, AttemptError, Body, Outcome, Retry};
use crate::count::{Options, RangeCounter, WordCounts};
use crate::s3;
use aws_sdk_s3::Client;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Default `--range-size`: objects above it are read in ranges of it.
pub const DEFAULT_RANGE_SIZE: u64 = 64 << 20;
/// Default `--range-concurrency`: ranges a worker reads at once.
pub const DEFAULT_CONCURRENCY: usize = 2;
/// Bytes asked for past a range's end to finish its last word (a longer
/// word is rare: the rest of the object is then asked for).
const TAIL: u64 = crate::tokenize::MAX_TOKEN_BYTES as u64 + 1024;

/// How big objects are split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ranged {
    /// Range size in bytes; objects above it are split (0: never).
    pub size: u64,
    /// Ranges a worker reads and counts at the same time.
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

/// The longest pause between attempts at a range (S3 unreachable): the
/// first is 250 ms, doubling up to this; a range is retried for as long as
/// its failures last.
const RANGE_PAUSE: std::time::Duration = std::time::Duration::from_secs(5);

/// One range of one version of an object, and how to read it.
#[derive(Clone)]
pub struct RangeRead {
    pub client: Client,
    pub bucket: String,
    pub key: String,
    /// The version (`If-Match`).
    pub etag: String,
    /// The object's size.
    pub size: u64,
    /// `[start, end)`.
    pub range: (u64, u64),
    pub opts: Options,
    pub stop: Arc<AtomicBool>,
}

/// Counts one range as a unit of work of the group (docs/design.md §9).
/// Transient failures are retried for as long as they last;
/// [`Outcome::Changed`] when the version is gone (`412`, or the object
/// missing or denied): the range counts nothing.
pub async fn count_one(r: RangeRead) -> Outcome {
    let started = std::time::Instant::now();
    let mut warnings = super::throttle::Throttle::new(std::time::Duration::from_secs(30));
    let mut pause = std::time::Duration::from_millis(250);
    loop {
        match read_range(&r).await {
            Ok(counts) => {
                let bytes = r.range.1 - r.range.0;
                return Outcome::Counted {
                    counts,
                    size: bytes,
                    etag: r.etag,
                    elapsed: started.elapsed(),
                    text: crate::format::Record::text(bytes),
                };
            }
            Err(AttemptError::Interrupted) => return Outcome::Interrupted,
            Err(AttemptError::Changed)
            | Err(AttemptError::Failed {
                retry: Retry::Denied,
                ..
            }) => return Outcome::Changed,
            Err(AttemptError::Failed { message, .. }) => {
                warnings.warn(format_args!(
                    "{} bytes {}-{}: {} (retrying in {:.2} s)",
                    crate::output::escape(&s3::url(&r.bucket, &r.key)),
                    r.range.0,
                    r.range.1,
                    crate::output::escape(&message),
                    pause.as_secs_f64()
                ));
                if unless_stopped(&r.stop, tokio::time::sleep(pause))
                    .await
                    .is_none()
                {
                    return Outcome::Interrupted;
                }
                pause = (pause * 2).min(RANGE_PAUSE);
            }
        }
    }
}

/// Reads and counts one range with ranged GETs (from its start).
async fn read_range(rr: &RangeRead) -> Result<WordCounts, AttemptError> {
    let (client, bucket, key, etag, size) = (&rr.client, &rr.bucket, &rr.key, &rr.etag, rr.size);
    let ((a, b), opts, stop) = (rr.range, rr.opts, &*rr.stop);
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
