//! One page of a bucket listing (ListObjectsV2), and the next page listed
//! ahead.
//!
//! A pass of many pages lists one page per loop iteration. Without help,
//! each page's round trip (0.1-0.3 s on AWS for 1,000 keys) sits in series
//! with the iteration's poll, counting and commit. So once a page is taken
//! in, the page after it is requested at once, on a task of the runtime
//! ([`Ahead`]), and the next iteration finds it there: a pass costs about
//! one page's latency, not one per batch. A page listed ahead is used only
//! by the pass, at the position, it was listed for and only while fresh
//! ([`AHEAD_FRESH`]); anything else (a batch abandoned, the pass rewound)
//! drops it, which aborts its request.

use super::{Found, Pass};
use crate::s3;
use anyhow::Result;
use aws_sdk_s3::types::EncodingType;
use aws_sdk_s3::Client;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// A page listed ahead is used for this long; an older one is listed again
/// (its objects' ETags would be that old).
pub(super) const AHEAD_FRESH: Duration = Duration::from_secs(10);

/// What to list: a bucket, under a prefix, from a pass's position.
#[derive(Clone, Debug)]
pub(super) struct Request {
    pub bucket: String,
    pub prefix: String,
    /// Keys per page (`None`: S3's default, 1,000).
    pub page_size: Option<i32>,
    /// S3 `ContinuationToken`.
    pub token: Option<String>,
    /// S3 `StartAfter`, when there is no token (a pass resumed after a
    /// restart starts after the last key it listed).
    pub after: Option<String>,
}

/// One page as listed: keys as the answer gives them (see `encoded`).
#[derive(Debug)]
pub(super) struct Page {
    /// The objects; keys URL-encoded when `encoded`.
    pub objects: Vec<Found>,
    /// The answer says its keys are URL-encoded (a server may ignore
    /// `encoding-type`: versitygw 1.7 does).
    pub encoded: bool,
    /// The token of the next page, if any.
    pub next: Option<String>,
}

/// Lists one page.
pub(super) async fn list(client: &Client, req: &Request) -> Result<Page> {
    let mut call = client
        .list_objects_v2()
        .bucket(&req.bucket)
        .encoding_type(EncodingType::Url);
    if !req.prefix.is_empty() {
        call = call.prefix(&req.prefix);
    }
    if let Some(n) = req.page_size {
        call = call.max_keys(n);
    }
    match (&req.token, &req.after) {
        (Some(t), _) => call = call.continuation_token(t),
        (None, Some(after)) => call = call.start_after(after),
        (None, None) => {}
    }
    super::LIST_CALLS.fetch_add(1, Ordering::Relaxed);
    let resp = call
        .send()
        .await
        .map_err(|e| s3::describe(&format!("cannot list s3://{}", req.bucket), &e))?;
    let objects = resp
        .contents()
        .iter()
        .filter_map(|obj| {
            Some(Found {
                key: obj.key()?.to_string(),
                etag: obj.e_tag().unwrap_or_default().to_string(),
                size: obj.size().unwrap_or(0).max(0) as u64,
                change: false,
            })
        })
        .collect();
    let next = match resp.next_continuation_token() {
        Some(t) if resp.is_truncated() == Some(true) => Some(t.to_string()),
        _ => None,
    };
    Ok(Page {
        objects,
        encoded: resp.encoding_type() == Some(&EncodingType::Url),
        next,
    })
}

/// A page requested ahead for a pass at a position. Dropping it aborts
/// the request.
pub(super) struct Ahead {
    /// For the full pass (else the quick listing).
    full: bool,
    /// The pass as it stood when the page was requested.
    pass: Pass,
    at: Instant,
    task: JoinHandle<Result<Page>>,
}

impl Ahead {
    /// Requests `req`, the next page of `pass`, on the current runtime;
    /// `None` outside one.
    pub fn start(client: &Client, full: bool, pass: &Pass, req: Request) -> Option<Ahead> {
        let rt = tokio::runtime::Handle::try_current().ok()?;
        let client = client.clone();
        let task = rt.spawn(async move { list(&client, &req).await });
        Some(Ahead {
            full,
            pass: pass.clone(),
            at: Instant::now(),
            task,
        })
    }

    /// Whether it is the page `pass` (the full pass or not) lists next,
    /// still fresh.
    pub fn serves(&self, full: bool, pass: &Pass) -> bool {
        self.full == full && self.pass == *pass && self.at.elapsed() < AHEAD_FRESH
    }

    /// Whether it is a page of the full pass.
    pub fn full(&self) -> bool {
        self.full
    }

    /// Its page, waiting for it at most `timeout` (`None`: not in time;
    /// the request is aborted).
    pub async fn page(mut self, timeout: Duration) -> Option<Result<Page>> {
        match tokio::time::timeout(timeout, &mut self.task).await {
            Ok(Ok(page)) => Some(page),
            Ok(Err(e)) => Some(Err(anyhow::anyhow!("a listing task ended: {e}"))),
            Err(_) => None,
        }
    }
}

impl Drop for Ahead {
    fn drop(&mut self) {
        self.task.abort();
    }
}
