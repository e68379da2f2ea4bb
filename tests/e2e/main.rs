//! Everything on the single-node local stack (`scripts/stack up`), as one
//! test binary with a module per area:
//!
//! - `stack_smoke`: the stack itself (Kafka, S3) with rdkafka and aws-sdk-s3;
//! - `cli_hardening`: issue 18 (group commits, signals during uploads,
//!   closed and full streams, verify's formats, escaped keys, odd keys);
//! - `upload`, `consume`, `errors`, `security`: the CLI against it;
//! - `worker`: the pipeline end to end (demo, serdes, corpus, bad objects,
//!   signals, startup errors, two workers);
//! - `worker_faults`: kill -9, a broker restart, S3 frozen;
//! - `long_faults_s3`: S3 frozen for minutes behind a proxy of the test's
//!   own, `--retry-failed`, a token over 64 KiB;
//! - `scaleout`: groups of three workers, kills, scaling 1 → 3 → 1;
//! - `discovery`: a slow listing (20 pages at 2 s), a pass resumed after a
//!   kill;
//! - `events`: event-driven discovery (`--events sqs:…`/`kafka:…`):
//!   random keys counted through events alone; duplicated, reordered and
//!   dropped events; a deleted object; a missing source; one going away;
//! - `long_faults`: a worker stalled in its commit, a zombie lister, long
//!   reads, the repartition purge, junk, two buckets, rebalances;
//! - `formats`: compressed, archived, XML, HTML objects (issue 16) count as
//!   `count-local` counts them; bad ones fail alone;
//! - `faust`: a real Faust app recovers its table from our changelog;
//! - `ranged`: big objects read in byte ranges count exactly (issue 15):
//!   words straddling every boundary, a kill mid-read, an overwrite in flight;
//! - `on_change`: overwrites recount, deletes retract, tombstones (issue 14);
//! - `web`: the worker's web server (metrics against the ledger, queries
//!   from three workers, bad requests, the dashboard in headless Chromium).
//!
//! Tests run on parallel threads, and `scripts/test` runs the modules named
//! `long_*` in a process of their own next to the others. Each test takes
//! the stack shared (`testkit::stack::shared`); those that disturb it for
//! everybody (a broker restart, S3 frozen, three workers on a two-core box)
//! take it exclusively, so they never overlap another test of any process
//! (a lock file in the stack's folder).
//!
//! Run: `eval "$(scripts/stack env)" && cargo test --test e2e`.

mod cli_hardening;
mod consume;
mod discovery;
mod errors;
mod events;
mod faust;
mod formats;
mod long_faults;
mod long_faults_s3;
mod on_change;
mod ranged;
mod scaleout;
mod security;
mod stack_smoke;
mod upload;
mod web;
mod worker;
mod worker_faults;
