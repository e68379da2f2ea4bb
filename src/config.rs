//! Configuration shared by every subcommand: flag > environment > `.env` >
//! default (docs/design.md §4).
//!
//! `.env` is loaded into the process environment *before* the command line
//! is parsed, without overriding variables already set, so clap's `env`
//! fallbacks see it with the right precedence. The original app's names
//! `ACCESS_KEY`, `SECRET_KEY` keep working as aliases of the AWS ones.

use anyhow::{bail, Result};
use std::path::Path;

/// Loads `path` (default `.env` in the current directory) if it exists; a
/// `path` given explicitly (`WORDSTREAM_ENV_FILE`) must exist. Variables
/// already set win. Returns warnings to log (e.g. a world-readable file
/// holding secrets); logging is not set up yet when this runs.
///
/// A malformed line is reported by file, line number and variable name,
/// never with its value: `.env` holds secrets.
pub fn load_dotenv(path: Option<&Path>) -> Result<Vec<String>> {
    let mut warnings = Vec::new();
    let explicit = path.is_some();
    let path = path.unwrap_or(Path::new(".env"));
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if explicit {
                bail!("WORDSTREAM_ENV_FILE={}: no such file", path.display());
            }
            alias("ACCESS_KEY", "AWS_ACCESS_KEY_ID");
            alias("SECRET_KEY", "AWS_SECRET_ACCESS_KEY");
            return Ok(warnings);
        }
        Err(e) => bail!("cannot read {}: {}", path.display(), e),
    };
    #[cfg(unix)]
    if let Ok(meta) = file.metadata() {
        use std::os::unix::fs::PermissionsExt;
        if meta.is_file() && meta.permissions().mode() & 0o004 != 0 {
            warnings.push(format!(
                "{} is world-readable and may hold secrets: chmod 600 {}",
                path.display(),
                path.display()
            ));
        }
    }
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut file, &mut bytes)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {}", path.display(), e))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let line = line_at(e.as_bytes(), e.utf8_error().valid_up_to());
        anyhow::anyhow!("cannot read {}: line {line} is not UTF-8", path.display())
    })?;
    let mut vars = Vec::new();
    for item in dotenvy::from_read_iter(text.as_bytes()) {
        match item {
            Ok(kv) => vars.push(kv),
            Err(dotenvy::Error::LineParse(bad, _)) => {
                bail!("cannot read {}: {}", path.display(), malformed(&text, &bad))
            }
            // I/O and variable errors carry no line text
            Err(e) => bail!("cannot read {}: {e}", path.display()),
        }
    }
    for (k, v) in vars {
        if std::env::var_os(&k).is_none() {
            // Runs in main before any thread is started.
            std::env::set_var(k, v);
        }
    }
    alias("ACCESS_KEY", "AWS_ACCESS_KEY_ID");
    alias("SECRET_KEY", "AWS_SECRET_ACCESS_KEY");
    Ok(warnings)
}

