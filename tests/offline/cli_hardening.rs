//! Issue 18, the findings that need no stack: `.env` errors without
//! values, named streams in `count-local`, bounded numeric flags, refused
//! prefixes, escaped keys, completions, URL-encoded listings and an S3
//! endpoint that never answers (both against a local fake endpoint).

use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use testkit::cli::{offline_cmd, run, run_for, shell, Run};
use testkit::s3::FakeEndpoint;
use wordstream::worker::discover::{Discovery, Known, RECONCILE_EVERY};

/// clap's refusal of a flag value: exit 2 and exactly this text.
fn refused(r: &Run, flag: &str, value: &str, why: &str) {
    assert_eq!(r.code, Some(2), "{}{}", r.stdout, r.stderr);
    assert_eq!(
        r.stderr,
        format!(
            "error: invalid value '{value}' for '{flag}': {why}\n\n\
             For more information, try '--help'.\n"
        )
    );
}

fn write(path: &Path, text: &[u8]) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

fn mkfifo(path: &Path) {
    let st = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo");
    assert!(st.success());
}

/// Item 3: a malformed `.env` line is named by file, line and variable;
/// its value never shows. Also: a missing WORDSTREAM_ENV_FILE is named, and
/// a directory is one reason, not the same one twice.
#[tokio::test]
async fn env_file_errors_name_the_line_and_variable_never_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[&str], &str); 2] = [
        (
            "AWS_REGION=eu-west-1\nAWS_SECRET_ACCESS_KEY=\"topsecretvalue123\nX=1\n",
            &["topsecretvalue123", "topsecret"],
            "line 2: the value of AWS_SECRET_ACCESS_KEY is malformed",
        ),
        (
            "# the broker's password\nKAFKA_SASL_PASSWORD=pa ss word\n",
            &["pa ss word", "ss word"],
            "line 2: the value of KAFKA_SASL_PASSWORD is malformed",
        ),
    ];
    for (i, (text, secrets, what)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("case{i}.env"));
        write(&path, text.as_bytes());
        let mut c = offline_cmd(&["count-local", "-q", "-"]);
        c.env("WORDSTREAM_ENV_FILE", &path);
        let r = run(c).await;
        for s in *secrets {
            assert!(
                !r.all_output().contains(s),
                "{s} leaked: {}",
                r.all_output()
            );
        }
        r.fails_with(&format!(
            "wordstream: error: cannot read {}: {what} (quote a value that holds spaces, \
             and close every quote); the value is not shown",
            path.display()
        ));
    }
    // a line without NAME=: its text is not shown either
    let path = dir.path().join("bare.env");
    write(&path, b"A=1\nhunter2 is the password\n");
    let mut c = offline_cmd(&["count-local", "-q", "-"]);
    c.env("WORDSTREAM_ENV_FILE", &path);
    run(c).await.fails_with(&format!(
        "wordstream: error: cannot read {}: line 2 is not NAME=value (its text is not shown)",
        path.display()
    ));

    let missing = dir.path().join("missing.env");
    let mut c = offline_cmd(&["count-local", "-q", "-"]);
    c.env("WORDSTREAM_ENV_FILE", &missing);
    run(c).await.fails_with(&format!(
        "wordstream: error: WORDSTREAM_ENV_FILE={}: no such file",
        missing.display()
    ));

    let mut c = offline_cmd(&["count-local", "-q", "-"]);
    c.env("WORDSTREAM_ENV_FILE", dir.path());
    run(c).await.fails_with(&format!(
        "wordstream: error: cannot read {}: Is a directory (os error 21)",
        dir.path().display()
    ));
}

