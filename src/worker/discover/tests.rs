//! Tests of discovery: watermarks, keys, failures, versions, removals.

use super::*;

#[test]
fn start_after_lags_behind_the_watermark() {
    let mut d = Discovery::new("b", "", Known::new("b"), RECONCILE_EVERY);
    let t0 = Instant::now();
    let at = |s: u64| t0 + Duration::from_secs(s);
    assert_eq!(d.start_after(at(0)), None);
    // listings at 0 s (before: none), 4 s (before: "c"), 12 s (before: "f")
    d.history.push_back((at(0), None));
    d.watermark = Some("c".into());
    d.history.push_back((at(4), Some("c".into())));
    d.watermark = Some("f".into());
    d.history.push_back((at(12), Some("f".into())));
    d.watermark = Some("k".into());
    // at 13 s: the latest listing at least 10 s old is the one at 0 s
    assert_eq!(d.start_after(at(13)), None);
    // at 15 s: the one at 4 s; the one at 0 s is dropped
    assert_eq!(d.start_after(at(15)), Some("c".into()));
    assert_eq!(d.history.len(), 2);
    // at 30 s: the one at 12 s
    assert_eq!(d.start_after(at(30)), Some("f".into()));
    assert_eq!(d.history.len(), 1);
}

#[test]
fn listed_keys_are_url_decoded() {
    assert_eq!(decode_key("plain/a.txt").as_deref(), Some("plain/a.txt"));
    assert!(matches!(decode_key("plain/a.txt"), Some(Cow::Borrowed(_))));
    assert_eq!(decode_key("a+b%2Bc.txt").as_deref(), Some("a b+c.txt"));
    assert_eq!(
        decode_key("names/ctl%01x%0Ay%1B%5B1m.txt").as_deref(),
        Some("names/ctl\u{1}x\ny\u{1b}[1m.txt")
    );
    assert_eq!(decode_key("na%C3%AFve").as_deref(), Some("naïve"));
    assert_eq!(decode_key("bad%FFkey"), None);
}

#[test]
fn ledger_keys() {
    assert_eq!(Discovery::key_of("b", "s3://b/x/y.txt"), Some("x/y.txt"));
    assert_eq!(Discovery::key_of("b", "s3://bb/x"), None);
}

fn failed(at: u64, etag: &str) -> Vec<u8> {
    Entry::Failed {
        etag: etag.into(),
        size: 1,
        reason: "AccessDenied".into(),
        worker: "w".into(),
        at,
    }
    .to_bytes()
}

#[test]
fn known_failed_keys_follow_the_latest_ledger_entry() {
    let discovered = Entry::Discovered {
        etag: "e".into(),
        size: 1,
    }
    .to_bytes();
    let mut k = Known::new("b");
    k.add(b"s3://b/again", Some(&failed(5, "e")));
    k.add(b"s3://b/again", Some(&discovered));
    k.add(b"s3://b/still", Some(&discovered));
    k.add(b"s3://b/still", Some(&failed(7, "e")));
    k.add(b"s3://other/x", Some(&failed(7, "e")));
    k.add(b"s3://b/junk", Some(b"not json"));
    assert_eq!((k.len(), k.failed()), (3, 1));
    assert_eq!(
        k.failed["still"],
        Failure {
            at: 7,
            etag: "e".into(),
            change: false,
        }
    );
    k.retry_failed_now();
    assert!(k.failed["still"].due(unix_now(), "e"));
    let mut d = Discovery::new("b", "", k, RECONCILE_EVERY);
    d.settled("s3://b/still", Some(&Entry::parse(&discovered).unwrap()));
    d.settled("s3://b/late", Some(&Entry::parse(&failed(9, "f")).unwrap()));
    assert_eq!(d.failed.keys().collect::<Vec<_>>(), ["late"]);
    assert!(d.seen.contains("late"));
}

#[test]
fn a_failed_object_is_due_after_ten_minutes_or_once_replaced() {
    let f = Failure {
        at: 1_000,
        etag: "\"e\"".into(),
        change: false,
    };
    assert!(!f.due(1_000 + 599, "\"e\""));
    assert!(f.due(1_000 + 600, "\"e\""));
    assert!(f.due(1_001, "\"other\""));
    let unknown = Failure {
        at: 1_000,
        etag: String::new(),
        change: false,
    };
    assert!(!unknown.due(1_001, "\"other\""));
}

