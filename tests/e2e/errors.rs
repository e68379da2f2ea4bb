//! e2e: bad input gives one line on stderr naming the thing, exit code 1,
//! and no secret in any output.

use std::process::Command;
use std::time::Duration;
use testkit::cli::{cmd, run, Run};
use testkit::corpus;
use testkit::names::unique_name;
use testkit::stack::{shared, stack};

/// `upload ARGS… <a demo file>`, the stack's settings with `env` on top.
fn upload_demo(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut c = with_env(&["upload"], env);
    c.args(args).arg(corpus::file("demo/A1.headed.txt"));
    c
}

/// The run must not show `secret` anywhere.
fn no_secret(r: &Run, secret: &str) {
    assert!(
        !r.all_output().contains(secret),
        "the secret appears in the output:\n{}",
        r.all_output()
    );
}

/// `wordstream ARGS…` with the stack's settings, `env` on top.
fn with_env(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut c = cmd(stack(), args);
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

/// Runs `c`: exit 1, exactly `line` on stderr, and not the stack's S3
/// secret anywhere.
async fn fails(c: Command, line: &str) -> Run {
    let r = run(c).await;
    no_secret(&r, &stack().secret_key);
    r.fails_with(line)
}

/// `cannot list s3://<the stack's bucket>: ERROR (check …)`, the line of a
/// credentials problem.
fn cannot_list(error: &str) -> String {
    format!(
        "wordstream: error: cannot list s3://{}: {error} (check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)",
        stack().bucket
    )
}

/// What versitygw answers to a wrong secret key.
const BAD_SIGNATURE: &str = "SignatureDoesNotMatch: The request signature we calculated does \
     not match the signature you provided. Check your key and signing method.";

#[tokio::test(flavor = "multi_thread")]
async fn upload_of_a_missing_file() {
    let _stack = shared().await;
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.txt");
    let missing = missing.to_str().unwrap();
    let line = format!("wordstream: error: cannot upload {missing}: no such file or directory");
    fails(upload_demo(&[missing], &[]), &line).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn upload_of_a_directory_without_recursive() {
    let _stack = shared().await;
    let dir = corpus::root().join("demo");
    let dir = dir.to_str().unwrap();
    let line =
        format!("wordstream: error: {dir} is a directory (use --recursive to upload its files)");
    fails(with_env(&["upload", dir], &[]), &line).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn upload_to_a_missing_bucket() {
    let _stack = shared().await;
    let bucket = unique_name("no-such-bucket");
    let line = format!(
        "wordstream: error: bucket s3://{bucket} does not exist (create it with --create-bucket)"
    );
    fails(upload_demo(&["--bucket", &bucket], &[]), &line).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn upload_with_a_wrong_secret_key() {
    let _stack = shared().await;
    let wrong = format!("wrong-{}", unique_name("secret"));
    let wrong_secret = [("AWS_SECRET_ACCESS_KEY", wrong.as_str())];
    let r = fails(upload_demo(&[], &wrong_secret), &cannot_list(BAD_SIGNATURE)).await;
    no_secret(&r, &wrong);
    // traced: the SDK's own lines too, still no secret
    let traced = [wrong_secret[0], ("RUST_LOG", "trace")];
    let r = run(upload_demo(&[], &traced)).await;
    no_secret(&r, &wrong);
    no_secret(&r, &stack().secret_key);
    assert_eq!(r.code, Some(1));
    // the original app's SECRET_KEY alias, wrong too
    let mut c = upload_demo(&[], &[("SECRET_KEY", &wrong)]);
    c.env_remove("AWS_SECRET_ACCESS_KEY");
    let r = run(c).await;
    no_secret(&r, &wrong);
    assert!(
        r.stderr.contains("SignatureDoesNotMatch"),
        "SECRET_KEY is used: {}",
        r.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn upload_with_an_unknown_access_key() {
    let _stack = shared().await;
    let c = upload_demo(&[], &[("AWS_ACCESS_KEY_ID", "nobody-here")]);
    let line = cannot_list("XAdminUserNotFound: No user exists with the provided access key ID.");
    fails(c, &line).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_in_a_traced_successful_upload() {
    let st = shared().await;
    let bucket = st.new_bucket("secret-trace").await;
    let c = upload_demo(&["--bucket", &bucket], &[("RUST_LOG", "trace")]);
    let r = run(c).await.ok();
    assert!(r.stderr.len() > 1000, "trace logs were written");
    no_secret(&r, &st.secret_key);
}

#[tokio::test(flavor = "multi_thread")]
async fn upload_to_an_unreachable_s3_endpoint() {
    let st = shared().await;
    let c = upload_demo(&[], &[("AWS_ENDPOINT_URL", "http://127.0.0.1:1")]);
    let line = format!(
        "wordstream: error: cannot list s3://{}: cannot reach the S3 endpoint \
         http://127.0.0.1:1: Connection refused (os error 111)",
        st.bucket
    );
    fails(c, &line).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn consume_from_an_unreachable_broker() {
    let _stack = shared().await;
    let c = with_env(
        &["consume", "-e", "--connect-timeout", "2"],
        &[("KAFKA_BROKERS", "127.0.0.1:1")],
    );
    let r = fails(
        c,
        "wordstream: error: cannot reach Kafka broker(s) at 127.0.0.1:1 within 2 s: Meta data \
         fetch error: BrokerTransportFailure (Local: Broker transport failure)",
    )
    .await;
    assert!(
        r.took >= Duration::from_millis(1900) && r.took < Duration::from_secs(8),
        "a bounded wait of about 2 s, took {:?}",
        r.took
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn consume_of_an_unknown_topic() {
    let _stack = shared().await;
    let topic = unique_name("missing-topic");
    let line = format!("wordstream: error: topic {topic} does not exist");
    fails(with_env(&["consume", "--topic", &topic, "-e"], &[]), &line).await;
    // the default topic comes from --app-id
    let app = unique_name("missing-app");
    let line = format!("wordstream: error: topic {app}-word_counts-changelog does not exist");
    fails(with_env(&["consume", "--app-id", &app], &[]), &line).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn consume_flag_mistakes() {
    let _stack = shared().await;
    for (args, line) in [
        (
            ["-f", "%k %x"],
            "wordstream: error: --format-string: unknown token %x (use %k %s %t %p %o %T)",
        ),
        (
            ["--top", "3"],
            "wordstream: error: --top needs --output table",
        ),
    ] {
        fails(with_env(&["consume", args[0], args[1]], &[]), line).await;
    }
}
