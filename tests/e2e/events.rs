//! Event-driven discovery (issue 13, `--events sqs:URL` / `--events
//! kafka:TOPIC`): the test plays S3's notifier (testkit::notify) into a
//! queue of the stack's SQS server or a topic of its own, so it decides
//! which events arrive, twice, out of order, or never.
//!
//! Every object has a random key (they sort anywhere: the quick listing
//! cannot find them), and the workers run with `--interval 3600` and a long
//! `--reconcile-interval` where only events may find them.

use std::path::PathBuf;
use std::time::Duration;
use testkit::app::App;
use testkit::corpus::{self, Rng};
use testkit::notify::{described, s3_event, Notifier};
use testkit::stack::{shared, stack};
use testkit::worker::{Worker, READY};
use wordstream::events::{Event, Status};

const DONE: Duration = Duration::from_secs(90);

/// No listing for an hour, full or quick: only events find new objects.
const EVENTS_ONLY: &[&str] = &["--interval", "3600", "--reconcile-interval", "3600"];

/// A worker of `app` reading `notifier`'s events, with `flags` (and a status
/// line a second), once it lists the bucket and its first full pass is over
/// (a status line of the lister after one list call at least): objects
/// uploaded from then on can only be found by events (or the next pass).
/// Returns that status too.
async fn started(app: &App, id: &str, notifier: &Notifier, flags: &[&str]) -> (Worker, Status) {
    let events = notifier.flag();
    let mut all = vec!["--events", events.as_str(), "--status-interval", "1"];
    all.extend_from_slice(flags);
    let mut w = Worker::spawn(id, app.worker_command(Some(id), &all));
    let (_, e) = w
        .wait_event(
            0.0,
            READY,
            "status of the lister after a listing",
            |e| matches!(e, Event::Status(s) if s.lister && s.list_calls >= 1),
        )
        .await;
    match e {
        Event::Status(s) => (w, s),
        _ => unreachable!(),
    }
}

/// `n` papers of the corpus from the `skip`-th, under keys that sort
/// anywhere: `PREFIX<8 random hex>-<name>`.
fn random_keys(prefix: &str, skip: usize, n: usize, rng: &mut Rng) -> Vec<(String, PathBuf)> {
    corpus::papers(skip, n)
        .into_iter()
        .map(|(k, p)| {
            let name = k.rsplit('/').next().unwrap_or(&k).to_string();
            (format!("{prefix}{:08x}-{name}", rng.next_u64() as u32), p)
        })
        .collect()
}

fn keys(files: &[(String, PathBuf)]) -> Vec<String> {
    files.iter().map(|(k, _)| k.clone()).collect()
}

/// The two tests of one scenario (`async fn(Notifier, prefix)`): events
/// through a topic of the test's own (`partitions` partitions), and through
/// a queue of the stack's SQS server. App prefixes: `PREFIX-k`, `PREFIX-s`.
macro_rules! on_topic_and_queue {
    ($scenario:ident($prefix:literal, partitions: $partitions:expr) => $kafka:ident, $sqs:ident) => {
        #[tokio::test(flavor = "multi_thread")]
        async fn $kafka() {
            let _stack = shared().await;
            let notifier = Notifier::new_kafka("ws-ev-topic", $partitions).await;
            $scenario(notifier, concat!($prefix, "-k")).await;
        }

        #[tokio::test(flavor = "multi_thread")]
        async fn $sqs() {
            let _stack = shared().await;
            let notifier = Notifier::new_sqs("ws-ev-queue").await;
            $scenario(notifier, concat!($prefix, "-s")).await;
        }
    };
}

/// Upload → counted through events alone: the listing runs once at start
/// (an empty bucket) and never again during the test.
async fn counted_through_events(notifier: Notifier, prefix: &str) {
    let app = App::new(prefix).await;
    let (mut w, first) = started(&app, "events", &notifier, EVENTS_ONLY).await;
    let files = random_keys("", 0, 12, &mut Rng::from_clock(prefix));
    app.put_files(&files, 4).await;
    notifier
        .created(&app.bucket, &described(&app.bucket, &keys(&files)).await)
        .await;
    app.assert_exactly_once(&files, &[], DONE, &[&w]).await;
    let (_, last) = w.latest_status().expect("status lines");
    assert_eq!(
        last.list_calls, first.list_calls,
        "no listing after the first pass: only events found the objects"
    );
    w.stop().await;
    let (_, last) = w.latest_status().expect("status lines");
    assert_eq!(last.notices.found, 12, "{:?}", last.notices);
}

on_topic_and_queue!(counted_through_events("ws-ev-new", partitions: 3)
    => kafka_events_count_new_objects_with_random_keys,
       sqs_events_count_new_objects_with_random_keys);

