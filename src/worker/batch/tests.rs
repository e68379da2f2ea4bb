//! Tests of batch planning and settling: counting, recounting, retracting,
//! tombstones.

use super::*;
use crate::count::{Counter, Options};
use std::time::Duration;

fn ledger(p: i32, offset: i64, key: &str, e: &Entry) -> Polled {
    Polled {
        input: Input::Ledger,
        partition: p,
        offset,
        key: key.as_bytes().to_vec(),
        value: Some(e.to_bytes()),
    }
}

fn tombstone(p: i32, offset: i64, key: &str) -> Polled {
    Polled {
        value: None,
        ..ledger(p, offset, key, &discovered())
    }
}

fn delta(p: i32, offset: i64, word: &str, n: i64) -> Polled {
    Polled {
        input: Input::Repartition,
        partition: p,
        offset,
        key: word.as_bytes().to_vec(),
        value: Some(n.to_string().into_bytes()),
    }
}

fn discovered() -> Entry {
    discovered_as("e")
}

fn discovered_as(etag: &str) -> Entry {
    Entry::Discovered {
        etag: etag.into(),
        size: 3,
    }
}

fn removed() -> Entry {
    Entry::Removed { at: 1 }
}

fn counted() -> Entry {
    Entry::counted_for_tests("e")
}

fn failed() -> Entry {
    Entry::Failed {
        etag: "e".into(),
        size: 3,
        reason: "AccessDenied".into(),
        worker: "w".into(),
        at: 1,
    }
}

fn never(_: i32, _: &str) -> Option<Done> {
    None
}

/// A failed object is not done: a later discovery (a retry) counts it,
/// but the failed record itself asks for nothing.
#[test]
fn plan_counts_a_failed_object_when_it_is_discovered_again() {
    let polled = vec![
        ledger(0, 1, "s3://b/f", &failed()),
        ledger(0, 2, "s3://b/f", &discovered()),
        ledger(1, 7, "s3://b/g", &failed()),
    ];
    let p = plan(polled, "b", true, never, |_, _| 0);
    let keys: Vec<&str> = p.jobs.iter().map(|j| j.object_key.as_str()).collect();
    assert_eq!(keys, ["f"]);
    assert!(p.done.is_empty());
    assert_eq!(p.offsets[&(Input::Ledger, 1)], 8);
}

#[test]
fn plan_counts_each_object_once_and_skips_done_ones() {
    let polled = vec![
        ledger(0, 5, "s3://b/a", &discovered()),
        ledger(0, 6, "s3://b/a", &discovered()), // duplicate discovery
        ledger(1, 2, "s3://b/done", &discovered()), // done locally, same version
        ledger(1, 3, "s3://b/c", &counted()),    // done in this batch
        ledger(1, 4, "s3://b/c", &discovered()), // ... so skipped
        ledger(2, 0, "s3://other/x", &discovered()), // another bucket
    ];
    let done = |_, k: &str| (k == "s3://b/done").then(|| Done::new("e", Some(4)));
    let p = plan(polled, "b", true, done, |_, _| 0);
    let keys: Vec<&str> = p.jobs.iter().map(|j| j.object_key.as_str()).collect();
    assert_eq!(keys, ["a"]);
    assert_eq!(p.foreign.as_deref(), Some("s3://other/x"));
    assert_eq!(
        p.done,
        [(1, "s3://b/c".to_string(), Some(Done::new("e", None)))]
    );
    assert_eq!(
        p.offsets,
        BTreeMap::from([
            ((Input::Ledger, 0), 7),
            ((Input::Ledger, 1), 5),
            ((Input::Ledger, 2), 1)
        ])
    );
}