/// Item 7: a FIFO, `/dev/stdin` on a pipe and `<(cmd)` named on the
/// command line are read to their end.
#[tokio::test]
async fn count_local_reads_named_streams() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo);
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut f = std::fs::OpenOptions::new().write(true).open(fifo).unwrap();
            f.write_all(b"x y x\n").unwrap();
        })
    };
    let r = run_for(
        offline_cmd(&["count-local", "-q", "-o", "tsv", fifo.to_str().unwrap()]),
        Some(Duration::from_secs(60)),
    )
    .await
    .ok();
    assert_eq!(r.stdout, "x\t2\ny\t1\n");
    // (joined only once the FIFO was read: a reader that skips it leaves
    // the writer blocked in open)
    writer.join().unwrap();

    let c = offline_cmd(&["count-local", "-q", "-o", "tsv", "/dev/stdin"]);
    let r = shell(&c, "< <(printf 'b a b\\n')").await.ok();
    assert_eq!(r.stdout, "b\t2\na\t1\n");

    let c = offline_cmd(&["count-local", "-q", "-o", "tsv"]);
    let r = shell(&c, "<(printf 'p q p\\n') <(printf 'q\\n')")
        .await
        .ok();
    assert_eq!(r.stdout, "p\t2\nq\t2\n");
}

/// Item 7: a directory walk counts regular files only; `-v` names what it
/// skips.
#[tokio::test]
async fn a_directory_walk_skips_fifos_and_says_so_with_v() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("a.txt"), b"w w\n");
    let fifo = dir.path().join("b.fifo");
    mkfifo(&fifo);
    let d = dir.path().to_str().unwrap();
    let r = run_for(
        offline_cmd(&["count-local", "-q", "-o", "tsv", d]),
        Some(Duration::from_secs(60)),
    )
    .await
    .ok();
    assert_eq!(r.stdout, "w\t2\n");
    assert_eq!(r.stderr, "");
    let r = run_for(
        offline_cmd(&[
            "--log-format",
            "json",
            "count-local",
            "-q",
            "-v",
            "-o",
            "tsv",
            d,
        ]),
        Some(Duration::from_secs(60)),
    )
    .await
    .ok();
    assert_eq!(r.stdout, "w\t2\n");
    let messages: Vec<String> = r
        .stderr
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("a JSON log line");
            format!(
                "{} {}",
                v["level"].as_str().unwrap(),
                v["message"].as_str().unwrap()
            )
        })
        .collect();
    // -v also names each counted file's format (`<file>: text`)
    let (formats, others): (Vec<&String>, Vec<&String>) =
        messages.iter().partition(|m| m.ends_with(": text"));
    assert_eq!(
        others,
        [&format!(
            "INFO skipping {}: not a regular file",
            fifo.display()
        )]
    );
    assert!(!formats.is_empty(), "{messages:?}");
}

/// Item 12: --threads is capped (and more threads than the work needs are
/// not started).
#[tokio::test]
async fn count_local_threads_are_capped() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    write(&a, b"one two\n");
    write(&b, b"two\n");
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let r = run(offline_cmd(&["count-local", "--threads", "20000", a, b])).await;
    refused(&r, "--threads <N>", "20000", "20000 is not in 1..=256");
    let r = run(offline_cmd(&["count-local", "--threads", "0", a])).await;
    refused(&r, "--threads <N>", "0", "0 is not in 1..=256");
    let most = ["count-local", "-q", "-o", "tsv", "--threads", "256", a, b];
    let r = run(offline_cmd(&most)).await.ok();
    assert_eq!(r.stdout, "two\t2\none\t1\n");
}

/// Item 11 and the misleading minimums: durations that overflow, or make
/// no sense, are refused before anything connects.
#[tokio::test]
async fn extreme_durations_are_refused() {
    let huge = "18446744073709551615";
    let nowhere = |args: &[&str]| {
        let mut c = offline_cmd(args);
        c.env("KAFKA_BROKERS", "127.0.0.1:1")
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:1");
        c
    };
    for args in [
        &["worker", "--bucket", "b", "--connect-timeout", huge][..],
        &["consume", "--connect-timeout", huge],
        &["count-local", "--verify", "--connect-timeout", huge, "-"],
    ] {
        let r = run_for(nowhere(args), Some(Duration::from_secs(60))).await;
        refused(
            &r,
            "--connect-timeout <SECS>",
            huge,
            &format!("{huge} is not in 1..=3600"),
        );
    }
    let r = run(nowhere(&["consume", "--connect-timeout", "0"])).await;
    refused(&r, "--connect-timeout <SECS>", "0", "0 is not in 1..=3600");
    let status_forever = ["worker", "--bucket", "b", "--status-interval", huge];
    let r = run(nowhere(&status_forever)).await;
    refused(
        &r,
        "--status-interval <SECS>",
        huge,
        &format!("{huge} is not in 1..=86400"),
    );
    for interval in ["1e-9", "0.05", "0", "-1", "1e20", "NaN", "inf"] {
        let flag = format!("--interval={interval}");
        let r = run_for(
            nowhere(&["worker", "--bucket", "b", "--connect-timeout", "1", &flag]),
            Some(Duration::from_secs(60)),
        )
        .await;
        r.fails_with("wordstream: error: --interval must be between 0.1 and 86400 seconds");
    }
    let r = run(nowhere(&[
        "upload",
        "--dry-run",
        "--bucket",
        "b",
        "--s3-timeout",
        "0",
        "-",
    ]))
    .await;
    refused(&r, "--s3-timeout <SECS>", "0", "0 is not in 1..=3600");
}

