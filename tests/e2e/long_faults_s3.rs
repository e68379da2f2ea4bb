//! Long faults on the S3 side (issue 12, items 3 and 6): an S3 outage of
//! minutes while big objects are being read, an object that failed and is
//! retried with `--retry-failed`, a token far over the 64 KiB limit.
//!
//! The outage is a [`Proxy`] in front of the stack's S3 that only the test's
//! worker talks to (`--endpoint-url`): freezing it disturbs no other test,
//! so these tests take the stack shared and run in parallel with others.
//! During most of the outage the test lets go of the stack altogether
//! (its worker only waits), so that the tests that need the stack alone
//! run then instead of after it.

use std::time::{Duration, Instant};
use testkit::app::App;
use testkit::corpus::papers;
use testkit::counts::{add_counts, count_bytes, count_local, times, Counts};
use testkit::proxy::Proxy;
use testkit::stack::{shared, stack};
use wordstream::events::Event;

const READY: Duration = Duration::from_secs(60);

/// How long S3 stays frozen: longer than the 120 s after which an object
/// used to be marked failed.
const OUTAGE: Duration = Duration::from_secs(150);

/// The ledger states of `urls` (latest entry each; "-" when absent).
async fn states(app: &App, urls: &[String]) -> Vec<String> {
    let latest = app.ledger_latest().await;
    urls.iter()
        .map(|u| {
            latest
                .get(u)
                .and_then(|v| v["state"].as_str())
                .unwrap_or("-")
                .to_string()
        })
        .collect()
}

/// S3 (the worker's proxy to it) stops answering for 150 s while four big
/// objects (100 MB each) are being read and small ones wait: the worker
/// retries for as long as the outage lasts, no object is ever `failed`,
/// and after the thaw each one is counted exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn s3_frozen_for_150s_fails_no_object_and_counts_each_once() {
    let stack = shared().await;
    let app = App::new("ws-s3long").await;
    let proxy = Proxy::s3().await;
    let files = papers(700, 60);

    // Four objects of 100 MB, each of its own words.
    let mut big = Vec::new();
    for i in 0..4 {
        let unit = format!(
            "the outage of minutes number{} never fails object{} ",
            "x".repeat(i + 1),
            "y".repeat(i + 1)
        );
        let reps = 100_000_000 / unit.len();
        let key = format!("big-{i}.txt");
        app.put_repeated(&key, unit.as_bytes(), reps).await;
        big.push((key, times(&count_bytes(unit.as_bytes()), reps as i64)));
    }
    app.put_files(&files[..30], 16).await;
    let big_urls: Vec<String> = big.iter().map(|(k, _)| app.url(k)).collect();

    let endpoint = proxy.url();
    let mut w = app.worker("s3long", &["--endpoint-url", &endpoint]);
    w.wait_ready(READY).await;
    // Freeze once the big objects are being read (40 MB through the proxy).
    let t = Instant::now();
    while proxy.bytes_down() < 40_000_000 {
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "the worker read only {} bytes in 120 s\n{}",
            proxy.bytes_down(),
            w.log_tail(30)
        );
        w.assert_running();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    proxy.freeze();
    let frozen_at = Instant::now();
    let at_freeze = states(&app, &big_urls).await;
    let read_before = proxy.bytes_down();
    assert!(
        // whole (`discovered`) or in ranges (`split`, over --range-size)
        at_freeze.iter().any(|s| s == "discovered" || s == "split"),
        "no big object was in flight when S3 froze: {at_freeze:?}"
    );
    // New objects arrive during the outage (uploaded to S3 itself).
    app.put_files(&files[30..], 16).await;
    // The rest of the outage only waits: the tests that take the stack
    // alone may run meanwhile (and make the outage longer).
    let _stack = stack
        .idle_for(OUTAGE.saturating_sub(frozen_at.elapsed()))
        .await;
    w.assert_running();
    let failed: Vec<(String, serde_json::Value)> = app
        .ledger()
        .await
        .into_iter()
        .filter(|(_, v)| v["state"] == "failed")
        .collect();
    proxy.thaw();
    eprintln!(
        "S3 frozen for {:.0} s after {read_before} bytes read; big objects then: {at_freeze:?}",
        frozen_at.elapsed().as_secs_f64()
    );
    assert!(failed.is_empty(), "failed during the outage: {failed:?}");

    app.assert_exactly_once(&files, &big, Duration::from_secs(400), &[&w])
        .await;
    w.assert_running();
    w.stop().await;
    for (k, _) in &big {
        app.delete(k).await;
    }
}

