//! Scale-out on the 3-node cluster (replication 3, min.insync.replicas 2):
//! three workers with `--replication 3`, 300 objects uploaded while they
//! run, and the broker leading ledger partition 0 stopped mid-run and
//! started again. Exact totals, each object counted once, one lister at a
//! time.
//!
//! Ignored by default: it needs the 3-node cluster and stops one of its
//! brokers. `scripts/test` runs it in its last phase on a cluster of its own
//! (own stack dir, S3 on port 9100), next to the single node. By hand:
//!
//! ```sh
//! export WORDSTREAM_STACK_DIR=.stack/cluster WORDSTREAM_S3_PORT=9100 WORDSTREAM_STACK_INSTALL_DIR=.stack
//! scripts/stack up --brokers 3 && eval "$(scripts/stack env)"
//! cargo test --test scaleout_cluster -- --ignored
//! scripts/stack down
//! ```

mod common;
mod scaleout_support;
mod worker_harness;

use common::stack;
use rdkafka::consumer::{BaseConsumer, Consumer};
use scaleout_support::*;
use std::time::{Duration, Instant};
use worker_harness::App;

const READY: Duration = Duration::from_secs(120);
const SETTLE: Duration = Duration::from_secs(120);
const DONE: Duration = Duration::from_secs(300);
const PARTITIONS: i32 = 8;

/// Starts the broker again when dropped, if the test did not (a failing
/// test must not leave the cluster with two brokers).
struct BrokerDown {
    node: String,
    restarted: bool,
}

impl BrokerDown {
    fn stop(node: i32) -> BrokerDown {
        stack_script(&["stop-broker", &node.to_string()]);
        BrokerDown {
            node: node.to_string(),
            restarted: false,
        }
    }

    fn start(&mut self) {
        stack_script(&["start-broker", &self.node]);
        self.restarted = true;
    }
}

impl Drop for BrokerDown {
    fn drop(&mut self) {
        if !self.restarted {
            stack_script(&["start-broker", &self.node]);
        }
    }
}

/// topic → (partition → (leader, replicas)).
fn layout(topic: &str) -> Vec<(i32, i32, usize)> {
    let c: BaseConsumer = stack().kafka_config().create().expect("metadata client");
    let md = c
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("metadata of {topic}: {e}"));
    md.topics()[0]
        .partitions()
        .iter()
        .map(|p| (p.id(), p.leader(), p.replicas().len()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the 3-node cluster (scripts/stack up --brokers 3; scripts/test runs it in its last phase) and stops one of its brokers"]
async fn three_workers_replication_3_broker_stopped_mid_run_exact_totals() {
    let s = stack();
    assert_eq!(
        s.brokers.split(',').count(),
        3,
        "needs the 3-node cluster: see the top of tests/scaleout_cluster.rs"
    );
    let app = App::new("soc-broker").await;
    let files = papers(900, 300);
    let mut w: Vec<Member> = (1..=3)
        .map(|i| Member::spawn(&app, &format!("c{i}"), None, &["--replication", "3"]))
        .collect();
    for m in w.iter_mut() {
        m.wait_ready(READY).await;
    }
    wait_settled(&mut w.iter_mut().collect::<Vec<_>>(), PARTITIONS, SETTLE).await;
    for topic in [
        app.ledger_topic(),
        app.changelog_topic(),
        format!("{}-word_counts-repartition", app.app_id),
    ] {
        let l = layout(&topic);
        assert_eq!(l.len(), PARTITIONS as usize, "{topic}: {l:?}");
        assert!(
            l.iter().all(|&(_, _, r)| r == 3),
            "{topic} replication 3: {l:?}"
        );
    }

    let uploads = upload_gradually(&app, files.clone(), 10, Duration::from_millis(500));
    tokio::time::sleep(Duration::from_secs(4)).await;
    // The broker leading ledger partition 0 (node ids are 1..3).
    let node = layout(&app.ledger_topic())
        .iter()
        .find(|p| p.0 == 0)
        .map(|p| p.1)
        .filter(|n| (1..=3).contains(n))
        .unwrap_or(2);
    let t = Instant::now();
    let mut down = BrokerDown::stop(node);
    eprintln!(
        "broker {node} (leader of ledger partition 0) stopped in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(10)).await;
    for m in w.iter_mut() {
        m.assert_running();
    }
    down.start();
    eprintln!(
        "broker {node} down and up again in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    uploads.await.expect("uploads");
    let refs: Vec<&Member> = w.iter().collect();
    let counted = assert_exactly_once(&app, &files, &refs, DONE).await;
    eprintln!("per worker {:?}", per_worker(&counted));
    for m in w.iter_mut() {
        m.assert_running();
    }
    for m in w.iter_mut() {
        m.stop().await;
    }
    let refs: Vec<&Member> = w.iter().collect();
    let report = listing_report(&refs, &app.ledger_topic(), now());
    eprintln!("{report}");
    assert_listing(&report, 0.3);
}
