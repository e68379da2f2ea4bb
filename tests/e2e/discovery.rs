//! Discovery at scale (issue 13): a listing whose pages are slow, a pass
//! spread over the loop's iterations with a deadline per page, and a pass
//! that resumes where it stood after the lister is killed.
//!
//! A bucket of 1,000 small objects listed 50 keys per page (a hidden
//! `--list-page-size`) is 20 pages: what a bucket of 20,000 objects is
//! with S3's 1,000 keys per page. The worker reaches S3 through the test's
//! own proxy, which delays every ListObjectsV2 request.

use std::path::PathBuf;
use std::time::{Duration, Instant};
use testkit::app::App;
use testkit::proxy::Proxy;
use testkit::stack::{shared, stack};
use testkit::worker::{self, Worker, READY};

const OBJECTS: usize = 1000;
const PAGE: &str = "50";
const DONE: Duration = Duration::from_secs(300);

/// A fresh app with `OBJECTS` tiny objects `k0000.txt`… (written as files
/// for the exactly-once checks).
async fn bucket_of_many(prefix: &str) -> (App, Vec<(String, PathBuf)>) {
    let app = App::new(prefix).await;
    let dir = testkit::scratch_dir().join(&app.app_id);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    let files: Vec<(String, PathBuf)> = (0..OBJECTS)
        .map(|i| {
            let path = dir.join(format!("k{i:04}.txt"));
            std::fs::write(&path, format!("alpha beta{}\n", "a".repeat(i % 7))).expect("file");
            (format!("k{i:04}.txt"), path)
        })
        .collect();
    app.put_files(&files, 32).await;
    (app, files)
}

/// A worker listing through `proxy`, 50 keys per page.
fn lister(app: &App, id: &str, proxy: &Proxy, reconcile: &str) -> Worker {
    let url = proxy.url();
    let flags = [
        "--endpoint-url",
        &url,
        "--interval",
        "1",
        "--status-interval",
        "1",
        "--list-page-size",
        PAGE,
        "--reconcile-interval",
        reconcile,
    ];
    Worker::spawn(
        id,
        worker::command(stack(), &app.bucket, &app.app_id, Some(id), &flags),
    )
}

/// ≥ 20 pages at 2 s each: before, the whole listing ran under one 30 s
/// deadline, timed out, was thrown away and started over: nothing was ever
/// counted. Now the pass goes a page at a time and everything is counted;
/// and while the next pass runs (≥ 40 s), a new object that sorts after
/// the others is counted within about 2 × interval + one page.
#[tokio::test(flavor = "multi_thread")]
async fn a_slow_listing_counts_everything_and_new_objects_during_a_pass() {
    let _stack = shared().await;
    let (app, mut files) = bucket_of_many("ws-slowlist").await;
    let proxy = Proxy::s3().await;
    proxy.delay_listings(Duration::from_secs(2));
    let mut w = lister(&app, "slow-lister", &proxy, "5");
    w.wait_ready(READY).await;
    app.assert_exactly_once(&files, &[], DONE, &[&w]).await;
    // The next pass starts 5 s after the first ended and takes ≥ 40 s.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let calls = proxy.listings();
    let dir = files[0].1.parent().expect("scratch folder").to_path_buf();
    let new = dir.join("z-new.txt");
    std::fs::write(&new, "gamma delta\n").expect("file");
    let started = Instant::now();
    app.put_files(&[("z-new.txt".to_string(), new.clone())], 1)
        .await;
    app.wait_for_done(&[app.url("z-new.txt")], DONE, &[&w])
        .await;
    let took = started.elapsed();
    let pages_meanwhile = proxy.listings() - calls;
    eprintln!(
        "new object counted {took:?} after its upload; {pages_meanwhile} pages listed meanwhile"
    );
    assert!(
        took < Duration::from_secs(15),
        "a new object took {took:?} during a full pass"
    );
    files.push(("z-new.txt".to_string(), new));
    app.assert_exactly_once(&files, &[], DONE, &[&w]).await;
    w.stop().await;
}

/// The lister is killed in the middle of the first full pass; the worker
/// that takes over resumes the pass where the ledger says it stood: it lists
/// only the pages that were left, not all 20 again.
#[tokio::test(flavor = "multi_thread")]
async fn a_restart_in_the_middle_of_a_pass_resumes_it() {
    let _stack = shared().await;
    let (app, files) = bucket_of_many("ws-resume").await;
    let proxy = Proxy::s3().await;
    proxy.delay_listings(Duration::from_millis(500));
    let mut a = lister(&app, "lister", &proxy, "3600");
    a.wait_ready(READY).await;
    while proxy.listings() < 10 {
        a.assert_running();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Let the page being listed commit, then crash.
    tokio::time::sleep(Duration::from_secs(1)).await;
    a.kill9();
    let before = proxy.listings();
    let mut b = lister(&app, "lister", &proxy, "3600");
    b.wait_ready(READY).await;
    // The pages of the pass, counted when it discovered the last key (the
    // pass lists in key order): after it, one quick page a second follows,
    // more of them the longer a loaded machine takes to count the objects.
    let urls: Vec<String> = files.iter().map(|(k, _)| app.url(k)).collect();
    let last = urls.iter().max().expect("objects");
    app.wait_for_ledger(last, DONE, &[&b]).await;
    let calls = proxy.listings() - before;
    app.wait_for_done(&urls, DONE, &[&b]).await;
    eprintln!("first lister: {before} pages; second: {calls} (the pass is 21 pages)");
    // The pass is 21 pages (20 full, one empty end); the first lister
    // listed about 10 of them.
    assert!(
        calls < 21 - 4,
        "the second lister listed {calls} pages: it started the pass over"
    );
    app.assert_exactly_once(&files, &[], DONE, &[&b]).await;
    b.stop().await;
}