/// A new version of a counted object is counted again, its old
/// contribution to be taken out; a removal retracts it; the last record
/// of an object in the batch decides.
#[test]
fn plan_recounts_new_versions_and_retracts_removed_objects() {
    let done = |_, k: &str| match k {
        "s3://b/old" => Some(Done::new("e", None)), // counted without a contribution
        _ => Some(Done::new("e", Some(40))),
    };
    let polled = vec![
        ledger(0, 1, "change:s3://b/new", &discovered_as("e2")),
        ledger(0, 2, "change:s3://b/gone", &removed()),
        ledger(0, 3, "change:s3://b/twice", &discovered_as("e2")),
        ledger(0, 4, "change:s3://b/twice", &discovered_as("e3")),
        ledger(0, 5, "change:s3://b/back", &discovered_as("e2")),
        ledger(0, 6, "change:s3://b/back", &discovered_as("e")), // back to what is counted
        ledger(0, 7, "change:s3://b/then-gone", &discovered_as("e2")),
        ledger(0, 8, "change:s3://b/then-gone", &removed()),
        ledger(0, 9, "change:s3://b/old", &discovered_as("e2")),
        ledger(0, 10, "change:s3://b/same", &discovered_as("\"e\"")),
    ];
    let p = plan(polled, "b", true, done, |_, _| 0);
    type Seen<'a> = (&'a str, &'a Action, Option<i64>, bool, Option<&'a str>);
    let jobs: Vec<Seen> = p
        .jobs
        .iter()
        .map(|j| {
            (
                j.object_key.as_str(),
                &j.action,
                j.old,
                j.change,
                j.listed_etag(),
            )
        })
        .collect();
    assert_eq!(
        jobs,
        [
            ("new", &Action::Count, Some(40), true, Some("e2")),
            ("gone", &Action::Retract, Some(40), true, None),
            ("twice", &Action::Count, Some(40), true, Some("e3")),
            ("then-gone", &Action::Retract, Some(40), true, None),
        ]
    );
    // Under `ignore`, nothing changes once counted.
    let polled = vec![
        ledger(0, 1, "change:s3://b/new", &discovered_as("e2")),
        ledger(0, 2, "change:s3://b/gone", &removed()),
    ];
    assert!(plan(polled, "b", false, done, |_, _| 0).jobs.is_empty());
}

/// A tombstone of an object's key (its removal applied) makes it unknown:
/// a discovery after it counts it afresh, with nothing to take out.
#[test]
fn plan_counts_afresh_after_a_removal_was_applied() {
    let polled = vec![
        tombstone(0, 1, "s3://b/x"),
        tombstone(0, 2, "change:s3://b/x"),
        ledger(0, 3, "s3://b/x", &discovered_as("e")),
    ];
    let p = plan(
        polled,
        "b",
        true,
        |_, _| Some(Done::new("e", Some(1))),
        |_, _| 0,
    );
    assert_eq!(p.jobs.len(), 1);
    assert_eq!((p.jobs[0].old, p.jobs[0].change), (None, false));
    assert_eq!(p.done, [(0, "s3://b/x".to_string(), None)]);
    assert!(p.skipped.is_empty());
}

#[test]
fn plan_adds_deltas_to_the_table_totals() {
    let polled = vec![
        delta(3, 10, "the", 2),
        delta(3, 11, "the", 5),
        delta(4, 1, "cat", 1),
        delta(4, 2, "gone", -3),
        Polled {
            value: Some(b"junk".to_vec()),
            ..delta(4, 3, "dog", 0)
        },
    ];
    let p = plan(polled, "b", true, never, |_, w| match w {
        "the" => 100,
        "gone" => 3,
        _ => 0,
    });
    assert_eq!(p.totals["the"], (3, 107));
    assert_eq!(p.totals["cat"], (4, 1));
    assert_eq!(p.totals["gone"], (4, 0));
    assert!(!p.totals.contains_key("dog"));
    assert_eq!(p.skipped.len(), 1);
    assert_eq!(p.offsets[&(Input::Repartition, 4)], 4);
}

fn job(key: &str) -> Job {
    Job {
        partition: 0,
        ledger_key: format!("s3://b/{key}"),
        object_key: key.into(),
        listed: discovered(),
        action: Action::Count,
        old: None,
        change: false,
    }
}

fn counts_of(text: &str) -> WordCounts {
    let mut c = Counter::new(Options::default());
    c.feed(text.as_bytes());
    c.finish()
}

fn layout() -> Layout<'static> {
    Layout {
        bucket: "b",
        partitions: 8,
        ledger_partitions: 8,
        serde: Serde::Faust,
    }
}

fn counted_outcome(text: &str, etag: &str) -> Outcome {
    Outcome::Counted {
        counts: counts_of(text),
        size: text.len() as u64,
        etag: etag.into(),
        elapsed: Duration::from_millis(3),
        text: Default::default(),
    }
}

