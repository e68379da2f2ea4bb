use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::BaseProducer;
use std::time::{Duration, Instant};
fn main() {
    for i in 0..4 {
        let t = Instant::now();
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", "127.0.0.1:9092")
            .create()
            .unwrap();
        let a = t.elapsed();
        let _ = c.fetch_metadata(Some("__transaction_state"), Duration::from_secs(5));
        let b = t.elapsed();
        drop(c);
        println!("consumer {i}: new {a:?} md {b:?} dropped {:?}", t.elapsed());
    }
    for i in 0..3 {
        let t = Instant::now();
        let p: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", "127.0.0.1:9092")
            .set("transactional.id", format!("x{i}"))
            .set("transaction.timeout.ms", "10000")
            .set("linger.ms", "5")
            .set("queue.buffering.max.messages", "1000000")
            .set("log_level", "6")
            .set("client.id", "wordstream")
            .set("security.protocol", "plaintext")
            .create()
            .unwrap();
        let a = t.elapsed();
        drop(p);
        println!("producer {i}: new {a:?} dropped {:?}", t.elapsed());
    }
}
