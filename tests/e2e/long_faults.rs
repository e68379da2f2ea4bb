//! Exactly once under long faults (issue 12): a worker that stalls inside
//! its commit, a zombie lister, an object that takes longer than
//! `max.poll.interval.ms`, the repartition topic's purge, junk in the
//! changelog, two buckets on one app id, and rebalances that keep state.
//!
//! The race windows are hit with failpoints (`WORDSTREAM_FAILPOINTS`, see
//! `wordstream::failpoint`): the worker stops itself with SIGSTOP at exactly
//! the moment a test needs, and the test sends SIGCONT. Each test fails on
//! the worker before its fix (checked against a build of that worker with
//! the same failpoints).

use std::time::Duration;
use testkit::app::App;
use testkit::corpus::papers;
use testkit::counts::{count_bytes, Counts};
use testkit::proxy::Proxy;
use testkit::stack::{shared, stack};
use testkit::worker::{self, Worker, READY};
use wordstream::events::Event;

const DONE: Duration = Duration::from_secs(240);

/// A worker of `app` with `--worker-id id` (static membership), `flags`,
/// and the failpoints `failpoints` armed.
fn worker_with(app: &App, id: &str, flags: &[&str], failpoints: &str) -> Worker {
    let mut f = vec!["--interval", "0.5", "--status-interval", "2"];
    f.extend_from_slice(flags);
    let mut cmd = worker::command(stack(), &app.bucket, &app.app_id, Some(id), &f);
    cmd.env(wordstream::failpoint::VAR, failpoints);
    Worker::spawn(id, cmd)
}

