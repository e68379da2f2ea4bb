//! Tests of ranges as units of work: splitting, counting a range, notes,
//! collecting, restarting when the object changed mid-way.

use super::*;
use crate::count::{Counter, Options};
use crate::worker::batch::{plan_with, settle, Input, Polled};
use std::time::Duration;

const OBJECT: &str = "s3://b/big";

fn rec(p: i32, offset: i64, key: &str, e: Option<&Entry>) -> Polled {
    Polled {
        input: Input::Ledger,
        partition: p,
        offset,
        key: key.as_bytes().to_vec(),
        value: e.map(Entry::to_bytes),
    }
}

fn counts_of(text: &str) -> WordCounts {
    let mut c = Counter::new(Options::default());
    c.feed(text.as_bytes());
    c.finish()
}

fn counted(text: &str) -> Outcome {
    Outcome::Counted {
        counts: counts_of(text),
        size: text.len() as u64,
        etag: "v1".into(),
        elapsed: Duration::from_millis(2),
        text: Default::default(),
    }
}

fn split_entry() -> Entry {
    Entry::Split {
        etag: "v1".into(),
        size: 20,
        ranges: 2,
        old: None,
    }
}

fn work(i: u32) -> RangeWork {
    RangeWork {
        object: OBJECT.into(),
        partition: 0,
        etag: "v1".into(),
        size: 20,
        start: u64::from(i) * 10,
        end: u64::from(i + 1) * 10,
        index: i,
        of: 2,
    }
}

/// The note range `i` sends, as settled by its worker.
fn note(i: u32, outcome: Outcome) -> (String, Entry) {
    let job = range_job(
        3,
        &range_key(i, 2, "v1", OBJECT),
        Some(&Entry::Range(work(i))),
        "b",
    )
    .expect("a range job");
    let mut s = settle(vec![job], vec![outcome], vec![None], "w2", false).unwrap();
    crate::worker::batch::fill_pointers(&mut s, &[70]);
    let (p, key, e) = s.ledger[1].clone();
    assert_eq!(p, 0, "notes go to the object's partition");
    (key, e.unwrap())
}

fn plan(polled: Vec<Polled>, splits: &mut Splits) -> Vec<Job> {
    plan_with(polled, "b", false, |_, _| None, |_, _| 0, splits).jobs
}

#[test]
fn a_split_object_writes_one_work_item_per_range() {
    let job = Job {
        partition: 0,
        ledger_key: OBJECT.into(),
        object_key: "big".into(),
        listed: Entry::Discovered {
            etag: "v1".into(),
            size: 20,
        },
        action: Action::Count,
        old: None,
        change: false,
    };
    let outcome = Outcome::Split {
        etag: "v1".into(),
        size: 20,
        ranges: vec![(0, 10), (10, 20)],
    };
    let s = settle(vec![job], vec![outcome], vec![None], "w", false).unwrap();
    assert!(s.deltas.is_empty() && s.contributions.is_empty());
    assert_eq!(s.ledger.len(), 3);
    assert_eq!(s.ledger[0].0, BY_KEY, "placed by the range key");
    assert_eq!(s.ledger[0].1, "range:0/2:v1:s3://b/big");
    assert_eq!(s.ledger[1].2, Some(Entry::Range(work(1))));
    assert_eq!(s.ledger[2], (0, OBJECT.to_string(), Some(split_entry())));
    // The JSON of each parses back.
    for (_, _, e) in &s.ledger {
        let e = e.as_ref().unwrap();
        assert_eq!(&Entry::parse(&e.to_bytes()).unwrap(), e);
    }
}

#[test]
fn a_range_commits_its_deltas_contribution_record_and_note() {
    let job = range_job(
        3,
        &range_key(1, 2, "v1", OBJECT),
        Some(&Entry::Range(work(1))),
        "b",
    )
    .unwrap();
    assert_eq!(job.action, Action::Range);
    let s = settle(vec![job], vec![counted("a b a")], vec![None], "w2", false).unwrap();
    assert_eq!(s.deltas, HashMap::from([("a".into(), 2), ("b".into(), 1)]));
    assert_eq!(s.contributions.len(), 1, "even under ignore");
    assert_eq!(s.contributions[0].0, 3);
    assert_eq!(s.contributions[0].1, "range:1/2:v1:s3://b/big#0");
    assert_eq!(s.ledger[0].1, "range:1/2:v1:s3://b/big");
    assert_eq!(s.ledger[1].1, "range-done:1/2:v1:s3://b/big");
    assert_eq!(s.pointers, vec![(0, 0, 1), (1, 0, 1)]);
    let Some(Entry::RangeDone(d)) = &s.ledger[1].2 else {
        panic!("a note")
    };
    assert!(d.counted && d.words == 3 && d.partition == 3);
}