/// Every object's event three times, all shuffled, two objects' events
/// never sent, and noise (another bucket, another prefix, AWS's test event,
/// a message that is no notification, a removal): the totals are exact,
/// and the two objects without events are found by a reconciliation pass.
async fn unreliable_events(notifier: Notifier, prefix: &str) {
    let app = App::new(prefix).await;
    let flags = [
        "--prefix",
        "in/",
        "--interval",
        "3600",
        "--reconcile-interval",
        "10",
    ];
    let (mut w, _) = started(&app, "unreliable", &notifier, &flags).await;
    let mut rng = Rng::from_clock(prefix);
    let files = random_keys("in/", 20, 8, &mut rng);
    let outside = random_keys("out/", 30, 1, &mut rng);
    app.put_files(&files, 4).await;
    app.put_files(&outside, 1).await;
    let objects = described(&app.bucket, &keys(&files)).await;
    let mut bodies = Vec::new();
    for (k, e, s) in &objects[2..] {
        for _ in 0..3 {
            bodies.push(s3_event("ObjectCreated:Put", &app.bucket, k, e, *s));
        }
    }
    let (ok, oe, os) = &described(&app.bucket, &keys(&outside)).await[0];
    bodies.push(s3_event("ObjectCreated:Put", &app.bucket, ok, oe, *os));
    bodies.push(s3_event(
        "ObjectCreated:Put",
        "another-bucket",
        &objects[0].0,
        "e",
        1,
    ));
    bodies.push(s3_event(
        "ObjectRemoved:Delete",
        &app.bucket,
        &objects[2].0,
        "",
        0,
    ));
    bodies.push(
        r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"b","RequestId":"r","HostId":"h"}"#
            .to_string(),
    );
    bodies.push("not a notification".to_string());
    for i in (1..bodies.len()).rev() {
        bodies.swap(i, rng.below(i + 1));
    }
    notifier.send(&bodies).await;
    app.assert_exactly_once(&files, &[], DONE, &[&w]).await;
    let ledger = app.ledger_latest().await;
    assert!(
        !ledger.contains_key(&app.url(ok)),
        "an object outside --prefix was discovered"
    );
    // Every message is taken in (18 created notices of the bucket and
    // prefix at least; more if a batch was abandoned and they came again).
    let taken =
        |s: &Status| s.notices.created >= 18 && s.notices.removed >= 1 && s.notices.ignored >= 2;
    w.wait_event(
        0.0,
        DONE,
        "status with every notice taken",
        |e| matches!(e, Event::Status(s) if taken(s)),
    )
    .await;
    w.stop().await;
}

on_topic_and_queue!(unreliable_events("ws-ev-dup", partitions: 3)
    => kafka_events_duplicated_reordered_and_dropped_keep_totals_exact,
       sqs_events_duplicated_reordered_and_dropped_keep_totals_exact);

/// An event naming an object already deleted: the object fails as
/// `NoSuchKey` (as a listed object that vanished does), and no count moves;
/// the queue is empty at the end (the event was acknowledged).
#[tokio::test(flavor = "multi_thread")]
async fn an_event_for_a_deleted_object_changes_no_count() {
    let _stack = shared().await;
    let app = App::new("ws-ev-gone").await;
    let notifier = Notifier::new_sqs("ws-ev-queue").await;
    let (mut w, _) = started(&app, "gone", &notifier, EVENTS_ONLY).await;
    let files = random_keys("", 40, 2, &mut Rng::from_clock("ws-ev-gone"));
    app.put_files(&files, 2).await;
    app.put("gone.txt", b"vanishing words".to_vec()).await;
    let mut objects = described(&app.bucket, &keys(&files)).await;
    objects.extend(described(&app.bucket, &["gone.txt".to_string()]).await);
    app.delete("gone.txt").await;
    notifier.created(&app.bucket, &objects).await;
    app.wait_for_done(&[app.url("gone.txt")], DONE, &[&w]).await;
    assert_eq!(
        app.ledger_latest().await[&app.url("gone.txt")]["state"],
        "failed"
    );
    let paths: Vec<PathBuf> = files.iter().map(|(_, p)| p.clone()).collect();
    let want = testkit::counts::count_local(&paths);
    app.wait_for_done(
        &files.iter().map(|(k, _)| app.url(k)).collect::<Vec<_>>(),
        DONE,
        &[&w],
    )
    .await;
    app.wait_for_totals(&want, DONE, &[&w]).await;
    let Notifier::Sqs(url) = &notifier else {
        unreachable!()
    };
    testkit::wait::wait_for(Duration::from_secs(30), "the queue emptied", || async {
        testkit::notify::queue_depth(url).await == 0
    })
    .await;
    w.stop().await;
}

