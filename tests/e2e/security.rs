//! End-to-end tests of Kafka security against the local stack's secure
//! listeners (`scripts/stack up`, single node; `scripts/stack env --secure`):
//! SASL_SSL + SCRAM on 127.0.0.1:9094, OAUTHBEARER (unsecured JWS) on 9095,
//! TLS only on 9096, all with the stack's self-signed CA.
//!
//! - the real binary consumes, runs the worker (transactional producer) and
//!   verifies counts over TLS + SCRAM;
//! - a wrong password is one line and exit 1, at once; a plaintext client on
//!   the TLS port and a TLS client without the CA fail clearly, bounded by
//!   --connect-timeout;
//! - the OAUTHBEARER token callback path (QuietContext →
//!   `generate_oauth_token` → token source), including refresh before
//!   expiry, against the OAUTHBEARER listener; an MSK IAM token signed by
//!   the binary reaches the broker (which rejects it: it is not a JWS);
//! - no output of any of these runs holds the SCRAM password or the AWS
//!   secret key, even at `-l trace`.

use rdkafka::client::OAuthToken;
use rdkafka::consumer::Consumer;
use std::collections::HashMap;
use std::net::TcpStream;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use testkit::cli::{cmd, run, Run};
use testkit::names::unique_name;
use testkit::stack::{env_or, shared, shared_blocking, stack, stack_dir};
use testkit::worker::Worker;
use wordstream::config::{KafkaArgs, SaslMechanism, SecurityProtocol};
use wordstream::events::Event;
use wordstream::kafka;

/// The secure listeners, as `scripts/stack env --secure` names them.
struct Secure {
    /// SASL_SSL (SCRAM) listener.
    brokers: String,
    /// SASL_PLAINTEXT + OAUTHBEARER listener.
    oauth_brokers: String,
    /// SSL listener.
    ssl_brokers: String,
    ca: String,
    user: String,
    password: String,
}

/// The secure listeners' settings; panics (never skips) when they do not
/// answer.
fn secure() -> &'static Secure {
    static S: OnceLock<Secure> = OnceLock::new();
    S.get_or_init(|| {
        let [brokers, oauth_brokers, ssl_brokers, password] = [
            ("KAFKA_SECURE_BROKERS", "127.0.0.1:9094"),
            ("KAFKA_OAUTH_BROKERS", "127.0.0.1:9095"),
            ("KAFKA_SSL_BROKERS", "127.0.0.1:9096"),
            // the stack's fixed local-only test password (scripts/stack)
            ("WORDSTREAM_TEST_SCRAM_PASSWORD", "scram-local-Hq7vR2xk"),
        ]
        .map(|(key, default)| env_or(key, default));
        let ca = stack_dir().join("tls/ca.pem");
        let s = Secure {
            brokers,
            oauth_brokers,
            ssl_brokers,
            ca: ca.to_string_lossy().into_owned(),
            user: "wordstream".into(),
            password,
        };
        for b in [&s.brokers, &s.oauth_brokers, &s.ssl_brokers] {
            let addr = b.parse().expect("host:port");
            if TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err() {
                panic!(
                    "secure listener {b} not reachable: the stack's node predates it? \
                     run `scripts/stack down && scripts/stack up`"
                );
            }
        }
        assert!(
            std::path::Path::new(&s.ca).is_file(),
            "{} missing: run `scripts/stack up`",
            s.ca
        );
        s
    })
}

/// Panics if `text` holds a secret of the stack (the SCRAM password, the S3
/// secret key) or of the tests.
fn assert_no_secret(what: &str, text: &str) {
    let s = secure();
    for secret in [
        s.password.as_str(),
        stack().secret_key.as_str(),
        WRONG_PASSWORD,
        TEST_AWS_SECRET,
    ] {
        assert!(
            !text.contains(secret),
            "{what}: output holds a secret ({} chars):\n{text}",
            secret.len()
        );
    }
}

/// Checks both streams of a run for secrets (every run of this file).
fn keep(what: &str, run: &Run) {
    assert_no_secret(what, &run.all_output());
}

/// Runs `c` (`what` names it): no secret in its output, done within
/// `within`, exit 1 with exactly `line` on stderr.
async fn fails_within(what: &str, c: Command, within: Duration, line: &str) {
    let r = run(c).await;
    keep(what, &r);
    assert!(r.took < within, "{what}: took {:?}", r.took);
    r.fails_with(line);
}

