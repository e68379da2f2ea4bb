//! AWS MSK IAM authentication: OAUTHBEARER tokens that are a SigV4-presigned
//! `kafka-cluster:Connect` request, signed with the AWS credential chain
//! (environment, profile, web identity, ECS, EC2 instance role…).
//!
//! The signing itself is the `aws-msk-iam-sasl-signer` crate (it builds with
//! our aws-config 1.x): the token is the base64url (unpadded) of
//! `https://kafka.<region>.amazonaws.com/?Action=kafka-cluster%3AConnect&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=…&X-Amz-Date=…&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature=…&User-Agent=…`,
//! valid for 15 minutes.
//!
//! The AWS SDK is async, while librdkafka asks for a token from its own
//! threads (a consumer's `poll`, a producer's polling thread, see
//! [`crate::kafka`]). So one dedicated thread per process owns a
//! current-thread tokio runtime and does all the signing; a caller sends it a
//! request and waits (bounded) for the answer. No tokio worker thread of the
//! caller's runtime is ever blocked or re-entered, and the signer works the
//! same whether or not the caller is inside a runtime.

use crate::kafka::TokenSource;
use anyhow::{anyhow, Context as _, Result};
use aws_types::region::Region;
use aws_types::sdk_config::SharedCredentialsProvider;
use rdkafka::client::OAuthToken;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long a caller waits for the signer (credential chain included).
const SIGN_TIMEOUT: Duration = Duration::from_secs(30);
/// A cached token is handed out again while it has at least this much life
/// left (tokens live 15 minutes; librdkafka refreshes at 80% of the rest).
const REUSE_MIN_LIFE: Duration = Duration::from_secs(10 * 60);
/// The principal name librdkafka records with the token (client-side only:
/// MSK derives the principal from the signature).
const PRINCIPAL: &str = "wordstream";

/// Signs a token for `region` with `credentials` (async: the credential
/// provider may call IMDS, STS…). Returns the token and its expiry in
/// milliseconds since the Unix epoch.
pub async fn sign(region: &str, credentials: SharedCredentialsProvider) -> Result<(String, i64)> {
    aws_msk_iam_sasl_signer::generate_auth_token_from_credentials_provider(
        Region::new(region.to_string()),
        credentials,
    )
    .await
    .map_err(|e| anyhow!("cannot sign an MSK IAM token: {e}"))
}

/// The AWS region in MSK broker host names: `b-1.name.abc123.c2.kafka.us-east-1.amazonaws.com`
/// (provisioned) or `boot-abc.c1.kafka-serverless.eu-west-1.amazonaws.com` (serverless).
pub fn region_from_brokers(brokers: &str) -> Option<String> {
    brokers.split(',').find_map(|b| {
        let host = b.trim().rsplit_once(':').map_or(b.trim(), |(h, _)| h);
        let labels: Vec<&str> = host.split('.').collect();
        let i = labels
            .iter()
            .position(|l| *l == "kafka" || *l == "kafka-serverless")?;
        let region = labels.get(i + 1)?;
        let rest = &labels[i + 2..];
        let amazon = rest.first().is_some_and(|l| *l == "amazonaws");
        (amazon && !region.is_empty()).then(|| region.to_string())
    })
}

type Reply = mpsc::SyncSender<Result<(String, i64), String>>;

/// The process's MSK IAM signer: a dedicated thread with its own runtime.
pub struct Signer {
    requests: Mutex<mpsc::Sender<Reply>>,
    cached: Mutex<Option<(String, i64)>>,
}

impl Signer {
    /// Starts the signer thread. `region` is the region to sign for; `None`
    /// takes the AWS chain's (AWS_REGION, profile) when the first token is
    /// signed.
    pub fn start(region: Option<String>) -> Result<Signer> {
        Signer::start_with(region, None)
    }

    /// [`Signer::start`] with explicit credentials instead of the AWS chain's.
    pub fn start_with(
        region: Option<String>,
        credentials: Option<SharedCredentialsProvider>,
    ) -> Result<Signer> {
        let (tx, rx) = mpsc::channel::<Reply>();
        std::thread::Builder::new()
            .name("msk-iam-signer".into())
            .spawn(move || signer_thread(region, credentials, rx))
            .context("cannot start the MSK IAM signer thread")?;
        Ok(Signer {
            requests: Mutex::new(tx),
            cached: Mutex::new(None),
        })
    }