/// `--bucket ""` is refused by the flag parser, not by the SDK.
#[tokio::test]
async fn an_empty_bucket_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("a.txt");
    write(&f, b"a\n");
    let r = run(offline_cmd(&[
        "upload",
        "--dry-run",
        "--bucket",
        "",
        f.to_str().unwrap(),
    ]))
    .await;
    assert_eq!(r.code, Some(2), "{}{}", r.stdout, r.stderr);
    assert_eq!(
        r.stderr,
        "error: a value is required for '--bucket <BUCKET>' but none was supplied\n\n\
         For more information, try '--help'.\n"
    );
}

/// `--prefix //` or `/abs` would build keys with a leading slash (on
/// versitygw `//a.txt` overwrote `a.txt`): refused.
#[tokio::test]
async fn upload_refuses_prefixes_that_are_not_key_prefixes() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("a.txt");
    write(&f, b"a\n");
    let dry_run = |prefix: &str| {
        let args = ["upload", "--dry-run", "--bucket", "b", "--prefix", prefix];
        let mut c = offline_cmd(&args);
        c.arg(&f);
        run(c)
    };
    for prefix in ["//", "/abs", "a//b", "../up", "./here"] {
        let r = dry_run(prefix).await;
        r.fails_with(&format!(
            "wordstream: error: --prefix {prefix}: a key prefix may not start with / or hold \
             //, . or .. segments (e.g. --prefix papers/2026/)"
        ));
    }
    let r = dry_run("papers/2026").await.ok();
    assert_eq!(
        r.stdout,
        format!(
            "would upload {} -> s3://b/papers/2026/a.txt (2 bytes, 1 PUT)\n\
             dry run: 1 files, 2 bytes; nothing uploaded\n",
            f.display()
        )
    );
}

/// Cosmetic: control characters and ESC sequences in keys are escaped in
/// the dry run, as git quotes odd path names.
#[tokio::test]
async fn upload_dry_run_escapes_control_characters() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("ctl\x01x.txt"), b"one two\n");
    write(&dir.path().join("esc\x1b[31mred.txt"), b"four\n");
    write(&dir.path().join("nl\nx.txt"), b"three\n");
    let d = dir.path().to_str().unwrap();
    let r = run(offline_cmd(&[
        "upload",
        "--dry-run",
        "--bucket",
        "b",
        "-r",
        d,
    ]))
    .await
    .ok();
    assert_eq!(
        r.stdout,
        format!(
            "would upload \"{d}/ctl\\x01x.txt\" -> \"s3://b/ctl\\x01x.txt\" (8 bytes, 1 PUT)\n\
             would upload \"{d}/esc\\x1b[31mred.txt\" -> \"s3://b/esc\\x1b[31mred.txt\" (5 bytes, 1 PUT)\n\
             would upload \"{d}/nl\\nx.txt\" -> \"s3://b/nl\\nx.txt\" (6 bytes, 1 PUT)\n\
             dry run: 3 files, 19 bytes; nothing uploaded\n"
        )
    );
}

/// `completions --help` shows SHELL as required; `completions bash | true`
/// is not an error.
#[tokio::test]
async fn completions_shell_is_required_and_a_closed_pipe_is_fine() {
    let r = run(offline_cmd(&["completions", "--help"])).await.ok();
    assert!(
        r.stdout
            .contains("\nUsage: wordstream completions [OPTIONS] <SHELL>\n"),
        "{}",
        r.stdout
    );
    let r = shell(&offline_cmd(&["completions", "bash"]), "| true").await;
    assert_eq!((r.code, r.stderr.as_str()), (Some(0), ""));
    let r = run(offline_cmd(&["completions"])).await;
    assert_eq!(r.code, Some(2));
}

