//! The worker's web server (`--web-port`, 6066 by default, on
//! `--web-bind`, 127.0.0.1 by default; `--no-web` turns it off), after
//! Faust's: Prometheus metrics, health and readiness, table queries that
//! any worker answers, and a live dashboard.
//!
//! Routes: `/metrics`, `/health`, `/ready`, `/table/word_counts/{word}`,
//! `/top?n=20`, `/objects?key=…`, `/` (dashboard) and `/api/dashboard`
//! (its data), `/members` (the group as the members topic says).
//!
//! It runs on the worker's tokio runtime (axum on hyper), never in the
//! loop: it reads the loop's [`view::Snapshot`] and asks the loop questions
//! through a bounded channel ([`view`]). Slow or many clients cannot hold
//! the worker: each connection must send its headers within
//! [`HEADER_TIMEOUT`], at most [`MAX_CONNECTIONS`] are open, at most
//! [`MAX_IN_FLIGHT`] requests run at once (more get 503 at once), and a
//! request that takes longer than [`REQUEST_TIMEOUT`] gets 408.

pub mod dashboard;
pub mod members;
pub mod metrics;
pub mod query;
pub mod view;

use crate::config::{KafkaArgs, Topics};
use crate::events::Event;
use crate::wire::Serde;
use anyhow::{Context, Result};
use axum::error_handling::HandleErrorLayer;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use hyper_util::rt::{TokioIo, TokioTimer};
use members::Registry;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tower::{BoxError, ServiceBuilder};
use view::{Served, Shared};

/// A client must send a request's headers within this time.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest time a request may take (forwarding included).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests served at once; more are refused with 503.
pub const MAX_IN_FLIGHT: usize = 32;
/// Open connections; more are closed at once.
pub const MAX_CONNECTIONS: usize = 256;
/// Longest life of one connection (keep-alive included).
const CONNECTION_LIFETIME: Duration = Duration::from_secs(300);
/// Longest request head (request line and headers).
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Where and whether to serve.
#[derive(Clone, Debug)]
pub struct WebSettings {
    pub bind: IpAddr,
    /// 0: any free port.
    pub port: u16,
    /// The base URL other workers use to reach this one (default: from
    /// the bind address and port, or the host name when bound to all
    /// interfaces).
    pub advertise: Option<String>,
}

/// What the routes share.
#[derive(Clone)]
pub struct AppState {
    pub shared: Arc<Shared>,
    pub members: Arc<members::Members>,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    pub client: query::Client,
    pub serde: Serde,
    pub partitions: i32,
    pub ledger_partitions: i32,
    pub bucket: String,
    pub history: Arc<dashboard::History>,
    /// For reading an object's ledger record (`/objects`).
    pub kafka: Arc<KafkaArgs>,
    pub ledger_topic: String,
    /// One ledger read at a time.
    pub ledger_reads: Arc<tokio::sync::Semaphore>,
}

/// The running server, as the worker's loop holds it.
pub struct Web {
    /// The loop's side of the view.
    pub served: Served,
    registry: Registry,
    pub addr: SocketAddr,
}

impl Web {
    /// Stops announcing this worker (a tombstone in the members topic).
    pub fn stop(&mut self) {
        self.registry.stop();
    }
}

/// What the worker knows that the server needs.
pub struct Pipeline<'a> {
    pub kafka: &'a KafkaArgs,
    pub topics: &'a Topics,
    pub worker_id: &'a str,
    pub serde: Serde,
    pub partitions: i32,
    pub ledger_partitions: i32,
    pub replication: i32,
    pub bucket: &'a str,
    /// The members topic's creation, started early
    /// ([`members::create_topic`]).
    pub members_topic: tokio::task::JoinHandle<Result<()>>,
}

