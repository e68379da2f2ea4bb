//! Scale-out e2e tests on the single-node stack: several real `wordstream
//! worker` processes of one group (one `--app-id`), objects uploaded while
//! they run, workers killed, added and stopped. After each: the changelog
//! equals `count-local` of the uploaded files exactly, the ledger has each
//! object counted once, and the workers' events show that exactly one
//! worker listed the bucket at any time, about once per `--interval` for
//! the whole group.
//!
//! Each test runs three workers on a two-core box and measures takeover
//! times: they take the stack exclusively. The 3-node cluster variant
//! (broker stopped mid-run) is in `tests/cluster`.

use std::time::{Duration, Instant};
use testkit::app::{per_worker, App};
use testkit::corpus::papers;
use testkit::events::{assignments, restores};
use testkit::group::*;
use testkit::stack::exclusive;
use testkit::worker::Worker;

/// The workers as a slice of references.
fn refs(w: &[Worker]) -> Vec<&Worker> {
    w.iter().collect()
}

const READY: Duration = Duration::from_secs(90);
const SETTLE: Duration = Duration::from_secs(90);
const DONE: Duration = Duration::from_secs(240);
const PARTITIONS: i32 = 8;

/// Three workers, 300 objects uploaded while they run: exact totals, each
/// object counted once, work split between all three; once the group has
/// settled, one worker lists (the other two's counts do not grow), about one
/// ListObjectsV2 call per interval for the group; over the whole run never
/// two listers at once.
#[tokio::test(flavor = "multi_thread")]
async fn three_workers_count_300_objects_exactly_once_with_one_lister() {
    let _stack = exclusive().await;
    let app = App::new("so-three").await;
    let files = papers(0, 300);
    let mut w: Vec<Worker> = (1..=3)
        .map(|i| app.member(&format!("w{i}"), None, &[]))
        .collect();
    for m in w.iter_mut() {
        m.wait_ready(READY).await;
    }
    wait_settled(&mut w.iter_mut().collect::<Vec<_>>(), PARTITIONS, SETTLE).await;
    // The settled group's list calls (latest status lines) …
    let base = latest_statuses(&refs(&w));
    let t0 = Instant::now();
    let uploads = app.upload_gradually(files.clone(), 20, Duration::from_millis(500));
    uploads.await.expect("uploads");
    let counted = app.assert_exactly_once(&files, &[], DONE, &refs(&w)).await;
    let took = t0.elapsed();
    for m in w.iter_mut() {
        m.assert_running();
    }
    // … and at the end, before any worker stops (a stop moves the listing):
    // no rebalance in between, so one worker's count grew, about once per
    // interval.
    tokio::time::sleep(Duration::from_millis(1200)).await; // a fresh status line
    let end = latest_statuses(&refs(&w));
    let growth: Vec<(String, u64, f64)> = w
        .iter()
        .zip(base.iter().zip(&end))
        .map(|(m, (b, e))| {
            let ((bt, b), (et, e)) = (b.as_ref().unwrap(), e.as_ref().unwrap());
            (m.name.clone(), e.list_calls - b.list_calls, et - bt)
        })
        .collect();
    eprintln!("list calls from the settled group to the end (worker, calls, seconds): {growth:?}");
    let growing: Vec<_> = growth.iter().filter(|g| g.1 > 0).collect();
    assert_eq!(
        growing.len(),
        1,
        "one worker lists in a settled group: {growth:?}"
    );
    let (calls, secs) = (growing[0].1 as f64, growing[0].2);
    assert!(
        calls <= secs / INTERVAL + 2.0 && calls >= 0.5 * secs / INTERVAL,
        "{calls} list calls in {secs:.1} s at --interval {INTERVAL}"
    );
    for m in w.iter_mut() {
        m.stop().await;
    }
    let by = per_worker(&counted);
    eprintln!(
        "300 objects uploaded and counted by 3 workers in {:.1} s; per worker {by:?}",
        took.as_secs_f64()
    );
    for m in &w {
        let id = m.worker_id().expect("a joining event");
        assert!(
            by.get(&id).copied().unwrap_or(0) > 0,
            "{} ({id}) counted nothing: {by:?}",
            m.name,
        );
    }
    assert_listing(&refs(&w), &app.ledger_topic(), 0.5);
    // While the group forms, each join may move ledger partition 0 (and so
    // the listing) to another worker: over the whole run, assert_listing
    // checks that two workers never list at once and that the group lists
    // about once per interval; once settled, one worker lists (above).
}