/// The ListObjectsV2 answer of AWS to `encoding-type=url`, with keys that
/// hold control characters, a newline, ESC, a space, a plus sign, and one
/// that is not UTF-8 once decoded.
const ENCODED_LISTING: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix></Prefix><KeyCount>5</KeyCount><MaxKeys>1000</MaxKeys><EncodingType>url</EncodingType><IsTruncated>false</IsTruncated><Contents><Key>a+b%2Bc.txt</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>"e1"</ETag><Size>5</Size><StorageClass>STANDARD</StorageClass></Contents><Contents><Key>bad%FFname.txt</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>"e2"</ETag><Size>6</Size><StorageClass>STANDARD</StorageClass></Contents><Contents><Key>names/ctl%01x.txt</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>"e3"</ETag><Size>8</Size><StorageClass>STANDARD</StorageClass></Contents><Contents><Key>nl%0Ay%1B%5B1m.txt</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>"e4"</ETag><Size>9</Size><StorageClass>STANDARD</StorageClass></Contents><Contents><Key>na%C3%AFve.txt</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>"e5"</ETag><Size>3</Size><StorageClass>STANDARD</StorageClass></Contents></ListBucketResult>"#;

/// Item 2: discovery asks for `encoding-type=url` and decodes the keys
/// (AWS's answer, from a fake endpoint); a key that is not UTF-8 is skipped.
#[tokio::test]
async fn listings_ask_for_url_encoded_keys_and_decode_them() {
    let fake = FakeEndpoint::start(Some(ENCODED_LISTING.to_string()));
    let client = testkit::s3::client_at(&fake.url, "us-east-1", "k", "s");
    let mut d = Discovery::new("b", "", Known::new("b"), RECONCILE_EVERY);
    let listed = d.poll(&client, true, Duration::from_secs(10)).await;
    assert!(listed.error.is_none(), "{:?}", listed.error);
    let found = listed.found;
    let keys: Vec<(&str, &str, u64)> = found
        .iter()
        .map(|f| (f.key.as_str(), f.etag.as_str(), f.size))
        .collect();
    assert_eq!(
        keys,
        [
            ("a b+c.txt", "\"e1\"", 5),
            ("names/ctl\u{1}x.txt", "\"e3\"", 8),
            ("naïve.txt", "\"e5\"", 3),
            ("nl\ny\u{1b}[1m.txt", "\"e4\"", 9),
        ]
    );
    let heads = fake.requests();
    assert_eq!(heads.len(), 1, "{heads:?}");
    let request_line = heads[0].lines().next().unwrap();
    assert!(
        request_line == "GET /b/?list-type=2&encoding-type=url HTTP/1.1",
        "{request_line}"
    );
}

/// Item 5: `upload` gives up on an endpoint that accepts connections and
/// never answers, with one line naming it (S3_TIMEOUT, --s3-timeout's
/// variable: 2 s per attempt, 6 s in all at most).
#[tokio::test]
async fn upload_gives_up_on_an_endpoint_that_never_answers() {
    let fake = FakeEndpoint::start(None);
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("a.txt");
    write(&f, b"a\n");
    let mut c = offline_cmd(&["upload", "--bucket", "b", f.to_str().unwrap()]);
    c.env("AWS_ENDPOINT_URL", &fake.url)
        .env("AWS_ACCESS_KEY_ID", "k")
        .env("AWS_SECRET_ACCESS_KEY", "s")
        .env("AWS_REGION", "us-east-1")
        .env("S3_TIMEOUT", "2")
        .stdout(Stdio::piped());
    let r = run_for(c, Some(Duration::from_secs(60))).await;
    assert!(
        r.took >= Duration::from_secs(2) && r.took < Duration::from_secs(15),
        "took {:?}",
        r.took
    );
    r.fails_with(&format!(
        "wordstream: error: cannot list s3://b: the S3 endpoint {} did not answer within 2 s \
         (--s3-timeout)",
        fake.url
    ));
    assert!(!fake.requests().is_empty());
}
