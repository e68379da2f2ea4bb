//! OAUTHBEARER tokens for every Kafka client (AWS MSK IAM, or a test's token
//! source): the process-wide [`TokenSource`], the token every context hands
//! to librdkafka ([`oauth_token`]), and the first token set right after a
//! client is created ([`prime`]). See the module docs of [`crate::kafka`].

use super::diagnosis::{record, Diagnosis};
use anyhow::Result;
use rdkafka::client::{Client, ClientContext, OAuthToken};
use std::sync::{Arc, RwLock};

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
