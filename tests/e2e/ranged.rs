//! Issue 15: big plain-text objects are split into byte ranges
//! (`--range-size`), each a unit of work any worker of the group counts
//! (a ranged GET pinned with `If-Match`), and the totals stay exactly those
//! of the whole object (`count-local`, which reads objects whole): words
//! straddling every range boundary, ranges spread over three workers, a
//! worker killed with a range in flight, an object overwritten while its
//! ranges are read (with and without `--on-change recount`). Ranges of
//! 64 KiB keep the objects small.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use testkit::app::App;
use testkit::corpus::Rng;
use testkit::counts::{count_bytes, count_local_s3, times};
use testkit::ranges::straddling_text;
use testkit::stack::shared;
use testkit::worker::{Worker, READY};
use wordstream::events::Event;

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

/// Two workers of one group, settled; one exits like a kill -9 as it
/// starts reading its first range (the failpoint `range.read=exit`):
/// nothing of the ranges it held was committed; the other worker takes its
/// partitions over and counts every range (its `range_counted` events);
/// the totals are exact and the object counted once.
#[tokio::test(flavor = "multi_thread")]
async fn a_worker_killed_mid_read_counts_the_object_once() {
    let _stack = shared().await;
    let mut rng = Rng::from_clock("ranged_kill");
    let text = straddling_text(&mut rng, RANGE, 16);
    let want = count_bytes(&text);
    let app = App::new("ws-ranged-kill").await;
    let flags = ["--range-size", "64KiB"];
    let mut cmd = app.worker_command(
        None,
        &[
            "--interval",
            "1",
            "--status-interval",
            "1",
            flags[0],
            flags[1],
        ],
    );
    cmd.env(wordstream::failpoint::VAR, "range.read=exit");
    let mut victim = Worker::spawn("ranged-victim", cmd);
    let mut other = app.member("ranged-other", None, &flags);
    victim.wait_ready(READY).await;
    other.wait_ready(READY).await;
    testkit::group::wait_settled(&mut [&mut victim, &mut other], 8, DEADLINE).await;
    app.put("big.txt", text).await;
    let status = victim
        .wait_exit(DEADLINE)
        .await
        .expect("the failpoint exits");
    assert_eq!(status.code(), Some(137));
    let more = [("big.txt".to_string(), want)];
    app.assert_exactly_once(&[], &more, DEADLINE, &[&other])
        .await;
    let counted: BTreeSet<u32> = ranges_counted(&[&other])[0].iter().copied().collect();
    assert_eq!(
        counted,
        (0..16).collect(),
        "the survivor counted every range"
    );
    assert_eq!(latest(&app, "big.txt").await["ranges"], 16);
    other.assert_running();
    other.stop().await;
}

/// The ranges of `key` each worker counted (`range_counted` events that
/// counted something), by worker index.
fn ranges_counted(workers: &[&Worker]) -> Vec<Vec<u32>> {
    workers
        .iter()
        .map(|w| {
            testkit::events::events(&w.lines())
                .filter_map(|(_, e)| match e {
                    Event::RangeCounted {
                        range,
                        changed: false,
                        ..
                    } => Some(*range),
                    _ => None,
                })
                .collect()
        })
        .collect()
}

