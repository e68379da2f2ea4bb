//! The tests that need the 3-node cluster (replication 3,
//! min.insync.replicas 2), as one test binary:
//!
//! - `stack`: acks=all produce survives one broker down;
//! - `scaleout`: three workers with `--replication 3`, the leader of ledger
//!   partition 0 stopped mid-run.
//!
//! Ignored by default: they need the cluster and stop its brokers (one
//! test at a time: each takes the stack exclusively). `scripts/test` runs
//! them in its last phase on a cluster of its own (own stack dir, S3 on
//! port 9100), next to the single node. By hand:
//!
//! ```sh
//! export WORDSTREAM_STACK_DIR=.stack/cluster WORDSTREAM_S3_PORT=9100 WORDSTREAM_STACK_INSTALL_DIR=.stack
//! scripts/stack up --brokers 3 && eval "$(scripts/stack env)"
//! cargo test --test cluster -- --ignored
//! scripts/stack down
//! ```

mod scaleout;
mod stack;

/// The 3-node cluster, this test alone on it; panics if the stack under
/// test is not a 3-node cluster.
async fn cluster() -> testkit::stack::Exclusive {
    let s = testkit::stack::exclusive().await;
    assert_eq!(
        s.brokers.split(',').count(),
        3,
        "needs the 3-node cluster (see tests/cluster/main.rs), KAFKA_BROKERS is {}",
        s.brokers
    );
    s
}