#[test]
fn the_split_is_collected_once_every_note_is_in() {
    let mut splits = Splits::default();
    assert_eq!(
        plan(vec![rec(0, 1, OBJECT, Some(&split_entry()))], &mut splits),
        vec![]
    );
    let (k0, n0) = note(0, counted("a b"));
    let (k1, n1) = note(1, counted("b c"));
    assert!(plan(vec![rec(0, 2, &k0, Some(&n0))], &mut splits).is_empty());
    // The same note again (a batch redone) changes nothing.
    assert!(plan(vec![rec(0, 2, &k0, Some(&n0))], &mut splits).is_empty());
    let jobs = plan(vec![rec(0, 3, &k1, Some(&n1))], &mut splits);
    assert_eq!(jobs.len(), 1);
    let Action::Collect(c) = &jobs[0].action else {
        panic!("a collection: {jobs:?}")
    };
    assert_eq!(c.restart, None);
    let mut job = jobs[0].clone();
    if let Action::Collect(c) = &mut job.action {
        c.words = HashMap::from([("a".into(), 1), ("b".into(), 2), ("c".into(), 1)]);
    }
    let s = settle(
        vec![job],
        vec![Outcome::Failed(String::new())],
        vec![None],
        "w",
        false,
    )
    .unwrap();
    assert!(s.deltas.is_empty(), "the ranges added them");
    let Some((
        _,
        _,
        Some(Entry::Counted {
            words,
            distinct,
            text,
            ..
        }),
    )) = s.ledger.iter().find(|(_, k, _)| k == OBJECT)
    else {
        panic!("counted: {:?}", s.ledger)
    };
    assert_eq!((*words, *distinct, text.ranges), (4, 3, 2));
    let tombstones = s.ledger.iter().filter(|(_, _, e)| e.is_none()).count();
    assert_eq!(tombstones, 4, "range keys and notes");
    assert_eq!(s.contributions.len(), 2, "the ranges' chunks, tombstoned");
    assert!(s.contributions.iter().all(|c| c.2.is_none()));
    // Once committed, the split is gone.
    splits.apply(
        0,
        OBJECT,
        s.ledger
            .iter()
            .find(|(_, k, _)| k == OBJECT)
            .unwrap()
            .2
            .as_ref(),
    );
    assert!(splits.is_empty());
}

#[test]
fn a_changed_range_takes_the_others_back_and_counts_again() {
    let mut splits = Splits::default();
    plan(vec![rec(0, 1, OBJECT, Some(&split_entry()))], &mut splits);
    let (k0, n0) = note(0, counted("a b"));
    let (k1, n1) = note(1, Outcome::Changed);
    let jobs = plan(
        vec![rec(0, 2, &k0, Some(&n0)), rec(0, 3, &k1, Some(&n1))],
        &mut splits,
    );
    let mut job = jobs[0].clone();
    let Action::Collect(c) = &mut job.action else {
        panic!("a collection")
    };
    assert_eq!(c.restart, Some(Action::Count));
    c.words = HashMap::from([("a".into(), 1), ("b".into(), 1)]);
    assert_eq!(job.listed_etag(), None, "read again at the current version");
    let s = settle(vec![job], vec![counted("c c")], vec![None], "w", false).unwrap();
    assert_eq!(
        s.deltas,
        HashMap::from([("a".into(), -1), ("b".into(), -1), ("c".into(), 2)])
    );
    assert!(matches!(
        s.ledger.last(),
        Some((0, k, Some(Entry::Counted { words: 2, .. }))) if k == OBJECT
    ));
}