    /// A token (cached while it has [`REUSE_MIN_LIFE`] left), blocking the
    /// calling thread for at most [`SIGN_TIMEOUT`].
    pub fn token(&self) -> Result<(String, i64)> {
        let now_ms = now_ms();
        if let Some((t, exp)) = self
            .cached
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            if exp - now_ms >= REUSE_MIN_LIFE.as_millis() as i64 {
                return Ok((t, exp));
            }
        }
        let (reply_tx, reply_rx) = mpsc::sync_channel(1);
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(reply_tx)
            .map_err(|_| anyhow!("the MSK IAM signer thread is gone"))?;
        let (t, exp) = reply_rx
            .recv_timeout(SIGN_TIMEOUT)
            .map_err(|_| {
                anyhow!(
                    "no MSK IAM token within {} s (AWS credential chain not answering?)",
                    SIGN_TIMEOUT.as_secs()
                )
            })?
            .map_err(|e| anyhow!(e))?;
        *self.cached.lock().unwrap_or_else(|e| e.into_inner()) = Some((t.clone(), exp));
        Ok((t, exp))
    }
}

impl TokenSource for Signer {
    fn token(&self) -> Result<OAuthToken> {
        let (token, lifetime_ms) = Signer::token(self)?;
        Ok(OAuthToken {
            token,
            principal_name: PRINCIPAL.into(),
            lifetime_ms,
        })
    }
}

