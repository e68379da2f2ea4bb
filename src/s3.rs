//! The S3 layer: one client builder and the few operations wordstream needs,
//! with errors that name the bucket, the key and the S3 error code, or the
//! endpoint that cannot be reached.
//!
//! Every request is bounded in time (`--s3-timeout`): connecting, and
//! waiting for each answer; a request that sends a body gets one more
//! second per 64 KiB ([`timeouts`]), so big parts on slow links still go.

use crate::config::S3Args;
use anyhow::{anyhow, bail, Result};
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::Client;
use std::sync::RwLock;
use std::time::Duration;

/// The endpoint and timeout (seconds) of the last client built, for the
/// messages of requests that cannot reach it.
static REACH: RwLock<Option<(String, u64)>> = RwLock::new(None);

/// Bytes a request may send per second of timeout it is given on top of
/// `--s3-timeout`.
pub const SLOWEST_BYTES_PER_SEC: u64 = 64 << 10;

/// The timeouts of a request that sends `body` bytes with `--s3-timeout`
/// `secs`: connect within `secs`; the answer (after the body is sent)
/// within `secs` plus a second per [`SLOWEST_BYTES_PER_SEC`]; retries
/// included, three times that at most.
pub fn timeouts(secs: u64, body: u64) -> TimeoutConfig {
    let base = Duration::from_secs(secs);
    let answer = base.saturating_add(Duration::from_secs(body / SLOWEST_BYTES_PER_SEC));
    TimeoutConfig::builder()
        .connect_timeout(base)
        .read_timeout(answer)
        .operation_attempt_timeout(answer)
        .operation_timeout(answer.saturating_mul(3))
        .build()
}

/// A per-request configuration override with [`timeouts`] for `body` bytes.
pub fn sending(secs: u64, body: u64) -> aws_sdk_s3::config::Builder {
    aws_sdk_s3::config::Builder::new().timeout_config(timeouts(secs, body))
}

/// How messages name the endpoint of `args`.
pub fn endpoint_name(args: &S3Args, region: Option<&str>) -> String {
    match &args.endpoint_url {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => format!("https://s3.{}.amazonaws.com", region.unwrap_or("us-east-1")),
    }
}

/// Builds the S3 client: the standard AWS credential chain, the region
/// (flag, env, profile, else us-east-1) and, with an endpoint URL,
/// path-style addressing for S3-compatible servers.
pub async fn client(args: &S3Args) -> Client {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(region) = &args.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    let shared = loader.load().await;
    let mut conf = aws_sdk_s3::config::Builder::from(&shared);
    if shared.region().is_none() {
        conf = conf.region(aws_config::Region::new("us-east-1"));
    }
    if let Some(url) = &args.endpoint_url {
        conf = conf.endpoint_url(url).force_path_style(true);
    }
    conf = conf.timeout_config(timeouts(args.s3_timeout, 0));
    let conf = conf.build();
    let region = conf.region().map(|r| r.as_ref().to_string());
    if let Ok(mut reach) = REACH.write() {
        *reach = Some((endpoint_name(args, region.as_deref()), args.s3_timeout));
    }
    Client::from_conf(conf)
}

/// `the S3 endpoint URL` (of the last client built) and its timeout.
fn reach() -> (String, Option<u64>) {
    match REACH.read().ok().and_then(|r| r.clone()) {
        Some((ep, secs)) => (format!("the S3 endpoint {ep}"), Some(secs)),
        None => ("the S3 endpoint".into(), None),
    }
}

/// Why the endpoint did not answer in time.
fn timed_out() -> String {
    match reach() {
        (ep, Some(secs)) => format!("{ep} did not answer within {secs} s (--s3-timeout)"),
        (ep, None) => format!("{ep} did not answer in time"),
    }
}