#[test]
fn a_newer_version_while_ranges_are_counted_restarts_the_object() {
    let mut splits = Splits::default();
    plan(vec![rec(0, 1, OBJECT, Some(&split_entry()))], &mut splits);
    let v2 = Entry::Discovered {
        etag: "v2".into(),
        size: 5,
    };
    let same = Entry::Discovered {
        etag: "v1".into(),
        size: 20,
    };
    let change = crate::worker::ledger::change_key(OBJECT);
    let (k0, n0) = note(0, counted("a"));
    let (k1, n1) = note(1, counted("b"));
    let jobs = plan(
        vec![
            rec(0, 2, OBJECT, Some(&same)),
            rec(0, 3, &k0, Some(&n0)),
            rec(0, 4, &change, Some(&v2)),
            rec(0, 5, &k1, Some(&n1)),
        ],
        &mut splits,
    );
    assert_eq!(jobs.len(), 1, "the duplicate discovery is no job: {jobs:?}");
    let Action::Collect(c) = &jobs[0].action else {
        panic!("a collection")
    };
    assert_eq!(c.restart, Some(Action::Count));
    assert!(jobs[0].change, "the change key is cleared once applied");
}

#[test]
fn a_restart_that_cannot_read_the_object_fails_it_and_ends_the_split() {
    let mut splits = Splits::default();
    let with_old = Entry::Split {
        etag: "v1".into(),
        size: 20,
        ranges: 2,
        old: Some(Contribution {
            offset: 5,
            chunks: 1,
        }),
    };
    plan(vec![rec(0, 1, OBJECT, Some(&with_old))], &mut splits);
    let (k0, n0) = note(0, Outcome::Changed);
    let (k1, n1) = note(1, Outcome::Changed);
    let jobs = plan(
        vec![rec(0, 2, &k0, Some(&n0)), rec(0, 3, &k1, Some(&n1))],
        &mut splits,
    );
    assert_eq!(jobs[0].old, Some(5), "the old contribution to take out");
    let old = crate::worker::batch::Old {
        words: HashMap::from([("x".into(), 3)]),
        chunks: 1,
    };
    let s = settle(
        jobs,
        vec![Outcome::Failed("NoSuchKey".into())],
        vec![Some(old)],
        "w",
        true,
    )
    .unwrap();
    assert_eq!(s.deltas, HashMap::from([("x".into(), -3)]));
    let last = s.ledger.last().unwrap();
    assert!(
        matches!(last, (0, k, Some(Entry::Failed { .. })) if k == OBJECT),
        "{last:?}"
    );
    splits.apply(0, OBJECT, last.2.as_ref());
    assert!(splits.is_empty(), "the split ended");
}

#[test]
fn a_removal_while_ranges_are_counted_retracts_the_object() {
    let mut splits = Splits::default();
    plan(vec![rec(0, 1, OBJECT, Some(&split_entry()))], &mut splits);
    let change = crate::worker::ledger::change_key(OBJECT);
    let (k0, n0) = note(0, counted("a"));
    let (k1, n1) = note(1, counted("b"));
    let polled = vec![
        rec(0, 2, &k0, Some(&n0)),
        rec(0, 3, &change, Some(&Entry::Removed { at: 1 })),
        rec(0, 4, &k1, Some(&n1)),
    ];
    let mut jobs = plan_with(polled, "b", true, |_, _| None, |_, _| 0, &mut splits).jobs;
    let Action::Collect(c) = &mut jobs[0].action else {
        panic!("a collection: {jobs:?}")
    };
    assert_eq!(c.restart, Some(Action::Retract));
    c.words = HashMap::from([("a".into(), 1), ("b".into(), 1)]);
    let s = settle(
        jobs,
        vec![Outcome::Failed(String::new())],
        vec![None],
        "w",
        true,
    )
    .unwrap();
    assert_eq!(
        s.deltas,
        HashMap::from([("a".into(), -1), ("b".into(), -1)])
    );
    assert!(s.ledger.contains(&(0, OBJECT.to_string(), None)), "gone");
    assert!(s.ledger.contains(&(0, change, None)), "the change applied");
    assert!(s
        .events
        .iter()
        .any(|e| matches!(e, Event::ObjectRemoved { .. })));
}