fn signer_thread(
    region: Option<String>,
    credentials: Option<SharedCredentialsProvider>,
    requests: mpsc::Receiver<Reply>,
) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            for reply in requests {
                let _ = reply.send(Err(format!("cannot start the MSK IAM signer runtime: {e}")));
            }
            return;
        }
    };
    // The AWS configuration is loaded once, on the first request.
    let mut chain: Option<(String, SharedCredentialsProvider)> = None;
    for reply in requests {
        let result = rt.block_on(async {
            if chain.is_none() {
                let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
                if let Some(r) = &region {
                    loader = loader.region(Region::new(r.clone()));
                }
                if let Some(c) = &credentials {
                    loader = loader.credentials_provider(c.clone());
                }
                let conf = loader.load().await;
                let region = conf.region().map(|r| r.to_string()).ok_or_else(|| {
                    "no AWS region for MSK IAM: use --msk-region (or AWS_REGION)".to_string()
                })?;
                let creds = conf.credentials_provider().ok_or_else(|| {
                    "no AWS credentials provider for MSK IAM (credential chain disabled?)"
                        .to_string()
                })?;
                chain = Some((region, creds));
            }
            let (region, creds) = chain.as_ref().expect("set above");
            sign(region, creds.clone())
                .await
                .map_err(|e| format!("{e:#}"))
        });
        let _ = reply.send(result);
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The process-wide signer for `region` (started on first use).
pub fn shared(region: Option<String>) -> Result<Arc<Signer>> {
    static SIGNER: OnceLock<Arc<Signer>> = OnceLock::new();
    if let Some(s) = SIGNER.get() {
        return Ok(Arc::clone(s));
    }
    let s = Arc::new(Signer::start(region)?);
    Ok(Arc::clone(SIGNER.get_or_init(|| s)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::Credentials;
    use base64::Engine;
    use std::collections::HashMap;

    const ACCESS_KEY: &str = "AKIDEXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    fn static_provider(session: Option<&str>) -> SharedCredentialsProvider {
        SharedCredentialsProvider::new(Credentials::new(
            ACCESS_KEY,
            SECRET,
            session.map(str::to_string),
            None,
            "static-test",
        ))
    }

    fn decode(token: &str) -> url::Url {
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "token is not unpadded base64url: {token}"
        );
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token)
            .expect("base64url");
        url::Url::parse(std::str::from_utf8(&raw).expect("utf-8")).expect("a URL")
    }

    #[tokio::test]
    async fn token_is_a_presigned_kafka_cluster_connect_url() {
        let before = now_ms();
        let (token, expiry_ms) = sign("eu-west-1", static_provider(None)).await.unwrap();
        let url = decode(&token);
        assert_eq!(url.scheme(), "https");
        assert_eq!(url.host_str(), Some("kafka.eu-west-1.amazonaws.com"));
        let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
        assert_eq!(q["Action"], "kafka-cluster:Connect");
        assert_eq!(q["X-Amz-Algorithm"], "AWS4-HMAC-SHA256");
        let cred: Vec<&str> = q["X-Amz-Credential"].split('/').collect();
        assert_eq!(cred.len(), 5, "{cred:?}");
        assert_eq!(cred[0], ACCESS_KEY);
        assert_eq!(cred[2], "eu-west-1");
        assert_eq!(cred[3], "kafka-cluster");
        assert_eq!(cred[4], "aws4_request");
        assert_eq!(q["X-Amz-Expires"], "900");
        assert_eq!(q["X-Amz-SignedHeaders"], "host");
        let sig = &q["X-Amz-Signature"];
        assert_eq!(sig.len(), 64, "hex SHA-256 HMAC");
        assert!(sig.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(q["User-Agent"].starts_with("aws-msk-iam-sasl-signer"));
        assert!(!q.contains_key("X-Amz-Security-Token"));
        // The date is the signing time; expiry = date + 15 min.
        let date = &q["X-Amz-Date"];
        assert_eq!(date.len(), 16, "{date}");
        assert_eq!(cred[1], &date[..8]);
        let life = expiry_ms - before;
        assert!(
            (890_000..=901_000).contains(&life),
            "expiry {life} ms after signing"
        );
        // The secret never appears in the token.
        let text = url.as_str();
        assert!(!text.contains(SECRET) && !token.contains(SECRET));
        assert!(!text.contains(&SECRET.replace('/', "%2F")));
    }

    #[tokio::test]
    async fn session_credentials_add_the_security_token() {
        let (token, _) = sign("us-east-1", static_provider(Some("SESSIONTOKEN123")))
            .await
            .unwrap();
        let url = decode(&token);
        let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
        assert_eq!(q["X-Amz-Security-Token"], "SESSIONTOKEN123");
        assert_eq!(url.host_str(), Some("kafka.us-east-1.amazonaws.com"));
    }

    #[test]
    fn signer_thread_works_from_inside_a_runtime_and_caches() {
        // A token request from inside a tokio worker neither panics nor
        // deadlocks: the work happens on the signer's own thread.
        let signer = Arc::new(
            Signer::start_with(Some("ap-south-1".into()), Some(static_provider(None))).unwrap(),
        );
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let s = Arc::clone(&signer);
        let (t1, e1) = rt
            .block_on(async move { tokio::spawn(async move { s.token() }).await.unwrap() })
            .unwrap();
        let url = decode(&t1);
        assert_eq!(url.host_str(), Some("kafka.ap-south-1.amazonaws.com"));
        assert!(e1 > now_ms() + 14 * 60 * 1000);
        // A second request within the reuse window is the cached token.
        let (t2, e2) = signer.token().unwrap();
        assert_eq!((t1, e1), (t2, e2));
        // As the rdkafka callback sees it.
        let tok = TokenSource::token(signer.as_ref()).unwrap();
        assert_eq!(tok.principal_name, PRINCIPAL);
        assert_eq!(tok.lifetime_ms, e2);
    }

    #[test]
    fn regions_from_msk_host_names() {
        assert_eq!(
            region_from_brokers("b-1.demo.abc123.c2.kafka.us-east-1.amazonaws.com:9098,b-2.demo.abc123.c2.kafka.us-east-1.amazonaws.com:9098")
                .as_deref(),
            Some("us-east-1")
        );
        assert_eq!(
            region_from_brokers("boot-abcd1234.c1.kafka-serverless.eu-west-1.amazonaws.com:9098")
                .as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(region_from_brokers("localhost:9092"), None);
        assert_eq!(region_from_brokers("kafka.example.com:9092"), None);
    }
}
