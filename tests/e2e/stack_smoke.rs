//! Smoke tests of the local stack itself (`scripts/stack up`), using rdkafka
//! and aws-sdk-s3 directly: if these fail, the e2e tests of wordstream can't
//! be trusted. (Multipart uploads are tested through `wordstream upload`, in
//! `upload`.)

use std::collections::BTreeSet;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use futures::StreamExt;
use rdkafka::admin::{AdminOptions, ResourceSpecifier};
use rdkafka::producer::{FutureProducer, FutureRecord};

use testkit::corpus::test_bytes;
use testkit::kafka::T;
use testkit::names::unique_name;
use testkit::stack::{shared, stack};

/// (key, value) pairs of a topic, read to its end.
async fn read_all(topic: &str, isolation: &str) -> Vec<(String, String)> {
    stack()
        .read_to_end(topic, isolation)
        .await
        .iter()
        .map(|r| (r.key_str().to_string(), r.value_str().to_string()))
        .collect()
}

fn kv(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn kafka_produce_then_consume_exact_records() {
    let s = shared().await;
    let topic = s.new_topic("smoke-plain", 1, &[]).await;

    let producer: FutureProducer = s.producer_config().create().expect("producer");
    let sent = kv(&[
        ("alpha", "1"),
        ("beta", "2"),
        ("gamma", "3"),
        ("alpha", "4"),
    ]);
    let mut offsets = Vec::new();
    for (k, v) in &sent {
        let d = producer
            .send(FutureRecord::to(&topic).key(k).payload(v), T)
            .await
            .unwrap_or_else(|(e, _)| panic!("produce {k}={v}: {e}"));
        assert_eq!(d.partition, 0);
        offsets.push(d.offset);
    }
    assert_eq!(
        offsets,
        vec![0, 1, 2, 3],
        "offsets of a fresh single-partition topic"
    );

    assert_eq!(read_all(&topic, "read_uncommitted").await, sent);
}

#[tokio::test(flavor = "multi_thread")]
async fn kafka_transactions_committed_seen_aborted_not() {
    let s = shared().await;
    let topic = s.new_topic("smoke-txn", 1, &[]).await;

    let txn = |recs: &[(&str, &str)], commit: bool| {
        let recs = recs
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), Some(v.as_bytes().to_vec()), None))
            .collect();
        (recs, commit)
    };
    s.produce_transactions(
        &topic,
        None,
        &[
            txn(&[("a", "committed-1"), ("b", "committed-2")], true),
            txn(&[("c", "aborted-1"), ("d", "aborted-2")], false),
            txn(&[("e", "committed-3")], true),
        ],
    )
    .await;
    assert!(
        s.stable(&topic),
        "the markers of the last transaction are written when produce_transactions returns"
    );

    let committed = read_all(&topic, "read_committed").await;
    assert_eq!(
        committed,
        kv(&[
            ("a", "committed-1"),
            ("b", "committed-2"),
            ("e", "committed-3")
        ]),
        "read_committed sees exactly the committed records, in order"
    );
    let all = read_all(&topic, "read_uncommitted").await;
    assert_eq!(
        all,
        kv(&[
            ("a", "committed-1"),
            ("b", "committed-2"),
            ("c", "aborted-1"),
            ("d", "aborted-2"),
            ("e", "committed-3"),
        ]),
        "read_uncommitted also sees the aborted records (control records are never returned)"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kafka_compacted_topic_config() {
    let s = shared().await;
    let topic = unique_name("smoke-compact");
    s.create_topic(
        &topic,
        3,
        &[("cleanup.policy", "compact"), ("segment.ms", "1000")],
    )
    .await;
    let res = s
        .admin()
        .describe_configs(
            [&ResourceSpecifier::Topic(&topic)],
            &AdminOptions::new().request_timeout(Some(T)),
        )
        .await
        .expect("describe_configs");
    assert_eq!(res.len(), 1);
    let cfg = res.into_iter().next().unwrap().expect("topic config");
    let value = |name: &str| cfg.get(name).and_then(|e| e.value.clone());
    assert_eq!(value("cleanup.policy").as_deref(), Some("compact"));
    assert_eq!(value("segment.ms").as_deref(), Some("1000"));
}

#[tokio::test(flavor = "multi_thread")]
async fn kafka_unknown_topic_is_an_error() {
    // auto.create.topics.enable=false on the stack: producing to a missing topic fails
    let s = shared().await;
    let producer: FutureProducer = s
        .producer_config()
        .set("message.timeout.ms", "3000")
        .create()
        .expect("producer");
    let topic = unique_name("smoke-missing");
    let r = producer
        .send(
            FutureRecord::to(&topic).key("k").payload("v"),
            Duration::from_secs(3),
        )
        .await;
    assert!(
        r.is_err(),
        "producing to missing topic {topic} must fail, got {r:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_default_bucket_put_get() {
    let s = shared().await;
    let c = s.s3_client();
    let key = format!("smoke/{}.txt", unique_name("obj"));
    s.put(&s.bucket, &key, b"hello wordstream\n".to_vec()).await;
    let got = c
        .get_object()
        .bucket(&s.bucket)
        .key(&key)
        .send()
        .await
        .expect("get");
    assert_eq!(got.content_length(), Some(17));
    let body = got.body.collect().await.expect("body").into_bytes();
    assert_eq!(&body[..], b"hello wordstream\n");
    s.delete(&s.bucket, &key).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_list_paginates_past_1000_keys() {
    let s = shared().await;
    let bucket = s.new_bucket("smoke-list").await;
    let c = s.s3_client();

    const N: usize = 1050;
    let keys: BTreeSet<String> = (0..N)
        .map(|i| format!("dir-{}/obj-{i:05}.txt", i % 7))
        .collect();
    futures::stream::iter(keys.iter().cloned())
        .map(|k| {
            let c = c.clone();
            let bucket = bucket.clone();
            async move {
                c.put_object()
                    .bucket(&bucket)
                    .key(&k)
                    .body(ByteStream::from(k.clone().into_bytes()))
                    .send()
                    .await
                    .unwrap_or_else(|e| {
                        panic!("put {k}: {}", aws_sdk_s3::error::DisplayErrorContext(e))
                    });
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<()>>()
        .await;

    let mut listed = Vec::new();
    let mut pages = 0;
    let mut stream = c.list_objects_v2().bucket(&bucket).into_paginator().send();
    while let Some(page) = stream.next().await {
        let page = page
            .unwrap_or_else(|e| panic!("list page: {}", aws_sdk_s3::error::DisplayErrorContext(e)));
        pages += 1;
        for o in page.contents() {
            listed.push(o.key().expect("key").to_string());
        }
    }
    assert!(
        pages >= 2,
        "1,050 keys need at least 2 pages of 1,000, got {pages}"
    );
    assert_eq!(listed.len(), N, "no duplicates or gaps across pages");
    let listed: BTreeSet<String> = listed.into_iter().collect();
    assert_eq!(listed, keys);

    // a small page size and a prefix paginate the same way
    let in_dir3: BTreeSet<String> = c
        .list_objects_v2()
        .bucket(&bucket)
        .prefix("dir-3/")
        .max_keys(40)
        .into_paginator()
        .send()
        .try_collect()
        .await
        .expect("list with prefix")
        .iter()
        .flat_map(|p| p.contents().iter().map(|o| o.key().unwrap().to_string()))
        .collect();
    let want: BTreeSet<String> = keys
        .iter()
        .filter(|k| k.starts_with("dir-3/"))
        .cloned()
        .collect();
    assert_eq!(in_dir3, want);
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_get_streams_in_chunks() {
    let s = shared().await;
    let c = s.s3_client();
    let key = format!("smoke/{}.bin", unique_name("stream"));
    let data = test_bytes(3 * 1024 * 1024 + 17, 7);
    s.put(&s.bucket, &key, data.clone()).await;

    let mut body = c
        .get_object()
        .bucket(&s.bucket)
        .key(&key)
        .send()
        .await
        .expect("get")
        .body;
    let mut got = Vec::with_capacity(data.len());
    let mut chunks = 0;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.expect("body chunk");
        chunks += 1;
        got.extend_from_slice(&chunk);
    }
    assert!(
        chunks > 1,
        "a 3 MiB body arrives in several chunks, got {chunks}"
    );
    assert_eq!(got.len(), data.len());
    assert!(got == data, "streamed bytes differ from what was put");

    // ranged get
    let r = c
        .get_object()
        .bucket(&s.bucket)
        .key(&key)
        .range("bytes=1000-1999")
        .send()
        .await
        .expect("ranged get");
    let part = r.body.collect().await.unwrap().into_bytes();
    assert_eq!(&part[..], &data[1000..2000]);
    s.delete(&s.bucket, &key).await;
}
