//! Several workers of one group (one `--app-id`, see [`crate::app::App::member`]):
//! who owns which partitions, who lists the bucket when, and how often,
//! all from their events.
//!
//! Members run with `--interval 1 --status-interval 1`: each announces a
//! `status` every second with its owned partitions, whether it lists the
//! bucket and its ListObjectsV2 calls. A worker lists from its
//! `lister_started` event until it loses ledger partition 0 (a `revoked`
//! event naming it), resynchronises, hands listing over, stops, or is killed.

use crate::events::{self, statuses};
use crate::worker::Worker;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use wordstream::events::{Event, Status};

/// `--interval` of the members, in seconds: the group lists once per this.
pub const INTERVAL: f64 = 1.0;
/// The worker's `session.timeout.ms`.
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(10);
/// The worker's `transaction.timeout.ms`.
pub const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(10);

/// The times this worker listed the bucket: from each `lister_started` to
/// the next loss of ledger partition 0, resync, `lister_stopped`,
/// `stopping`, or `end` (kill or stop time, else the last line).
pub fn lister_intervals(
    lines: &[events::LogLine],
    ledger_topic: &str,
    end: f64,
) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    let mut since: Option<f64> = None;
    for (t, e) in events::events(lines) {
        let stops = match e {
            Event::ListerStarted { .. } => {
                since.get_or_insert(t);
                false
            }
            Event::Revoked { partitions } => {
                partitions.get(ledger_topic).is_some_and(|p| p.contains(&0))
            }
            Event::Resync | Event::ListerStopped | Event::Stopping { .. } => true,
            _ => false,
        };
        if stops {
            if let Some(s) = since.take() {
                out.push((s, t));
            }
        }
    }
    if let Some(s) = since {
        out.push((s, end.max(s)));
    }
    out
}

/// How many times a worker started listing.
pub fn lister_starts(w: &Worker) -> usize {
    events::events(&w.lines())
        .filter(|(_, e)| matches!(e, Event::ListerStarted { .. }))
        .count()
}

/// What the group's events say about listing.
#[derive(Debug, Default)]
pub struct ListingReport {
    /// (worker, from, to), sorted by start.
    pub intervals: Vec<(String, f64, f64)>,
    /// ListObjectsV2 calls per worker (last status).
    pub calls: BTreeMap<String, u64>,
    /// Sum of the listers' time, seconds.
    pub lister_seconds: f64,
    /// Gaps between one lister's end and the next one's start (takeovers),
    /// seconds, in order.
    pub gaps: Vec<f64>,
    /// Status intervals in which a worker's count grew while it was not
    /// listing (should be none).
    pub stray_growth: Vec<String>,
}

impl ListingReport {
    pub fn total_calls(&self) -> u64 {
        self.calls.values().sum()
    }

    /// Calls per interval of listing time.
    pub fn rate(&self) -> f64 {
        self.total_calls() as f64 / (self.lister_seconds / INTERVAL).max(1.0)
    }
}

impl std::fmt::Display for ListingReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t0 = self.intervals.first().map(|i| i.1).unwrap_or(0.0);
        writeln!(
            f,
            "listing: {} ListObjectsV2 calls in {:.1} s of listing ({:.2} per {INTERVAL} s interval), per worker {:?}",
            self.total_calls(),
            self.lister_seconds,
            self.rate(),
            self.calls
        )?;
        for (w, a, b) in &self.intervals {
            writeln!(f, "  {w} listed from +{:.2} s to +{:.2} s", a - t0, b - t0)?;
        }
        write!(f, "  takeover gaps {:?} s", self.gaps)
    }
}

/// Reads every member's events: listing intervals, calls, and growth of
/// the calls outside them. `end` closes the intervals of members still
/// running.
fn listing_report(members: &[&Worker], ledger_topic: &str, end: f64) -> ListingReport {
    let mut r = ListingReport::default();
    for m in members {
        let lines = m.lines();
        let stop = m
            .ended_at
            .unwrap_or_else(|| lines.last().map(|l| l.ts).unwrap_or(end).max(end));
        let iv = lister_intervals(&lines, ledger_topic, stop);
        let st = statuses(&lines);
        r.calls.insert(
            m.name.clone(),
            st.last().map(|(_, s)| s.list_calls).unwrap_or(0),
        );
        for w in st.windows(2) {
            let ((pt, p), (t, s)) = (&w[0], &w[1]);
            if s.list_calls > p.list_calls
                && !iv.iter().any(|&(a, b)| a <= t + 0.05 && b >= pt - 0.05)
            {
                r.stray_growth.push(format!(
                    "{}: {} → {} calls between {pt:.2} and {t:.2} while not listing",
                    m.name, p.list_calls, s.list_calls
                ));
            }
        }
        for (a, b) in iv {
            r.lister_seconds += b - a;
            r.intervals.push((m.name.clone(), a, b));
        }
    }
    r.intervals.sort_by(|x, y| x.1.total_cmp(&y.1));
    for w in r.intervals.windows(2) {
        r.gaps.push(((w[1].1 - w[0].2) * 100.0).round() / 100.0);
    }
    r
}

