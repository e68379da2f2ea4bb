//! Shared harness for end-to-end tests against the real local stack
//! (`scripts/stack up`: Kafka on 127.0.0.1:9092, versitygw S3 on 127.0.0.1:9000).
//!
//! Use from a test binary with `mod common;` and then `common::stack()`.
//! Every e2e test needs the stack: `stack()` panics (never skips) when it is
//! not reachable. Settings come from the environment that
//! `eval "$(scripts/stack env)"` sets, defaulting to the stack's fixed values.
//!
//! Each test binary uses a subset of these helpers, hence `allow(dead_code)`.
#![allow(dead_code)]

use std::future::Future;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::Consumer;
use rdkafka::ClientConfig;

/// Where the local stack is, as the tests see it.
#[derive(Clone, Debug)]
pub struct Stack {
    /// Comma-separated `host:port` list (`KAFKA_BROKERS`).
    pub brokers: String,
    /// S3 endpoint URL (`AWS_ENDPOINT_URL`), e.g. `http://127.0.0.1:9000`.
    pub s3_endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
    /// The bucket `scripts/stack up` creates (`S3_BUCKET`).
    pub bucket: String,
}

fn env_or(key: &str, default: &str) -> String {
    match std::env::var(key) {
        Ok(v) if !v.trim().is_empty() => v.trim().to_string(),
        _ => default.to_string(),
    }
}

fn answers(hostport: &str) -> bool {
    let addrs: Vec<SocketAddr> = match hostport.to_socket_addrs() {
        Ok(a) => a.collect(),
        Err(_) => return false,
    };
    addrs
        .iter()
        .any(|a| TcpStream::connect_timeout(a, Duration::from_secs(2)).is_ok())
}

/// `http://host:port/path` -> `host:port` (port 80/443 by scheme if absent).
fn endpoint_hostport(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("http", url));
    let authority = rest.split('/').next().unwrap_or(rest);
    if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        authority.to_string()
    } else if scheme == "https" {
        format!("{authority}:443")
    } else {
        format!("{authority}:80")
    }
}

/// The local stack, checked once per test binary: panics with
/// "local stack not reachable at …: run `scripts/stack up`" if no listed
/// Kafka broker or the S3 endpoint answers on TCP.
pub fn stack() -> &'static Stack {
    static STACK: OnceLock<Stack> = OnceLock::new();
    STACK.get_or_init(|| {
        let s = Stack {
            brokers: env_or("KAFKA_BROKERS", "127.0.0.1:9092"),
            s3_endpoint: env_or("AWS_ENDPOINT_URL", "http://127.0.0.1:9000"),
            access_key: env_or("AWS_ACCESS_KEY_ID", "wordstream"),
            secret_key: env_or("AWS_SECRET_ACCESS_KEY", "wordstream-secret"),
            region: env_or("AWS_REGION", "us-east-1"),
            bucket: env_or("S3_BUCKET", "wordstream"),
        };
        if !s.brokers.split(',').map(str::trim).any(answers) {
            panic!(
                "local stack not reachable at {} (Kafka, KAFKA_BROKERS): run `scripts/stack up` \
                 (then `eval \"$(scripts/stack env)\"`)",
                s.brokers
            );
        }
        let hp = endpoint_hostport(&s.s3_endpoint);
        if !answers(&hp) {
            panic!(
                "local stack not reachable at {} (S3, AWS_ENDPOINT_URL): run `scripts/stack up` \
                 (then `eval \"$(scripts/stack env)\"`)",
                s.s3_endpoint
            );
        }
        s
    })
}

/// A name unique across tests, processes and runs: `prefix-<pid>-<n>-<time>`,
/// lowercase `[a-z0-9-]`, at most 63 chars: valid as a Kafka topic, a
/// consumer group, a transactional id and an S3 bucket name.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock before 1970")
        .as_nanos();
    let mut p: String = prefix
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .collect();
    p = p.trim_matches('-').to_string();
    if p.is_empty() {
        p = "t".to_string();
    }
    let suffix = format!(
        "-{}-{}-{}",
        std::process::id(),
        n,
        base36(nanos % 36u128.pow(8))
    );
    p.truncate(63 - suffix.len());
    let p = p.trim_end_matches('-');
    format!("{p}{suffix}")
}

fn base36(mut v: u128) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(v % 36) as usize]);
        v /= 36;
        if v == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap()
}

