//! Table queries any worker answers: `/table/word_counts/{word}`,
//! `/top?n=…`, `/objects?key=…`, `/members`.
//!
//! A word's partition is the changelog's (murmur2 of its key, as the
//! worker writes it); an object's is the ledger's. The owner of the
//! partition answers from its own state (through the loop, see
//! [`super::view`]); any other worker forwards the request to the owner it
//! finds in the members topic ([`super::members`]), once (a forwarded
//! request is never forwarded again). During a rebalance the answer is 503
//! with `Retry-After` and a JSON body saying why (restoring, or no owner
//! known yet): never a stale or partial count presented as current.
//!
//! `/top` asks every live worker for its local top list and merges them;
//! it says which partitions the answer covers and which are missing.

use super::members::{Member, Of};
use super::view::{Query, TopAnswer, WordAnswer, MAX_TOP};
use super::{error, AppState};
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query as Params, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tokio::sync::oneshot;

/// The HTTP client that forwards requests to other workers.
pub type Client = hyper_util::client::legacy::Client<HttpConnector, Empty<Bytes>>;

/// Marks a forwarded request (it is answered locally or refused).
pub const FORWARDED: &str = "x-wordstream-forwarded";
/// Longest wait for the loop's answer.
const LOOP_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for another worker's answer.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(4);
/// Longest word a query may name (the worker skips longer tokens).
const MAX_WORD_BYTES: usize = 64 * 1024;
/// Longest S3 key.
const MAX_KEY_BYTES: usize = 1024;

/// A client for forwarding.
pub fn client() -> Client {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(Duration::from_secs(2)));
    hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector)
}

/// 503 with `Retry-After`: the answer will come once the group settles.
fn unavailable(why: String, worker: &str) -> Response {
    let mut r = (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(serde_json::json!({ "error": why, "worker": worker })),
    )
        .into_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("2"));
    r
}

/// Asks the loop; 503 when it is busy (queue full, or no answer in time).
async fn ask<T>(s: &AppState, q: impl FnOnce(oneshot::Sender<T>) -> Query) -> Result<T, Response> {
    let (tx, rx) = oneshot::channel();
    let busy = || unavailable("the worker is busy; try again".into(), s.members.me());
    if !s.shared.ask(q(tx)) {
        return Err(busy());
    }
    match tokio::time::timeout(LOOP_TIMEOUT, rx).await {
        Ok(Ok(answer)) => Ok(answer),
        _ => Err(busy()),
    }
}

/// Sends `uri`'s path and query to `member`; its answer as is.
async fn forward(s: &AppState, member: &Member, uri: &Uri) -> Response {
    match fetch(s, member, uri.path_and_query().map_or("/", |p| p.as_str())).await {
        Ok((status, retry, body)) => {
            let mut r = (
                status,
                [(header::CONTENT_TYPE, "application/json")],
                Body::from(body),
            )
                .into_response();
            if let Some(v) = retry {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            r
        }
        Err(e) => error(
            StatusCode::BAD_GATEWAY,
            &format!(
                "owner {} at {} did not answer: {e}",
                member.worker, member.url
            ),
        ),
    }
}

/// An answer of another worker: status, `Retry-After`, body.
type Fetched = (StatusCode, Option<HeaderValue>, Bytes);

/// GET `path` from `member`, marked as forwarded.
async fn fetch(s: &AppState, member: &Member, path: &str) -> Result<Fetched, String> {
    let uri: Uri = format!("{}{path}", member.url)
        .parse()
        .map_err(|e| format!("bad URL: {e}"))?;
    let req = axum::http::Request::get(uri)
        .header(FORWARDED, s.members.me())
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let work = async {
        let resp = s.client.request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status();
        let retry = resp.headers().get(header::RETRY_AFTER).cloned();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, retry, body))
    };
    tokio::time::timeout(FORWARD_TIMEOUT, work)
        .await
        .map_err(|_| format!("no answer within {} s", FORWARD_TIMEOUT.as_secs()))?
}

/// `/table/word_counts/{word}`: `{word, count, partition, offset, worker}`
/// (404 JSON for a word never counted).
pub async fn word(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    word: Result<Path<String>, PathRejection>,
) -> Response {
    let word = match word {
        Ok(Path(w)) => w,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("bad word: {e}")),
    };
    if word.len() > MAX_WORD_BYTES {
        return error(
            StatusCode::URI_TOO_LONG,
            &format!("word longer than {MAX_WORD_BYTES} bytes"),
        );
    }
    let p = crate::kafka::partition_for(&s.serde.key(&word), s.partitions);
    let w = word.clone();
    let answer = local(&s, Of::Repartition, p, |reply| Query::Word {
        word: w,
        partition: p,
        reply,
    });
    match answer.await {
        Ok(Some(a)) if a.count == 0 => {
            let body = serde_json::json!({
                "error": "unknown word",
                "word": a.word,
                "partition": a.partition,
                "offset": a.offset,
                "worker": a.worker,
            });
            return (StatusCode::NOT_FOUND, Json(body)).into_response();
        }
        Ok(Some(a)) => return Json::<WordAnswer>(a).into_response(),
        Ok(None) => {}
        Err(r) => return r,
    }
    owner_or_503(&s, &headers, &uri, Of::Repartition, p).await
}