/// The group's listing until now, from its members' events (printed):
/// asserts that listing was exclusive (no two listers at any time), that no
/// worker's count grew while it was not the lister, and that the group made
/// about one call per interval of listing: at most one per interval plus one
/// per takeover (a new lister lists at once) plus slack, and at least
/// `min_rate` per interval (a lister busy counting lists later).
pub fn assert_listing(members: &[&Worker], ledger_topic: &str, min_rate: f64) -> ListingReport {
    let r = listing_report(members, ledger_topic, crate::now());
    eprintln!("{r}");
    check_listing(&r, min_rate);
    r
}

fn check_listing(r: &ListingReport, min_rate: f64) {
    for w in r.intervals.windows(2) {
        assert!(
            w[1].1 >= w[0].2,
            "two workers listed at the same time: {} until {:.3}, {} from {:.3}\n{r}",
            w[0].0,
            w[0].2,
            w[1].0,
            w[1].1
        );
    }
    assert!(
        r.stray_growth.is_empty(),
        "list calls by a worker that was not the lister: {:?}\n{r}",
        r.stray_growth
    );
    let per_interval = r.lister_seconds / INTERVAL;
    let max = per_interval + r.intervals.len() as f64 + 3.0;
    assert!(
        (r.total_calls() as f64) <= max,
        "{} list calls for {:.1} s of listing: more than one per interval (max {max:.0})\n{r}",
        r.total_calls(),
        r.lister_seconds
    );
    assert!(
        r.rate() >= min_rate,
        "{} list calls for {:.1} s of listing: fewer than {min_rate} per interval\n{r}",
        r.total_calls(),
        r.lister_seconds
    );
}

/// The latest status of each member (None if none yet).
pub fn latest_statuses(members: &[&Worker]) -> Vec<Option<(f64, Status)>> {
    members.iter().map(|m| m.latest_status()).collect()
}

/// Which member lists the bucket now (by its latest status).
pub fn current_lister(members: &[&Worker]) -> Option<usize> {
    latest_statuses(members)
        .iter()
        .position(|s| s.as_ref().is_some_and(|(_, s)| s.lister))
}

/// The members' latest statuses (all of the last 3 s) split the
/// `partitions` ledger and repartition partitions between them (each owned
/// once, all owned, every member owns some), and exactly one lists.
fn settled(statuses: &[Option<(f64, Status)>], partitions: i32) -> bool {
    let fresh = crate::now() - 3.0;
    let Some(st) = statuses
        .iter()
        .map(|s| s.as_ref().filter(|(t, _)| *t > fresh).map(|(_, s)| s))
        .collect::<Option<Vec<&Status>>>()
    else {
        return false;
    };
    let want: BTreeSet<i32> = (0..partitions).collect();
    let disjoint_cover = |f: fn(&Status) -> &Vec<i32>| {
        let all: BTreeSet<i32> = st.iter().flat_map(|s| f(s).iter().copied()).collect();
        let n: usize = st.iter().map(|s| f(s).len()).sum();
        n == all.len() && all == want && st.iter().all(|s| !f(s).is_empty())
    };
    disjoint_cover(|s| &s.ledger)
        && disjoint_cover(|s| &s.repartition)
        && st.iter().filter(|s| s.lister).count() == 1
}

/// Waits until the group has settled (see `settled`); panics with the
/// members' log tails after `deadline`.
pub async fn wait_settled(members: &mut [&mut Worker], partitions: i32, deadline: Duration) {
    let start = Instant::now();
    loop {
        for m in members.iter_mut() {
            m.assert_running();
        }
        let refs: Vec<&Worker> = members.iter().map(|m| &**m).collect();
        if settled(&latest_statuses(&refs), partitions) {
            return;
        }
        if start.elapsed() > deadline {
            panic!(
                "the group of {} workers did not settle in {deadline:?}\n{}",
                members.len(),
                crate::app::tails(&refs, 15)
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
