//! wordstream: count the words of S3 objects into a Kafka changelog.
//!
//! The core ([`tokenize`], [`count`], [`charclass`]) has no I/O and no async;
//! the subcommands in [`cmd`] are thin layers over it.

pub mod charclass;
pub mod count;
pub mod tokenize;
#[rustfmt::skip]
pub mod unicode_tables;

pub mod cli;
pub mod cmd;
pub mod config;
pub mod events;
pub mod failpoint;
pub mod format;
pub mod kafka;
pub mod logging;
pub mod msk_iam;
pub mod output;
pub mod s3;
pub mod shutdown;
pub mod verify;
pub mod web;
pub mod wire;
pub mod worker;
