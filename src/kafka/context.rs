//! The client context every Kafka client uses ([`QuietContext`]): quiet
//! logs, connection diagnosis and OAUTHBEARER tokens. A context with more
//! behaviour delegates its `ClientContext` methods here.

use super::diagnosis::{record_error, record_log};
use super::oauth::{oauth_token, prime};
use anyhow::{Context as _, Result};
use rdkafka::client::{ClientContext, OAuthToken};
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::Consumer;
use rdkafka::consumer::{BaseConsumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::producer::{DeliveryResult, ProducerContext};

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

    fn delivery(&self, result: &DeliveryResult<'_>, _: Self::DeliveryOpaque) {
        // A failed delivery fails the transaction's commit (or the send's
        // caller), which reports it.
        if let Err((e, _)) = result {
            tracing::debug!("delivery failed: {e}");
        }
    }
}

/// Implements `ClientContext` for a context of more behaviour by
/// delegating to [`QuietContext`] (quiet logs, diagnosis, OAUTHBEARER).
macro_rules! quiet_client_context {
    ($t:ty) => {
        impl rdkafka::client::ClientContext for $t {
            const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

            fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, msg: &str) {
                rdkafka::client::ClientContext::log(&$crate::kafka::QuietContext, level, fac, msg)
            }

            fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
                rdkafka::client::ClientContext::error(&$crate::kafka::QuietContext, error, reason)
            }

            fn generate_oauth_token(
                &self,
                config: Option<&str>,
            ) -> std::result::Result<rdkafka::client::OAuthToken, Box<dyn std::error::Error>> {
                rdkafka::client::ClientContext::generate_oauth_token(
                    &$crate::kafka::QuietContext,
                    config,
                )
            }
        }
    };
}
pub(crate) use quiet_client_context;

/// A consumer (or metadata client) with [`QuietContext`], its first
/// OAUTHBEARER token set ([`prime`]).
pub fn base_consumer(config: &ClientConfig) -> Result<BaseConsumer<QuietContext>> {
    let c: BaseConsumer<QuietContext> = config
        .create_with_context(QuietContext)
        .context("cannot create Kafka client")?;
    prime(c.client());
    Ok(c)
}