/// The 1-based line of byte `at` of `bytes`.
fn line_at(bytes: &[u8], at: usize) -> usize {
    bytes[..at.min(bytes.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// What is wrong with the `.env` text whose parse failed on `bad` (dotenvy's
/// error text: the line, or its value part): the line number and variable
/// name, never the text itself.
fn malformed(text: &str, bad: &str) -> String {
    let first = bad.lines().next().unwrap_or("").trim();
    let found = (!first.is_empty())
        .then(|| {
            text.lines()
                .enumerate()
                .find(|(_, l)| !l.trim_start().starts_with('#') && l.trim_end().ends_with(first))
        })
        .flatten();
    let Some((i, line)) = found else {
        return "a line is malformed (its text is not shown)".into();
    };
    let body = line.trim_start();
    let body = body.strip_prefix("export ").unwrap_or(body).trim_start();
    let name = body
        .split_once('=')
        .map(|(n, _)| n.trim())
        .filter(|n| is_var_name(n));
    match name {
        Some(name) => format!(
            "line {}: the value of {name} is malformed (quote a value that holds spaces, \
             and close every quote); the value is not shown",
            i + 1
        ),
        None => format!("line {} is not NAME=value (its text is not shown)", i + 1),
    }
}

/// A variable name as `.env` files write them.
fn is_var_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
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
    #[arg(long, env = "S3_BUCKET", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub bucket: String,
    /// S3 endpoint for S3-compatible servers (path-style addressing).
    #[arg(long, env = "AWS_ENDPOINT_URL", value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// AWS region [default: the AWS chain's, else us-east-1].
    #[arg(long, env = "AWS_REGION")]
    pub region: Option<String>,
    /// Seconds to wait for the S3 endpoint: to connect, and for each
    /// answer (a request that sends data gets one more second per 64 KiB).
    #[arg(long, env = "S3_TIMEOUT", value_name = "SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub s3_timeout: u64,
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
    /// Seconds to wait for the Kafka brokers before giving up (1 to 3600).
    #[arg(long, value_name = "SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub connect_timeout: u64,
    /// Security protocol of the Kafka connections [default: PLAINTEXT;
    /// SASL_SSL with --sasl-mechanism or --kafka-auth msk-iam].
    #[arg(
        long = "kafka-security-protocol",
        env = "KAFKA_SECURITY_PROTOCOL",
        value_enum,
        value_name = "PROTOCOL",
        ignore_case = true
    )]
    pub security_protocol: Option<SecurityProtocol>,
    /// SASL mechanism (with SASL_PLAINTEXT or SASL_SSL). PLAIN and SCRAM take
    /// --sasl-username and the password from KAFKA_SASL_PASSWORD (environment
    /// or .env only).
    #[arg(
        long,
        env = "KAFKA_SASL_MECHANISM",
        value_enum,
        value_name = "MECHANISM",
        ignore_case = true
    )]
    pub sasl_mechanism: Option<SaslMechanism>,
    /// SASL user name (PLAIN, SCRAM).
    #[arg(long, env = "KAFKA_SASL_USERNAME", value_name = "NAME")]
    pub sasl_username: Option<String>,
    /// SASL password: from KAFKA_SASL_PASSWORD (a flag would show in `ps`).
    #[arg(
        long,
        env = "KAFKA_SASL_PASSWORD",
        hide = true,
        hide_env_values = true,
        value_parser = parse_secret
    )]
    pub sasl_password: Option<Secret>,
    /// CA certificate(s), PEM, to verify the brokers' TLS certificates
    /// [default: the system's trust store].
    #[arg(long, env = "KAFKA_CA_LOCATION", value_name = "PATH")]
    pub ca_location: Option<std::path::PathBuf>,
    /// Authentication: `msk-iam` signs OAUTHBEARER tokens with the AWS
    /// credential chain (AWS MSK IAM; implies SASL_SSL + OAUTHBEARER).
    #[arg(long, env = "KAFKA_AUTH", value_enum, value_name = "AUTH")]
    pub kafka_auth: Option<KafkaAuth>,
    /// AWS region of the MSK cluster, for --kafka-auth msk-iam [default: from
    /// the broker host names, else the AWS chain's].
    #[arg(long, env = "MSK_REGION", value_name = "REGION")]
    pub msk_region: Option<String>,
}

/// `security.protocol` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
#[allow(clippy::upper_case_acronyms)]
pub enum SecurityProtocol {
    /// No TLS, no SASL.
    #[value(name = "PLAINTEXT")]
    Plaintext,
    /// TLS.
    #[value(name = "SSL")]
    Ssl,
    /// SASL without TLS.
    #[value(name = "SASL_PLAINTEXT")]
    SaslPlaintext,
    /// SASL over TLS.
    #[value(name = "SASL_SSL")]
    SaslSsl,
}

