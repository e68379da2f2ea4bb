//! Issue 15: big plain-text objects are read in byte ranges
//! (`--range-size`, several ranged GETs at a time, each pinned with
//! `If-Match`), and the totals stay exactly those of the whole object
//! (`count-local`, which reads objects whole): words straddling every range
//! boundary, a worker killed with ranges in flight, an object overwritten
//! while its ranges are read. Ranges of 64 KiB keep the objects small.

use std::time::Duration;
use testkit::app::App;
use testkit::corpus::Rng;
use testkit::counts::{count_bytes, count_local_s3, times};
use testkit::ranges::straddling_text;
use testkit::stack::shared;
use testkit::worker::{Worker, READY};

/// The range size of these tests.
const RANGE: usize = 64 << 10;
/// Worker flags: ranges of [`RANGE`], three at a time.
const FLAGS: &[&str] = &["--range-size", "64KiB", "--range-concurrency", "3"];
/// How long the totals may take (loaded box).
const DEADLINE: Duration = Duration::from_secs(120);

/// The ledger's latest record of `key` (its JSON).
async fn latest(app: &App, key: &str) -> serde_json::Value {
    app.ledger_latest()
        .await
        .remove(&app.url(key))
        .unwrap_or_else(|| panic!("{key} is not in the ledger"))
}

/// The `counted` records of `key` in the whole ledger, oldest first.
async fn counted(app: &App, key: &str) -> Vec<serde_json::Value> {
    let url = app.url(key);
    app.ledger()
        .await
        .into_iter()
        .filter(|(k, v)| *k == url && v["state"] == "counted")
        .map(|(_, v)| v)
        .collect()
}

/// A ready worker `id` of `app` ([`FLAGS`]) with the failpoint `spec`.
async fn worker_with_failpoint(app: &App, id: &str, spec: &str) -> Worker {
    let mut cmd = app.worker_command(Some(id), &[&["--interval", "0.5"], FLAGS].concat());
    cmd.env(wordstream::failpoint::VAR, spec);
    let mut w = Worker::spawn(id, cmd);
    w.wait_ready(READY).await;
    w
}

/// Words straddling each of the 9 range boundaries (inside multi-byte
/// characters, separator runs, ASCII words, invalid sequences) count
/// exactly as the whole object; a gzip copy of the same text is not split.
#[tokio::test(flavor = "multi_thread")]
async fn words_straddling_every_range_boundary_count_exactly() {
    let _stack = shared().await;
    let mut rng = Rng::from_clock("ranged_straddling");
    let text = straddling_text(&mut rng, RANGE, 10);
    let want = count_bytes(&text);
    let gz = testkit::formats::gzip(&text);
    let (app, mut w) = App::with_worker("ws-ranged", "ranged-1", FLAGS).await;
    app.put("big.txt", text.clone()).await;
    app.put("big.txt.gz", gz).await;
    let both = times(&want, 2);
    app.wait_for_totals(&both, DEADLINE, &[&w]).await;
    assert_eq!(
        count_local_s3(&app.bucket),
        both,
        "count-local reads them whole"
    );
    let big = latest(&app, "big.txt").await;
    assert_eq!(big["state"], "counted");
    assert_eq!(big["ranges"], 10, "read in 10 ranges: {big}");
    assert_eq!(big["size"], text.len() as u64);
    assert_eq!(big["text_bytes"], text.len() as u64);
    let gz = latest(&app, "big.txt.gz").await;
    assert!(
        gz["format"].as_str().unwrap_or("").starts_with("gzip"),
        "{gz}"
    );
    assert!(gz.get("ranges").is_none(), "compressed: read whole: {gz}");
    w.assert_running();
    w.stop().await;
}

/// The worker exits like a kill -9 while its ranges are in flight (the
/// failpoint `range.read=exit`, as the first ranged GET starts): nothing
/// of the object was committed; a new worker counts it once, exactly.
#[tokio::test(flavor = "multi_thread")]
async fn a_worker_killed_mid_read_counts_the_object_once() {
    let _stack = shared().await;
    let mut rng = Rng::from_clock("ranged_kill");
    let text = straddling_text(&mut rng, RANGE, 6);
    let want = count_bytes(&text);
    let app = App::new("ws-ranged-kill").await;
    let mut w = worker_with_failpoint(&app, "ranged-k", "range.read=exit").await;
    app.put("big.txt", text).await;
    let status = w.wait_exit(DEADLINE).await.expect("the failpoint exits");
    assert_eq!(status.code(), Some(137));
    assert!(app.changelog().await.is_empty(), "nothing committed");
    let mut w = app.worker("ranged-k", FLAGS);
    w.wait_ready(READY).await;
    app.wait_for_totals(&want, DEADLINE, &[&w]).await;
    assert_eq!(counted(&app, "big.txt").await.len(), 1, "counted once");
    assert_eq!(latest(&app, "big.txt").await["ranges"], 6);
    w.stop().await;
}

/// The object is overwritten while one of its ranges is held in flight
/// (`range.read=sleep(4000)`): the pinned ranged GETs fail (412) and the
/// object is read again at its new version; the totals are the new
/// version's exactly, and no `counted` record ever names the old one.
#[tokio::test(flavor = "multi_thread")]
async fn an_object_overwritten_while_its_ranges_are_in_flight_counts_the_new_version() {
    let _stack = shared().await;
    let mut rng = Rng::from_clock("ranged_overwrite");
    let v1 = straddling_text(&mut rng, RANGE, 6);
    let mut v2 = straddling_text(&mut rng, RANGE, 7);
    v2.extend_from_slice(" versiontwo".as_bytes());
    let app = App::new("ws-ranged-over").await;
    let mut w = worker_with_failpoint(&app, "ranged-o", "range.read=sleep(4000)").await;
    app.put("big.txt", v1).await;
    // Found within the 0.5 s interval, then one range sleeps 4 s.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let first = latest(&app, "big.txt").await;
    assert_eq!(first["state"], "discovered", "still in flight: {first}");
    let old_etag = first["etag"].clone();
    app.put("big.txt", v2.clone()).await;
    let want = count_bytes(&v2);
    app.wait_for_totals(&want, DEADLINE, &[&w]).await;
    let counted = counted(&app, "big.txt").await;
    assert_eq!(counted.len(), 1, "counted once: {counted:?}");
    assert_ne!(counted[0]["etag"], old_etag, "the new version");
    assert_eq!(counted[0]["ranges"], 7);
    assert_eq!(count_local_s3(&app.bucket), want);
    w.assert_running();
    w.stop().await;
}
