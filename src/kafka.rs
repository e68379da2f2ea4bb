//! The Kafka layer: one client-config builder for every subcommand, the
//! Java-compatible partitioner, broker checks and topic creation.

use crate::config::KafkaArgs;
use anyhow::{anyhow, bail, Context, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::metadata::Metadata;
use std::time::Duration;

/// The base configuration of every client: brokers, then `-X` properties
/// (which may override anything set here).
pub fn client_config(args: &KafkaArgs) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &args.brokers);
    c.set("client.id", "wordstream");
    c.set("log_level", "3"); // librdkafka's own chatter only from errors up
    for (k, v) in &args.property {
        c.set(k, v);
    }
    c
}

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

/// A client context that hands librdkafka's own log lines and error events
/// to `tracing` at debug level instead of printing them: librdkafka retries
/// connection failures by itself, and the caller reports what matters in
/// one line (e.g. [`unreachable_error`] after a bounded wait). `-l debug`
/// shows them.
#[derive(Clone, Copy, Debug, Default)]
pub struct QuietContext;

impl ClientContext for QuietContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        tracing::debug!("librdkafka {level:?} {fac}: {log_message}");
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!("librdkafka error: {error}: {reason}");
    }
}

impl ConsumerContext for QuietContext {}

/// Fetches cluster metadata (all topics, or one), waiting at most `timeout`.
/// Blocking: call from `spawn_blocking` in async code.
pub fn metadata(args: &KafkaArgs, topic: Option<&str>, timeout: Duration) -> Result<Metadata> {
    let consumer: BaseConsumer<QuietContext> = client_config(args)
        .create_with_context(QuietContext)
        .context("cannot create Kafka client")?;
    consumer
        .fetch_metadata(topic, timeout)
        .map_err(|e| unreachable_error(args, timeout, e))
}

/// The one-line error for brokers that did not answer in time.
pub fn unreachable_error(
    args: &KafkaArgs,
    timeout: Duration,
    e: impl std::fmt::Display,
) -> anyhow::Error {
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
    let admin: AdminClient<DefaultClientContext> = client_config(args)
        .create()
        .context("cannot create Kafka admin client")?;
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
    let admin: AdminClient<DefaultClientContext> = client_config(args)
        .create()
        .context("cannot create Kafka admin client")?;
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
