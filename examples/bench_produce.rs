//! Seeds a topic for `scripts/bench-consume`: N changelog records
//! (`--serde faust`: JSON word key, JSON count value), keyed over a
//! vocabulary of 50,000 words, partitioned with murmur2 as the worker does.
//!
//! `cargo run --release --example bench_produce -- BROKERS TOPIC N PARTITIONS`
//! creates TOPIC (compacted, like the changelog) if needed, then writes.

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use std::time::{Duration, Instant};
use wordstream::kafka::partition_for;
use wordstream::wire::Serde;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        eprintln!("usage: bench_produce BROKERS TOPIC N PARTITIONS");
        std::process::exit(2);
    }
    let (brokers, topic) = (&args[1], &args[2]);
    let n: u64 = args[3].parse().expect("N");
    let partitions: i32 = args[4].parse().expect("PARTITIONS");
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("admin client");
    let topic_spec = NewTopic::new(topic, partitions, TopicReplication::Fixed(-1))
        .set("cleanup.policy", "compact");
    let created = futures::executor::block_on(admin.create_topics(
        [&topic_spec],
        &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
    ))
    .expect("create_topics");
    for r in created {
        match r {
            Ok(_) | Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((t, e)) => panic!("creating {t}: {e}"),
        }
    }
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "20")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.messages", "1000000")
        .set("compression.type", "lz4")
        .create()
        .expect("producer");
    let serde = Serde::Faust;
    let start = Instant::now();
    for i in 0..n {
        let word = format!("word{}", i % 50_000);
        let key = serde.key(&word);
        let value = serde.value((i / 50_000 + 1) as i64);
        let p = partition_for(&key, partitions);
        let mut rec = BaseRecord::to(topic).key(&key).payload(&value).partition(p);
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((e, r)) => {
                    // queue full: let deliveries drain
                    if !matches!(
                        e.rdkafka_error_code(),
                        Some(rdkafka::types::RDKafkaErrorCode::QueueFull)
                    ) {
                        panic!("produce: {e}");
                    }
                    producer.poll(Duration::from_millis(10));
                    rec = r;
                }
            }
        }
        if i % 10_000 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    producer.flush(Duration::from_secs(120)).expect("flush");
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "produced {n} records to {topic} ({partitions} partitions) in {secs:.2} s ({:.0} records/s)",
        n as f64 / secs
    );
}