/// The ledger as discovery reads it at start: a key's version follows
/// its latest record (its own key or its change key); a removal waits
/// (known, not listed as gone again); a tombstone of the object's key
/// makes it unknown; keys outside the prefix are not kept.
#[test]
fn known_versions_follow_changes_and_removals() {
    let rec = |e: Entry| Some(e.to_bytes());
    let mut k = Known::new("b").with_prefix("p/");
    let counted = Entry::counted_for_tests("e1");
    let e2 = Entry::Discovered {
        etag: "e2".into(),
        size: 1,
    };
    k.add(b"s3://b/p/a", rec(counted.clone()).as_deref());
    k.add(b"change:s3://b/p/a", rec(e2.clone()).as_deref());
    k.add(b"change:s3://b/p/a", None);
    k.add(b"s3://b/p/gone", rec(counted.clone()).as_deref());
    k.add(
        b"change:s3://b/p/gone",
        rec(Entry::Removed { at: 1 }).as_deref(),
    );
    k.add(b"s3://b/p/done", rec(counted.clone()).as_deref());
    k.add(b"s3://b/p/done", None);
    k.add(b"s3://b/other/x", rec(counted).as_deref());
    assert_eq!(k.len(), 2);
    assert_eq!(k.seen.get("p/a"), Some(tag31("e2")));
    assert_eq!(k.seen.get("p/gone"), Some(REMOVED));
    let mut d = Discovery::new("b", "p/", k, RECONCILE_EVERY);
    // A full pass from the start lists only p/a: nothing else is
    // gone (p/gone's removal is recorded already).
    d.parity ^= MARK;
    d.full_from_start = true;
    let v = d.seen.get("p/a").unwrap();
    d.seen.set("p/a", (v & !MARK) | d.parity);
    assert!(d.unmarked().is_empty());
    // The next pass lists nothing: p/a is gone.
    d.parity ^= MARK;
    let gone = d.unmarked();
    assert_eq!(gone, [fp96("p/a")]);
    assert_eq!(d.seen.get("p/a").map(|v| v & !MARK), Some(REMOVED));
    // Abandoned: found again at the end of the pass.
    d.forget(Listed {
        gone,
        ..Listed::default()
    });
    assert_eq!(d.unmarked(), [fp96("p/a")]);
}

/// An `ObjectRemoved` notice of a known key records its removal once.
#[test]
fn a_removal_notice_of_a_known_key_is_recorded_once() {
    let mut d = Discovery::new("b", "", Known::new("b"), RECONCILE_EVERY);
    d.seen.set("k", tag31("e"));
    let mut listed = Listed::default();
    assert!(!d.notice_removed("unknown", &mut listed));
    assert!(d.notice_removed("k", &mut listed));
    assert!(!d.notice_removed("k", &mut listed));
    assert_eq!(listed.removed, ["k"]);
    // The batch is abandoned: a later notice records it again.
    d.forget(listed);
    let mut listed = Listed::default();
    assert!(d.notice_removed("k", &mut listed));
    assert!(!d
        .with_recount(false)
        .notice_removed("k", &mut Listed::default()));
}

#[test]
fn etag_fingerprints_leave_room_for_the_mark_and_the_special_values() {
    for e in ["", "a", "\"a\"", "x-2"] {
        let t = tag31(e);
        assert!(t & MARK == 0 && t != UNKNOWN && t != REMOVED);
    }
    assert_eq!(tag31("\"a\""), tag31("a"));
}

#[test]
fn notices_find_unknown_keys_of_the_bucket_and_prefix_once() {
    let created = |bucket: &str, key: &str, etag: &str| Notice::Created {
        bucket: bucket.into(),
        key: key.into(),
        etag: etag.into(),
        size: 3,
        sequencer: "1".into(),
    };
    let mut k = Known::new("b");
    k.add(b"s3://b/in/known", Some(&failed(5, "\"e\"")));
    k.add(b"s3://b/in/failed", Some(&failed(5, "\"e\"")));
    let mut d = Discovery::new("b", "in/", k, RECONCILE_EVERY);
    let found = d.notified(vec![
        created("b", "in/new", "\"n\""),
        created("b", "in/new", "\"n\""),
        created("other", "in/x", "\"x\""),
        created("b", "out/x", "\"x\""),
        created("b", "in/known", "\"e\""),
        created("b", "in/failed", "\"replaced\""),
        Notice::Removed {
            bucket: "b".into(),
            key: "in/new".into(),
            sequencer: "2".into(),
        },
    ]);
    let keys: Vec<_> = found.iter().map(|f| f.key.as_str()).collect();
    assert_eq!(keys, ["in/new", "in/failed"]);
    assert_eq!(
        d.notices,
        crate::events::Notices {
            created: 4,
            found: 2,
            removed: 1,
            ignored: 2
        }
    );
    // a duplicate later is known; a forgotten (abandoned) one is found again
    assert!(d.notified(vec![created("b", "in/new", "\"n\"")]).is_empty());
    d.forget(Listed {
        found: vec![Found {
            key: "in/new".into(),
            etag: "\"n\"".into(),
            size: 3,
            change: false,
        }],
        ..Listed::default()
    });
    assert_eq!(d.notified(vec![created("b", "in/new", "\"n\"")]).len(), 1);
}
