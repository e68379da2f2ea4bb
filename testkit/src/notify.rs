//! S3 event notifications, sent the way S3 sends them: the test plays the
//! notifier (AWS S3 → SQS, or an S3 server → Kafka), so it decides which
//! events arrive, twice, out of order or not at all.
//!
//! The SQS server is the stack's (ElasticMQ, `scripts/stack up`), at
//! `AWS_ENDPOINT_URL_SQS` (default `http://127.0.0.1:9324`); each test
//! creates queues of its own.

use crate::names::unique_name;
use crate::stack::{env_or, stack};
use aws_sdk_sqs::Client;
use rdkafka::producer::{FutureProducer, FutureRecord};
use std::time::Duration;

/// The stack's SQS endpoint.
pub fn sqs_endpoint() -> String {
    env_or("AWS_ENDPOINT_URL_SQS", "http://127.0.0.1:9324")
}

/// A client of the stack's SQS server (the stack's test credentials), kept
/// per thread (a notifier answers fast, as S3's does; a client's connections
/// belong to the runtime of the thread that made them, and each test has
/// its own runtime and threads).
pub fn sqs_client() -> Client {
    thread_local! {
        static CLIENT: std::cell::OnceCell<Client> = const { std::cell::OnceCell::new() };
    }
    CLIENT.with(|c| c.get_or_init(new_sqs_client).clone())
}

fn new_sqs_client() -> Client {
    let s = stack();
    let creds =
        aws_sdk_sqs::config::Credentials::new(&s.access_key, &s.secret_key, None, None, "testkit");
    let conf = aws_sdk_sqs::config::Builder::new()
        .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
        .region(aws_sdk_sqs::config::Region::new(s.region.clone()))
        .credentials_provider(creds)
        .endpoint_url(sqs_endpoint())
        .build();
    Client::from_conf(conf)
}

/// Creates a queue of a unique name starting with `prefix`; its URL.
/// Panics (naming the endpoint) when the SQS server does not answer.
pub async fn new_queue(prefix: &str) -> String {
    let name = unique_name(prefix);
    let out = sqs_client()
        .create_queue()
        .queue_name(&name)
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "creating SQS queue {name} at {}: {e:?} (run `scripts/stack up`)",
                sqs_endpoint()
            )
        });
    out.queue_url()
        .expect("CreateQueue answers a URL")
        .to_string()
}

/// Deletes a queue.
pub async fn delete_queue(url: &str) {
    sqs_client()
        .delete_queue()
        .queue_url(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("deleting SQS queue {url}: {e:?}"));
}

/// Messages in a queue, visible or not (ApproximateNumberOfMessages +
/// ApproximateNumberOfMessagesNotVisible).
pub async fn queue_depth(url: &str) -> u64 {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let out = sqs_client()
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .unwrap_or_else(|e| panic!("attributes of SQS queue {url}: {e:?}"));
    let attrs = out.attributes().cloned().unwrap_or_default();
    [
        A::ApproximateNumberOfMessages,
        A::ApproximateNumberOfMessagesNotVisible,
    ]
    .iter()
    .filter_map(|a| attrs.get(a)?.parse::<u64>().ok())
    .sum()
}

/// An object key URL-encoded as S3 events carry it (a form: `+` for a
/// space, `%XX` for other bytes than letters, digits and `-_.~/`).
pub fn encode_key(key: &str) -> String {
    let mut out = String::new();
    for b in key.bytes() {
        match b {
            b' ' => out.push('+'),
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// One S3 event notification message (AWS's structure, version 2.1) with
/// one record: `event` (`ObjectCreated:Put`, `ObjectRemoved:Delete`, …) of
/// `key` in `bucket`.
pub fn s3_event(event: &str, bucket: &str, key: &str, etag: &str, size: u64) -> String {
    serde_json::json!({"Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2026-11-30T00:00:00.000Z",
        "eventName": event,
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "wordstream-test",
            "bucket": {"name": bucket, "arn": format!("arn:aws:s3:::{bucket}")},
            "object": {
                "key": encode_key(key),
                "size": size,
                "eTag": etag.trim_matches('"'),
                "sequencer": "0055AED6DCD90281E5",
            },
        },
    }]})
    .to_string()
}