/// A queue or topic that does not exist or does not answer: one line naming
/// it, exit 1, before anything else happens.
#[tokio::test(flavor = "multi_thread")]
async fn a_missing_or_unreachable_source_is_one_line_and_exit_1() {
    let _stack = shared().await;
    let app = App::new("ws-ev-bad").await;
    let missing_topic = testkit::names::unique_name("ws-ev-missing");
    let missing_queue = format!(
        "{}/000000000000/{}",
        testkit::notify::sqs_endpoint(),
        testkit::names::unique_name("ws-ev-missing")
    );
    let silent = "http://127.0.0.1:9/000000000000/wordstream-events".to_string();
    let cases = [
        (
            format!("kafka:{missing_topic}"),
            format!(
                "wordstream: error: events topic {missing_topic} does not exist on {} (--events kafka:{missing_topic})",
                stack().brokers
            ),
        ),
        (
            format!("sqs:{missing_queue}"),
            format!("wordstream: error: cannot read SQS queue {missing_queue}: "),
        ),
        (
            format!("sqs:{silent}"),
            format!("wordstream: error: cannot read SQS queue {silent}: "),
        ),
    ];
    for (flag, line) in cases {
        let flags = ["--connect-timeout", "5", "--events", &flag];
        let c = app.worker_command(Some("bad"), &flags);
        let run = testkit::cli::run_for(c, Some(Duration::from_secs(60))).await;
        assert_eq!(run.code, Some(1), "--events {flag}: {run:?}");
        assert_eq!(
            run.stderr.lines().count(),
            1,
            "--events {flag}: {}",
            run.stderr
        );
        assert!(
            run.stderr.starts_with(&line),
            "--events {flag}: {}\nwanted: {line}…",
            run.stderr
        );
    }
}

/// The queue or topic is removed mid-run: the worker warns, keeps counting
/// through the listing (keys that arrive in order, found by the quick
/// listing), and reads events again once the source is back.
async fn source_goes_away(notifier: Notifier, prefix: &str) {
    let app = App::new(prefix).await;
    let flags = ["--interval", "1", "--reconcile-interval", "3600"];
    let (mut w, _) = started(&app, "away", &notifier, &flags).await;
    let mut rng = Rng::from_clock(prefix);
    let first = random_keys("", 50, 3, &mut rng);
    app.put_files(&first, 3).await;
    notifier
        .created(&app.bucket, &described(&app.bucket, &keys(&first)).await)
        .await;
    app.assert_exactly_once(&first, &[], DONE, &[&w]).await;
    notifier.remove().await;
    // In order (after every key so far: "~" sorts after hex digits).
    let ordered: Vec<(String, PathBuf)> = corpus::papers(53, 3)
        .into_iter()
        .enumerate()
        .map(|(i, (_, p))| (format!("~{i:03}.txt"), p))
        .collect();
    app.put_files(&ordered, 3).await;
    let mut all = first.clone();
    all.extend(ordered);
    app.assert_exactly_once(&all, &[], DONE, &[&w]).await;
    w.assert_running();
    w.stop().await;
}

on_topic_and_queue!(source_goes_away("ws-ev-away", partitions: 1)
    => the_topic_going_away_mid_run_keeps_counting_through_the_listing,
       the_queue_going_away_mid_run_keeps_counting_through_the_listing);

/// The local stack's S3 server (versitygw) publishes its own bucket
/// notifications to the topic `scripts/stack up` made for them
/// (`WORDSTREAM_EVENTS_TOPIC`): objects with random keys are counted through
/// them alone, nobody playing the notifier.
#[tokio::test(flavor = "multi_thread")]
async fn the_stacks_s3_server_notifies_through_kafka() {
    let _stack = shared().await;
    let topic = testkit::stack::env_or("WORDSTREAM_EVENTS_TOPIC", "wordstream-s3-events");
    let app = App::new("ws-ev-vgw").await;
    let notifier = Notifier::Kafka(topic.clone());
    let (mut w, _) = started(&app, "versitygw", &notifier, EVENTS_ONLY).await;
    let before: i64 = stack()
        .watermarks(&topic)
        .await
        .iter()
        .map(|(_, _, hi)| hi)
        .sum();
    let files = random_keys("", 60, 6, &mut Rng::from_clock("ws-ev-vgw"));
    app.put_files(&files, 3).await;
    testkit::wait::wait_for(
        Duration::from_secs(20),
        &format!(
            "event notifications in {topic}: is the S3 server at {} the stack's, started by \
             `scripts/stack up` with notifications? (scripts/stack status says; \
             `scripts/stack down && scripts/stack up` adds them)",
            stack().s3_endpoint
        ),
        || async {
            let now: i64 = stack()
                .watermarks(&topic)
                .await
                .iter()
                .map(|(_, _, hi)| hi)
                .sum();
            now >= before + files.len() as i64
        },
    )
    .await;
    app.assert_exactly_once(&files, &[], DONE, &[&w]).await;
    w.stop().await;
    let (_, last) = w.latest_status().expect("status lines");
    assert_eq!(last.notices.found, files.len() as u64, "{:?}", last.notices);
    assert_eq!(last.list_calls, 1, "only events found the objects");
}
