//! e2e: bad input gives one line on stderr naming the thing, exit code 1,
//! and no secret in any output.

use std::time::Duration;
use testkit::cli::{cmd, run, wordstream, Run};
use testkit::corpus;
use testkit::names::unique_name;
use testkit::stack::shared;

fn demo_file() -> String {
    corpus::file("demo/A1.headed.txt")
        .to_str()
        .unwrap()
        .to_string()
}

/// The run must not show `secret` anywhere.
fn no_secret(r: &Run, secret: &str) {
    assert!(
        !r.all_output().contains(secret),
        "the secret appears in the output:\n{}",
        r.all_output()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn upload_of_a_missing_file() {
    let st = shared().await;
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.txt");
    let missing = missing.to_str().unwrap();
    let r = wordstream(&st, &["upload", &demo_file(), missing])
        .await
        .fails_with(&format!(
            "wordstream: error: cannot upload {missing}: no such file or directory"
        ));
    no_secret(&r, &st.secret_key);
}

#[tokio::test(flavor = "multi_thread")]
async fn upload_of_a_directory_without_recursive() {
    let st = shared().await;
    let dir = corpus::root().join("demo");
    let dir = dir.to_str().unwrap();
    wordstream(&st, &["upload", dir]).await.fails_with(&format!(
        "wordstream: error: {dir} is a directory (use --recursive to upload its files)"
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn upload_to_a_missing_bucket() {
    let st = shared().await;
    let bucket = unique_name("no-such-bucket");
    let r = wordstream(&st, &["upload", "--bucket", &bucket, &demo_file()])
        .await
        .fails_with(&format!(
            "wordstream: error: bucket s3://{bucket} does not exist (create it with --create-bucket)"
        ));
    no_secret(&r, &st.secret_key);
}

#[tokio::test(flavor = "multi_thread")]
async fn upload_with_a_wrong_secret_key() {
    let st = shared().await;
    let wrong = format!("wrong-{}", unique_name("secret"));
    for log in [None, Some("trace")] {
        let mut c = cmd(&st, &["upload", &demo_file()]);
        c.env("AWS_SECRET_ACCESS_KEY", &wrong);
        if let Some(level) = log {
            c.env("RUST_LOG", level);
        }
        let r = run(c).await;
        no_secret(&r, &wrong);
        no_secret(&r, &st.secret_key);
        if log.is_none() {
            r.fails_with(&format!(
                "wordstream: error: cannot list s3://{}: SignatureDoesNotMatch: The request \
                 signature we calculated does not match the signature you provided. Check your \
                 key and signing method. (check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)",
                st.bucket
            ));
        } else {
            assert_eq!(r.code, Some(1));
        }
    }
    // the original app's SECRET_KEY alias, wrong too
    let mut c = cmd(&st, &["upload", &demo_file()]);
    c.env_remove("AWS_SECRET_ACCESS_KEY")
        .env("SECRET_KEY", &wrong);
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
    let st = shared().await;
    let r = {
        let mut c = cmd(&st, &["upload", &demo_file()]);
        c.env("AWS_ACCESS_KEY_ID", "nobody-here");
        run(c).await
    };
    no_secret(&r, &st.secret_key);
    r.fails_with(&format!(
        "wordstream: error: cannot list s3://{}: XAdminUserNotFound: No user exists with the \
         provided access key ID. (check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)",
        st.bucket
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_in_a_traced_successful_upload() {
    let st = shared().await;
    let bucket = unique_name("secret-trace");
    st.create_bucket(&bucket).await;
    let mut c = cmd(&st, &["upload", "--bucket", &bucket, &demo_file()]);
    c.env("RUST_LOG", "trace");
    let r = run(c).await.ok();
    assert!(r.stderr.len() > 1000, "trace logs were written");
    no_secret(&r, &st.secret_key);
}

#[tokio::test(flavor = "multi_thread")]
async fn upload_to_an_unreachable_s3_endpoint() {
    let st = shared().await;
    let mut c = cmd(&st, &["upload", &demo_file()]);
    c.env("AWS_ENDPOINT_URL", "http://127.0.0.1:1");
    let r = run(c).await;
    no_secret(&r, &st.secret_key);
    r.fails_with(&format!(
        "wordstream: error: cannot list s3://{}: cannot reach the S3 endpoint: Connection \
         refused (os error 111)",
        st.bucket
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn consume_from_an_unreachable_broker() {
    let st = shared().await;
    let mut c = cmd(&st, &["consume", "-e", "--connect-timeout", "2"]);
    c.env("KAFKA_BROKERS", "127.0.0.1:1");
    let r = run(c).await;
    assert!(
        r.took >= Duration::from_millis(1900) && r.took < Duration::from_secs(8),
        "a bounded wait of about 2 s, took {:?}",
        r.took
    );
    r.fails_with(
        "wordstream: error: cannot reach Kafka broker(s) at 127.0.0.1:1 within 2 s: Meta data \
         fetch error: BrokerTransportFailure (Local: Broker transport failure)",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn consume_of_an_unknown_topic() {
    let st = shared().await;
    let topic = unique_name("missing-topic");
    wordstream(&st, &["consume", "--topic", &topic, "-e"])
        .await
        .fails_with(&format!("wordstream: error: topic {topic} does not exist"));
    // the default topic comes from --app-id
    let app = unique_name("missing-app");
    wordstream(&st, &["consume", "--app-id", &app])
        .await
        .fails_with(&format!(
            "wordstream: error: topic {app}-word_counts-changelog does not exist"
        ));
}

#[tokio::test(flavor = "multi_thread")]
async fn consume_flag_mistakes() {
    let st = shared().await;
    wordstream(&st, &["consume", "-f", "%k %x"])
        .await
        .fails_with("wordstream: error: --format-string: unknown token %x (use %k %s %t %p %o %T)");
    wordstream(&st, &["consume", "--top", "3"])
        .await
        .fails_with("wordstream: error: --top needs --output table");
}
