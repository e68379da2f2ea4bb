//! End-to-end tests of `wordstream worker` against the real local stack
//! (`scripts/stack up`): the real binary as a child process, objects
//! uploaded with aws-sdk-s3, the changelog and the ledger read back with a
//! read_committed consumer (latest value per key), expected counts from the
//! library's core or from `wordstream count-local`.
//!
//! What the worker did is read from its typed events (`--log-format json`),
//! the topics, or the ledger; never from log prose.
//! Fault injection (kill -9, broker restart, S3 outage) is in `worker_faults`.

use std::path::PathBuf;
use std::time::{Duration, Instant};
use testkit::app::App;
use testkit::cli::{cmd, run_for};
use testkit::corpus::{self, test_bytes};
use testkit::counts::{add_counts, count_bytes, count_local, times, Counts};
use testkit::events::assignments;
use testkit::names::unique_name;
use testkit::stack::{shared, stack};
use testkit::worker::READY;

/// The original's seed demo: A1, A2, A3 are three copies of one file, so after
/// each upload every count is 1×, 2×, 3× the count of A1, exactly.
#[tokio::test(flavor = "multi_thread")]
async fn seed_demo_counts_then_doubles_then_triples() {
    let _stack = shared().await;
    let (app, mut w) = App::with_worker("ws-demo", "demo-1", &[]).await;

    let a1_path = corpus::file("demo/A1.headed.txt");
    let a1 = count_bytes(&corpus::read("demo/A1.headed.txt"));
    assert_eq!(
        count_local(std::slice::from_ref(&a1_path)),
        a1,
        "the core and count-local disagree on A1"
    );
    assert_eq!(
        a1["the"], 119,
        "A1's count of `the` (the manual demo's figure)"
    );

    for (i, name) in ["A1", "A2", "A3"].iter().enumerate() {
        let file = format!("{name}.headed.txt");
        app.put(&file, corpus::read(&format!("demo/{file}"))).await;
        let want = times(&a1, i as i64 + 1);
        app.wait_for_totals(&want, Duration::from_secs(60), &[&w])
            .await;
        w.assert_running();
    }
    let latest = app.ledger_latest().await;
    assert_eq!(latest.len(), 3, "{latest:?}");
    for (k, v) in &latest {
        assert_eq!(v["state"], "counted", "{k}: {v}");
        assert_eq!(v["words"], a1.values().sum::<i64>(), "{k}: {v}");
        assert_eq!(v["worker"], "demo-1", "{k}: {v}");
    }
    w.stop().await;
}

