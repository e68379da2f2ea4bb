//! `count-local s3://BUCKET[/PREFIX]`: counts what a bucket holds now,
//! object by object, with the worker's own read path
//! ([`crate::worker::object::count`]: streamed, retried, the same core and
//! options), so `count-local --verify s3://BUCKET` compares the changelog
//! with the bucket as it is (overwritten objects at their current version,
//! deleted ones absent). The endpoint and region come from the environment
//! as for the other commands (`AWS_ENDPOINT_URL`, `AWS_REGION`,
//! `S3_TIMEOUT`, the AWS credential chain).

use super::Tally;
use crate::config::S3Args;
use crate::count::{Options, WordCounts};
use crate::format;
use crate::worker::object::{self, Outcome};
use anyhow::{anyhow, bail, Context, Result};
use futures::StreamExt;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Objects read at the same time.
const CONCURRENCY: usize = 16;

/// The bucket and prefix of `s3://BUCKET[/PREFIX]`, if `arg` is one.
pub fn parse(arg: &str) -> Option<Result<(String, String)>> {
    let rest = arg.strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Some(Err(anyhow!(
            "{arg}: no bucket named (s3://BUCKET[/PREFIX])"
        )));
    }
    Some(Ok((bucket.to_string(), prefix.to_string())))
}

/// Counts every object of `bucket` under `prefix` (through the format
/// layer, as the worker does).
pub fn count(bucket: &str, prefix: &str, opts: Options, formats: format::Config) -> Result<Tally> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(count_async(bucket, prefix, opts, formats))
}

async fn count_async(
    bucket: &str,
    prefix: &str,
    opts: Options,
    formats: format::Config,
) -> Result<Tally> {
    let args = S3Args {
        bucket: bucket.to_string(),
        endpoint_url: std::env::var("AWS_ENDPOINT_URL").ok(),
        region: std::env::var("AWS_REGION").ok(),
        s3_timeout: std::env::var("S3_TIMEOUT")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(30),
    };
    let client = crate::s3::client(&args).await;
    let mut keys = Vec::new();
    let mut pages = client
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page =
            page.map_err(|e| crate::s3::describe(&format!("cannot list s3://{bucket}"), &e))?;
        keys.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_string)),
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    let outcomes: Vec<(String, Outcome)> = futures::stream::iter(keys.into_iter().map(|key| {
        let read = object::count(
            client.clone(),
            bucket.to_string(),
            key.clone(),
            opts,
            formats,
            Arc::clone(&stop),
            None,
            // Whole objects: the reference the worker's ranged reads are
            // checked against.
            object::NO_RANGES,
        );
        async move { (key, read.await) }
    }))
    .buffer_unordered(CONCURRENCY)
    .collect()
    .await;
    let mut tally = Tally {
        counts: WordCounts::new(),
        files: 0,
        bytes: 0,
        failed: 0,
    };
    for (key, outcome) in outcomes {
        match outcome {
            Outcome::Counted { counts, size, .. } => {
                tally.files += 1;
                tally.bytes += size;
                tally.counts.merge(counts);
            }
            Outcome::Failed(why) => bail!(
                "cannot read {}: {}",
                crate::output::escape(&crate::s3::url(bucket, &key)),
                crate::output::escape(&why)
            ),
            Outcome::Interrupted => bail!("interrupted"),
            Outcome::Split { .. } | Outcome::Changed => unreachable!("read whole"),
        }
    }
    Ok(tally)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_urls() {
        assert!(parse("papers/").is_none());
        let (b, p) = parse("s3://b").unwrap().unwrap();
        assert_eq!((b.as_str(), p.as_str()), ("b", ""));
        let (b, p) = parse("s3://b/2026/x").unwrap().unwrap();
        assert_eq!((b.as_str(), p.as_str()), ("b", "2026/x"));
        assert!(parse("s3:///x").unwrap().is_err());
    }
}