impl SecurityProtocol {
    /// librdkafka's name.
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    /// Whether it uses TLS.
    pub fn is_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// Whether it authenticates with SASL.
    pub fn is_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

/// `sasl.mechanism` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SaslMechanism {
    /// User name and password in clear (use with SASL_SSL).
    #[value(name = "PLAIN")]
    Plain,
    /// SCRAM with SHA-256.
    #[value(name = "SCRAM-SHA-256")]
    ScramSha256,
    /// SCRAM with SHA-512.
    #[value(name = "SCRAM-SHA-512")]
    ScramSha512,
    /// OAuth bearer tokens (with --kafka-auth msk-iam, or -X sasl.oauthbearer.* for OIDC).
    #[value(name = "OAUTHBEARER")]
    OauthBearer,
}

impl SaslMechanism {
    /// librdkafka's name.
    pub fn as_str(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
            SaslMechanism::OauthBearer => "OAUTHBEARER",
        }
    }

    /// Whether it takes a user name and password.
    pub fn needs_password(self) -> bool {
        !matches!(self, SaslMechanism::OauthBearer)
    }
}

/// `--kafka-auth` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum KafkaAuth {
    /// Whatever --kafka-security-protocol and --sasl-mechanism say.
    None,
    /// AWS MSK IAM: SASL_SSL + OAUTHBEARER tokens signed with the AWS chain.
    MskIam,
}

/// A secret string: its `Debug` and `Display` never show the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for the one place that needs it (the client config).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

fn parse_secret(s: &str) -> Result<Secret, String> {
    if s.is_empty() {
        // no echo of the value in parse errors: there is none to echo
        return Err("empty".into());
    }
    Ok(Secret(s.to_string()))
}

fn parse_property(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got '{s}'")),
    }
}

/// Topic names derived from an app id and a table name (docs/design.md §2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topics {
    /// The output: running totals, compacted.
    pub changelog: String,
    /// The object ledger and work queue, compacted.
    pub ledger: String,
    /// Per-object deltas keyed by word.
    pub repartition: String,
    /// What each counted object contributed (chunks keyed by object),
    /// compacted; `--on-change recount` only (see `worker::contrib`).
    pub contributions: String,
}

impl Topics {
    /// Faust's naming: `<app>-<table>-changelog` and friends.
    pub fn new(app_id: &str, table: &str) -> Self {
        Topics {
            changelog: format!("{app_id}-{table}-changelog"),
            ledger: format!("{app_id}-objects"),
            repartition: format!("{app_id}-{table}-repartition"),
            contributions: format!("{app_id}-{table}-contributions"),
        }
    }
}

impl KafkaArgs {
    /// The topics of this app.
    pub fn topics(&self) -> Topics {
        Topics::new(&self.app_id, &self.table)
    }

    /// Plain-text defaults for `brokers` (tests and library users; the
    /// command line fills these from flags and the environment).
    pub fn new(brokers: &str) -> Self {
        KafkaArgs {
            brokers: brokers.to_string(),
            property: Vec::new(),
            app_id: "word-count".into(),
            table: "word_counts".into(),
            connect_timeout: 10,
            security_protocol: None,
            sasl_mechanism: None,
            sasl_username: None,
            sasl_password: None,
            ca_location: None,
            kafka_auth: None,
            msk_region: None,
        }
    }

    /// The effective security protocol.
    pub fn effective_protocol(&self) -> SecurityProtocol {
        match (self.security_protocol, self.kafka_auth) {
            (Some(p), _) => p,
            (None, Some(KafkaAuth::MskIam)) => SecurityProtocol::SaslSsl,
            (None, _) if self.sasl_mechanism.is_some() => SecurityProtocol::SaslSsl,
            (None, _) => SecurityProtocol::Plaintext,
        }
    }

    /// The effective SASL mechanism, when the protocol uses SASL.
    pub fn effective_mechanism(&self) -> Option<SaslMechanism> {
        if !self.effective_protocol().is_sasl() {
            return None;
        }
        match (self.sasl_mechanism, self.kafka_auth) {
            (Some(m), _) => Some(m),
            (None, Some(KafkaAuth::MskIam)) => Some(SaslMechanism::OauthBearer),
            (None, _) => None,
        }
    }