/// Waits until the ledger's latest record of `key` is in `state`.
async fn wait_state(app: &App, key: &str, state: &str, w: &Worker) -> serde_json::Value {
    let start = Instant::now();
    loop {
        if let Some(v) = app.ledger_latest().await.remove(&app.url(key)) {
            if v["state"] == state {
                return v;
            }
        }
        assert!(
            start.elapsed() < DEADLINE,
            "{key} never {state}\n{}",
            w.log_tail(40)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Three workers of one group, settled first; one object of 16 ranges of
/// 256 KiB: the ranges are counted by at least two of them (their
/// `range_counted` events), every range by one worker; the totals are
/// exact, the object is counted once (`ranges: 16`), and the ranges' keys
/// and notes are tombstoned once it is.
#[tokio::test(flavor = "multi_thread")]
async fn ranges_spread_over_three_workers_count_exactly_once() {
    let _stack = shared().await;
    let mut rng = Rng::from_clock("ranged_spread");
    let text = straddling_text(&mut rng, 256 << 10, 16);
    let want = count_bytes(&text);
    let app = App::new("ws-ranged-spread").await;
    let flags = ["--range-size", "256KiB"];
    let mut w: Vec<Worker> = (1..=3)
        .map(|i| app.member(&format!("spread{i}"), None, &flags))
        .collect();
    for m in w.iter_mut() {
        m.wait_ready(READY).await;
    }
    let mut members: Vec<&mut Worker> = w.iter_mut().collect();
    testkit::group::wait_settled(&mut members, 8, DEADLINE).await;
    app.put("big.txt", text.clone()).await;
    let refs: Vec<&Worker> = w.iter().collect();
    let more = [("big.txt".to_string(), want)];
    app.assert_exactly_once(&[], &more, DEADLINE, &refs).await;
    let by_worker = ranges_counted(&refs);
    let all: BTreeSet<u32> = by_worker.iter().flatten().copied().collect();
    assert_eq!(all, (0..16).collect(), "every range counted: {by_worker:?}");
    assert_eq!(
        by_worker.iter().map(Vec::len).sum::<usize>(),
        16,
        "each range once: {by_worker:?}"
    );
    let busy = by_worker.iter().filter(|r| !r.is_empty()).count();
    assert!(busy >= 2, "ranges spread over the group: {by_worker:?}");
    let big = latest(&app, "big.txt").await;
    assert_eq!(big["ranges"], 16, "{big}");
    assert_eq!(big["size"], text.len() as u64);
    let live = app.ledger_live().await;
    let leftovers: Vec<&String> = live
        .keys()
        .filter(|k| k.starts_with("range:") || k.starts_with("range-done:"))
        .collect();
    assert!(leftovers.is_empty(), "tombstoned: {leftovers:?}");
    for m in w.iter_mut() {
        m.assert_running();
        m.stop().await;
    }
}

/// The object is overwritten while one of its ranges is held in flight
/// (`range.read=sleep(4000)`): that range finds its version gone (412) and
/// counts nothing; the object's owner takes back what the other ranges of
/// the old version committed and counts the new version, so the totals
/// end with the new version counted once, and no `counted` record ever
/// names the old one. `mode` is the `--on-change` mode.
async fn overwritten_while_ranges_are_in_flight(prefix: &str, mode: &str) {
    let _stack = shared().await;
    let mut rng = Rng::from_clock(prefix);
    let v1 = straddling_text(&mut rng, RANGE, 6);
    let mut v2 = straddling_text(&mut rng, RANGE, 7);
    v2.extend_from_slice(" versiontwo".as_bytes());
    let app = App::new(prefix).await;
    let mut cmd = app.worker_command(
        Some("ranged-o"),
        &[&["--interval", "0.5", "--on-change", mode], FLAGS].concat(),
    );
    cmd.env(wordstream::failpoint::VAR, "range.read=sleep(4000)");
    let mut w = Worker::spawn("ranged-o", cmd);
    w.wait_ready(READY).await;
    app.put("big.txt", v1).await;
    let first = wait_state(&app, "big.txt", "split", &w).await;
    let old_etag = first["etag"].clone();
    // The other ranges read the old version meanwhile (the held one
    // sleeps 4 s from its start).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    app.put("big.txt", v2.clone()).await;
    let want = count_bytes(&v2);
    app.wait_for_totals(&want, DEADLINE, &[&w]).await;
    let counted = wait_state(&app, "big.txt", "counted", &w).await;
    assert_ne!(counted["etag"], old_etag, "the new version: {counted}");
    assert_eq!(counted["ranges"], 7);
    assert_eq!(
        counted.get("contribution").is_some(),
        mode == "recount",
        "{counted}"
    );
    let records: Vec<_> = app
        .ledger()
        .await
        .into_iter()
        .filter(|(k, v)| *k == app.url("big.txt") && v["state"] == "counted")
        .collect();
    assert_eq!(records.len(), 1, "counted once: {records:?}");
    let taken = w.find_event(
        0.0,
        |e| matches!(e, Event::RangesTakenBack { etag, .. } if *etag == old_etag),
    );
    let Some((_, Event::RangesTakenBack { ranges, words, .. })) = taken else {
        panic!(
            "the old version's ranges not taken back\n{}",
            w.log_tail(40)
        )
    };
    assert!(
        ranges >= 1 && words > 0,
        "ranges of the old version had counted: {ranges} ranges, {words} words"
    );
    assert_eq!(count_local_s3(&app.bucket), want);
    // Nothing more moves: the totals stay the new version's.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(app.changelog().await, want);
    if mode == "recount" {
        // The collected object's merged contribution is what a later
        // overwrite takes out: a small third version replaces it exactly.
        let v3 = b"third version small text".to_vec();
        let want = count_bytes(&v3);
        app.put("big.txt", v3).await;
        app.wait_for_totals(&want, DEADLINE, &[&w]).await;
    }
    w.assert_running();
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_object_overwritten_while_its_ranges_are_in_flight_counts_the_new_version() {
    overwritten_while_ranges_are_in_flight("ws-ranged-over", "ignore").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn under_recount_an_object_overwritten_mid_way_counts_the_new_version() {
    overwritten_while_ranges_are_in_flight("ws-ranged-over-rc", "recount").await;
}