/// Three static members (explicit `--worker-id`); the one that lists is
/// killed with SIGKILL in the middle of the uploads. Another worker takes
/// listing over once the session timeout (10 s) expired the dead member;
/// then a new worker (default id) joins. Exact totals, each object once.
#[tokio::test(flavor = "multi_thread")]
async fn kill9_the_lister_of_three_then_start_a_new_worker_exact_totals() {
    let _stack = exclusive().await;
    let app = App::new("so-kill").await;
    let files = papers(300, 300);
    let ids: Vec<String> = (1..=3).map(|i| format!("{}-k{i}", app.app_id)).collect();
    let mut w: Vec<Worker> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| app.member(&format!("k{}", i + 1), Some(id), &[]))
        .collect();
    for m in w.iter_mut() {
        m.wait_ready(READY).await;
    }
    wait_settled(&mut w.iter_mut().collect::<Vec<_>>(), PARTITIONS, SETTLE).await;
    let uploads = app.upload_gradually(files.clone(), 10, Duration::from_millis(500));
    tokio::time::sleep(Duration::from_secs(4)).await;

    let victim = current_lister(&refs(&w)).expect("a lister");
    let starts: Vec<usize> = w.iter().map(lister_starts).collect();
    let killed_at = Instant::now();
    w[victim].kill9();
    eprintln!("killed {} (the lister) with SIGKILL", w[victim].name);
    // Another worker lists after the session timeout plus one heartbeat
    // (2 s: when the others learn of the rebalance), once the killed
    // lister's open transaction is aborted (it committed offsets of ledger
    // partition 0: the new owner restores only once they are stable): the
    // transaction timeout, plus up to the coordinator's check interval
    // (Kafka's default, 10 s); then the rebalance and a ledger restore;
    // 10 s of slack for a loaded box.
    let limit = SESSION_TIMEOUT + TRANSACTION_TIMEOUT + Duration::from_secs(22);
    let takeover = loop {
        let new = (0..w.len()).find(|&i| i != victim && lister_starts(&w[i]) > starts[i]);
        if let Some(i) = new {
            break (i, killed_at.elapsed());
        }
        assert!(
            killed_at.elapsed() < limit,
            "no worker took listing over within {limit:?} of the kill\n{}",
            testkit::app::tails(&refs(&w), 20)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!(
        "{} lists the bucket {:.1} s after the kill (session timeout {:?}, static membership)",
        w[takeover.0].name,
        takeover.1.as_secs_f64(),
        SESSION_TIMEOUT
    );
    assert!(
        takeover.1 >= SESSION_TIMEOUT - Duration::from_secs(3),
        "a static member's partitions move only after the session timeout; took {:?}",
        takeover.1
    );

    let mut fresh = app.member("k4", None, &[]);
    fresh.wait_ready(READY).await;
    uploads.await.expect("uploads");
    {
        let mut alive: Vec<&mut Worker> = w
            .iter_mut()
            .enumerate()
            .filter(|(i, _)| *i != victim)
            .map(|(_, m)| m)
            .collect();
        alive.push(&mut fresh);
        wait_settled(&mut alive, PARTITIONS, SETTLE).await;
    }
    let mut all = refs(&w);
    all.push(&fresh);
    let counted = app.assert_exactly_once(&files, &[], DONE, &all).await;
    eprintln!("per worker {:?}", per_worker(&counted));
    assert!(
        !restores(&fresh.lines(), "table").is_empty(),
        "the new worker restored its table partitions\n{}",
        fresh.log_tail(30)
    );
    for (i, m) in w.iter_mut().enumerate() {
        if i != victim {
            m.stop().await;
        }
    }
    fresh.stop().await;
    let mut all = refs(&w);
    all.push(&fresh);
    assert_listing(&all, &app.ledger_topic(), 0.4);
}

/// One worker, then three (two join mid-run), then one again (two get
/// SIGTERM, the lister among them): exact totals; the events show the
/// partitions moving (assignments, restores of only the owned table
/// partitions) and the listing moving with ledger partition 0.
#[tokio::test(flavor = "multi_thread")]
async fn scale_1_to_3_to_1_mid_run_exact_totals_partitions_move() {
    let _stack = exclusive().await;
    let app = App::new("so-scale").await;
    let files = papers(500, 300);
    let mut first = app.member("s1", None, &[]);
    first.wait_ready(READY).await;
    let uploads = app.upload_gradually(files.clone(), 10, Duration::from_millis(700));
    tokio::time::sleep(Duration::from_secs(4)).await;

    // 1 → 3
    let t_join = Instant::now();
    let mut joined = vec![app.member("s2", None, &[]), app.member("s3", None, &[])];
    for m in joined.iter_mut() {
        m.wait_ready(READY).await;
    }
    {
        let mut g: Vec<&mut Worker> = vec![&mut first];
        g.extend(joined.iter_mut());
        wait_settled(&mut g, PARTITIONS, SETTLE).await;
    }
    eprintln!(
        "1 → 3: settled {:.1} s after starting two workers",
        t_join.elapsed().as_secs_f64()
    );
    for m in &joined {
        let r = restores(&m.lines(), "table");
        assert!(
            !r.is_empty(),
            "{} restored nothing\n{}",
            m.name,
            m.log_tail(30)
        );
        // Only partitions it came to own (it keeps the tables of those it
        // keeps when the group grows again): each owned one was restored.
        let owned = m.latest_status().expect("a status").1.repartition;
        assert!(
            owned.len() < PARTITIONS as usize
                && owned
                    .iter()
                    .all(|p| r.iter().any(|r| r.partitions.contains(p))),
            "{} owns {owned:?}; its restores: {r:?}",
            m.name
        );
    }
    tokio::time::sleep(Duration::from_secs(3)).await;

    // 3 → 1: SIGTERM two, the lister among them (if the lister is `first`,
    // stop it and one of the others).
    let mut group: Vec<Worker> = std::iter::once(first).chain(joined).collect();
    let lister = current_lister(&refs(&group)).expect("a lister");
    let survivor = if lister == 2 { 1 } else { 2 };
    let starts = lister_starts(&group[survivor]);
    let t_stop = Instant::now();
    for (i, m) in group.iter_mut().enumerate() {
        if i != survivor {
            m.stop().await;
        }
    }
    let stopped = t_stop.elapsed();
    let mut alone: Vec<&mut Worker> = vec![&mut group[survivor]];
    wait_settled(&mut alone, PARTITIONS, SETTLE).await;
    let takeover = t_stop.elapsed();
    assert!(
        lister_starts(&group[survivor]) > starts,
        "the survivor took listing over"
    );
    eprintln!(
        "3 → 1: two workers stopped in {:.1} s; the survivor owns everything and lists {:.1} s after the first SIGTERM",
        stopped.as_secs_f64(),
        takeover.as_secs_f64()
    );
    uploads.await.expect("uploads");
    let counted = app
        .assert_exactly_once(&files, &[], DONE, &refs(&group))
        .await;
    let by = per_worker(&counted);
    eprintln!("per worker {by:?}");
    assert!(by.len() >= 2, "the work was shared: {by:?}");

    // the survivor's events: assignments growing back to all 8, and a
    // restore after the scale-in
    let s = &group[survivor];
    let asg = assignments(&s.lines());
    let ledger = app.ledger_topic();
    let sizes: Vec<usize> = asg
        .iter()
        .map(|(_, a)| a.get(&ledger).map_or(0, Vec::len))
        .collect();
    eprintln!("{}: ledger partitions per assignment {sizes:?}", s.name);
    assert!(
        sizes.iter().any(|&n| n < PARTITIONS as usize)
            && sizes.last() == Some(&(PARTITIONS as usize)),
        "{}: assignments {asg:#?}",
        s.name
    );
    let survivor_restores = restores(&s.lines(), "table");
    eprintln!("{}: restores {survivor_restores:#?}", s.name);
    assert!(survivor_restores.len() >= 2, "{}", s.log_tail(40));
    group[survivor].stop().await;

    let report = assert_listing(&refs(&group), &ledger, 0.4);
    assert!(
        report.intervals.len() >= 2,
        "listing moved at least once: {report}"
    );
    for m in &group {
        eprintln!("{}: {:#?}", m.name, assignments(&m.lines()));
    }
}
