//! Issue 14: the totals follow the bucket. An overwritten object is
//! counted again and replaces its old contribution, a deleted one is taken
//! out; a word at 0 leaves the table with a tombstone in the changelog.
//! Each test keeps a model of its bucket ([`testkit::bucket::Model`]) and
//! compares the changelog with the counts of what the bucket holds, exactly.
//! Workers run with `--reconcile-interval 1`, so overwrites of old keys
//! and deletes are found by a full pass within a few seconds.

use std::collections::BTreeSet;
use std::time::Duration;
use testkit::app::App;
use testkit::bucket::{small_text, Model};
use testkit::cli::{cmd, consume, run};
use testkit::corpus::Rng;
use testkit::counts::Counts;
use testkit::events::restores;
use testkit::notify::{described, Notifier};
use testkit::stack::{shared, stack};
use testkit::worker::{Worker, READY};

/// Flags of every worker here: full passes one second apart.
const FLAGS: &[&str] = &["--reconcile-interval", "1"];
/// How long the totals may take to follow a round of changes (loaded box).
const FOLLOW: Duration = Duration::from_secs(180);

fn key(i: usize) -> String {
    format!("o/{i:04}.txt")
}

/// A fresh app with a ready worker (`id`, [`FLAGS`] and `extra`), `n`
/// objects uploaded and recorded in the returned model, and the seeded
/// random source of the test (`what`).
async fn start(what: &str, id: &str, extra: &[&str], n: usize) -> (App, Worker, Model, Rng) {
    let mut rng = Rng::from_clock(what);
    let mut flags = FLAGS.to_vec();
    flags.extend_from_slice(extra);
    let (app, w) = App::with_worker(&format!("ws-{id}"), id, &flags).await;
    let mut model = Model::default();
    upload(&app, &mut model, &mut rng, n).await;
    (app, w, model, rng)
}

/// Uploads `n` objects (recorded in `model`).
async fn upload(app: &App, model: &mut Model, rng: &mut Rng, n: usize) {
    let objects = (0..n)
        .map(|i| (key(i), small_text(rng, &format!("v{i}"))))
        .collect();
    model.put_all(app, objects).await;
}