/// Polls `f` (every 50 ms, backing off to 500 ms) until it returns true;
/// panics with "timed out after … waiting for {what}" once `deadline` passed.
pub async fn wait_for<F, Fut>(deadline: Duration, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    let mut pause = Duration::from_millis(50);
    loop {
        if f().await {
            return;
        }
        if start.elapsed() >= deadline {
            panic!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

impl Stack {
    /// Base rdkafka config: `bootstrap.servers` only; add client settings on top.
    pub fn kafka_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers);
        c
    }

    /// A producer config with acks=all and idempotence (safe defaults for tests).
    pub fn producer_config(&self) -> ClientConfig {
        let mut c = self.kafka_config();
        c.set("acks", "all")
            .set("enable.idempotence", "true")
            .set("message.timeout.ms", "30000");
        c
    }

    /// A consumer config reading from the start, no auto commit, unique group.
    pub fn consumer_config(&self) -> ClientConfig {
        let mut c = self.kafka_config();
        c.set("group.id", unique_name("group"))
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false");
        c
    }

    pub fn admin(&self) -> AdminClient<DefaultClientContext> {
        self.kafka_config()
            .create()
            .expect("creating the Kafka admin client")
    }

    /// Creates a topic (the broker's default replication factor: 1 on the
    /// single node, 3 on the 3-node cluster) and waits until its partition
    /// leaders are known. Auto-creation is off on the stack.
    pub async fn create_topic(&self, name: &str, partitions: i32, config: &[(&str, &str)]) {
        let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(-1));
        for (k, v) in config {
            topic = topic.set(k, v);
        }
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        let res = self
            .admin()
            .create_topics([&topic], &opts)
            .await
            .unwrap_or_else(|e| panic!("create_topics({name}): {e}"));
        for r in res {
            if let Err((t, code)) = r {
                panic!("creating topic {t}: {code:?}");
            }
        }
        let consumer: rdkafka::consumer::BaseConsumer =
            self.kafka_config().create().expect("metadata client");
        let name_owned = name.to_string();
        wait_for(
            Duration::from_secs(30),
            &format!("leaders of topic {name}"),
            || {
                let ok = consumer
                    .fetch_metadata(Some(&name_owned), Duration::from_secs(5))
                    .ok()
                    .and_then(|md| {
                        md.topics().first().map(|t| {
                            t.error().is_none()
                                && t.partitions().len() == partitions as usize
                                && t.partitions().iter().all(|p| p.leader() >= 0)
                        })
                    })
                    .unwrap_or(false);
                async move { ok }
            },
        )
        .await;
    }

    /// An S3 client for the local endpoint: static credentials, path-style
    /// addressing (`http://host:port/bucket/key`), no retries hidden beyond the default.
    pub fn s3_client(&self) -> aws_sdk_s3::Client {
        let conf = aws_sdk_s3::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(&self.s3_endpoint)
            .region(Region::new(self.region.clone()))
            .credentials_provider(Credentials::new(
                &self.access_key,
                &self.secret_key,
                None,
                None,
                "wordstream-local-stack",
            ))
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    /// Creates a bucket (fails the test if it exists already: use `unique_name`).
    pub async fn create_bucket(&self, name: &str) {
        self.s3_client()
            .create_bucket()
            .bucket(name)
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "create_bucket({name}): {}",
                    aws_sdk_s3::error::DisplayErrorContext(e)
                )
            });
    }
}

/// One record read back by [`Stack::read_to_end`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
}

impl Record {
    /// Key as UTF-8 (panics if absent or not UTF-8).
    pub fn key_str(&self) -> &str {
        std::str::from_utf8(self.key.as_deref().expect("record has no key"))
            .expect("key is not UTF-8")
    }
    /// Value as UTF-8 (panics if absent or not UTF-8).
    pub fn value_str(&self) -> &str {
        std::str::from_utf8(self.value.as_deref().expect("record has no value"))
            .expect("value is not UTF-8")
    }
}

impl Stack {
    /// Reads every partition of `topic` from the beginning to its current end
    /// (`isolation`: "read_committed" stops at the last stable offset, and
    /// skips aborted records) and returns the records in partition, offset
    /// order. Panics if the end is not reached within 60 s.
    pub async fn read_to_end(&self, topic: &str, isolation: &str) -> Vec<Record> {
        use rdkafka::consumer::StreamConsumer;
        use rdkafka::error::KafkaError;
        use rdkafka::message::Message;
        use rdkafka::{Offset, TopicPartitionList};

        let consumer: StreamConsumer = self
            .consumer_config()
            .set("isolation.level", isolation)
            .set("enable.partition.eof", "true")
            .create()
            .expect("creating a consumer");
        // Retried: a broker restarted by a fault test may still be coming back.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let md = loop {
            match consumer.fetch_metadata(Some(topic), Duration::from_secs(10)) {
                Ok(md) => break md,
                Err(e) if std::time::Instant::now() < deadline => {
                    eprintln!("metadata of {topic}: {e}; retrying");
                    std::thread::sleep(Duration::from_secs(1));
                }
                Err(e) => panic!("metadata of {topic}: {e}"),
            }
        };
        let partitions: Vec<i32> = md.topics()[0].partitions().iter().map(|p| p.id()).collect();
        assert!(
            !partitions.is_empty(),
            "topic {topic} has no partitions (does it exist?)"
        );
        let mut tpl = TopicPartitionList::new();
        for p in &partitions {
            tpl.add_partition_offset(topic, *p, Offset::Beginning)
                .unwrap();
        }
        consumer.assign(&tpl).expect("assign");
        let mut at_end = std::collections::BTreeSet::new();
        let mut out = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while at_end.len() < partitions.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, consumer.recv()).await {
                Err(_) => panic!(
                    "reading {topic} ({isolation}): partitions {at_end:?} of {partitions:?} at their end after 60 s; \
                     read {} records",
                    out.len()
                ),
                Ok(Err(KafkaError::PartitionEOF(p))) => {
                    at_end.insert(p);
                }
                Ok(Err(e)) => panic!("reading {topic}: {e}"),
                Ok(Ok(m)) => out.push(Record {
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key().map(<[u8]>::to_vec),
                    value: m.payload().map(<[u8]>::to_vec),
                }),
            }
        }
        out.sort_by_key(|r| (r.partition, r.offset));
        out
    }
}

/// `common::create_bucket(name)`: same as `stack().create_bucket(name)`.
pub async fn create_bucket(name: &str) {
    stack().create_bucket(name).await
}

/// Deterministic pseudo-random bytes (xorshift64*), for payloads to compare.
pub fn test_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}