/// Binds the port, installs the metrics recorder, starts the members
/// thread and serves on `rt`. Announces `web_listening`.
pub fn start(settings: &WebSettings, p: Pipeline<'_>, rt: &tokio::runtime::Runtime) -> Result<Web> {
    let handle = metrics::install()?;
    let addr = SocketAddr::new(settings.bind, settings.port);
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(addr))
        .with_context(|| format!("cannot listen on {addr} (--web-bind, --web-port)"))?;
    let addr = listener
        .local_addr()
        .context("cannot read the web server's address")?;
    let url = settings.advertise.clone().unwrap_or_else(|| {
        if addr.ip().is_unspecified() {
            let host = gethostname::gethostname();
            format!("http://{}:{}", host.to_string_lossy(), addr.port())
        } else {
            format!("http://{addr}")
        }
    });
    let (shared, served) = view::new(p.worker_id);
    let registry = members::start(
        members::Config {
            kafka: p.kafka.clone(),
            topics: p.topics.clone(),
            replication: p.replication,
            url: url.clone(),
        },
        Arc::clone(&shared),
        p.members_topic,
        rt,
    )?;
    let history = Arc::new(dashboard::History::default());
    let state = AppState {
        shared,
        members: Arc::clone(&registry.members),
        metrics: handle,
        client: query::client(),
        serde: p.serde,
        partitions: p.partitions,
        ledger_partitions: p.ledger_partitions,
        bucket: p.bucket.to_string(),
        history: Arc::clone(&history),
        kafka: Arc::new(p.kafka.clone()),
        ledger_topic: p.topics.ledger.clone(),
        ledger_reads: Arc::new(tokio::sync::Semaphore::new(1)),
    };
    rt.spawn(dashboard::sample(history, Arc::clone(&registry.members)));
    rt.spawn(serve(listener, router(state)));
    Event::WebListening {
        addr: addr.to_string(),
        url,
    }
    .emit();
    Ok(Web {
        served,
        registry,
        addr,
    })
}

/// The routes and their limits.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(dashboard::page))
        .route("/api/dashboard", get(dashboard::data))
        .route("/metrics", get(metrics_text))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/members", get(query::members))
        .route("/table/word_counts/{word}", get(query::word))
        .route("/table/word_counts/{word}/", get(query::word))
        .route("/top", get(query::top))
        .route("/objects", get(query::object))
        .fallback(not_found)
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(overloaded))
                .load_shed()
                .concurrency_limit(MAX_IN_FLIGHT)
                .timeout(REQUEST_TIMEOUT),
        )
        .with_state(state)
}

/// Accepts connections until the runtime ends.
async fn serve(listener: tokio::net::TcpListener, router: Router) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!("web: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            continue; // too many connections: this one is closed
        };
        let router = router.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                tower::ServiceExt::oneshot(router.clone(), req)
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(MAX_HEAD_BYTES);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_LIFETIME, conn).await;
            drop(slot);
        });
    }
}

async fn overloaded(e: BoxError) -> Response {
    if e.is::<tower::timeout::error::Elapsed>() {
        error(StatusCode::REQUEST_TIMEOUT, "request timed out")
    } else {
        let mut r = error(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded: too many requests",
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        r
    }
}

/// A JSON error: `{"error": what}` with `status`.
pub fn error(status: StatusCode, what: &str) -> Response {
    (status, Json(serde_json::json!({ "error": what }))).into_response()
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "no such route")
}

async fn metrics_text(axum::extract::State(s): axum::extract::State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.render(),
    )
        .into_response()
}

async fn health(axum::extract::State(s): axum::extract::State<AppState>) -> Response {
    Json(serde_json::json!({ "status": "ok", "worker": s.shared.snapshot().worker }))
        .into_response()
}

async fn ready(axum::extract::State(s): axum::extract::State<AppState>) -> Response {
    let snap = s.shared.snapshot();
    let body = serde_json::json!({
        "ready": snap.ready,
        "restoring": snap.restoring,
        "worker": snap.worker,
        "repartition": snap.repartition,
        "ledger": snap.ledger,
    });
    if snap.ready {
        Json(body).into_response()
    } else {
        let mut r = (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
        r.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("2"));
        r
    }
}