/// The changelog's bytes, per `--serde`: Faust's JSON (`"the"` → `119`,
/// key escaped as Python's json.dumps does, partitioned with murmur2 like
/// Faust and the Java client), Kafka Streams' 8-byte long, plain text.
#[tokio::test(flavor = "multi_thread")]
async fn changelog_bytes_per_serde() {
    let _stack = shared().await;
    let a1 = corpus::read("demo/A1.headed.txt");
    let extra = "naïve Ωmega 文字 𐍈x the".as_bytes();
    let mut data = a1.clone();
    data.extend_from_slice(b"\n");
    data.extend_from_slice(extra);
    let want = count_bytes(&data);
    let the = want["the"];
    assert_eq!(the, 120);

    let cases: [(&str, &[u8], Vec<u8>); 3] = [
        ("faust", b"\"the\"", b"120".to_vec()),
        ("kstreams", b"the", 120i64.to_be_bytes().to_vec()),
        ("text", b"the", b"120".to_vec()),
    ];
    let mut running = Vec::new();
    for (serde, _, _) in &cases {
        let app = App::new(&format!("ws-serde-{serde}")).await;
        let mut w = app.worker(&format!("serde-{serde}"), &["--serde", serde]);
        w.wait_ready(READY).await;
        app.put("A1-plus.txt", data.clone()).await;
        running.push((app, w));
    }
    for ((serde, key, value), (app, w)) in cases.iter().zip(running.iter_mut()) {
        let topic = app.changelog_topic();
        let deadline = Instant::now() + Duration::from_secs(60);
        let records = loop {
            let r = stack().read_to_end(&topic, "read_committed").await;
            if r.len() >= want.len() || Instant::now() > deadline {
                break r;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        assert_eq!(
            records.len(),
            want.len(),
            "{serde}: one record per distinct word after one object\n{}",
            w.log_tail(20)
        );
        let rec = records
            .iter()
            .find(|r| r.key.as_deref() == Some(*key))
            .unwrap_or_else(|| panic!("{serde}: no record with key bytes {key:?}"));
        assert_eq!(
            rec.value.as_deref(),
            Some(&value[..]),
            "{serde}: value bytes"
        );
        for r in &records {
            let k = r.key.as_deref().unwrap();
            assert_eq!(
                r.partition,
                wordstream::kafka::partition_for(k, 8),
                "{serde}: record {k:?} not in its murmur2 partition"
            );
        }
        if *serde == "faust" {
            let keys: Vec<&[u8]> = records.iter().map(|r| r.key.as_deref().unwrap()).collect();
            for (word, k) in [
                ("naïve", &b"\"na\\u00efve\""[..]),
                ("Ωmega", b"\"\\u03a9mega\""),
                ("文字", b"\"\\u6587\\u5b57\""),
            ] {
                assert!(keys.contains(&k), "faust: no key {k:?} for {word}");
            }
            assert!(
                keys.iter().all(|k| k.is_ascii()),
                "faust keys are ASCII-only JSON"
            );
        }
        w.stop().await;
    }
}

/// The whole corpus (books + papers, 834 objects, 3.3 MB),
/// uploaded while the worker runs: totals equal count-local of the same
/// files exactly, and every object is counted once in the ledger.
#[tokio::test(flavor = "multi_thread")]
async fn corpus_uploaded_while_running_counts_exactly_once() {
    let _stack = shared().await;
    let root = corpus::root();
    let files = corpus::objects(&["books", "papers"]);
    assert!(files.len() >= 800, "corpus has {} files", files.len());
    let want = count_local(&[root.join("books"), root.join("papers")]);
    let (app, mut w) = App::with_worker("ws-corpus", "corpus-1", &[]).await;

    let started = Instant::now();
    app.put_files(&files, 16).await;
    let uploaded = started.elapsed();
    let urls: Vec<String> = files.iter().map(|(k, _)| app.url(k)).collect();
    app.wait_for_done(&urls, Duration::from_secs(300), &[&w])
        .await;
    app.wait_for_totals(&want, Duration::from_secs(60), &[&w])
        .await;
    eprintln!(
        "corpus: {} objects uploaded in {:.1} s, counted and totalled in {:.1} s",
        files.len(),
        uploaded.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );

    let ledger = app.ledger().await;
    let mut counted: std::collections::BTreeMap<&str, usize> = Default::default();
    for (k, v) in &ledger {
        if v["state"] == "counted" {
            *counted.entry(k.as_str()).or_default() += 1;
        } else {
            assert_eq!(v["state"], "discovered", "{k}: {v}");
        }
    }
    let mut expected_keys: Vec<&str> = urls.iter().map(String::as_str).collect();
    expected_keys.sort();
    assert_eq!(
        counted.keys().copied().collect::<Vec<_>>(),
        expected_keys,
        "the set of counted objects"
    );
    let twice: Vec<_> = counted.iter().filter(|(_, &n)| n != 1).collect();
    assert!(twice.is_empty(), "counted more than once: {twice:?}");
    let words: i64 = ledger
        .iter()
        .filter(|(_, v)| v["state"] == "counted")
        .map(|(_, v)| v["words"].as_i64().unwrap())
        .sum();
    assert_eq!(words, want.values().sum::<i64>(), "ledger word totals");
    w.assert_running();
    w.stop().await;
}

/// A 200 MB single-line object: a paragraph repeated, parts cut at
/// paragraph boundaries so that the expected counts are the paragraph's
/// times the repetitions.
const PARAGRAPH: &str = "It was the best of times, it was the worst of times; \
    naïve Ωmega 文字 café H2O x_1 señor 𐍈x and the end ";

/// Bad objects do not stop the worker, and the ledger says what became of
/// each: empty, random bytes, invalid UTF-8, a 200 MB single line (streamed
/// with multipart), keys with spaces and non-ASCII, a 2 MiB token (too long
/// for a Kafka record: skipped, the object counted), an object deleted
/// between listing and reading (failed). Totals equal the core's count of what was readable.
#[tokio::test(flavor = "multi_thread")]
async fn bad_objects_are_counted_or_failed_and_never_block() {
    let _stack = shared().await;
    let app = App::new("ws-bad").await;
    let mut w = app.worker("bad-1", &[]);

    let random = test_bytes(1 << 20, 42);
    let mut invalid = Vec::new();
    for _ in 0..1000 {
        invalid.extend_from_slice(
            b"hello \xff\xfe world caf\xc3 na\xc3\xafve \xed\xa0\x80 end\xc0\xaf ",
        );
    }
    let a1 = corpus::read("demo/A1.headed.txt");
    let odd_key = "bad/with space/naïve Ωmega 文字.txt";

    let para = PARAGRAPH.as_bytes();
    let per_part = (16 << 20) / para.len();
    let parts = 12;
    let big_key = "bad/one line 200MB.txt";
    let big_size = (per_part * para.len() * parts) as u64;
    assert!(big_size >= 200_000_000, "{big_size}");
    let para_counts = count_bytes(para);

    let mut want = Counts::new();
    for data in [&random, &invalid, &a1] {
        add_counts(&mut want, &count_bytes(data), 1);
    }
    add_counts(&mut want, &para_counts, (per_part * parts) as i64);
    let canary = b"canary canary canary".to_vec();
    add_counts(&mut want, &count_bytes(&canary), 1);

    w.wait_ready(READY).await;
    app.put("bad/empty.txt", Vec::new()).await;
    app.put("bad/random.bin", random.clone()).await;
    app.put("bad/invalid-utf8.txt", invalid.clone()).await;
    app.put(odd_key, a1.clone()).await;
    app.put("bad/huge-token.txt", vec![b'a'; 2 << 20]).await;
    app.put_repeated(big_key, para, per_part * parts).await;
    // Deleted between listing and reading: the ledger record a discovery
    // writes when it lists the object, for an object that is gone when the
    // count stage reads it (uploading and deleting it here would race with
    // the listing, which may count it first).
    app.inject_discovered(&app.url("bad/vanished.txt"), "\"0\"", 1, 8)
        .await;
    app.put("bad/zz-canary.txt", canary.clone()).await;

    let keys = [
        "bad/empty.txt",
        "bad/random.bin",
        "bad/invalid-utf8.txt",
        odd_key,
        "bad/huge-token.txt",
        big_key,
        "bad/vanished.txt",
        "bad/zz-canary.txt",
    ];
    let urls: Vec<String> = keys.iter().map(|k| app.url(k)).collect();
    let latest = app
        .wait_settled(&urls, &want, Duration::from_secs(300), &mut w)
        .await;
    let entry = |k: &str| latest[&app.url(k)].clone();
    let state = |k: &str| entry(k)["state"].as_str().unwrap().to_string();
    assert_eq!(state("bad/empty.txt"), "counted");
    assert_eq!(entry("bad/empty.txt")["words"], 0);
    assert_eq!(entry("bad/empty.txt")["size"], 0);
    assert_eq!(state("bad/random.bin"), "counted");
    assert!(entry("bad/random.bin")["invalid_bytes"].as_u64().unwrap() > 0);
    let mut c = wordstream::count::Counter::new(Default::default());
    c.feed(&invalid);
    let invalid_counts = c.finish();
    assert_eq!(state("bad/invalid-utf8.txt"), "counted");
    assert_eq!(
        entry("bad/invalid-utf8.txt")["invalid_bytes"].as_u64(),
        Some(invalid_counts.invalid_bytes)
    );
    assert_eq!(state(odd_key), "counted");
    assert_eq!(state(big_key), "counted");
    assert_eq!(entry(big_key)["size"].as_u64(), Some(big_size));
    assert_eq!(
        entry(big_key)["words"].as_i64(),
        Some(para_counts.values().sum::<i64>() * (per_part * parts) as i64)
    );
    assert_eq!(state("bad/huge-token.txt"), "counted");
    assert_eq!(entry("bad/huge-token.txt")["words"], 0);
    assert_eq!(entry("bad/huge-token.txt")["skipped_tokens"], 1);
    assert_eq!(state("bad/vanished.txt"), "failed");
    let reason = entry("bad/vanished.txt")["reason"].to_string();
    assert!(reason.contains("NoSuchKey"), "{reason}");
    assert_eq!(state("bad/zz-canary.txt"), "counted");
    w.stop().await;
    app.delete(big_key).await;
}

/// SIGINT and SIGTERM: exit 0 within a few seconds, also in the middle of
/// counting a large object (which then stays discovered and is counted
/// after a restart, once).
#[tokio::test(flavor = "multi_thread")]
async fn sigint_and_sigterm_exit_zero_promptly() {
    let _stack = shared().await;
    let app = App::new("ws-signals").await;

    // Idle worker, SIGINT.
    let mut w = app.worker("sig-1", &[]);
    w.wait_ready(READY).await;
    let took = w.stop_with(libc::SIGINT, Duration::from_secs(10)).await;
    assert!(took < Duration::from_secs(5), "SIGINT took {took:?}");

    // Busy worker (a 100 MB object), SIGTERM.
    let para = PARAGRAPH.as_bytes();
    let per_part = (10 << 20) / para.len();
    let parts = 10;
    app.put_repeated("big.txt", para, per_part * parts).await;
    let want = times(&count_bytes(para), (per_part * parts) as i64);
    let mut w = app.worker("sig-1", &[]);
    let url = app.url("big.txt");
    app.wait_for_ledger(&url, Duration::from_secs(60), &[&w])
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let took = w.stop_with(libc::SIGTERM, Duration::from_secs(10)).await;
    assert!(took < Duration::from_secs(5), "SIGTERM took {took:?}");

    let mut w = app.worker("sig-1", &[]);
    app.wait_for_done(std::slice::from_ref(&url), Duration::from_secs(180), &[&w])
        .await;
    app.wait_for_totals(&want, Duration::from_secs(60), &[&w])
        .await;
    let counted = app
        .ledger()
        .await
        .iter()
        .filter(|(k, v)| *k == url && v["state"] == "counted")
        .count();
    assert_eq!(counted, 1);
    w.stop().await;
    app.delete("big.txt").await;
}

/// Runs `worker --bucket B --app-id B FLAGS…` (B: `bucket`) with bad
/// settings, killed after 20 s; returns (exit code, stderr, time).
async fn run_failing(
    bucket: &str,
    flags: &[&str],
    env: &[(&str, &str)],
) -> (Option<i32>, String, Duration) {
    let mut c = cmd(stack(), &["worker", "--bucket", bucket, "--app-id", bucket]);
    c.args(flags);
    for (k, v) in env {
        c.env(k, v);
    }
    let r = run_for(c, Some(Duration::from_secs(20))).await;
    (r.code, r.stderr, r.took)
}

/// Startup errors: one line on stderr starting with `want`, exit 1, within
/// 15 s.
async fn assert_startup_error(bucket: &str, flags: &[&str], env: &[(&str, &str)], want: &str) {
    let (code, stderr, took) = run_failing(bucket, flags, env).await;
    assert_eq!(code, Some(1), "exit code; stderr:\n{stderr}");
    assert!(took < Duration::from_secs(15), "took {took:?}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stderr, got:\n{stderr}");
    assert!(
        lines[0].starts_with(want),
        "stderr line\n  {}\ndoes not start with\n  {want}",
        lines[0]
    );
}

/// A startup error case: bucket, worker flags, environment, the start of
/// the one stderr line.
type StartupCase<'a> = (&'a str, &'a [&'a str], &'a [(&'a str, &'a str)], String);

/// Startup errors, each one line on stderr and exit 1 within 15 s: an
/// unreachable broker, a wrong secret key, an unknown access key, a missing
/// bucket, a changelog that is not compacted.
#[tokio::test(flavor = "multi_thread")]
async fn startup_errors_are_one_line_and_exit_1() {
    let _stack = shared().await;
    let bucket = stack().new_bucket("ws-err").await;
    let missing = unique_name("ws-err-nobucket");
    let not_compacted = stack().new_bucket("ws-err-topic").await;
    let changelog = format!("{not_compacted}-word_counts-changelog");
    stack()
        .create_topic(&changelog, 8, &[("cleanup.policy", "delete")])
        .await;
    let error = |b: &str, e: &str| format!("wordstream: error: cannot list s3://{b}: {e}");
    let check = "(check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)";
    let cases: [StartupCase; 5] = [
        (
            &bucket,
            &["--brokers", "127.0.0.1:1"],
            &[],
            "wordstream: error: cannot reach Kafka broker(s) at 127.0.0.1:1 within 10 s: ".into(),
        ),
        (
            &bucket,
            &[],
            &[("AWS_SECRET_ACCESS_KEY", "not-the-secret")],
            error(&bucket, &format!("SignatureDoesNotMatch: The request signature we calculated does not match the signature you provided. Check your key and signing method. {check}")),
        ),
        // versitygw's code for an unknown access key (AWS says InvalidAccessKeyId)
        (
            &bucket,
            &[],
            &[("AWS_ACCESS_KEY_ID", "nobody")],
            error(&bucket, &format!("XAdminUserNotFound: No user exists with the provided access key ID. {check}")),
        ),
        (
            &missing,
            &[],
            &[],
            error(&missing, "NoSuchBucket: The specified bucket does not exist. (create it, e.g. with `wordstream upload --create-bucket`)"),
        ),
        (
            &not_compacted,
            &[],
            &[],
            format!("wordstream: error: topic {changelog} exists with cleanup.policy=delete; a changelog must be compacted"),
        ),
    ];
    futures::future::join_all(
        cases
            .iter()
            .map(|(b, flags, env, want)| assert_startup_error(b, flags, env, want)),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn startup_error_changelog_in_another_format() {
    let _stack = shared().await;
    // A changelog written with --serde kstreams, read with --serde faust:
    // the worker says so and exits 1 instead of counting from garbage.
    let app = App::new("ws-err-serde").await;
    // Default worker ids: dynamic membership, so the first leaves the
    // group at once when stopped.
    let mut w = app.worker("", &["--serde", "kstreams"]);
    w.wait_ready(READY).await;
    app.put("a.txt", b"one two two".to_vec()).await;
    let topic = app.changelog_topic();
    let deadline = Instant::now() + Duration::from_secs(60);
    while stack().read_to_end(&topic, "read_committed").await.len() < 2 {
        assert!(Instant::now() < deadline, "{}", w.log_tail(20));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    w.stop().await;
    let (code, stderr, took) = run_failing(&app.bucket, &[], &[]).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(took < Duration::from_secs(20), "took {took:?}");
    let last = stderr.lines().last().unwrap_or_default();
    assert_eq!(
        last,
        format!("wordstream: error: 2 records of {topic} do not decode with --serde faust: is the topic written in another format?"),
        "{stderr}"
    );
}

/// Small objects the lister finds in ledger partitions it owns (a single
/// worker owns them all) are counted in the batch that found them
/// (`worker::here`): the ledger holds one `counted` record of each and no
/// `discovered` one. A big object (over 1 MiB) still goes through the
/// ledger's queue: `discovered`, then `counted`.
#[tokio::test(flavor = "multi_thread")]
async fn small_objects_are_counted_in_the_batch_that_finds_them() {
    let _stack = shared().await;
    let (app, files) = App::with_papers("ws-here", 400, 40).await;
    let para = PARAGRAPH.as_bytes();
    let reps = (2 << 20) / para.len();
    app.put_repeated("big.txt", para, reps).await;
    let big = (
        "big.txt".to_string(),
        times(&count_bytes(para), reps as i64),
    );
    let mut w = app.worker("here-1", &[]);
    w.wait_ready(READY).await;
    app.assert_exactly_once(&files, &[big], Duration::from_secs(120), &[&w])
        .await;
    let mut history: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (k, v) in app.ledger().await {
        let state = v["state"].as_str().unwrap_or("?").to_string();
        history.entry(k).or_default().push(state);
    }
    for (k, _) in &files {
        assert_eq!(history[&app.url(k)], ["counted"], "ledger records of {k}");
    }
    assert_eq!(
        history[&app.url("big.txt")],
        ["discovered", "counted"],
        "ledger records of big.txt"
    );
    w.stop().await;
}

/// Two workers with the same app id split the partitions (one group); one
/// leaves mid-run (SIGTERM, default id: dynamic membership, leaves at once)
/// and the other takes over its partitions: totals exact, each object
/// counted once, by one of the two.
#[tokio::test(flavor = "multi_thread")]
async fn two_workers_share_the_work_and_hand_over_on_stop() {
    let _stack = shared().await;
    let app = App::new("ws-two").await;
    let files = corpus::papers(100, 300);
    let paths: Vec<PathBuf> = files.iter().map(|(_, p)| p.clone()).collect();
    let want = count_local(&paths);

    let mut w1 = app.worker("", &[]);
    let mut w2 = app.worker("", &[]);
    w1.wait_ready(READY).await;
    w2.wait_ready(READY).await;
    app.put_files(&files[..150], 16).await;
    let half: Vec<String> = files[..150].iter().map(|(k, _)| app.url(k)).collect();
    app.wait_for_done(&half, Duration::from_secs(120), &[&w2])
        .await;
    w1.stop().await;
    app.put_files(&files[150..], 16).await;
    let urls: Vec<String> = files.iter().map(|(k, _)| app.url(k)).collect();
    app.wait_for_done(&urls, Duration::from_secs(180), &[&w2])
        .await;
    app.wait_for_totals(&want, Duration::from_secs(60), &[&w2])
        .await;

    let mut counted: std::collections::BTreeMap<String, usize> = Default::default();
    let mut by_worker: std::collections::BTreeMap<String, usize> = Default::default();
    for (k, v) in app.ledger().await {
        if v["state"] == "counted" {
            *counted.entry(k).or_default() += 1;
            *by_worker
                .entry(v["worker"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
    }
    assert_eq!(counted.len(), files.len());
    assert!(
        counted.values().all(|&n| n == 1),
        "counted twice: {counted:?}"
    );
    assert_eq!(by_worker.len(), 2, "both workers counted: {by_worker:?}");
    for w in [&w1, &w2] {
        assert!(
            !assignments(&w.lines()).is_empty(),
            "{} was assigned partitions\n{}",
            w.name,
            w.log_tail(30)
        );
    }
    w2.assert_running();
    w2.stop().await;
}
