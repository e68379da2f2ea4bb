//! The Kafka layer: one client-config builder for every subcommand (with its
//! security: TLS, SASL PLAIN/SCRAM, AWS MSK IAM), and, one concept a module:
//! - [`context`]: the client context every client uses ([`QuietContext`]);
//! - [`oauth`]: OAUTHBEARER tokens (MSK IAM) for every client;
//! - [`diagnosis`]: what librdkafka said about a failed connection, as one line;
//! - [`partitioner`]: the Java-compatible murmur2 partitioner;
//! - [`admin`]: metadata, partition counts, topic creation and checks.
//!
//! ## OAUTHBEARER (MSK IAM) and rdkafka
//!
//! librdkafka asks the application for a token with a refresh *event* on the
//! client's main queue; rdkafka turns it into a call of
//! `ClientContext::generate_oauth_token` on the thread that polls that
//! queue: a consumer's `poll`, a `ThreadedProducer`'s polling thread. That is
//! how tokens are refreshed before they expire (librdkafka asks at 80% of a
//! token's lifetime). Two gaps are closed in [`oauth`]:
//! - a client that asks the broker something before it is first polled
//!   (metadata, watermarks) would wait for a token forever, and rdkafka's
//!   `AdminClient` never delivers the event at all: [`prime`] sets the first
//!   token right after creating a client (the helpers here do it);
//! - the token source must not block a tokio worker: the MSK IAM signer runs
//!   on its own thread with its own runtime ([`crate::msk_iam`]), and the
//!   callers here are librdkafka/rdkafka threads or synchronous code.
//!
//! A context with more behaviour than [`QuietContext`] (e.g. the worker's,
//! with rebalance callbacks) delegates its `ClientContext` methods to
//! [`QuietContext`], so logs, diagnosis and tokens work the same everywhere.

pub mod admin;
pub mod context;
pub mod diagnosis;
pub mod oauth;
pub mod partitioner;

pub use admin::{
    admin_client, check_compacted, ensure_topics, metadata, partition_count,
    prepare_pipeline_topics, TopicSpec,
};
pub use context::{base_consumer, Context, QuietContext};
pub use diagnosis::{fatal_error, record_error, record_log, unreachable_error};
pub use oauth::{oauth_token, prime, set_token_source, TokenSource};
pub use partitioner::{murmur2, partition_for};

use crate::config::{KafkaArgs, KafkaAuth};
use rdkafka::config::ClientConfig;

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

/// Applies the `-X` properties of `args` to `c` again (they win over what
/// was set since), except `keep`: properties a caller must set itself
/// (the worker's exactly-once settings).
pub fn reapply_properties(c: &mut ClientConfig, args: &KafkaArgs, keep: &[&str]) {
    for (k, v) in &args.property {
        if !keep.contains(&k.as_str()) {
            c.set(k, v);
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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
