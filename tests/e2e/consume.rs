//! e2e: `wordstream consume` against the local stack's Kafka. Each test
//! writes known records (with fixed timestamps, in transactions, one of them
//! aborted) to its own topic and compares the output byte for byte.

use std::process::Command;
use std::time::Duration;
use testkit::cli::{consume, run, run_with_closed_stdout, wordstream, Run};
use testkit::kafka::TxnRecord;
use testkit::names::unique_name;
use testkit::stack::{shared, stack};
use wordstream::wire::Serde;
/// Timestamps of the records: TS0, TS0 + 1, …
const TS0: i64 = 1_700_000_000_000;

/// The changelog of the tests, in three transactions (`word=count`, `null`
/// a tombstone; whether it commits); the middle one aborts.
/// Offsets: 0-4 records, 5 commit marker; 6-7 aborted, 8 abort marker;
/// 9-14 records, 15 commit marker.
const CHANGELOG: [(&str, bool); 3] = [
    ("the=1 cat=1 sat=1 on=1 the=2", true),
    ("the=999 dog=5", false),
    ("naïve=3 cat=2 mat=1 Zoë=4 sat=null the=3", true),
];

/// [`CHANGELOG`] encoded with `serde`, each record with the next timestamp
/// (aborted ones too).
fn changelog_records(serde: Serde) -> Vec<(Vec<TxnRecord>, bool)> {
    let mut ts = TS0 - 1;
    CHANGELOG
        .iter()
        .map(|(records, commit)| {
            let records = records
                .split(' ')
                .map(|r| r.split_once('=').expect("word=count"))
                .map(|(word, count)| {
                    ts += 1;
                    (
                        serde.key(word),
                        count.parse().ok().map(|c| serde.value(c)),
                        Some(ts),
                    )
                })
                .collect();
            (records, *commit)
        })
        .collect()
}

/// A fresh single-partition topic holding [`CHANGELOG`] in `serde`.
async fn changelog_topic(serde: Serde) -> String {
    let topic = stack().new_topic("consume", 1, &[]).await;
    stack()
        .produce_transactions(&topic, Some(0), &changelog_records(serde))
        .await;
    topic
}

const LINES: &str = "the\t1\ncat\t1\nsat\t1\non\t1\nthe\t2\n\
                     naïve\t3\ncat\t2\nmat\t1\nZoë\t4\nsat\tNULL\nthe\t3\n";

/// The committed records of [`CHANGELOG`] as consume shows them: (offset,
/// timestamp - TS0, key, value). Offsets skip the commit marker (5) and the
/// aborted records (6-8); timestamps count the aborted records too.
const COMMITTED: [(i64, i64, &str, &str); 11] = [
    (0, 0, "the", "1"),
    (1, 1, "cat", "1"),
    (2, 2, "sat", "1"),
    (3, 3, "on", "1"),
    (4, 4, "the", "2"),
    (9, 7, "naïve", "3"),
    (10, 8, "cat", "2"),
    (11, 9, "mat", "1"),
    (12, 10, "Zoë", "4"),
    (13, 11, "sat", "null"),
    (14, 12, "the", "3"),
];

/// `consume --topic TOPIC --from-beginning -e EXTRA…`; it must exit 0.
async fn consume_all(topic: &str, extra: &[&str]) -> Run {
    run(from_the_beginning(topic, extra)).await.ok()
}

/// `consume --topic TOPIC --from-beginning -e EXTRA…`.
fn from_the_beginning(topic: &str, extra: &[&str]) -> Command {
    let mut c = consume(stack(), topic, &["--from-beginning", "-e"]);
    c.args(extra);
    c
}

#[tokio::test(flavor = "multi_thread")]
async fn lines_in_each_serde_without_the_aborted_transaction() {
    let _stack = shared().await;
    for (serde, name) in [
        (Serde::Faust, "faust"),
        (Serde::Kstreams, "kstreams"),
        (Serde::Text, "text"),
    ] {
        let topic = changelog_topic(serde).await;
        let run = consume_all(&topic, &["--serde", name]).await;
        assert_eq!(run.stdout, LINES, "--serde {name}");
        assert!(!run.stderr.contains("WARN"), "{}", run.stderr);
    }
}