#[test]
fn settle_merges_counts_and_records_failures() {
    let outcomes = vec![
        counted_outcome("a b a", "x"),
        Outcome::Failed("NoSuchKey".into()),
    ];
    let s = settle(
        vec![job("one"), job("two")],
        outcomes,
        vec![None, None],
        "w",
        false,
    )
    .unwrap();
    assert_eq!((s.counted, s.failed, s.bytes), (1, 1, 5));
    assert_eq!(s.delta.words, 3);
    assert!(
        matches!(s.ledger[1].2, Some(Entry::Failed { ref reason, .. }) if reason == "NoSuchKey")
    );
    assert_eq!(s.events.len(), 2);
    assert!(s.contributions.is_empty());
    let totals = HashMap::from([("a".to_string(), (partition_for(b"\"a\"", 8), 9))]);
    let recs = records(layout(), &Listed::default(), &s, &totals, &[]);
    let by = |t: Output| recs.iter().filter(|r| r.topic == t).count();
    assert_eq!(
        (
            by(Output::Repartition),
            by(Output::Ledger),
            by(Output::Changelog)
        ),
        (2, 2, 1)
    );
    let total = recs.iter().find(|r| r.topic == Output::Changelog).unwrap();
    assert_eq!(
        (&total.key[..], total.value.as_deref()),
        (&b"\"a\""[..], Some(&b"9"[..]))
    );
}

/// A recount: the deltas are new − old, the contribution is written first
/// and the `counted` entry says where it landed; extra old chunks are
/// tombstoned; the change key is cleared.
#[test]
fn settle_a_recount_writes_new_minus_old_and_the_new_contribution() {
    let old = Old {
        words: HashMap::from([("a".to_string(), 2), ("gone".to_string(), 1)]),
        chunks: 2,
    };
    let j = Job {
        old: Some(7),
        change: true,
        ..job("x")
    };
    let mut s = settle(
        vec![j],
        vec![counted_outcome("a a new", "\"v2\"")],
        vec![Some(old)],
        "w",
        true,
    )
    .unwrap();
    assert_eq!(
        s.deltas,
        HashMap::from([("gone".to_string(), -1), ("new".to_string(), 1)])
    );
    let first = first_records(&s);
    let keys: Vec<(&[u8], bool)> = first
        .iter()
        .map(|r| (&r.key[..], r.value.is_some()))
        .collect();
    assert_eq!(
        keys,
        [(&b"s3://b/x#0"[..], true), (&b"s3://b/x#1"[..], false)]
    );
    fill_pointers(&mut s, &[70, 71]);
    let recs = records(layout(), &Listed::default(), &s, &HashMap::new(), &[70, 71]);
    let ledger: Vec<(String, Option<Entry>)> = recs
        .iter()
        .filter(|r| r.topic == Output::Ledger)
        .map(|r| {
            (
                String::from_utf8(r.key.clone()).unwrap(),
                r.value.as_deref().map(|v| Entry::parse(v).unwrap()),
            )
        })
        .collect();
    assert_eq!(ledger.len(), 2);
    assert!(matches!(
        &ledger[0],
        (k, Some(Entry::Counted { contribution: Some(Contribution { offset: 70, chunks: 1 }), .. })) if k == "s3://b/x"
    ));
    assert_eq!(ledger[1], ("change:s3://b/x".to_string(), None));
}

/// A retraction: negative deltas, every old chunk and both ledger keys
/// tombstoned; a failed new version of a counted object keeps its
/// `counted` record (the failure goes under its change key).
#[test]
fn settle_retractions_and_failed_recounts() {
    let old = || Old {
        words: HashMap::from([("a".to_string(), 2)]),
        chunks: 1,
    };
    let gone = Job {
        action: Action::Retract,
        listed: removed(),
        old: Some(3),
        change: true,
        ..job("gone")
    };
    let broken = Job {
        old: Some(5),
        change: true,
        ..job("broken")
    };
    let s = settle(
        vec![gone, broken],
        vec![
            Outcome::Failed(String::new()),
            Outcome::Failed("NoSuchKey".into()),
        ],
        vec![Some(old()), Some(old())],
        "w",
        true,
    )
    .unwrap();
    assert_eq!(s.deltas, HashMap::from([("a".to_string(), -2)]));
    assert_eq!((s.retracted, s.failed, s.counted), (1, 1, 0));
    assert_eq!(s.contributions, [(0, "s3://b/gone#0".to_string(), None)]);
    let keys: Vec<(&str, bool)> = s
        .ledger
        .iter()
        .map(|(_, k, e)| (k.as_str(), e.is_some()))
        .collect();
    assert_eq!(
        keys,
        [
            ("s3://b/gone", false),
            ("change:s3://b/gone", false),
            ("change:s3://b/broken", true)
        ]
    );
}