/// The loop's answer when this worker owns partition `p` of `of`:
/// `Ok(None)` when it does not (or no longer does), an error response
/// while it restores or when the loop is busy.
async fn local<T>(
    s: &AppState,
    of: Of,
    p: i32,
    q: impl FnOnce(oneshot::Sender<Option<T>>) -> Query,
) -> Result<Option<T>, Response> {
    let snap = s.shared.snapshot();
    let (owned, what) = match of {
        Of::Repartition => (&snap.repartition, "changelog"),
        Of::Ledger => (&snap.ledger, "ledger"),
    };
    if !owned.contains(&p) {
        return Ok(None);
    }
    if snap.restoring || !snap.ready {
        return Err(unavailable(
            format!("{what} partition {p} is restoring"),
            &snap.worker,
        ));
    }
    ask(s, q).await
}

/// Forwards to the owner of `p`, or says why not.
async fn owner_or_503(s: &AppState, headers: &HeaderMap, uri: &Uri, of: Of, p: i32) -> Response {
    let me = s.members.me();
    let what = match of {
        Of::Repartition => "changelog",
        Of::Ledger => "ledger",
    };
    if headers.contains_key(FORWARDED) {
        return unavailable(
            format!("this worker does not own {what} partition {p} (rebalancing)"),
            me,
        );
    }
    match s.members.owner(of, p) {
        Some(m) => forward(s, &m, uri).await,
        None => unavailable(
            format!("no worker owns {what} partition {p} now (rebalancing or restoring)"),
            me,
        ),
    }
}

/// `/top` parameters.
#[derive(Debug, Deserialize)]
pub struct TopParams {
    n: Option<String>,
    /// Only this worker's partitions (what a worker asks the others).
    local: Option<String>,
}

/// `/top?n=20`: the global top n (1 to 1000), merged from every worker's
/// local list: `{n, words: [{word, count}], complete, missing_partitions,
/// workers}`.
pub async fn top(
    State(s): State<AppState>,
    params: Result<Params<TopParams>, QueryRejection>,
) -> Response {
    let params = match params {
        Ok(Params(p)) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("bad query: {e}")),
    };
    let n = match params.n.as_deref().map(str::parse::<usize>) {
        None => 20,
        Some(Ok(n)) if (1..=MAX_TOP).contains(&n) => n,
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("n must be a number from 1 to {MAX_TOP}"),
            )
        }
    };
    let local = match local_top(&s, n).await {
        Ok(t) => t,
        Err(r) => return r,
    };
    if params.local.is_some() {
        return Json(local).into_response();
    }
    Json(global_top(&s, n, local).await).into_response()
}

/// This worker's top n (nothing while it restores).
async fn local_top(s: &AppState, n: usize) -> Result<TopAnswer, Response> {
    let snap = s.shared.snapshot();
    if snap.restoring || !snap.ready {
        return Ok(TopAnswer {
            worker: snap.worker,
            ..TopAnswer::default()
        });
    }
    ask(s, |reply| Query::Top { n, reply }).await
}

/// Merges `local` with the other live workers' lists.
pub async fn global_top(s: &AppState, n: usize, local: TopAnswer) -> serde_json::Value {
    let others: Vec<Member> = s
        .members
        .fresh()
        .into_iter()
        .filter(|m| m.worker != s.members.me())
        .collect();
    let path = format!("/top?n={n}&local=1");
    let asked = futures::future::join_all(others.iter().map(|m| fetch(s, m, &path))).await;
    let mut lists = vec![local];
    let mut failed = Vec::new();
    for (m, r) in others.iter().zip(asked) {
        match r.map(|(st, _, body)| (st, serde_json::from_slice::<TopAnswer>(&body))) {
            Ok((StatusCode::OK, Ok(t))) => lists.push(t),
            _ => failed.push(m.worker.clone()),
        }
    }
    let mut covered = BTreeSet::new();
    let mut words: BTreeMap<String, i64> = BTreeMap::new();
    for l in &lists {
        // A partition two workers claim (mid-rebalance) counts once.
        if l.partitions.iter().any(|p| covered.contains(p)) {
            continue;
        }
        covered.extend(l.partitions.iter().copied());
        for (w, c) in &l.words {
            words.insert(w.clone(), *c);
        }
    }
    let mut words: Vec<(String, i64)> = words.into_iter().collect();
    words.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    words.truncate(n);
    let missing: Vec<i32> = (0..s.partitions).filter(|p| !covered.contains(p)).collect();
    serde_json::json!({
        "n": n,
        "words": words.iter().map(|(w, c)| serde_json::json!({"word": w, "count": c})).collect::<Vec<_>>(),
        "complete": missing.is_empty(),
        "missing_partitions": missing,
        "workers": lists.iter().map(|l| serde_json::json!({"worker": l.worker, "partitions": l.partitions})).collect::<Vec<_>>(),
        "unanswered": failed,
    })
}

