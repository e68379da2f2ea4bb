//! Topic administration and metadata: fetch metadata with a bounded wait and
//! a clear error, partition counts, creating missing topics, checking that a
//! topic is compacted, waiting until new partitions have leaders.

use super::client_config;
use super::context::{base_consumer, QuietContext};
use super::diagnosis::{diagnosis, fatal_error, silent_broker, unreachable_error};
use super::oauth::prime;
use crate::config::{KafkaArgs, Topics};
use anyhow::{anyhow, bail, Context as _, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::metadata::Metadata;
use std::time::{Duration, Instant};

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
    metadata_from(&consumer, args, topic, timeout)
}

/// [`metadata`] through a client the caller keeps (for repeated queries).
fn metadata_from(
    consumer: &BaseConsumer<QuietContext>,
    args: &KafkaArgs,
    topic: Option<&str>,
    timeout: Duration,
) -> Result<Metadata> {
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

/// Partition count of `topic`, or `None` when it does not exist.
pub fn partition_count(args: &KafkaArgs, topic: &str) -> Result<Option<i32>> {
    args.check_security()?;
    let consumer = base_consumer(&client_config(args))?;
    partition_count_from(&consumer, args, topic)
}

/// [`partition_count`] through a client the caller keeps.
fn partition_count_from(
    consumer: &BaseConsumer<QuietContext>,
    args: &KafkaArgs,
    topic: &str,
) -> Result<Option<i32>> {
    let timeout = Duration::from_secs(args.connect_timeout);
    let md = metadata_from(consumer, args, Some(topic), timeout)?;
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
///
/// A topic another worker has just created can be described by a broker
/// that has not applied its configs yet (no `cleanup.policy` at all): that
/// is asked again for a few seconds before it counts as not compacted.
pub async fn check_compacted(args: &KafkaArgs, topic: &str) -> Result<()> {
    let admin = admin_client(args).await?;
    let mut policy = String::new();
    for attempt in 0..20 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        policy = cleanup_policy(&admin, args, topic).await?;
        if !policy.is_empty() {
            break;
        }
    }
    if !policy.split(',').any(|p| p.trim() == "compact") {
        bail!("topic {topic} exists with cleanup.policy={policy}; a changelog must be compacted");
    }
    Ok(())
}

/// The `cleanup.policy` of `topic` as a broker describes it ("" when it
/// says none).
async fn cleanup_policy(
    admin: &AdminClient<QuietContext>,
    args: &KafkaArgs,
    topic: &str,
) -> Result<String> {
    use rdkafka::admin::ResourceSpecifier;
    let timeout = Duration::from_secs(args.connect_timeout);
    let opts = AdminOptions::new().request_timeout(Some(timeout));
    let results = admin
        .describe_configs(&[ResourceSpecifier::Topic(topic)], &opts)
        .await
        .map_err(|e| unreachable_error(args, timeout, e))?;
    let mut policy = String::new();
    for r in results {
        let resource = r.map_err(|e| anyhow!("cannot describe topic {topic}: {e}"))?;
        policy = resource
            .get("cleanup.policy")
            .and_then(|e| e.value.clone())
            .unwrap_or_default();
    }
    Ok(policy)
}

/// The pipeline's topics (changelog, ledger, repartition, and with
/// `contributions` the contributions topic): checks existing ones and
/// creates missing ones, then waits until every partition has a leader.
/// Returns the partition counts of the changelog (= repartition) and of the
/// ledger.
pub fn prepare_pipeline_topics(
    k: &KafkaArgs,
    topics: &Topics,
    partitions: i32,
    replication: i32,
    contributions: bool,
    rt: &tokio::runtime::Runtime,
) -> Result<(i32, i32)> {
    // one client for every metadata query (each new one costs a connection)
    k.check_security()?;
    let consumer = base_consumer(&client_config(k))?;
    let changelog = partition_count_from(&consumer, k, &topics.changelog)?;
    let repart = partition_count_from(&consumer, k, &topics.repartition)?;
    let ledger = partition_count_from(&consumer, k, &topics.ledger)?;
    let contrib = match contributions {
        true => partition_count_from(&consumer, k, &topics.contributions)?,
        false => None,
    };
    let n = changelog.or(repart).unwrap_or(partitions);
    let ledger_n = ledger.unwrap_or(n);
    if let Some(c) = contrib {
        contributions_match(topics, c, ledger_n)?;
    }
    if let Some(r) = repart {
        if r != n {
            bail!(
                "topic {} has {r} partitions but {} has {n}: they must match (delete the repartition topic to recreate it)",
                topics.repartition,
                topics.changelog
            );
        }
    }
    // the existing topics' configs, asked at once
    rt.block_on(async {
        let purged = async {
            if repart.is_some() {
                keep_until_purged(k, &topics.repartition).await;
            }
        };
        let (c, l, (), o) = tokio::join!(
            compacted_if(k, changelog, &topics.changelog),
            compacted_if(k, ledger, &topics.ledger),
            purged,
            compacted_if(k, contrib, &topics.contributions)
        );
        c.and(l.map_err(|e| anyhow!("{e:#} (the ledger keeps one record per object)")))
            .and(o)
    })?;
    let compact = || vec![("cleanup.policy", "compact".to_string())];
    let mut specs = vec![
        TopicSpec {
            name: topics.changelog.clone(),
            partitions: n,
            replication,
            config: compact(),
        },
        TopicSpec {
            name: topics.ledger.clone(),
            partitions: ledger_n,
            replication,
            config: compact(),
        },
        TopicSpec {
            name: topics.repartition.clone(),
            partitions: n,
            replication,
            // Kept until purged by the worker (see crate::worker::purge).
            config: vec![
                ("cleanup.policy", "delete".to_string()),
                ("retention.ms", "-1".to_string()),
            ],
        },
    ];
    let mut counts = vec![changelog, ledger, repart];
    if contributions {
        specs.push(contributions_spec(topics, ledger_n, replication));
        counts.push(contrib);
    }
    // the topics this worker creates (or another one does at the same time)
    let missing: Vec<TopicSpec> = counts
        .iter()
        .zip(specs)
        .filter(|(count, _)| count.is_none())
        .map(|(_, spec)| spec)
        .collect();
    if !missing.is_empty() {
        rt.block_on(ensure_topics(k, &missing))?;
        wait_for_leaders(&consumer, k, &missing)?;
    }
    Ok((n, ledger_n))
}

/// Checks that `topic` is compacted if it exists (`count` is its partition
/// count, `None` when it does not).
async fn compacted_if(k: &KafkaArgs, count: Option<i32>, topic: &str) -> Result<()> {
    match count {
        Some(_) => check_compacted(k, topic).await,
        None => Ok(()),
    }
}

/// The contributions topic: compacted, `ledger_partitions` partitions (an
/// object's contribution goes with its ledger partition).
fn contributions_spec(topics: &Topics, ledger_partitions: i32, replication: i32) -> TopicSpec {
    TopicSpec {
        name: topics.contributions.clone(),
        partitions: ledger_partitions,
        replication,
        config: vec![("cleanup.policy", "compact".to_string())],
    }
}

/// An existing contributions topic of `n` partitions must have as many as
/// the ledger.
fn contributions_match(topics: &Topics, n: i32, ledger_partitions: i32) -> Result<()> {
    if n != ledger_partitions {
        bail!(
            "topic {} has {n} partitions but {} has {ledger_partitions}: they must match (delete the contributions topic only together with the ledger)",
            topics.contributions,
            topics.ledger
        );
    }
    Ok(())
}

/// Creates the contributions topic (compacted, `ledger_partitions`
/// partitions: an object's contribution goes with its ledger partition) if
/// it is missing; an existing one must have that many partitions.
pub fn prepare_contributions_topic(
    k: &KafkaArgs,
    topics: &Topics,
    ledger_partitions: i32,
    replication: i32,
    rt: &tokio::runtime::Runtime,
) -> Result<()> {
    let name = &topics.contributions;
    let spec = contributions_spec(topics, ledger_partitions, replication);
    k.check_security()?;
    let consumer = base_consumer(&client_config(k))?;
    match partition_count_from(&consumer, k, name)? {
        Some(n) => {
            contributions_match(topics, n, ledger_partitions)?;
            rt.block_on(check_compacted(k, name))
        }
        None => {
            rt.block_on(ensure_topics(k, std::slice::from_ref(&spec)))?;
            wait_for_leaders(&consumer, k, &[spec])
        }
    }
}

/// How many partitions of `spec`'s topic have no leader in `md` (all of
/// them while the topic does not show, or shows no partitions yet).
fn leaderless(md: &Metadata, spec: &TopicSpec) -> usize {
    let all = spec.partitions.max(1) as usize;
    match md
        .topics()
        .iter()
        .find(|t| t.name() == spec.name && t.error().is_none())
    {
        Some(t) if !t.partitions().is_empty() => t
            .partitions()
            .iter()
            .filter(|p| p.leader() < 0 || p.error().is_some())
            .count(),
        _ => all,
    }
}

/// The least time new partitions may take to get leaders before a worker
/// gives up: a controller busy creating many partitions takes seconds, which
/// is no reason to stop (`--connect-timeout` when that is longer).
const LEADER_WAIT: Duration = Duration::from_secs(60);

/// Waits until every partition of the topics has a leader (new topics take
/// a moment), at most [`LEADER_WAIT`] or the connect timeout; says so once
/// when that takes longer than a few seconds.
fn wait_for_leaders(
    consumer: &BaseConsumer<QuietContext>,
    k: &KafkaArgs,
    specs: &[TopicSpec],
) -> Result<()> {
    let limit = Duration::from_secs(k.connect_timeout).max(LEADER_WAIT);
    let started = Instant::now();
    // a test's broker that is slow to elect leaders
    let fake_until = started + crate::failpoint::lasting("topics.leaderless");
    let mut warned = false;
    for spec in specs {
        loop {
            let left = limit.saturating_sub(started.elapsed());
            let request =
                Duration::from_secs(k.connect_timeout).min(left.max(Duration::from_secs(1)));
            let md = metadata_from(consumer, k, Some(&spec.name), request)?;
            let leaderless = if Instant::now() < fake_until {
                spec.partitions.max(1) as usize
            } else {
                leaderless(&md, spec)
            };
            if leaderless == 0 {
                break;
            }
            if started.elapsed() > limit {
                bail!(
                    "topic {} has {leaderless} partitions without a leader after {} s",
                    spec.name,
                    limit.as_secs()
                );
            }
            if !warned && started.elapsed() > Duration::from_secs(5) {
                warned = true;
                tracing::warn!(
                    "topic {}: {leaderless} partitions have no leader yet; waiting up to {} s",
                    spec.name,
                    limit.as_secs()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Ok(())
}

/// Makes an existing repartition topic keep its records until they are
/// purged (`retention.ms=-1`; topics made by older versions expired them
/// after 7 days, which could lose deltas of a group down that long). A
/// failure (e.g. no AlterConfigs permission) is a warning.
async fn keep_until_purged(args: &KafkaArgs, topic: &str) {
    use rdkafka::admin::{AlterConfig, ResourceSpecifier};
    let timeout = Duration::from_secs(args.connect_timeout);
    let opts = AdminOptions::new().request_timeout(Some(timeout));
    let result = async {
        let admin = admin_client(args).await?;
        let described = admin
            .describe_configs(&[ResourceSpecifier::Topic(topic)], &opts)
            .await?;
        let retention = described
            .into_iter()
            .flatten()
            .find_map(|r| r.get("retention.ms").and_then(|e| e.value.clone()));
        if retention.as_deref() == Some("-1") {
            return Ok(());
        }
        let change = AlterConfig::new(ResourceSpecifier::Topic(topic))
            .set("cleanup.policy", "delete")
            .set("retention.ms", "-1");
        for r in admin.alter_configs(&[change], &opts).await? {
            r.map_err(|(_, code)| anyhow!("{code}"))?;
        }
        tracing::info!("{topic}: retention.ms set to -1 (the worker purges what it consumed)");
        anyhow::Ok(())
    };
    if let Err(e) = result.await {
        tracing::warn!(
            "cannot set retention.ms=-1 on {topic}: {e:#}; its deltas expire by its own retention"
        );
    }
}