/// A word whose total reaches 0 leaves the table: a tombstone (null
/// value) in the changelog, as Faust's `del table[word]`.
#[test]
fn a_total_of_zero_is_a_changelog_tombstone() {
    let totals = HashMap::from([("gone".to_string(), (2, 0)), ("kept".to_string(), (2, 4))]);
    let recs = records(
        layout(),
        &Listed::default(),
        &Settled::default(),
        &totals,
        &[],
    );
    let mut values: Vec<(&[u8], Option<&[u8]>)> = recs
        .iter()
        .map(|r| (&r.key[..], r.value.as_deref()))
        .collect();
    values.sort();
    assert_eq!(
        values,
        [
            (&b"\"gone\""[..], None),
            (&b"\"kept\""[..], Some(&b"4"[..]))
        ]
    );
}

/// Discovery's finds: a new version and a removal go under the object's
/// change key, in the object's ledger partition.
#[test]
fn changes_go_under_the_change_key_in_the_objects_partition() {
    let listed = Listed {
        found: vec![crate::worker::discover::Found {
            key: "k".into(),
            etag: "e2".into(),
            size: 1,
            change: true,
        }],
        removed: vec!["r".into()],
        ..Listed::default()
    };
    let recs = records(layout(), &listed, &Settled::default(), &HashMap::new(), &[]);
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[0].key, b"change:s3://b/k");
    assert_eq!(recs[0].partition, partition_for(b"s3://b/k", 8));
    assert_eq!(recs[1].key, b"change:s3://b/r");
    assert_eq!(recs[1].partition, partition_for(b"s3://b/r", 8));
    assert!(matches!(
        Entry::parse(recs[1].value.as_deref().unwrap()).unwrap(),
        Entry::Removed { .. }
    ));
}

#[test]
fn settle_records_skipped_tokens_in_the_counted_entry() {
    let text = format!("a {} b", "z".repeat(crate::tokenize::MAX_TOKEN_BYTES + 1));
    let s = settle(
        vec![job("long")],
        vec![counted_outcome(&text, "x")],
        vec![None],
        "w",
        false,
    )
    .unwrap();
    assert!(matches!(
        s.ledger[0].2,
        Some(Entry::Counted {
            words: 2,
            skipped_tokens: 1,
            ..
        })
    ));
    assert_eq!(s.delta.skipped_tokens, 1);
}

#[test]
fn an_interrupted_object_settles_nothing() {
    let s = settle(
        vec![job("one"), job("two")],
        vec![Outcome::Failed("x".into()), Outcome::Interrupted],
        vec![None, None],
        "w",
        true,
    );
    assert!(s.is_none());
}

#[test]
fn owned_deltas_fold_into_the_totals_and_the_others_stay() {
    // words "a".."d" by first letter: partitions 0 and 1 owned, 2 and 3 not
    let part = |w: &str| i32::from(w.as_bytes()[0] - b'a');
    let mut deltas: HashMap<String, i64> = [("a", 2), ("b", -3), ("c", 5), ("d", 1)]
        .map(|(w, n)| (w.to_string(), n))
        .into();
    // "a" already has a total in this batch (from the repartition topic)
    let mut totals: HashMap<String, (i32, i64)> = [("a".to_string(), (0, 10))].into();
    let table = |p: i32, w: &str| if (p, w) == (1, "b") { 3 } else { 100 };
    let moved = fold_owned(&mut deltas, &mut totals, part, |p| p < 2, table);
    assert_eq!(moved, 2);
    assert_eq!(totals["a"], (0, 12));
    assert_eq!(totals["b"], (1, 0)); // 3 - 3: the word leaves the table
    assert_eq!(deltas.len(), 2);
    assert_eq!((deltas["c"], deltas["d"]), (5, 1));
}