/// An object the ledger says failed (its key was missing when read) is
/// uploaded later with the very content it was listed with (same ETag): the
/// running worker leaves it failed (it failed less than 10 minutes ago and
/// was not replaced), and a worker started with `--retry-failed` counts it,
/// once: its ledger entries go discovered → failed → counted (the lister
/// counts what its listing found in the same batch, `worker::here`).
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_object_is_counted_after_retry_failed() {
    let _stack = shared().await;
    let app = App::new("ws-retry").await;
    let files = papers(760, 2);
    let (late, late_path) = &files[0];
    let late_url = app.url(late);
    let content = std::fs::read(late_path).expect("a paper");
    // The ETag this content gets (the same for every upload of it).
    app.put(late, content.clone()).await;
    let head = stack()
        .s3_client()
        .head_object()
        .bucket(&app.bucket)
        .key(late)
        .send()
        .await
        .expect("head");
    let etag = head.e_tag().expect("an ETag").to_string();
    app.delete(late).await;

    let mut w = app.worker("retry-1", &[]);
    w.wait_ready(READY).await;
    // What a listing writes when it finds the object: read after a delete.
    app.inject_discovered(&late_url, &etag, content.len(), 8)
        .await;
    let t = Instant::now();
    while states(&app, std::slice::from_ref(&late_url)).await[0] != "failed" {
        assert!(t.elapsed() < Duration::from_secs(60), "{}", w.log_tail(30));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (_, failed) = w
        .wait_event(0.0, READY, "object_failed", |e| {
            matches!(e, Event::ObjectFailed { .. })
        })
        .await;
    assert!(format!("{failed:?}").contains("NoSuchKey"), "{failed:?}");

    // Back, unchanged; the worker lists it (full listings every 30 s) and
    // leaves it failed.
    app.put(late, content.clone()).await;
    let (other, other_path) = &files[1];
    app.put(other, std::fs::read(other_path).expect("a paper"))
        .await;
    app.wait_for_done(&[app.url(other)], Duration::from_secs(60), &[&w])
        .await;
    tokio::time::sleep(Duration::from_secs(35)).await;
    assert_eq!(
        states(&app, std::slice::from_ref(&late_url)).await,
        ["failed"]
    );
    w.stop().await;

    let mut w = app.worker("retry-2", &["--retry-failed"]);
    w.wait_ready(READY).await;
    let paths: Vec<_> = files.iter().map(|(_, p)| p.clone()).collect();
    app.wait_for_totals(&count_local(&paths), Duration::from_secs(60), &[&w])
        .await;
    let history: Vec<String> = app
        .ledger()
        .await
        .into_iter()
        .filter(|(k, _)| *k == late_url)
        .map(|(_, v)| v["state"].as_str().unwrap_or("?").to_string())
        .collect();
    assert_eq!(
        history,
        ["discovered", "failed", "counted"],
        "ledger records of {late_url}"
    );
    w.assert_running();
    w.stop().await;
}

/// A 2 MiB token amid normal text, and a 1 MiB run of non-ASCII letters
/// that ends its object: each is skipped, its object counted with every
/// other word exact, `skipped_tokens` = 1 in its ledger record and the
/// worker's status counts both.
#[tokio::test(flavor = "multi_thread")]
async fn a_2mib_token_is_skipped_and_the_rest_of_its_object_counted() {
    let _stack = shared().await;
    let (app, mut w) = App::with_worker("ws-longtok", "longtok", &[]).await;

    let head = "It was the best of times, it was the worst of times; naïve café ".repeat(50);
    let tail = " and the end of the paper: the Ωmega of it all. ".repeat(70);
    let token = "a".repeat(2 << 20);
    let text = format!("{head}{token}{tail}");
    let unicode_head = "the letters that follow are one word, too long: ".repeat(3);
    let unicode = format!("{unicode_head}{}", "é中".repeat(1 << 18));
    let mut want = Counts::new();
    for part in [&head, &tail, &unicode_head] {
        add_counts(&mut want, &count_bytes(part.as_bytes()), 1);
    }
    app.put("long-token.txt", text.clone().into_bytes()).await;
    app.put("long-unicode.txt", unicode.clone().into_bytes())
        .await;
    let urls = [app.url("long-token.txt"), app.url("long-unicode.txt")];
    app.wait_for_done(&urls, Duration::from_secs(60), &[&w])
        .await;
    app.wait_for_totals(&want, Duration::from_secs(60), &[&w])
        .await;

    let latest = app.ledger_latest().await;
    let words = |s: &str| count_bytes(s.as_bytes()).values().sum::<i64>();
    for (url, size, words) in [
        (&urls[0], text.len(), words(&head) + words(&tail)),
        (&urls[1], unicode.len(), words(&unicode_head)),
    ] {
        let e = &latest[url];
        assert_eq!(e["state"], "counted", "{url}: {e}");
        assert_eq!(e["skipped_tokens"], 1, "{url}: {e}");
        assert_eq!(e["words"], words, "{url}: {e}");
        assert_eq!(e["size"], size, "{url}: {e}");
    }
    w.wait_event(
        0.0,
        Duration::from_secs(30),
        "status with 2 skipped tokens",
        |e| matches!(e, Event::Status(s) if s.skipped_tokens == 2),
    )
    .await;
    w.stop().await;
}
