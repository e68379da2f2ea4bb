//! Configuration shared by every subcommand: flag > environment > `.env` >
//! default (DESIGN §4).
//!
//! `.env` is loaded into the process environment *before* the command line
//! is parsed, without overriding variables already set, so clap's `env`
//! fallbacks see it with the right precedence. The original app's names
//! `ACCESS_KEY`, `SECRET_KEY` keep working as aliases of the AWS ones.

use anyhow::{bail, Context, Result};
use std::path::Path;

/// Loads `path` (default `.env` in the current directory) if it exists.
/// Returns a warning to log (e.g. a world-readable file holding secrets);
/// logging is not set up yet when this runs.
pub fn load_dotenv(path: Option<&Path>) -> Result<Vec<String>> {
    let mut warnings = Vec::new();
    let path = path.unwrap_or(Path::new(".env"));
    match std::fs::metadata(path) {
        Ok(meta) => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                if meta.permissions().mode() & 0o004 != 0 {
                    warnings.push(format!(
                        "{} is world-readable and may hold secrets: chmod 600 {}",
                        path.display(),
                        path.display()
                    ));
                }
            }
            let _ = meta;
            dotenvy::from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => bail!("cannot read {}: {e}", path.display()),
    }
    alias("ACCESS_KEY", "AWS_ACCESS_KEY_ID");
    alias("SECRET_KEY", "AWS_SECRET_ACCESS_KEY");
    Ok(warnings)
}

/// Sets `to` from `from` when only `from` is set.
fn alias(from: &str, to: &str) {
    if std::env::var_os(to).is_none() {
        if let Some(v) = std::env::var_os(from) {
            // Runs in main before any thread is started.
            std::env::set_var(to, v);
        }
    }
}

/// Where the S3 objects are (flattened into the subcommands that use S3).
#[derive(Clone, Debug, clap::Args)]
pub struct S3Args {
    /// The bucket.
    #[arg(long, env = "S3_BUCKET")]
    pub bucket: String,
    /// S3 endpoint for S3-compatible servers (path-style addressing).
    #[arg(long, env = "AWS_ENDPOINT_URL", value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// AWS region [default: the AWS chain's, else us-east-1].
    #[arg(long, env = "AWS_REGION")]
    pub region: Option<String>,
}

/// How to reach Kafka and which topics to use (flattened into the
/// subcommands that use Kafka).
#[derive(Clone, Debug, clap::Args)]
pub struct KafkaArgs {
    /// Bootstrap brokers, comma-separated.
    #[arg(long, env = "KAFKA_BROKERS", default_value = "localhost:9092")]
    pub brokers: String,
    /// Any librdkafka property, like kcat (repeatable): -X key=value.
    #[arg(short = 'X', value_name = "KEY=VALUE", value_parser = parse_property)]
    pub property: Vec<(String, String)>,
    /// Application id: names the topics and the consumer group (as in Faust).
    #[arg(long, env = "WORDSTREAM_APP_ID", default_value = "word-count")]
    pub app_id: String,
    /// Table name: the changelog is `<app-id>-<table>-changelog`.
    #[arg(long, env = "WORDSTREAM_TABLE", default_value = "word_counts")]
    pub table: String,
    /// Seconds to wait for the brokers before giving up.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub connect_timeout: u64,
}

fn parse_property(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got '{s}'")),
    }
}

/// Topic names derived from an app id and a table name (DESIGN §2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topics {
    /// The output: running totals, compacted.
    pub changelog: String,
    /// The object ledger and work queue, compacted.
    pub ledger: String,
    /// Per-object deltas keyed by word.
    pub repartition: String,
}

impl Topics {
    /// Faust's naming: `<app>-<table>-changelog` and friends.
    pub fn new(app_id: &str, table: &str) -> Self {
        Topics {
            changelog: format!("{app_id}-{table}-changelog"),
            ledger: format!("{app_id}-objects"),
            repartition: format!("{app_id}-{table}-repartition"),
        }
    }
}

impl KafkaArgs {
    /// The topics of this app.
    pub fn topics(&self) -> Topics {
        Topics::new(&self.app_id, &self.table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_match_faust() {
        let t = Topics::new("word-count", "word_counts");
        assert_eq!(t.changelog, "word-count-word_counts-changelog");
        assert_eq!(t.ledger, "word-count-objects");
        assert_eq!(t.repartition, "word-count-word_counts-repartition");
    }

    #[test]
    fn properties() {
        assert_eq!(
            parse_property("a.b=c=d").unwrap(),
            ("a.b".into(), "c=d".into())
        );
        assert!(parse_property("nope").is_err());
    }
}
