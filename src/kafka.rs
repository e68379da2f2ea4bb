//! The Kafka layer: one client-config builder for every subcommand (with its
//! security: TLS, SASL PLAIN/SCRAM, AWS MSK IAM), the client context every
//! client uses ([`QuietContext`], alias [`Context`]), the Java-compatible
//! partitioner, broker checks and topic creation.
//!
//! ## OAUTHBEARER (MSK IAM) and rdkafka
//!
//! librdkafka asks the application for a token with a refresh *event* on the
//! client's main queue; rdkafka turns it into a call of
//! [`ClientContext::generate_oauth_token`] on the thread that polls that
//! queue: a consumer's `poll`, a `ThreadedProducer`'s polling thread. That is
//! how tokens are refreshed before they expire (librdkafka asks at 80% of a
//! token's lifetime). Two gaps are closed here:
//! - a client that asks the broker something before it is first polled
//!   (metadata, watermarks) would wait for a token forever, and rdkafka's
//!   `AdminClient` never delivers the event at all: [`prime`] sets the first
//!   token right after creating a client (the helpers here do it);
//! - the token source must not block a tokio worker: the MSK IAM signer runs
//!   on its own thread with its own runtime ([`crate::msk_iam`]), and the
//!   callers here are librdkafka/rdkafka threads or synchronous code.
//!
//! Contexts other than [`QuietContext`] (e.g. one with rebalance callbacks)
//! get OAuth by setting `ENABLE_REFRESH_OAUTH_TOKEN = true` and returning
//! [`oauth_token`] from `generate_oauth_token`, and report errors through
//! [`record_error`] so failures read as one clear line.

use crate::config::{KafkaArgs, KafkaAuth};
use anyhow::{anyhow, bail, Context as _, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{Client, ClientContext, OAuthToken};
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::metadata::Metadata;
use rdkafka::producer::{DeliveryResult, ProducerContext};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// The base configuration of every client: brokers, security (protocol, CA,
/// SASL mechanism and credentials, MSK IAM), then `-X` properties (which may
/// override anything set here).
///
/// With `--kafka-auth msk-iam` it also installs the process's MSK IAM token
/// signer as the OAUTHBEARER [token source](set_token_source) (once).
pub fn client_config(args: &KafkaArgs) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &args.brokers);
    c.set("client.id", "wordstream");
    // librdkafka's log lines go to `tracing` at debug level (QuietContext);
    // info level, because that is where it says why a connection failed
    // (e.g. a plaintext client on a TLS listener).
    c.set("log_level", "6");
    let protocol = args.effective_protocol();
    c.set("security.protocol", protocol.as_str());
    if let Some(ca) = &args.ca_location {
        c.set("ssl.ca.location", ca.to_string_lossy());
    }
    if let Some(m) = args.effective_mechanism() {
        c.set("sasl.mechanism", m.as_str());
        if m.needs_password() {
            if let Some(u) = &args.sasl_username {
                c.set("sasl.username", u);
            }
            if let Some(p) = &args.sasl_password {
                c.set("sasl.password", p.expose());
            }
        }
    }
    if args.kafka_auth == Some(KafkaAuth::MskIam) {
        install_msk_iam(args);
    }
    for (k, v) in &args.property {
        c.set(k, v);
    }
    c
}

fn install_msk_iam(args: &KafkaArgs) {
    let region = args
        .msk_region
        .clone()
        .or_else(|| crate::msk_iam::region_from_brokers(&args.brokers));
    match crate::msk_iam::shared(region) {
        Ok(signer) => set_token_source(signer),
        // No source: the token callback reports why (cannot start a thread).
        Err(e) => tracing::error!("{e:#}"),
    }
}

// ------------------------------------------------------------- OAUTHBEARER

/// Where OAUTHBEARER tokens come from: the MSK IAM signer, or a test's.
pub trait TokenSource: Send + Sync {
    /// A fresh (or still long-lived) token.
    fn token(&self) -> Result<OAuthToken>;
}

static TOKEN_SOURCE: RwLock<Option<Arc<dyn TokenSource>>> = RwLock::new(None);

/// Installs the process's OAUTHBEARER token source (replacing any).
pub fn set_token_source(source: Arc<dyn TokenSource>) {
    *TOKEN_SOURCE.write().unwrap_or_else(|e| e.into_inner()) = Some(source);
}

fn token_source() -> Option<Arc<dyn TokenSource>> {
    TOKEN_SOURCE
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
}