/// A one-line description of an S3 failure of `what` (e.g. `list s3://b`):
/// the S3 error code and message, or why the endpoint could not be reached.
/// Never includes credentials.
pub fn describe<E, R>(what: &str, err: &SdkError<E, R>) -> anyhow::Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    let detail = match err {
        SdkError::ServiceError(se) => {
            let e = se.err();
            let hint = match e.code().unwrap_or_default() {
                "NoSuchBucket" => " (create it, e.g. with `wordstream upload --create-bucket`)",
                // XAdminUserNotFound: versitygw's unknown access key
                "InvalidAccessKeyId" | "SignatureDoesNotMatch" | "XAdminUserNotFound" => {
                    " (check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)"
                }
                _ => "",
            };
            format!("{}{hint}", service_error(e))
        }
        SdkError::TimeoutError(_) => timed_out(),
        SdkError::DispatchFailure(d) if d.is_timeout() => timed_out(),
        SdkError::DispatchFailure(d) if d.is_io() => {
            format!("cannot reach {}: {}", reach().0, root_cause(err))
        }
        SdkError::DispatchFailure(_) => root_cause(err),
        _ => root_cause(err),
    };
    anyhow!("{what}: {detail}")
}

/// The innermost error message of a chain (the useful part of SDK errors).
/// `Code: message` of an AWS service error (any AWS SDK), or the code alone.
pub fn service_error(e: &impl ProvideErrorMetadata) -> String {
    let code = e.code().unwrap_or("error");
    match e.message() {
        Some(m) if !m.is_empty() => format!("{code}: {m}"),
        _ => code.to_string(),
    }
}

/// The innermost non-empty message of an error's chain (any AWS SDK).
pub fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = err;
    let mut msgs = vec![cur.to_string()];
    while let Some(next) = cur.source() {
        msgs.push(next.to_string());
        cur = next;
    }
    msgs.retain(|m| !m.is_empty() && m != "dispatch failure" && m != "other");
    msgs.last()
        .cloned()
        .unwrap_or_else(|| "unknown error".into())
}

/// Checks that the bucket exists and the credentials may list it.
pub async fn check_bucket(client: &Client, bucket: &str) -> Result<()> {
    client
        .list_objects_v2()
        .bucket(bucket)
        .max_keys(1)
        .send()
        .await
        .map_err(|e| describe(&format!("cannot list s3://{bucket}"), &e))?;
    Ok(())
}

/// `s3://bucket/key`, the name wordstream gives an object everywhere.
pub fn url(bucket: &str, key: &str) -> String {
    format!("s3://{bucket}/{key}")
}

/// The S3 error code of a failed call (`NoSuchBucket`, `AccessDenied`, …),
/// when the service answered one.
pub fn error_code<E, R>(err: &SdkError<E, R>) -> Option<&str>
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::ServiceError(se) => se.err().code(),
        _ => None,
    }
}

/// Checks that the bucket exists and the credentials may list it; with
/// `create`, creates it when it does not exist (in the client's region).
/// A missing bucket without `create` is the one-line error
/// `bucket s3://B does not exist (create it with --create-bucket)`.
pub async fn ensure_bucket(client: &Client, bucket: &str, create: bool) -> Result<()> {
    let err = match client
        .list_objects_v2()
        .bucket(bucket)
        .max_keys(1)
        .send()
        .await
    {
        Ok(_) => return Ok(()),
        Err(e) => e,
    };
    // Some servers answer 404 without a body (no code) to a missing bucket.
    let missing = match error_code(&err) {
        Some(code) => code == "NoSuchBucket",
        None => err
            .raw_response()
            .is_some_and(|r| r.status().as_u16() == 404),
    };
    if !missing {
        return Err(describe(&format!("cannot list s3://{bucket}"), &err));
    }
    if !create {
        bail!("bucket s3://{bucket} does not exist (create it with --create-bucket)");
    }
    let mut req = client.create_bucket().bucket(bucket);
    let region = client.config().region().map(|r| r.as_ref().to_string());
    if let Some(region) = region.filter(|r| r != "us-east-1") {
        use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
        req = req.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(region.as_str()))
                .build(),
        );
    }
    match req.send().await {
        Ok(_) => {
            tracing::info!("created bucket s3://{bucket}");
            Ok(())
        }
        // Someone else (or we, a moment ago) created it meanwhile.
        Err(e) if error_code(&e) == Some("BucketAlreadyOwnedByYou") => Ok(()),
        Err(e) => Err(describe(&format!("cannot create bucket s3://{bucket}"), &e)),
    }
}
