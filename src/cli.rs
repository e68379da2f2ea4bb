//! The command line: the top-level parser and its subcommands.
//!
//! Each subcommand's flags live with the subcommand (in [`crate::cmd`]); this
//! module only assembles them, so `completions` and `--help` see one tree.

use crate::cmd;
use crate::logging::LogFormat;
use clap::{Parser, Subcommand};

/// Count the words of publications landing in S3 into a Kafka changelog.
#[derive(Debug, Parser)]
#[command(name = "wordstream", version, about, propagate_version = true)]
pub struct Cli {
    /// Log level: error, warn, info, debug, trace (like Faust's `-l info`).
    /// RUST_LOG, when set, takes precedence.
    #[arg(
        short = 'l',
        long = "loglevel",
        global = true,
        default_value = "info",
        value_parser = ["error", "warn", "info", "debug", "trace"]
    )]
    pub loglevel: String,

    /// Log lines as text for people, or one JSON object per line (with the
    /// worker's typed events: `"event": "ready"`, …).
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t = LogFormat::Human,
        env = "WORDSTREAM_LOG_FORMAT"
    )]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once
pub enum Command {
    /// Count words of local files or stdin with the pipeline's exact semantics.
    CountLocal(cmd::count_local::Args),
    /// Upload local files to the bucket (multipart for big ones).
    Upload(cmd::upload::Args),
    /// Print the word counts of the changelog topic (or any topic).
    Consume(cmd::consume::Args),
    /// Run the pipeline: poll S3, count new objects, publish totals (exactly once).
    Worker(cmd::worker::Args),
    /// Print a shell completion script.
    Completions(cmd::completions::Args),
    /// Live top words, rates, backlog and workers from a worker's web server.
    Top(cmd::top::Args),
}

/// The clap command tree (for completions and tests).
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}