    /// Fails (one line, no secret) on contradicting or incomplete security
    /// settings. `-X` properties are the escape hatch and are not checked.
    pub fn check_security(&self) -> Result<()> {
        let protocol = self.effective_protocol();
        let set_by_x = |k: &str| self.property.iter().any(|(p, _)| p == k);
        if self.kafka_auth == Some(KafkaAuth::MskIam) {
            // MSK's IAM listeners are TLS; SASL_PLAINTEXT is allowed for tests
            if !protocol.is_sasl() {
                bail!(
                    "--kafka-auth msk-iam needs --kafka-security-protocol SASL_SSL, not {}",
                    protocol.as_str()
                );
            }
            if let Some(m) = self
                .sasl_mechanism
                .filter(|m| *m != SaslMechanism::OauthBearer)
            {
                bail!(
                    "--kafka-auth msk-iam uses OAUTHBEARER, not --sasl-mechanism {}",
                    m.as_str()
                );
            }
        }
        match self.effective_mechanism() {
            None if protocol.is_sasl() && !set_by_x("sasl.mechanism") && !set_by_x("sasl.mechanisms") => bail!(
                "--kafka-security-protocol {} needs --sasl-mechanism (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER) or --kafka-auth msk-iam",
                protocol.as_str()
            ),
            Some(m) if m.needs_password() => {
                if self.sasl_username.as_deref().is_none_or(str::is_empty) && !set_by_x("sasl.username") {
                    bail!("--sasl-mechanism {} needs --sasl-username (or KAFKA_SASL_USERNAME)", m.as_str());
                }
                if self.sasl_password.is_none() && !set_by_x("sasl.password") {
                    bail!("--sasl-mechanism {} needs the password in KAFKA_SASL_PASSWORD (environment or .env)", m.as_str());
                }
            }
            _ => {}
        }
        if self.sasl_mechanism.is_some() && !protocol.is_sasl() {
            bail!(
                "--sasl-mechanism needs --kafka-security-protocol SASL_SSL or SASL_PLAINTEXT, not {}",
                protocol.as_str()
            );
        }
        if let Some(ca) = &self.ca_location {
            if !ca.exists() {
                bail!("--ca-location {}: no such file or directory", ca.display());
            }
        }
        Ok(())
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
    fn security_checks_name_what_is_missing_and_never_the_secret() {
        let mut a = KafkaArgs::new("h:9094");
        assert!(a.check_security().is_ok());
        a.sasl_mechanism = Some(SaslMechanism::ScramSha256);
        assert_eq!(a.effective_protocol(), SecurityProtocol::SaslSsl);
        assert_eq!(
            a.check_security().unwrap_err().to_string(),
            "--sasl-mechanism SCRAM-SHA-256 needs --sasl-username (or KAFKA_SASL_USERNAME)"
        );
        a.sasl_username = Some("u".into());
        assert_eq!(
            a.check_security().unwrap_err().to_string(),
            "--sasl-mechanism SCRAM-SHA-256 needs the password in KAFKA_SASL_PASSWORD (environment or .env)"
        );
        a.sasl_password = Some(Secret::new("hunter2"));
        assert!(a.check_security().is_ok());
        assert_eq!(format!("{:?}", a.sasl_password), "Some(Secret([redacted]))");
        assert!(!format!("{a:?}").contains("hunter2"));
        a.security_protocol = Some(SecurityProtocol::Ssl);
        assert_eq!(
            a.check_security().unwrap_err().to_string(),
            "--sasl-mechanism needs --kafka-security-protocol SASL_SSL or SASL_PLAINTEXT, not SSL"
        );
        let mut b = KafkaArgs::new("h:9094");
        b.security_protocol = Some(SecurityProtocol::SaslPlaintext);
        assert!(b
            .check_security()
            .unwrap_err()
            .to_string()
            .contains("needs --sasl-mechanism"));
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