/// Waits until the worker's process is stopped (state `T` in /proc).
async fn wait_stopped(w: &Worker) {
    for _ in 0..1200 {
        if testkit::procfs::state(w.pid()) == Some('T') {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "worker {} did not stop at its failpoint\n{}",
        w.name,
        w.log_tail(30)
    );
}

/// The worker's batch aborts so far.
fn aborts(w: &Worker) -> usize {
    testkit::events::events(&w.lines())
        .filter(|(_, e)| matches!(e, Event::BatchAborted { .. }))
        .count()
}

/// Item 1. Worker A stalls (SIGSTOP) right after its offsets were accepted
/// into a transaction that carries totals, longer than the session timeout;
/// B takes A's partitions. A then resumes and its commit succeeds. B must
/// not have restored its table before A's transaction resolved, or its next
/// totals overwrite A's with smaller values.
#[tokio::test(flavor = "multi_thread")]
async fn a_worker_stalled_inside_its_commit_loses_no_totals() {
    let _stack = shared().await;
    let app = App::new("ws-zombie-commit").await;
    let first = papers(0, 12);
    let later = papers(12, 12);
    app.put_files(&first, 8).await;
    let mut a = worker_with(&app, "a", &[], "commit.after_offsets_with_totals=stop");
    wait_stopped(&a).await;
    let mut b = worker_with(&app, "b", &[], "");
    // B is assigned everything once A's session expired (10 s) …
    b.wait_event(0.0, READY, "an assignment of every partition", |e| {
        matches!(e, Event::Assigned { partitions } if partitions.values().map(Vec::len).sum::<usize>() >= 16)
    })
    .await;
    // … and, before the fix, restores at once without A's totals.
    tokio::time::sleep(Duration::from_secs(3)).await;
    a.signal(libc::SIGCONT);
    // The same words again, counted by whoever owns them now.
    app.put_files(&later, 8).await;
    let all: Vec<_> = first.iter().chain(&later).cloned().collect();
    app.finish(&all, &[], DONE, &mut [&mut a, &mut b]).await;
}

/// A worker that resyncs while another already owns its partitions (its
/// transaction aborted: it was stopped past the transaction timeout)
/// restores its tables then, before it learns of the rebalance. The other,
/// owning every table, writes its totals straight to the changelog without a
/// repartition record (`batch::fold_owned`). When the rebalance gives the
/// first some partitions back, it must not keep those tables: their
/// repartition offsets did not move, but the changelog's end did. Kept,
/// they lost the other's counts (CI saw "A": got 6, want 12).
#[tokio::test(flavor = "multi_thread")]
async fn a_table_restored_before_a_rebalance_is_not_kept_stale() {
    let _stack = shared().await;
    let (app, first) = App::with_papers("ws-stale-table", 0, 12).await;
    let (second, third) = (papers(12, 12), papers(24, 12));
    let mut a = worker_with(
        &app,
        "a",
        &[],
        "commit.after_offsets_with_totals=stop;resync.aligned=sleep(8000)",
    );
    wait_stopped(&a).await;
    let mut b = worker_with(&app, "b", &[], "");
    // B is ready once A's open transaction was aborted (timeout 10 s).
    b.wait_ready(DONE).await;
    let resumed = testkit::now();
    a.signal(libc::SIGCONT);
    // A's commit fails; it resyncs, then waits 8 s before its next poll …
    a.wait_event(resumed, READY, "a resync", |e| matches!(e, Event::Resync))
        .await;
    // … while B, owner of every table, counts the second batch.
    app.put_files(&second, 8).await;
    // A rejoins and gets partitions back: the third batch is counted with
    // the tables it holds then.
    a.wait_event(resumed, READY, "A assigned again", |e| {
        matches!(e, Event::Assigned { partitions } if partitions.values().any(|p| !p.is_empty()))
    })
    .await;
    app.put_files(&third, 8).await;
    let all: Vec<_> = first.iter().chain(&second).chain(&third).cloned().collect();
    app.finish(&all, &[], DONE, &mut [&mut a, &mut b]).await;
}

/// Item 5. A lister stalls after listing and before its transaction of
/// `discovered` records; another worker takes over and counts everything.
/// When the zombie resumes, its transaction must be fenced: otherwise its
/// stale `discovered` records land after the `counted` ones, and the ledger
/// (compacted: latest per key) says those objects are still to count.
#[tokio::test(flavor = "multi_thread")]
async fn a_zombie_lister_cannot_commit_stale_discoveries() {
    let _stack = shared().await;
    let (app, files) = App::with_papers("ws-zombie-lister", 30, 10).await;
    let mut a = worker_with(&app, "a", &[], "commit.discovery_only=stop");
    wait_stopped(&a).await;
    let mut b = worker_with(&app, "b", &[], "");
    app.assert_exactly_once(&files, &[], DONE, &[&b]).await;
    let resumed = testkit::now();
    a.signal(libc::SIGCONT);
    // The zombie's transaction is fenced; A rejoins the group.
    a.wait_event(resumed, READY, "A assigned again", |e| {
        matches!(e, Event::Assigned { .. })
    })
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let latest = app.ledger_latest().await;
    for (k, _) in &files {
        let v = &latest[&app.url(k)];
        assert_eq!(v["state"], "counted", "{k}: latest ledger entry {v}");
    }
    app.finish(&files, &[], DONE, &mut [&mut a, &mut b]).await;
}

/// Item 2. An object whose read takes longer than `max.poll.interval.ms`
/// (here S3 frozen for 12 s mid-read, behind the test's own proxy, with a
/// 7 s poll interval): the worker keeps its membership while it counts, so
/// the batch commits the first time: no abort, counted once.
#[tokio::test(flavor = "multi_thread")]
async fn an_object_read_longer_than_the_poll_interval_commits_without_abort() {
    let _stack = shared().await;
    let app = App::new("ws-long-read").await;
    let proxy = Proxy::s3().await;
    let url = proxy.url();
    let mut w = worker_with(
        &app,
        "slow",
        &[
            "--endpoint-url",
            &url,
            "-X",
            "session.timeout.ms=6000",
            "-X",
            "max.poll.interval.ms=7000",
        ],
        "",
    );
    w.wait_ready(READY).await;
    let unit = b"the quick brown fox jumps over the lazy dog\n";
    app.put_repeated("big.txt", unit, 400_000).await; // ~17 MB
    let before = proxy.bytes_down();
    for _ in 0..600 {
        if proxy.bytes_down() > before + (1 << 20) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    proxy.freeze();
    tokio::time::sleep(Duration::from_secs(12)).await;
    proxy.thaw();
    let want: Counts = testkit::counts::times(&count_bytes(unit), 400_000);
    app.wait_for_totals(&want, DONE, &[&w]).await;
    assert_eq!(aborts(&w), 0, "batches aborted\n{}", w.log_tail(40));
    w.stop().await;
}

/// Item 4. Consumed repartition records are deleted (DeleteRecords) up to
/// the committed offsets: the topic's low watermarks advance.
#[tokio::test(flavor = "multi_thread")]
async fn consumed_repartition_records_are_purged() {
    let _stack = shared().await;
    // Two workers: a worker's deltas of the words it owns go straight to
    // its changelog; only the other's go through the repartition topic.
    let (app, mut w) = App::with_worker("ws-purge", "purger", &["--purge-interval", "1"]).await;
    let mut w2 = app.worker("purger-2", &["--purge-interval", "1"]);
    w2.wait_ready(READY).await;
    testkit::group::wait_settled(&mut [&mut w, &mut w2], 8, Duration::from_secs(120)).await;
    let files = papers(50, 20);
    app.put_files(&files, 8).await;
    app.assert_exactly_once(&files, &[], DONE, &[&w, &w2]).await;
    let topic = app.repartition_topic();
    let mut low = 0;
    for _ in 0..60 {
        low = stack()
            .watermarks(&topic)
            .await
            .iter()
            .map(|(_, low, _)| low)
            .sum::<i64>();
        if low > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        low > 0,
        "{topic}: no record purged\n{}\n{}",
        w.log_tail(30),
        w2.log_tail(30)
    );
    w.stop().await;
    w2.stop().await;
}

/// New topics whose partitions get their leaders only after 15 s (a
/// controller busy creating many partitions; CI met 10 s): the worker waits
/// for them instead of exiting, then counts exactly. The slow election is
/// the failpoint `topics.leaderless`, which makes the worker see its new
/// topics without leaders for that long.
#[tokio::test(flavor = "multi_thread")]
async fn new_topics_slow_to_get_leaders_are_waited_for() {
    let _stack = shared().await;
    let (app, files) = App::with_papers("ws-slow-leaders", 10, 4).await;
    let mut w = worker_with(&app, "w", &[], "topics.leaderless=sleep(15000)");
    w.wait_ready(READY).await;
    app.finish(&files, &[], DONE, &mut [&mut w]).await;
}

/// A loop step that blocks longer than the watchdog's 60 s (here the
/// loop thread sleeps 62 s in a commit, failpoint `commit.discovery_only`)
/// is announced as a `stalled` event naming the step; the worker then goes
/// on and counts exactly.
#[tokio::test(flavor = "multi_thread")]
async fn a_blocked_loop_step_is_announced_as_stalled() {
    let _stack = shared().await;
    let (app, files) = App::with_papers("ws-stalled", 40, 4).await;
    let mut w = worker_with(&app, "w", &[], "commit.discovery_only=sleep(62000)");
    let (_, e) = w
        .wait_event(0.0, Duration::from_secs(120), "a stalled event", |e| {
            matches!(e, Event::Stalled { .. })
        })
        .await;
    let Event::Stalled { step, seconds } = e else {
        unreachable!()
    };
    assert_eq!(step, "commit", "{}", w.log_tail(20));
    assert!(seconds >= 60, "{seconds}");
    app.finish(&files, &[], DONE, &mut [&mut w]).await;
}

/// Item 7. A record in the changelog that does not decode (a third party
/// wrote to the topic) is skipped and counted, not fatal.
#[tokio::test(flavor = "multi_thread")]
async fn junk_in_the_changelog_is_skipped_not_fatal() {
    let _stack = shared().await;
    let first = b"alpha beta beta\n";
    let (app, mut w) = App::with_worker("ws-junk", "first", &[]).await;
    app.put("a.txt", first.to_vec()).await;
    app.wait_for_totals(&count_bytes(first), DONE, &[&w]).await;
    w.stop().await;
    stack()
        .produce(&app.changelog_topic(), Some(0), &[(b"not json", b"junk")])
        .await;
    let mut w = app.worker("second", &[]);
    w.wait_ready(READY).await;
    app.put("b.txt", b"beta gamma\n".to_vec()).await;
    w.wait_event(
        0.0,
        DONE,
        "a status with the junk record",
        |e| matches!(e, Event::Status(s) if s.junk_records == 1 && s.objects == 1),
    )
    .await;
    w.stop().await;
}

/// Item 7. A second bucket on the same app id while objects of the first
/// wait to be counted is refused with one line naming both buckets (before,
/// each worker skipped the other's objects silently). A bucket whose
/// objects are all counted is history and does not block another.
#[tokio::test(flavor = "multi_thread")]
async fn a_second_bucket_on_one_app_id_is_refused() {
    let _stack = shared().await;
    let (app, mut w) = App::with_worker("ws-twobuckets", "one", &[]).await;
    app.put("a.txt", b"alpha\n".to_vec()).await;
    app.wait_for_done(&[app.url("a.txt")], DONE, &[&w]).await;
    w.stop().await;
    let other = stack().new_bucket("ws-twobuckets-b").await;
    let cmd = || worker::command(stack(), &other, &app.app_id, None, &["--interval", "0.5"]);
    // The first bucket's objects are all counted: only history (e.g. the
    // quickstart, a bucket per run on the default app id). Allowed.
    let mut after = Worker::spawn("next-bucket", cmd());
    after.wait_ready(READY).await;
    after.stop().await;
    // A worker of the first bucket still at work: an object of it waits.
    app.inject_discovered(&app.url("b.txt"), "\"0\"", 1, 8)
        .await;
    let mut second = Worker::spawn("other-bucket", cmd());
    let status = second
        .wait_exit(Duration::from_secs(60))
        .await
        .expect("the worker of the second bucket exits");
    assert_eq!(status.code(), Some(1), "{}", second.log_tail(20));
    let tail = second.log_tail(5);
    assert!(
        tail.contains(&app.bucket) && tail.contains(&other) && tail.contains("--app-id"),
        "{tail}"
    );
}

/// Item 8. A membership change costs a worker only the partitions it
/// gains: when a second worker joins, the first keeps the tables of the
/// partitions it keeps (no restore of them), as its events show.
#[tokio::test(flavor = "multi_thread")]
async fn a_rebalance_restores_only_the_partitions_a_worker_gains() {
    let _stack = shared().await;
    let (app, mut a) = App::with_worker("ws-keep", "keeper", &[]).await;
    let files = papers(70, 10);
    app.put_files(&files, 8).await;
    app.assert_exactly_once(&files, &[], DONE, &[&a]).await;
    let joined = testkit::now();
    let mut b = app.worker("joiner", &[]);
    b.wait_ready(READY).await;
    // A gave up some partitions and kept the rest.
    a.wait_event(joined, DONE, "A's assignment after B joined", |e| {
        matches!(e, Event::Assigned { partitions } if partitions.values().map(Vec::len).sum::<usize>() < 16)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let restored: Vec<Event> = testkit::events::events(&a.lines())
        .filter(|(t, e)| {
            *t >= joined && matches!(e, Event::Restored { entries, .. } if *entries > 0)
        })
        .map(|(_, e)| e.clone())
        .collect();
    assert!(
        restored.is_empty(),
        "A restored kept partitions: {restored:?}"
    );
    let more = papers(80, 6);
    app.put_files(&more, 8).await;
    let all: Vec<_> = files.iter().chain(&more).cloned().collect();
    app.finish(&all, &[], DONE, &mut [&mut a, &mut b]).await;
}