/// A token from the installed source: what every context's
/// `generate_oauth_token` returns. Runs on librdkafka/rdkafka threads.
pub fn oauth_token(
    _oauthbearer_config: Option<&str>,
) -> Result<OAuthToken, Box<dyn std::error::Error>> {
    let Some(source) = token_source() else {
        return Err("no OAUTHBEARER token source: use --kafka-auth msk-iam \
                    (or -X sasl.oauthbearer.method=oidc)"
            .into());
    };
    match source.token() {
        Ok(t) => {
            tracing::debug!(
                "OAUTHBEARER token set, expires in {} s",
                (t.lifetime_ms - now_ms()) / 1000
            );
            Ok(t)
        }
        Err(e) => {
            record(Diagnosis::Token(format!("{e:#}")));
            Err(format!("{e:#}").into())
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Sets the first OAUTHBEARER token of a new client at once, when a token
/// source is installed and the client uses OAUTHBEARER (otherwise a no-op).
/// Later tokens come through the context's refresh callback.
///
/// Blocks the calling thread while the token is signed (normally
/// microseconds; the first one resolves AWS credentials): call it from
/// synchronous code or `spawn_blocking`, not on a tokio worker.
pub fn prime<C: ClientContext>(client: &Client<C>) {
    use rdkafka::bindings as rd;
    use std::ffi::CString;
    let Some(source) = token_source() else { return };
    let token = match source.token() {
        Ok(t) => t,
        Err(e) => {
            record(Diagnosis::Token(format!("{e:#}")));
            tracing::debug!("OAUTHBEARER token: {e:#}");
            return;
        }
    };
    let (Ok(value), Ok(principal)) = (
        CString::new(token.token),
        CString::new(token.principal_name),
    ) else {
        return;
    };
    let mut err = [0 as std::ffi::c_char; 512];
    // SAFETY: the client pointer is valid for the client's lifetime; the
    // strings outlive the call (librdkafka copies them); no extensions.
    let code = unsafe {
        rd::rd_kafka_oauthbearer_set_token(
            client.native_ptr(),
            value.as_ptr(),
            token.lifetime_ms,
            principal.as_ptr(),
            std::ptr::null_mut(),
            0,
            err.as_mut_ptr(),
            err.len(),
        )
    };
    if code != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
        && code != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR__STATE
    {
        // SAFETY: librdkafka NUL-terminates the error buffer.
        let msg = unsafe { std::ffi::CStr::from_ptr(err.as_ptr()) }.to_string_lossy();
        tracing::debug!("setting the OAUTHBEARER token: {msg}");
    }
}

// ------------------------------------------------------------- diagnosis

/// What went wrong talking to the brokers, as far as librdkafka said (kept
/// process-wide: one CLI run talks to one cluster). Error paths turn it into
/// one clear line instead of a bare timeout.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Diagnosis {
    /// SASL authentication failed: definitive, fail at once.
    Auth(String),
    /// TLS handshake failed (certificate, or TLS to a plaintext port).
    Tls(String),
    /// The broker dropped the connection during the first request:
    /// typically a plaintext client on a TLS or SASL listener.
    Handshake,
    /// No OAUTHBEARER token could be made.
    Token(String),
}

impl Diagnosis {
    fn fatal(&self) -> bool {
        matches!(
            self,
            Diagnosis::Auth(_) | Diagnosis::Tls(_) | Diagnosis::Token(_)
        )
    }

    fn rank(&self) -> u8 {
        match self {
            Diagnosis::Auth(_) => 4,
            Diagnosis::Token(_) => 3,
            Diagnosis::Tls(_) => 2,
            Diagnosis::Handshake => 1,
        }
    }
}

static DIAGNOSIS: Mutex<Option<Diagnosis>> = Mutex::new(None);

fn record(d: Diagnosis) {
    let mut cur = DIAGNOSIS.lock().unwrap_or_else(|e| e.into_inner());
    if cur.as_ref().is_none_or(|c| d.rank() >= c.rank()) {
        *cur = Some(d);
    }
}

fn diagnosis() -> Option<Diagnosis> {
    DIAGNOSIS.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// librdkafka's reason without the broker prefix and the timing suffix:
/// `sasl_ssl://127.0.0.1:9094/bootstrap: SASL authentication error: X (after 3ms in state AUTH_REQ)` -> `X`.
fn clean_reason(reason: &str) -> String {
    let mut r = reason.trim();
    // leading "[thrd:…]: " and "<proto>://host:port/id: " parts
    while let Some((head, rest)) = r.split_once(": ") {
        if head.starts_with("[thrd:") || head.contains("://") || head.ends_with("/bootstrap") {
            r = rest;
        } else {
            break;
        }
    }
    for prefix in ["SASL authentication error: ", "SSL handshake failed: "] {
        if let Some(rest) = r.strip_prefix(prefix) {
            r = rest;
        }
    }
    let r = match r.rfind(" (after ") {
        Some(i) if r.ends_with(')') => &r[..i],
        _ => r,
    };
    r.trim().trim_end_matches(':').to_string()
}

/// What a librdkafka error says about the connection, if anything.
fn classify(code: Option<RDKafkaErrorCode>, reason: &str) -> Option<Diagnosis> {
    if code == Some(RDKafkaErrorCode::Authentication)
        || reason.contains("SASL authentication error")
    {
        let r = clean_reason(reason);
        return Some(Diagnosis::Auth(if r.contains("invalid credentials") {
            "invalid credentials".into()
        } else {
            r
        }));
    }
    if code == Some(RDKafkaErrorCode::SSL)
        || reason.contains("SSL handshake failed")
        || reason.contains("SSL routines")
    {
        let r = if reason.contains("certificate verify failed") {
            "the broker's certificate is not signed by a trusted CA".to_string()
        } else if reason.contains("PLAINTEXT broker listener") {
            "the broker closed the TLS connection: a PLAINTEXT listener?".to_string()
        } else {
            clean_reason(reason)
        };
        return Some(Diagnosis::Tls(r));
    }
    if reason.contains("incorrect security.protocol configuration")
        || (reason.contains("in state APIVERSION_QUERY")
            && (reason.contains("Disconnected") || reason.contains("connection closed")))
    {
        return Some(Diagnosis::Handshake);
    }
    None
}

/// Records what an error event of librdkafka says about the connection
/// (authentication, TLS, protocol mismatch). Every context's `error`
/// should call it.
pub fn record_error(error: &KafkaError, reason: &str) {
    if let Some(d) = classify(error.rdkafka_error_code(), reason) {
        record(d);
    }
}

/// The same for a librdkafka log line (some failures are only logged).
/// Every context's `log` should call it.
pub fn record_log(level: RDKafkaLogLevel, log_message: &str) {
    if (level as i32) <= (RDKafkaLogLevel::Info as i32) {
        if let Some(d) = classify(None, log_message) {
            record(d);
        }
    }
}

/// The one-line error for a connection-level failure that is already
/// certain (authentication or TLS), if any: callers waiting for the brokers
/// stop at once.
pub fn fatal_error(args: &KafkaArgs) -> Option<anyhow::Error> {
    diagnosis()
        .filter(Diagnosis::fatal)
        .map(|d| explain(args, &d))
}

fn explain(args: &KafkaArgs, d: &Diagnosis) -> anyhow::Error {
    let b = &args.brokers;
    match d {
        Diagnosis::Auth(reason) => {
            let who = match (args.effective_mechanism(), &args.sasl_username) {
                (Some(m), Some(u)) if m.needs_password() => format!(" ({}, user '{u}')", m.as_str()),
                (Some(m), _) => format!(" ({})", m.as_str()),
                (None, _) => String::new(),
            };
            anyhow!("Kafka authentication failed at {b}{who}: {reason}")
        }
        Diagnosis::Tls(reason) => anyhow!(
            "TLS handshake with Kafka at {b} failed: {reason} (check --ca-location and --kafka-security-protocol)"
        ),
        Diagnosis::Handshake => anyhow!(
            "Kafka at {b} closed the connection during the handshake: a TLS or SASL listener? \
             (--kafka-security-protocol is {})",
            args.effective_protocol().as_str()
        ),
        Diagnosis::Token(reason) => anyhow!("no OAUTHBEARER token for Kafka at {b}: {reason}"),
    }
}

// ------------------------------------------------------------- context

/// Partition of `key` among `partitions`, as the Java client's default
/// partitioner, Faust and librdkafka's `murmur2_random` compute it.
pub fn partition_for(key: &[u8], partitions: i32) -> i32 {
    ((murmur2(key) & 0x7fff_ffff) as i32) % partitions
}

/// Kafka's murmur2 (seed 0x9747b28c), as in the Java client's `Utils.murmur2`.
pub fn murmur2(data: &[u8]) -> u32 {
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h: u32 = 0x9747_b28c ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

/// The client context of every client: hands librdkafka's own log lines and
/// error events to `tracing` at debug level instead of printing them
/// (librdkafka retries connection failures by itself, and the caller reports
/// what matters in one line, e.g. [`unreachable_error`] after a bounded
/// wait; `-l debug` shows them), records connection failures for that line
/// ([`record_error`]), and supplies OAUTHBEARER tokens ([`oauth_token`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct QuietContext;

/// The context type to use for clients (the same as [`QuietContext`]).
pub type Context = QuietContext;

impl ClientContext for QuietContext {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        record_log(level, log_message);
        tracing::debug!("librdkafka {level:?} {fac}: {log_message}");
    }

    fn error(&self, error: KafkaError, reason: &str) {
        record_error(&error, reason);
        tracing::debug!("librdkafka error: {error}: {reason}");
    }

    fn generate_oauth_token(
        &self,
        oauthbearer_config: Option<&str>,
    ) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        oauth_token(oauthbearer_config)
    }
}

impl ConsumerContext for QuietContext {}

impl ProducerContext for QuietContext {
    type DeliveryOpaque = ();

    fn delivery(&self, _: &DeliveryResult<'_>, _: Self::DeliveryOpaque) {}
}

/// A consumer (or metadata client) with [`QuietContext`], its first
/// OAUTHBEARER token set ([`prime`]).
pub fn base_consumer(config: &ClientConfig) -> Result<BaseConsumer<QuietContext>> {
    let c: BaseConsumer<QuietContext> = config
        .create_with_context(QuietContext)
        .context("cannot create Kafka client")?;
    prime(c.client());
    Ok(c)
}

/// An admin client with [`QuietContext`], its first OAUTHBEARER token set.
/// Async: creating it may sign a token, which happens off the tokio workers.
pub async fn admin_client(args: &KafkaArgs) -> Result<AdminClient<QuietContext>> {
    let config = client_config(args);
    tokio::task::spawn_blocking(move || {
        let a: AdminClient<QuietContext> = config
            .create_with_context(QuietContext)
            .context("cannot create Kafka admin client")?;
        prime(a.inner());
        Ok(a)
    })
    .await
    .context("cannot create Kafka admin client")?
}

/// Fetches cluster metadata (all topics, or one), waiting at most `timeout`
/// (less when authentication or TLS fails: that is certain at once).
/// Blocking: call from `spawn_blocking` in async code.
pub fn metadata(args: &KafkaArgs, topic: Option<&str>, timeout: Duration) -> Result<Metadata> {
    args.check_security()?;
    let consumer = base_consumer(&client_config(args))?;
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let slice = left.min(Duration::from_millis(400));
        match consumer.fetch_metadata(topic, slice) {
            Ok(md) => return Ok(md),
            Err(e) => {
                // serve the main queue a little: logs and error events say
                // why (and OAUTHBEARER token refreshes happen there)
                let left = deadline.saturating_duration_since(Instant::now());
                let _ = consumer.poll(left.min(Duration::from_millis(100)));
                if let Some(fatal) = fatal_error(args) {
                    return Err(fatal);
                }
                if Instant::now() >= deadline {
                    if diagnosis().is_none() && !args.effective_protocol().is_tls() {
                        if let Some(b) = silent_broker(&args.brokers) {
                            return Err(anyhow!(
                                "Kafka at {b} accepts connections but does not answer Kafka requests \
                                 without TLS: a TLS listener? (--kafka-security-protocol is {})",
                                args.effective_protocol().as_str()
                            ));
                        }
                    }
                    return Err(unreachable_error(args, timeout, e));
                }
            }
        }
    }
}

/// The first of `brokers` that accepts a TCP connection but does not answer
/// a plaintext ApiVersions request within a second: a TLS listener does
/// that (it reads the request as the start of a long TLS record and waits).
fn silent_broker(brokers: &str) -> Option<String> {
    use std::io::{Read, Write};
    use std::net::{TcpStream, ToSocketAddrs};
    const CLIENT: &[u8] = b"wordstream-probe";
    let mut req = Vec::new();
    let size = (2 + 2 + 4 + 2 + CLIENT.len()) as u32;
    req.extend_from_slice(&size.to_be_bytes());
    req.extend_from_slice(&18i16.to_be_bytes()); // ApiVersions
    req.extend_from_slice(&0i16.to_be_bytes()); // v0
    req.extend_from_slice(&1i32.to_be_bytes()); // correlation id
    req.extend_from_slice(&(CLIENT.len() as i16).to_be_bytes());
    req.extend_from_slice(CLIENT);
    for b in brokers.split(',').map(str::trim).filter(|b| !b.is_empty()) {
        let Some(addr) = b.to_socket_addrs().ok().and_then(|mut a| a.next()) else {
            continue;
        };
        let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
            continue;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        if s.write_all(&req).is_err() {
            continue;
        }
        let mut head = [0u8; 8];
        match s.read_exact(&mut head) {
            Ok(()) if head[4..8] == 1i32.to_be_bytes() => continue, // answers plaintext
            _ => return Some(b.to_string()),
        }
    }
    None
}

/// The one-line error for brokers that did not answer in time (or the
/// reason they did not, when librdkafka told: authentication, TLS, a
/// plaintext client on a secure listener).
pub fn unreachable_error(
    args: &KafkaArgs,
    timeout: Duration,
    e: impl std::fmt::Display,
) -> anyhow::Error {
    if let Some(d) = diagnosis() {
        return explain(args, &d);
    }
    anyhow!(
        "cannot reach Kafka broker(s) at {} within {} s: {e}",
        args.brokers,
        timeout.as_secs()
    )
}

/// Partition count of `topic`, or `None` when it does not exist.
pub fn partition_count(args: &KafkaArgs, topic: &str) -> Result<Option<i32>> {
    let timeout = Duration::from_secs(args.connect_timeout);
    let md = metadata(args, Some(topic), timeout)?;
    let Some(t) = md.topics().iter().find(|t| t.name() == topic) else {
        return Ok(None);
    };
    match t.error() {
        None if !t.partitions().is_empty() => Ok(Some(t.partitions().len() as i32)),
        None => Ok(None),
        Some(e) if RDKafkaErrorCode::from(e) == RDKafkaErrorCode::UnknownTopicOrPartition => {
            Ok(None)
        }
        Some(e) => bail!(
            "cannot describe topic {topic}: {:?}",
            RDKafkaErrorCode::from(e)
        ),
    }
}

/// A topic to create if it is missing.
#[derive(Clone, Debug)]
pub struct TopicSpec {
    /// Its name.
    pub name: String,
    /// Partitions.
    pub partitions: i32,
    /// Replication factor.
    pub replication: i32,
    /// Topic configs, e.g. `cleanup.policy=compact`.
    pub config: Vec<(&'static str, String)>,
}

/// Creates the topics that do not exist yet (an existing one is kept as is).
pub async fn ensure_topics(args: &KafkaArgs, specs: &[TopicSpec]) -> Result<()> {
    let admin = admin_client(args).await?;
    let new: Vec<NewTopic> = specs
        .iter()
        .map(|s| {
            let mut t = NewTopic::new(
                &s.name,
                s.partitions,
                TopicReplication::Fixed(s.replication),
            );
            for (k, v) in &s.config {
                t = t.set(k, v);
            }
            t
        })
        .collect();
    let opts =
        AdminOptions::new().operation_timeout(Some(Duration::from_secs(args.connect_timeout)));
    let results = admin
        .create_topics(&new, &opts)
        .await
        .map_err(|e| unreachable_error(args, Duration::from_secs(args.connect_timeout), e))?;
    for r in results {
        match r {
            Ok(_) => {}
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => bail!("cannot create topic {name}: {code}"),
        }
    }
    Ok(())
}

/// Fails unless `topic` is compacted (an existing changelog must be).
pub async fn check_compacted(args: &KafkaArgs, topic: &str) -> Result<()> {
    use rdkafka::admin::ResourceSpecifier;
    let admin = admin_client(args).await?;
    let timeout = Duration::from_secs(args.connect_timeout);
    let opts = AdminOptions::new().request_timeout(Some(timeout));
    let results = admin
        .describe_configs(&[ResourceSpecifier::Topic(topic)], &opts)
        .await
        .map_err(|e| unreachable_error(args, timeout, e))?;
    for r in results {
        let resource = r.map_err(|e| anyhow!("cannot describe topic {topic}: {e}"))?;
        let policy = resource
            .get("cleanup.policy")
            .and_then(|e| e.value.clone())
            .unwrap_or_default();
        if !policy.split(',').any(|p| p.trim() == "compact") {
            bail!(
                "topic {topic} exists with cleanup.policy={policy}; a changelog must be compacted"
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_java() {
        // Vectors from Kafka's UtilsTest.
        let cases: [(&str, i32); 6] = [
            ("21", -973932308),
            ("foobar", -790332482),
            ("a-little-bit-long-string", -985981536),
            ("a-little-bit-longer-string", -1486304829),
            (
                "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58897971,
            ),
            ("abc", 479470107),
        ];
        for (s, want) in cases {
            assert_eq!(murmur2(s.as_bytes()) as i32, want, "{s}");
        }
    }
}

#[cfg(test)]
mod security_tests {
    use super::*;

    #[test]
    fn librdkafka_reasons_are_classified_and_cleaned() {
        let auth = "sasl_ssl://127.0.0.1:9094/bootstrap: SASL authentication error: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512 (after 302ms in state AUTH_REQ)";
        assert_eq!(
            classify(Some(RDKafkaErrorCode::Authentication), auth),
            Some(Diagnosis::Auth("invalid credentials".into()))
        );
        let tls = "[thrd:sasl_ssl://127.0.0.1:9094/bootstrap]: sasl_ssl://127.0.0.1:9094/bootstrap: SSL handshake failed: error:0A000086:SSL routines::certificate verify failed: broker certificate could not be verified (after 7ms in state SSL_HANDSHAKE)";
        assert_eq!(
            classify(None, tls),
            Some(Diagnosis::Tls(
                "the broker's certificate is not signed by a trusted CA".into()
            ))
        );
        assert_eq!(
            clean_reason("[thrd:ssl://h:1/bootstrap]: ssl://h:1/bootstrap: SSL handshake failed: something odd (after 1ms in state SSL_HANDSHAKE)"),
            "something odd"
        );
        assert_eq!(
            classify(None, "127.0.0.1:9094/bootstrap: Disconnected: connection closed by peer: receive 0 after POLLIN (after 0ms in state APIVERSION_QUERY)"),
            Some(Diagnosis::Handshake)
        );
        assert_eq!(
            classify(None, "Disconnected (after 600000ms in state UP)"),
            None
        );
    }

    #[test]
    fn security_settings_reach_the_client_config() {
        let mut a = KafkaArgs::new("b:9094");
        a.sasl_mechanism = Some(crate::config::SaslMechanism::ScramSha512);
        a.sasl_username = Some("u".into());
        a.sasl_password = Some(crate::config::Secret::new("pw-not-shown"));
        a.ca_location = Some("/tmp/ca.pem".into());
        let c = client_config(&a);
        assert_eq!(c.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(c.get("sasl.mechanism"), Some("SCRAM-SHA-512"));
        assert_eq!(c.get("sasl.username"), Some("u"));
        assert_eq!(c.get("sasl.password"), Some("pw-not-shown"));
        assert_eq!(c.get("ssl.ca.location"), Some("/tmp/ca.pem"));
        // Neither the args' nor the config's Debug shows the password.
        assert!(!format!("{a:?}").contains("pw-not-shown"));
        assert!(!format!("{c:?}").contains("pw-not-shown"));
        // -X wins.
        a.property
            .push(("security.protocol".into(), "SASL_PLAINTEXT".into()));
        assert_eq!(
            client_config(&a).get("security.protocol"),
            Some("SASL_PLAINTEXT")
        );
        // Plain defaults stay plain.
        let p = client_config(&KafkaArgs::new("localhost:9092"));
        assert_eq!(p.get("security.protocol"), Some("PLAINTEXT"));
        assert_eq!(p.get("sasl.mechanism"), None);
    }

    #[test]
    fn msk_iam_means_sasl_ssl_oauthbearer() {
        let mut a = KafkaArgs::new("b-1.x.y.c2.kafka.eu-west-1.amazonaws.com:9098");
        a.kafka_auth = Some(crate::config::KafkaAuth::MskIam);
        assert!(a.check_security().is_ok());
        let c = client_config(&a);
        assert_eq!(c.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(c.get("sasl.mechanism"), Some("OAUTHBEARER"));
        a.security_protocol = Some(crate::config::SecurityProtocol::Plaintext);
        assert_eq!(
            a.check_security().unwrap_err().to_string(),
            "--kafka-auth msk-iam needs --kafka-security-protocol SASL_SSL, not PLAINTEXT"
        );
    }
}