/// The must-show round of changes: overwrite 100 objects with other texts,
/// delete 50 others, overwrite 10 more twice in quick succession (faster
/// than `--interval`).
async fn change(app: &App, model: &mut Model, rng: &mut Rng) {
    let mut keys: Vec<String> = model.objects.keys().cloned().collect();
    // A seeded shuffle.
    for i in (1..keys.len()).rev() {
        keys.swap(i, rng.below(i + 1));
    }
    let (over, rest) = keys.split_at(100);
    let (gone, rest) = rest.split_at(50);
    let twice = &rest[..10];
    let objects = over
        .iter()
        .map(|k| (k.clone(), small_text(rng, &format!("{k}w"))))
        .collect();
    model.put_all(app, objects).await;
    model.delete_all(app, gone).await;
    for round in ["x", "y"] {
        let objects = twice
            .iter()
            .map(|k| (k.clone(), small_text(rng, &format!("{k}{round}"))))
            .collect();
        model.put_all(app, objects).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// The changelog equals `want` and `count-local s3://bucket` (what the
/// bucket holds, counted directly).
async fn assert_follows(app: &App, want: &Counts, workers: &[&Worker]) {
    app.wait_for_totals(want, FOLLOW, workers).await;
    assert_eq!(
        &testkit::counts::count_local_s3(&app.bucket),
        want,
        "count-local s3://{} and the model differ",
        app.bucket
    );
}

/// The stdout of `consume --from-beginning -e --output O` of `topic`, for
/// each output O.
async fn consume_outputs<const N: usize>(topic: &str, outputs: [&str; N]) -> [String; N] {
    let mut out = Vec::new();
    for o in outputs {
        let flags = ["--from-beginning", "-e", "--output", o];
        out.push(run(consume(stack(), topic, &flags)).await.ok().stdout);
    }
    out.try_into().expect("one output each")
}

/// The changelog still equals `want` a few seconds (full passes) later.
async fn assert_stays(app: &App, want: &Counts) {
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(&app.changelog().await, want, "and it stays so");
}

/// `count-local --verify s3://BUCKET` (the changelog against what the
/// bucket holds now) passes.
async fn verify_s3(app: &App) {
    let url = format!("s3://{}", app.bucket);
    let args = [
        "count-local",
        "--verify",
        "--app-id",
        app.app_id.as_str(),
        "--output",
        "tsv",
        url.as_str(),
    ];
    let verified = run(cmd(stack(), &args)).await.ok();
    assert_eq!(verified.stdout, "", "no differences");
}

/// 300 objects, 100 overwritten, 50 deleted, 10 overwritten twice in quick
/// succession: the changelog equals the counts of the bucket exactly.
#[tokio::test(flavor = "multi_thread")]
async fn overwrites_recount_and_deletes_retract_exactly() {
    let _stack = shared().await;
    let (app, mut w, mut model, mut rng) = start("on_change", "change-1", &[], 300).await;
    app.wait_for_totals(&model.totals(), FOLLOW, &[&w]).await;
    change(&app, &mut model, &mut rng).await;
    assert_follows(&app, &model.totals(), &[&w]).await;
    verify_s3(&app).await;
    // Objects that took words out (listed keys that failed and went, such
    // as an S3 server's temporary upload files, retract nothing).
    let removed = w
        .lines()
        .iter()
        .filter(|l| {
            matches!(
                l.event,
                Some(wordstream::events::Event::ObjectRemoved { words, .. }) if words > 0
            )
        })
        .count();
    assert_eq!(removed, 50, "one retraction per deleted object");
    w.assert_running();
    w.stop().await;
}

/// The same with a kill -9 of the worker at random moments (≥ 6 kills,
/// restarted with the same --worker-id each time) during the changes.
#[tokio::test(flavor = "multi_thread")]
async fn overwrites_and_deletes_stay_exact_under_kill9() {
    let _stack = shared().await;
    let (app, mut w, mut model, mut rng) = start("on_change_kill9", "change-k", &[], 300).await;
    let mut kills = Vec::new();
    for round in 0..6 {
        if round == 2 {
            change(&app, &mut model, &mut rng).await;
        }
        if round == 4 {
            // A second round of changes on what is left.
            let left: Vec<String> = model.objects.keys().take(20).cloned().collect();
            model.delete_all(&app, &left[..10]).await;
            let objects = left[10..]
                .iter()
                .map(|k| (k.clone(), small_text(&mut rng, &format!("{k}z"))))
                .collect();
            model.put_all(&app, objects).await;
        }
        w.wait_ready(READY).await;
        let d = rng.millis(200, 3000);
        tokio::time::sleep(d).await;
        w.assert_running();
        w.kill9();
        kills.push(d.as_millis());
        w = app.worker("change-k", FLAGS);
    }
    eprintln!("killed after ready + {kills:?} ms");
    w.wait_ready(READY).await;
    assert_follows(&app, &model.totals(), &[&w]).await;
    w.stop().await;
}

/// The same with 2 workers of one group (the lister and the count stage
/// of an object may be different workers).
#[tokio::test(flavor = "multi_thread")]
async fn overwrites_and_deletes_stay_exact_with_two_workers() {
    let _stack = shared().await;
    let mut rng = Rng::from_clock("on_change_two");
    let app = App::new("ws-change-2").await;
    let mut w1 = app.worker("", FLAGS);
    let mut w2 = app.worker("", FLAGS);
    w1.wait_ready(READY).await;
    w2.wait_ready(READY).await;
    let mut model = Model::default();
    upload(&app, &mut model, &mut rng, 300).await;
    app.wait_for_totals(&model.totals(), FOLLOW, &[&w1, &w2])
        .await;
    change(&app, &mut model, &mut rng).await;
    assert_follows(&app, &model.totals(), &[&w1, &w2]).await;
    w1.assert_running();
    w2.assert_running();
    w1.stop().await;
    w2.stop().await;
}

/// Every object deleted: the table is empty, every word's latest record in
/// the changelog is a tombstone, and a restarted worker restores an empty
/// table (and counts a new object from zero).
#[tokio::test(flavor = "multi_thread")]
async fn deleting_everything_tombstones_every_word() {
    let _stack = shared().await;
    let (app, mut w, mut model, mut rng) = start("on_change_all", "change-all", &[], 40).await;
    let words: BTreeSet<String> = model.totals().into_keys().collect();
    app.wait_for_totals(&model.totals(), FOLLOW, &[&w]).await;
    let keys: Vec<String> = model.objects.keys().cloned().collect();
    model.delete_all(&app, &keys).await;
    app.wait_for_totals(&Counts::new(), FOLLOW, &[&w]).await;
    let mut latest = std::collections::BTreeMap::new();
    for r in stack()
        .read_to_end(&app.changelog_topic(), "read_committed")
        .await
    {
        let word: String = serde_json::from_slice(r.key.as_deref().unwrap()).unwrap();
        latest.insert(word, r.value);
    }
    assert_eq!(latest.keys().cloned().collect::<BTreeSet<_>>(), words);
    assert!(
        latest.values().all(Option::is_none),
        "every word's latest record is a tombstone"
    );
    // consume shows tombstones as kcat does (lines) and as JSON null; its
    // table and `count-local --verify` take a tombstoned word as absent.
    let topic = app.changelog_topic();
    let [lines, json, table] = consume_outputs(&topic, ["lines", "json", "table"]).await;
    for word in &words {
        assert!(
            lines.contains(&format!("{word}\tNULL\n")),
            "no tombstone line for {word:?}"
        );
    }
    assert!(json.contains("\"value\":null"), "{json}");
    assert!(
        !words.iter().any(|w| table.contains(&format!(" {w} "))),
        "a tombstoned word in the table:\n{table}"
    );
    verify_s3(&app).await;
    w.stop().await;

    let mut w = app.worker("change-all", FLAGS);
    w.wait_ready(READY).await;
    let tables = restores(&w.lines(), "table");
    assert!(!tables.is_empty(), "a table restore");
    assert_eq!(tables.iter().map(|r| r.entries).sum::<u64>(), 0);
    let text = small_text(&mut rng, "again");
    model.put_all(&app, vec![("again.txt".into(), text)]).await;
    app.wait_for_totals(&model.totals(), FOLLOW, &[&w]).await;
    w.stop().await;
}

/// `--on-change ignore`: today's behaviour. Overwritten and deleted
/// objects keep their first counts; new keys are counted; no
/// contributions topic is made.
#[tokio::test(flavor = "multi_thread")]
async fn on_change_ignore_counts_each_key_once() {
    let _stack = shared().await;
    let (app, mut w, mut model, mut rng) = start(
        "on_change_ignore",
        "change-ign",
        &["--on-change", "ignore"],
        30,
    )
    .await;
    let first = model.totals();
    app.wait_for_totals(&first, FOLLOW, &[&w]).await;
    let keys: Vec<String> = model.objects.keys().cloned().collect();
    let objects = keys[..10]
        .iter()
        .map(|k| (k.clone(), small_text(&mut rng, "over")))
        .collect();
    model.put_all(&app, objects).await;
    model.delete_all(&app, &keys[10..20]).await;
    // Full passes go by (one a second): a new key, found after the changes,
    // is counted; the changes are not.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let late = small_text(&mut rng, "late");
    let mut want = first.clone();
    testkit::counts::add_counts(&mut want, &testkit::counts::count_bytes(&late), 1);
    app.put("z-late.txt", late).await;
    app.wait_for_totals(&want, FOLLOW, &[&w]).await;
    assert_stays(&app, &want).await;
    assert!(
        stack()
            .layout(&format!("{}-word_counts-contributions", app.app_id))
            .is_none(),
        "no contributions topic under ignore"
    );
    w.stop().await;
}

/// Through S3 event notices (`--events kafka:…`, no listing for an hour):
/// an `ObjectRemoved` notice of a deleted object retracts it at once, one
/// of an object uploaded again since (a late notice) retracts nothing (the
/// worker checks with HeadObject), and an `ObjectCreated` notice of a new
/// version recounts it.
#[tokio::test(flavor = "multi_thread")]
async fn event_notices_retract_and_recount_without_a_listing() {
    let _stack = shared().await;
    let mut rng = Rng::from_clock("on_change_events");
    let app = App::new("ws-change-ev").await;
    let mut model = Model::default();
    upload(&app, &mut model, &mut rng, 30).await;
    let notifier = Notifier::new_kafka("ws-change-ev", 1).await;
    let events = notifier.flag();
    let flags = [
        "--events",
        events.as_str(),
        "--interval",
        "3600",
        "--reconcile-interval",
        "3600",
    ];
    let mut w = Worker::spawn("change-ev", app.worker_command(Some("change-ev"), &flags));
    w.wait_ready(READY).await;
    app.wait_for_totals(&model.totals(), FOLLOW, &[&w]).await;
    let keys: Vec<String> = model.objects.keys().cloned().collect();
    let (gone, rest) = keys.split_at(5);
    let (over, rest) = rest.split_at(5);
    let back = &rest[..1];
    model.delete_all(&app, gone).await;
    model.delete_all(&app, back).await;
    let objects: Vec<(String, Vec<u8>)> = over
        .iter()
        .chain(back)
        .map(|k| (k.clone(), small_text(&mut rng, &format!("{k}e"))))
        .collect();
    model.put_all(&app, objects).await;
    let removed: Vec<String> = gone.iter().chain(back).cloned().collect();
    notifier.removed(&app.bucket, &removed).await;
    let changed: Vec<String> = over.iter().chain(back).cloned().collect();
    notifier
        .created(&app.bucket, &described(&app.bucket, &changed).await)
        .await;
    app.wait_for_totals(&model.totals(), Duration::from_secs(60), &[&w])
        .await;
    assert_stays(&app, &model.totals()).await;
    w.stop().await;
}

/// An object overwritten between its listing and its read (a failpoint
/// holds the count stage 4 s): the read asks for the listed version
/// (`If-Match`), finds it replaced and reads the version there is now. The
/// totals are that version's, once; the ledger records its ETag; the
/// listing of the new version afterwards changes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn an_object_overwritten_before_its_read_counts_the_new_version_once() {
    let _stack = shared().await;
    let mut rng = Rng::from_clock("on_change_race");
    let app = App::new("ws-change-race").await;
    let flags = ["--interval", "0.5", "--reconcile-interval", "1"];
    let mut cmd = app.worker_command(Some("change-race"), &flags);
    cmd.env(wordstream::failpoint::VAR, "count.slow=sleep(4000)");
    let mut w = Worker::spawn("change-race", cmd);
    w.wait_ready(READY).await;
    let mut model = Model::default();
    let key = "race.txt".to_string();
    model
        .put_all(&app, vec![(key.clone(), small_text(&mut rng, "first"))])
        .await;
    app.wait_for_ledger(&app.url(&key), FOLLOW, &[&w]).await;
    model
        .put_all(&app, vec![(key.clone(), small_text(&mut rng, "second"))])
        .await;
    app.wait_for_totals(&model.totals(), FOLLOW, &[&w]).await;
    let etag = &described(&app.bucket, std::slice::from_ref(&key)).await[0].1;
    let latest = app.ledger_latest().await;
    let counted = &latest[&app.url(&key)];
    assert_eq!(counted["state"], "counted", "{counted}");
    assert_eq!(
        counted["etag"].as_str().map(|e| e.trim_matches('"')),
        Some(etag.trim_matches('"')),
        "{counted}"
    );
    // Full passes see the new version: it is counted already.
    assert_stays(&app, &model.totals()).await;
    w.stop().await;
}