/// The value of `name` in a raw query string, percent-decoded; an error
/// when it is not UTF-8 (axum's `Query` would replace bad bytes silently).
fn param(raw: Option<&str>, name: &str) -> Result<Option<String>, String> {
    let Some(raw) = raw else { return Ok(None) };
    for pair in raw.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k == name {
            let v = v.replace('+', " ");
            return percent_encoding::percent_decode_str(&v)
                .decode_utf8()
                .map(|v| Some(v.into_owned()))
                .map_err(|_| format!("{name} is not valid UTF-8"));
        }
    }
    Ok(None)
}

/// `/objects?key=…` (an object key of the bucket, or `s3://bucket/key`):
/// `{key, partition, state: done|pending, offset, worker, record}` from the
/// owner of its ledger partition; `record` is the object's latest ledger
/// record (`{"state": "counted", "words": …}`, `null` if none).
pub async fn object(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    RawQuery(raw): RawQuery,
) -> Response {
    let key = match param(raw.as_deref(), "key") {
        Ok(Some(k)) if !k.is_empty() => k,
        Ok(_) => return error(StatusCode::BAD_REQUEST, "missing ?key="),
        Err(e) => return error(StatusCode::BAD_REQUEST, &e),
    };
    let key = if key.starts_with("s3://") {
        key
    } else {
        crate::s3::url(&s.bucket, &key)
    };
    if key.len() > MAX_KEY_BYTES + s.bucket.len() + 6 {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("key longer than {MAX_KEY_BYTES} bytes"),
        );
    }
    let p = crate::kafka::partition_for(key.as_bytes(), s.ledger_partitions);
    let k = key.clone();
    let answer = local(&s, Of::Ledger, p, |reply| Query::Object {
        key: k,
        partition: p,
        reply,
    });
    match answer.await {
        Ok(Some(a)) => {
            let entry = ledger_record(&s, p, &a.key).await;
            let mut v = serde_json::to_value(a).unwrap_or_default();
            v["record"] = entry.unwrap_or_else(|e| serde_json::json!({ "error": e }));
            return Json(v).into_response();
        }
        Ok(None) => {}
        Err(r) => return r,
    }
    owner_or_503(&s, &headers, &uri, Of::Ledger, p).await
}

/// Longest read of a ledger partition for one object's record.
const LEDGER_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// The latest committed ledger record of `key` (partition `p`), read from
/// the topic off the loop: JSON, `null` when there is none. One read at a
/// time, at most [`LEDGER_READ_TIMEOUT`] (a whole partition is read: on a
/// very large ledger the answer says it gave up).
async fn ledger_record(s: &AppState, p: i32, key: &str) -> Result<serde_json::Value, String> {
    let _slot = tokio::time::timeout(LEDGER_READ_TIMEOUT, s.ledger_reads.acquire())
        .await
        .map_err(|_| "busy: another ledger read is under way".to_string())?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (kafka, topic, key) = (s.kafka.clone(), s.ledger_topic.clone(), key.to_string());
    let read = {
        let stop = stop.clone();
        tokio::task::spawn_blocking(move || {
            let mut last = serde_json::Value::Null;
            crate::worker::restore::read_to_end_until(&kafka, &topic, &[p], &stop, |_, k, v| {
                if k == key.as_bytes() {
                    last = v
                        .and_then(|v| serde_json::from_slice(v).ok())
                        .unwrap_or(serde_json::Value::Null);
                }
            })
            .map(|_| last)
            .map_err(|e| format!("{e:#}"))
        })
    };
    match tokio::time::timeout(LEDGER_READ_TIMEOUT, read).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Err(format!("ledger read failed: {e}")),
        Err(_) => {
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            Err(format!(
                "ledger partition {p} not read within {} s",
                LEDGER_READ_TIMEOUT.as_secs()
            ))
        }
    }
}

/// `/members`: the live workers as the members topic says.
pub async fn members(State(s): State<AppState>) -> Response {
    Json(s.members.fresh()).into_response()
}

#[cfg(test)]
mod tests {
    use super::param;

    #[test]
    fn query_parameters_are_decoded_strictly() {
        assert_eq!(
            param(Some("key=a%20b+c&x=1"), "key"),
            Ok(Some("a b c".into()))
        );
        assert_eq!(param(Some("x=1"), "key"), Ok(None));
        assert_eq!(param(None, "key"), Ok(None));
        assert_eq!(param(Some("key"), "key"), Ok(Some(String::new())));
        assert_eq!(
            param(Some("key=%C3%A9t%C3%A9"), "key"),
            Ok(Some("été".into()))
        );
        assert!(param(Some("key=%FF"), "key").is_err());
    }
}
