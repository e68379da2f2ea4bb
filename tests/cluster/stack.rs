//! Broker-failure check of the 3-node stack: acks=all produce goes on with
//! one of three brokers down (it stops and starts broker 2 itself).

use std::collections::BTreeSet;
use std::time::Duration;

use rdkafka::producer::{FutureProducer, FutureRecord};
use testkit::stack::BrokerDown;

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
    let s = crate::cluster().await;
    let topic = s.new_topic("cluster-acks", 3, &[]).await;
    for (_, _, replicas) in s.layout(&topic).expect("the topic's layout") {
        assert_eq!(replicas, 3, "default replication factor 3 on the cluster");
    }

    let producer: FutureProducer = s
        .producer_config()
        .set("message.timeout.ms", "60000")
        .create()
        .unwrap();
    let mut want = produce(&producer, &topic, "before", 300).await;

    let mut down = BrokerDown::stop(2);
    // min.insync.replicas=2 of 3: acks=all still succeeds with one broker down
    want.extend(produce(&producer, &topic, "during", 300).await);
    down.start(); // waits until ready

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