/// `consume_all` of a fresh [`CHANGELOG`] topic with `extra` flags prints
/// `line(topic, offset, timestamp, key, value)` for its first `n` committed
/// records, exactly.
async fn assert_lines(
    extra: &[&str],
    n: usize,
    line: impl Fn(&str, i64, i64, &str, &str) -> String,
) {
    let topic = changelog_topic(Serde::Faust).await;
    let run = consume_all(&topic, extra).await;
    let want: String = COMMITTED[..n]
        .iter()
        .map(|&(offset, ts, key, value)| line(&topic, offset, TS0 + ts, key, value))
        .collect();
    assert_eq!(run.stdout, want, "{extra:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn json_output() {
    let _stack = shared().await;
    assert_lines(
        &["--output", "json"],
        11,
        |topic, offset, ts, key, value| {
            format!(
                "{{\"topic\":\"{topic}\",\"partition\":0,\"offset\":{offset},\"timestamp\":{ts},\
             \"key\":\"{key}\",\"value\":{value}}}\n"
            )
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn format_string() {
    let _stack = shared().await;
    let format = r"%k=%s\t%t[%p]@%o %T 100%%\\\n";
    assert_lines(
        &["--max-messages", "6", "-f", format],
        6,
        |topic, offset, ts, key, value| format!("{key}={value}\t{topic}[0]@{offset} {ts} 100%\\\n"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn table_top_5() {
    let _stack = shared().await;
    let topic = changelog_topic(Serde::Faust).await;
    let run = consume_all(&topic, &["--output", "table", "--top", "5"]).await;
    // latest per word: Zoë 4, naïve 3, the 3, cat 2, mat 1, on 1 (sat deleted);
    // ties by word, byte order
    let want = "\
┌───────┬───────┐
│ word  ┆ count │
╞═══════╪═══════╡
│ Zoë   ┆     4 │
│ naïve ┆     3 │
│ the   ┆     3 │
│ cat   ┆     2 │
│ mat   ┆     1 │
└───────┴───────┘
";
    assert_eq!(run.stdout, want, "\n{}", run.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn undecodable_records_are_skipped_with_a_warning() {
    let st = shared().await;
    let topic = st.new_topic("consume-bad", 1, &[]).await;
    stack()
        .produce(
            &topic,
            Some(0),
            &[(b"a", b"1"), (b"b", b"x"), (b"c", b"3"), (b"\xff", b"4")],
        )
        .await;
    let run = consume_all(&topic, &["--serde", "text"]).await;
    assert_eq!(run.stdout, "a\t1\nc\t3\n");
    for want in [
        format!(
            "skipping the record at partition 0 offset 1 of {topic}: \
             value is not a decimal integer (--serde text)"
        ),
        format!(
            "skipping the record at partition 0 offset 3 of {topic}: \
             key is not UTF-8 (--serde text)"
        ),
    ] {
        assert!(run.stderr.contains(&want), "{want}\nnot in\n{}", run.stderr);
    }
    // the same records read as faust: none is a JSON string key
    let run = consume_all(&topic, &[]).await;
    assert_eq!(run.stdout, "");
    assert_eq!(run.stderr.matches("key is not a JSON string").count(), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn exit_at_end_on_empty_and_from_the_end() {
    let st = shared().await;
    let topic = st.new_topic("consume-empty", 3, &[]).await;
    let run = consume_all(&topic, &[]).await;
    assert_eq!(run.stdout, "");
    assert!(run.took < Duration::from_secs(8), "{:?}", run.took);
    let run = consume_all(&topic, &["-o", "table"]).await;
    assert_eq!(
        run.stdout,
        "┌──────┬───────┐\n│ word ┆ count │\n╞══════╪═══════╡\n└──────┴───────┘\n"
    );
    // without --from-beginning, -e ends at once even on a topic with records
    let topic = changelog_topic(Serde::Faust).await;
    let run = wordstream(&st, &["consume", "-t", &topic, "-e"]).await.ok();
    assert_eq!(run.stdout, "");
}

/// The default topic is the changelog of --app-id; several partitions.
#[tokio::test(flavor = "multi_thread")]
async fn default_changelog_topic_with_partitions_and_a_group() {
    let st = shared().await;
    let app = unique_name("app");
    let topic = format!("{app}-word_counts-changelog");
    st.create_topic(&topic, 3, &[("cleanup.policy", "compact")])
        .await;
    let rec = |w: &'static str, c: i64| (Serde::Faust.key(w), Serde::Faust.value(c));
    let words: [(&'static str, i64, i32); 6] = [
        ("alpha", 1, 0),
        ("beta", 2, 1),
        ("gamma", 3, 2),
        ("alpha", 7, 0),
        ("delta", 4, 1),
        ("beta", 5, 1),
    ];
    for (w, c, p) in words {
        let (k, v) = rec(w, c);
        stack().produce(&topic, Some(p), &[(&k, &v)]).await;
    }
    let group = unique_name("group");
    let args = |extra: &[&'static str]| {
        let mut a = vec!["consume", "--app-id", &app, "-e", "--group", &group];
        a.extend_from_slice(extra);
        a.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let run = |a: Vec<String>| async move {
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        wordstream(stack(), &a).await.ok()
    };
    // first run of the group: everything, in partition order within each
    let out = run(args(&["--from-beginning"])).await;
    let mut lines: Vec<&str> = out.stdout.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        ["alpha\t1", "alpha\t7", "beta\t2", "beta\t5", "delta\t4", "gamma\t3"]
    );
    // the group committed its offsets: nothing new
    let out = run(args(&["--from-beginning"])).await;
    assert_eq!(out.stdout, "");
    // new records: only those
    let (k, v) = rec("gamma", 9);
    stack().produce(&topic, Some(2), &[(&k, &v)]).await;
    let out = run(args(&[])).await;
    assert_eq!(out.stdout, "gamma\t9\n");

    // without a group: the whole table, and no group offsets are touched
    let out = wordstream(
        &st,
        &[
            "consume",
            "--app-id",
            &app,
            "--from-beginning",
            "-e",
            "-o",
            "table",
        ],
    )
    .await
    .ok();
    assert_eq!(
        out.stdout,
        "┌───────┬───────┐\n│ word  ┆ count │\n╞═══════╪═══════╡\n\
         │ gamma ┆     9 │\n│ alpha ┆     7 │\n│ beta  ┆     5 │\n│ delta ┆     4 │\n\
         └───────┴───────┘\n"
    );
}

/// Following (no -e): records written after the start show up; with
/// --max-messages the run ends by itself.
#[tokio::test(flavor = "multi_thread")]
async fn follows_new_records_until_max_messages() {
    let st = shared().await;
    let topic = st.new_topic("consume-follow", 1, &[]).await;
    let mut c = consume(&st, &topic, &["--serde", "text", "--max-messages", "2"]);
    c.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = c.spawn().expect("spawn");
    let waiter = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap());
    // it starts at the end: keep writing until it has seen two records
    let mut n = 0;
    while !waiter.is_finished() {
        assert!(n < 200, "consume did not stop after 2 records");
        let (k, v) = (format!("w{n}"), n.to_string());
        stack()
            .produce(&topic, Some(0), &[(k.as_bytes(), v.as_bytes())])
            .await;
        n += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = waiter.await.unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    let first: i64 = lines[0].split('\t').nth(1).unwrap().parse().unwrap();
    assert_eq!(
        lines,
        [
            format!("w{first}\t{first}"),
            format!("w{}\t{}", first + 1, first + 1)
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_closed_stdout_is_not_an_error() {
    let _stack = shared().await;
    let topic = changelog_topic(Serde::Faust).await;
    for output in ["lines", "table"] {
        let c = from_the_beginning(&topic, &["-o", output]);
        let (code, stderr) = run_with_closed_stdout(c).await;
        assert_eq!(code, Some(0), "{output}: {stderr}");
        assert!(!stderr.contains("error"), "{output}: {stderr}");
    }
}
