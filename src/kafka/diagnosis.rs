//! Diagnosis of failed connections: what librdkafka said (in error events
//! and log lines) about authentication, TLS or a protocol mismatch, kept
//! process-wide so that an error path can say it in one clear line instead
//! of a bare timeout ([`unreachable_error`], [`fatal_error`]).

use crate::config::KafkaArgs;
use anyhow::anyhow;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use std::sync::Mutex;
use std::time::Duration;

/// What went wrong talking to the brokers, as far as librdkafka said (kept
/// process-wide: one CLI run talks to one cluster). Error paths turn it into
/// one clear line instead of a bare timeout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Diagnosis {
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

pub(super) fn record(d: Diagnosis) {
    let mut cur = DIAGNOSIS.lock().unwrap_or_else(|e| e.into_inner());
    if cur.as_ref().is_none_or(|c| d.rank() >= c.rank()) {
        *cur = Some(d);
    }
}

pub(super) fn diagnosis() -> Option<Diagnosis> {
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

/// The first of `brokers` that accepts a TCP connection but does not answer
/// a plaintext ApiVersions request within a second: a TLS listener does
/// that (it reads the request as the start of a long TLS record and waits).
pub(super) fn silent_broker(brokers: &str) -> Option<String> {
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

#[cfg(test)]
mod tests {
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
}