/// Where a test sends its notifications.
#[derive(Clone, Debug)]
pub enum Notifier {
    /// An SQS queue (its URL).
    Sqs(String),
    /// A Kafka topic.
    Kafka(String),
}

impl Notifier {
    /// A fresh queue of the stack's SQS server.
    pub async fn new_sqs(prefix: &str) -> Notifier {
        Notifier::Sqs(new_queue(prefix).await)
    }

    /// A fresh topic (`partitions` partitions).
    pub async fn new_kafka(prefix: &str, partitions: i32) -> Notifier {
        Notifier::Kafka(stack().new_topic(prefix, partitions, &[]).await)
    }

    /// The worker's `--events` value.
    pub fn flag(&self) -> String {
        match self {
            Notifier::Sqs(url) => format!("sqs:{url}"),
            Notifier::Kafka(topic) => format!("kafka:{topic}"),
        }
    }

    /// Sends message bodies, in this order.
    pub async fn send(&self, bodies: &[String]) {
        match self {
            Notifier::Sqs(url) => {
                let c = sqs_client();
                for b in bodies {
                    c.send_message()
                        .queue_url(url)
                        .message_body(b)
                        .send()
                        .await
                        .unwrap_or_else(|e| panic!("sending to SQS queue {url}: {e:?}"));
                }
            }
            Notifier::Kafka(topic) => {
                // one producer per process, as an S3 server keeps its own
                static PRODUCER: std::sync::OnceLock<FutureProducer> = std::sync::OnceLock::new();
                let p = PRODUCER.get_or_init(|| {
                    stack()
                        .producer_config()
                        .set("linger.ms", "0")
                        .create()
                        .expect("producer")
                });
                for b in bodies {
                    let r = FutureRecord::to(topic)
                        .key("wordstream")
                        .payload(b.as_str());
                    p.send(r, Duration::from_secs(30))
                        .await
                        .unwrap_or_else(|(e, _)| panic!("producing to {topic}: {e}"));
                }
            }
        }
    }

    /// `ObjectCreated:Put` of each (key, ETag, size) in `bucket`, one message each.
    pub async fn created(&self, bucket: &str, objects: &[(String, String, u64)]) {
        let bodies: Vec<String> = objects
            .iter()
            .map(|(k, e, s)| s3_event("ObjectCreated:Put", bucket, k, e, *s))
            .collect();
        self.send(&bodies).await;
    }

    /// `ObjectRemoved:Delete` of each key in `bucket`, one message each.
    pub async fn removed(&self, bucket: &str, keys: &[String]) {
        let bodies: Vec<String> = keys
            .iter()
            .map(|k| s3_event("ObjectRemoved:Delete", bucket, k, "", 0))
            .collect();
        self.send(&bodies).await;
    }

    /// Removes the queue or topic (a source going away mid-run).
    pub async fn remove(&self) {
        match self {
            Notifier::Sqs(url) => delete_queue(url).await,
            Notifier::Kafka(topic) => {
                use rdkafka::admin::AdminOptions;
                stack()
                    .admin()
                    .delete_topics(&[topic], &AdminOptions::new())
                    .await
                    .unwrap_or_else(|e| panic!("deleting topic {topic}: {e}"));
            }
        }
    }
}

/// (key, ETag, size) of each of `keys` in `bucket`, as S3 would notify
/// them (HeadObject).
pub async fn described(bucket: &str, keys: &[String]) -> Vec<(String, String, u64)> {
    let c = stack().s3_client();
    let mut out = Vec::with_capacity(keys.len());
    for k in keys {
        let h = c
            .head_object()
            .bucket(bucket)
            .key(k)
            .send()
            .await
            .unwrap_or_else(|e| panic!("HEAD s3://{bucket}/{k}: {e:?}"));
        out.push((
            k.clone(),
            h.e_tag().unwrap_or_default().to_string(),
            h.content_length().unwrap_or(0).max(0) as u64,
        ));
    }
    out
}
