//! Broker-failure check of the 3-node stack. Ignored by default: it needs the
//! 3-node mode and stops/starts broker 2 itself. Run:
//!   scripts/stack down && scripts/stack up --brokers 3 && eval "$(scripts/stack env)"
//!   cargo test --test stack_cluster -- --ignored

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};

use common::{stack, unique_name};

fn stack_cmd(args: &[&str]) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/stack");
    let status = Command::new("bash")
        .arg(&script)
        .args(args)
        .status()
        .unwrap_or_else(|e| panic!("running {} {args:?}: {e}", script.display()));
    assert!(status.success(), "scripts/stack {args:?} failed: {status}");
}

/// Starts broker 2 again even if the test panics half-way.
struct RestartBroker2;
impl Drop for RestartBroker2 {
    fn drop(&mut self) {
        stack_cmd(&["start-broker", "2"]);
    }
}

async fn produce(p: &FutureProducer, topic: &str, prefix: &str, n: usize) -> BTreeSet<String> {
    let sends = (0..n).map(|i| {
        let key = format!("{prefix}-{i:04}");
        async move {
            p.send(
                FutureRecord::to(topic).key(&key).payload("v"),
                Duration::from_secs(30),
            )
            .await
            .unwrap_or_else(|(e, _)| panic!("acks=all produce of {key}: {e}"));
            key
        }
    });
    futures::future::join_all(sends).await.into_iter().collect()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs `scripts/stack up --brokers 3`; stops and restarts broker 2"]
async fn acks_all_produce_survives_one_broker_down() {
    let s = stack();
    assert_eq!(
        s.brokers.split(',').count(),
        3,
        "needs the 3-node stack: scripts/stack up --brokers 3 && eval \"$(scripts/stack env)\""
    );
    let topic = unique_name("cluster-acks");
    s.create_topic(&topic, 3, &[]).await;
    let md_client: BaseConsumer = s.kafka_config().create().unwrap();
    let md = md_client
        .fetch_metadata(Some(&topic), Duration::from_secs(10))
        .unwrap();
    for p in md.topics()[0].partitions() {
        assert_eq!(
            p.replicas().len(),
            3,
            "default replication factor 3 on the cluster"
        );
    }

    let producer: FutureProducer = s
        .producer_config()
        .set("message.timeout.ms", "60000")
        .create()
        .unwrap();
    let mut want = produce(&producer, &topic, "before", 300).await;

    stack_cmd(&["stop-broker", "2"]);
    let restart = RestartBroker2;
    // min.insync.replicas=2 of 3: acks=all still succeeds with one broker down
    want.extend(produce(&producer, &topic, "during", 300).await);
    drop(restart); // start-broker 2, waits until ready

    want.extend(produce(&producer, &topic, "after", 300).await);

    let got: Vec<String> = s
        .read_to_end(&topic, "read_committed")
        .await
        .iter()
        .map(|r| r.key_str().to_string())
        .collect();
    assert_eq!(got.len(), want.len(), "idempotent producer: no duplicates");
    assert_eq!(got.into_iter().collect::<BTreeSet<_>>(), want);
}