const WRONG_PASSWORD: &str = "not-the-Password-71";
const TEST_AWS_SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

/// `wordstream ARGS…` pointed at the SASL_SSL listener through the
/// environment, as `eval "$(scripts/stack env --secure)"` does.
fn secure_cmd(args: &[&str]) -> Command {
    let s = secure();
    let mut c = cmd(stack(), args);
    c.env("KAFKA_BROKERS", &s.brokers)
        .env("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
        .env("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
        .env("KAFKA_CA_LOCATION", &s.ca)
        .env("KAFKA_SASL_USERNAME", &s.user)
        .env("KAFKA_SASL_PASSWORD", &s.password);
    c
}

/// `consume -e --from-beginning` of `topic` as a word → count map.
fn parse_lines(stdout: &str) -> HashMap<String, i64> {
    stdout
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(w, n)| (w.to_string(), n.trim().parse().expect("count")))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn worker_consume_and_verify_over_sasl_ssl_scram() {
    let s = shared().await;
    let bucket = s.new_bucket("sec-scram").await;
    let app = bucket.clone();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("paper.txt");
    std::fs::write(
        &file,
        "The cat sat on the mat. The cat ran.\nnaïve H2O x_1 cat\n",
    )
    .unwrap();
    let want: HashMap<String, i64> = [
        ("The", 2),
        ("cat", 3),
        ("sat", 1),
        ("on", 1),
        ("the", 1),
        ("mat", 1),
        ("ran", 1),
        ("naïve", 1),
    ]
    .into_iter()
    .map(|(w, n)| (w.to_string(), n))
    .collect();

    // upload (S3 only: the Kafka settings in the environment are ignored)
    let up = run(secure_cmd(&[
        "upload",
        file.to_str().unwrap(),
        "--bucket",
        &bucket,
        "-q",
    ]))
    .await;
    keep("upload", &up);
    up.ok();

    // the worker: topics, transactions, consumer group, all over SASL_SSL
    let mut worker = Worker::spawn(
        "sec-1",
        secure_cmd(&[
            "--log-format",
            "json",
            "worker",
            "--bucket",
            &bucket,
            "--app-id",
            &app,
            "--interval",
            "0.3",
            "--worker-id",
            "sec-1",
            "-l",
            "debug",
        ]),
    );

    let topic = format!("{app}-word_counts-changelog");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        worker.assert_running();
        let r = run(secure_cmd(&[
            "consume",
            "--app-id",
            &app,
            "--from-beginning",
            "-e",
        ]))
        .await;
        keep("consume", &r);
        if r.code == Some(0) {
            let mut latest = HashMap::new();
            for (w, n) in parse_lines(&r.stdout) {
                latest.insert(w, n);
            }
            if latest == want {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "changelog {topic} never matched {want:?}; last consume:\n{}{}\n{}",
            r.stdout,
            r.stderr,
            worker.log_tail(60)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // count-local --verify reads the changelog back (restore path) over SASL_SSL
    let v = run(secure_cmd(&[
        "count-local",
        file.to_str().unwrap(),
        "--verify",
        "--app-id",
        &app,
    ]))
    .await;
    keep("count-local --verify", &v);
    v.ok();

    // SIGTERM: clean exit (0)
    worker.stop().await;
    assert!(
        worker
            .find_event(0.0, |e| matches!(e, Event::Ready { .. }))
            .is_some(),
        "{}",
        worker.log_tail(40)
    );
    let wlog = std::fs::read_to_string(&worker.log_path).expect("the worker's log");
    assert_no_secret("worker log (-l debug)", &wlog);
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_password_is_one_line_and_exit_1_at_once() {
    let _stack = shared().await;
    let s = secure();
    let want = format!(
        "wordstream: error: Kafka authentication failed at {} (SCRAM-SHA-512, user 'wordstream'): invalid credentials",
        s.brokers
    );
    for args in [
        vec!["consume", "-e", "--connect-timeout", "20"],
        vec![
            "count-local",
            "-",
            "-q",
            "--verify",
            "--connect-timeout",
            "20",
        ],
        vec![
            "worker",
            "--bucket",
            stack().bucket.as_str(),
            "--app-id",
            "sec-wrong-password",
            "--connect-timeout",
            "20",
        ],
    ] {
        let mut c = secure_cmd(&args);
        c.env("KAFKA_SASL_PASSWORD", WRONG_PASSWORD);
        fails_within(args[0], c, Duration::from_secs(15), &want).await;
    }
    // the same at -l trace: librdkafka's own lines, still no secret
    let mut c = secure_cmd(&["consume", "-e", "-l", "trace"]);
    c.env("KAFKA_SASL_PASSWORD", WRONG_PASSWORD);
    let r = run(c).await;
    keep("consume -l trace", &r);
    assert_eq!(r.code, Some(1));
    assert!(r.stderr.ends_with(&format!("{want}\n")), "{}", r.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn plaintext_client_on_the_tls_port_fails_clearly_within_the_timeout() {
    let _stack = shared().await;
    let s = secure();
    let c = cmd(
        stack(),
        &[
            "consume",
            "-e",
            "--brokers",
            &s.brokers,
            "--connect-timeout",
            "3",
        ],
    );
    let line = format!(
        "wordstream: error: Kafka at {} accepts connections but does not answer Kafka requests \
         without TLS: a TLS listener? (--kafka-security-protocol is PLAINTEXT)",
        s.brokers
    );
    fails_within("plaintext to TLS", c, Duration::from_secs(8), &line).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_without_the_ca_and_tls_to_a_plaintext_port_fail_clearly() {
    let _stack = shared().await;
    let s = secure();
    let mut c = secure_cmd(&["consume", "-e", "--connect-timeout", "10"]);
    c.env_remove("KAFKA_CA_LOCATION");
    let line = format!(
        "wordstream: error: TLS handshake with Kafka at {} failed: the broker's certificate is not \
         signed by a trusted CA (check --ca-location and --kafka-security-protocol)",
        s.brokers
    );
    fails_within("no CA", c, Duration::from_secs(8), &line).await;

    let plain = stack().brokers.split(',').next().unwrap().to_string();
    let c = secure_cmd(&[
        "consume",
        "-e",
        "--brokers",
        &plain,
        "--connect-timeout",
        "10",
    ]);
    let line = format!(
        "wordstream: error: TLS handshake with Kafka at {plain} failed: the broker closed the TLS \
         connection: a PLAINTEXT listener? (check --ca-location and --kafka-security-protocol)"
    );
    fails_within("TLS to plaintext", c, Duration::from_secs(8), &line).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn consume_over_the_tls_only_listener() {
    let _stack = shared().await;
    let s = secure();
    let topic = stack().new_topic("sec-ssl", 2, &[]).await;
    stack()
        .produce(&topic, None, &[(b"alpha", b"1"), (b"beta", b"22")])
        .await;
    let r = run(cmd(
        stack(),
        &[
            "consume",
            "--topic",
            &topic,
            "--serde",
            "text",
            "--from-beginning",
            "-e",
            "--brokers",
            &s.ssl_brokers,
            "--kafka-security-protocol",
            "SSL",
            "--ca-location",
            &s.ca,
        ],
    ))
    .await;
    keep("consume over SSL", &r);
    let r = r.ok();
    let got = parse_lines(&r.stdout);
    assert_eq!(got.get("alpha"), Some(&1), "{}", r.stdout);
    assert_eq!(got.get("beta"), Some(&22), "{}", r.stdout);
}

/// Unsecured JWS tokens (`alg: none`) that Kafka's default OAUTHBEARER
/// validator accepts, counting how often they are asked for.
struct UnsecuredJws {
    calls: AtomicUsize,
    lifetime: Duration,
}

impl kafka::TokenSource for UnsecuredJws {
    fn token(&self) -> anyhow::Result<OAuthToken> {
        use base64::Engine;
        self.calls.fetch_add(1, Ordering::SeqCst);
        let b64 = |v: serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        let exp = now + self.lifetime;
        let token = format!(
            "{}.{}.",
            b64(serde_json::json!({"alg": "none"})),
            b64(serde_json::json!({
                "sub": "wordstream-test",
                "iat": now.as_secs(),
                "exp": exp.as_secs(),
            }))
        );
        Ok(OAuthToken {
            token,
            principal_name: "wordstream-test".into(),
            lifetime_ms: exp.as_millis() as i64,
        })
    }
}

#[test]
fn oauthbearer_tokens_come_from_the_context_callback_and_are_refreshed() {
    let _stack = shared_blocking();
    let s = secure();
    let source = Arc::new(UnsecuredJws {
        calls: AtomicUsize::new(0),
        lifetime: Duration::from_secs(6),
    });
    kafka::set_token_source(source.clone());
    let mut args = KafkaArgs::new(&s.oauth_brokers);
    args.security_protocol = Some(SecurityProtocol::SaslPlaintext);
    args.sasl_mechanism = Some(SaslMechanism::OauthBearer);
    args.check_security().unwrap();

    // 1. the library's metadata path (token primed at creation)
    let md =
        kafka::metadata(&args, None, Duration::from_secs(10)).expect("metadata over OAUTHBEARER");
    assert!(!md.brokers().is_empty());
    assert!(source.calls.load(Ordering::SeqCst) >= 1);

    // 2. a consumer that is not primed: librdkafka asks for the token through
    //    the refresh event, rdkafka calls QuietContext::generate_oauth_token on
    //    the polling thread; and again before the 6 s token expires.
    let before = source.calls.load(Ordering::SeqCst);
    let consumer: rdkafka::consumer::BaseConsumer<kafka::QuietContext> =
        kafka::client_config(&args)
            .set("group.id", unique_name("sec-oauth"))
            .create_with_context(kafka::QuietContext)
            .unwrap();
    let start = Instant::now();
    while source.calls.load(Ordering::SeqCst) == before {
        let _ = consumer.poll(Duration::from_millis(100));
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no token callback"
        );
    }
    consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("metadata with the callback's token");
    let first = source.calls.load(Ordering::SeqCst);
    while source.calls.load(Ordering::SeqCst) == first {
        let _ = consumer.poll(Duration::from_millis(100));
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "token not refreshed before expiry"
        );
    }
    // refreshed at about 80% of the 6 s lifetime, i.e. before it expired
    assert!(
        start.elapsed() < Duration::from_secs(6),
        "refreshed after {:?}",
        start.elapsed()
    );
    consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("metadata after the refresh");
}

#[tokio::test(flavor = "multi_thread")]
async fn msk_iam_token_reaches_the_broker_through_the_binary() {
    let _stack = shared().await;
    // Kafka's unsecured validator expects a JWS, so it rejects the SigV4
    // URL token: the rejection proves the signed token went out through
    // librdkafka's OAUTHBEARER path. (Validating it needs AWS MSK.)
    let s = secure();
    let mut c = cmd(
        stack(),
        &[
            "consume",
            "-e",
            "--brokers",
            &s.oauth_brokers,
            "--kafka-auth",
            "msk-iam",
            "--kafka-security-protocol",
            "SASL_PLAINTEXT",
            "--msk-region",
            "eu-west-1",
            "--connect-timeout",
            "20",
        ],
    );
    c.env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
        .env("AWS_SECRET_ACCESS_KEY", TEST_AWS_SECRET);
    let r = run(c).await;
    keep("msk-iam", &r);
    assert!(r.took < Duration::from_secs(15), "took {:?}", r.took);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    let prefix = format!(
        "wordstream: error: Kafka authentication failed at {} (OAUTHBEARER): ",
        s.oauth_brokers
    );
    assert!(
        r.stderr.starts_with(&prefix) && r.stderr.lines().count() == 1,
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("invalid_token"), "{}", r.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn help_and_errors_never_show_secrets() {
    let _stack = shared().await;
    let r = run(secure_cmd(&["consume", "--help"])).await;
    keep("consume --help", &r);
    let r = r.ok();
    assert!(r.stdout.contains("--kafka-security-protocol"));
    assert!(r.stdout.contains("KAFKA_SASL_PASSWORD"));
    // missing user name: says what is missing, not the password
    let mut c = secure_cmd(&["consume", "-e"]);
    c.env_remove("KAFKA_SASL_USERNAME");
    let r = run(c).await;
    keep("missing user", &r);
    r.fails_with(
        "wordstream: error: --sasl-mechanism SCRAM-SHA-512 needs --sasl-username (or KAFKA_SASL_USERNAME)",
    );
}
