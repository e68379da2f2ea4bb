//! The dashboard: one HTML page served from the binary
//! (`dashboard.html`, no build step, no CDN, the chart drawn by hand on a
//! canvas) and the JSON it polls every two seconds (`/api/dashboard`): the
//! global top words, words/s and objects/s of the whole group over the
//! last [`WINDOW`] samples (one a second), the backlog, and each worker's
//! partitions and lag.

use super::members::Members;
use super::metrics::{OBJECTS_COMMITTED, WORDS_COMMITTED};
use super::query::global_top;
use super::view::TopAnswer;
use super::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Samples kept: ten minutes at one a second.
pub const WINDOW: usize = 600;
/// Rates are averaged over this many seconds.
const RATE_SPAN: usize = 5;

const PAGE: &str = include_str!("dashboard.html");

/// One sample: the group's committed totals at a time.
#[derive(Clone, Copy, Debug)]
struct Sample {
    t: f64,
    words: u64,
    objects: u64,
}

/// The last [`WINDOW`] samples.
#[derive(Default)]
pub struct History {
    samples: Mutex<VecDeque<Sample>>,
}

impl History {
    /// `(t, words/s, objects/s)` for every sample after the first.
    fn rates(&self) -> Vec<(f64, f64, f64)> {
        let s = self.samples.lock().expect("not poisoned");
        (1..s.len())
            .map(|i| {
                let (a, b) = (s[i.saturating_sub(RATE_SPAN)], s[i]);
                let dt = (b.t - a.t).max(1e-3);
                let per = |x: u64, y: u64| y.saturating_sub(x) as f64 / dt;
                (b.t, per(a.words, b.words), per(a.objects, b.objects))
            })
            .collect()
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Samples the group's totals every second: this worker's own counters,
/// and the others' latest member records.
pub async fn sample(history: Arc<History>, members: Arc<Members>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let (mut words, mut objects) = (
            WORDS_COMMITTED.load(Ordering::Relaxed),
            OBJECTS_COMMITTED.load(Ordering::Relaxed),
        );
        for m in members.fresh() {
            if m.worker != members.me() {
                words += m.words;
                objects += m.objects;
            }
        }
        let mut s = history.samples.lock().expect("not poisoned");
        if s.len() == WINDOW {
            s.pop_front();
        }
        s.push_back(Sample {
            t: now(),
            words,
            objects,
        });
    }
}

/// `/`: the page.
pub async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        PAGE,
    )
        .into_response()
}

/// `/api/dashboard`: what the page shows.
pub async fn data(State(s): State<AppState>) -> Response {
    let snap = s.shared.snapshot();
    let local = if snap.ready && !snap.restoring {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if s.shared.ask(super::view::Query::Top { n: 15, reply: tx }) {
            tokio::time::timeout(Duration::from_secs(5), rx)
                .await
                .ok()
                .and_then(Result::ok)
        } else {
            None
        }
    } else {
        None
    };
    let local = local.unwrap_or_else(|| TopAnswer {
        worker: snap.worker.clone(),
        ..TopAnswer::default()
    });
    let top = global_top(&s, 15, local).await;
    let members = s.members.fresh();
    let backlog: i64 = members.iter().map(|m| m.backlog).sum();
    let series: Vec<_> = s
        .history
        .rates()
        .into_iter()
        .map(|(t, w, o)| serde_json::json!({"t": t, "words": w, "objects": o}))
        .collect();
    Json(serde_json::json!({
        "worker": snap.worker,
        "top": top,
        "series": series,
        "backlog": backlog,
        "members": members,
        "partitions": s.partitions,
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_per_second_over_the_last_samples() {
        let h = History::default();
        for i in 0..8u64 {
            h.samples.lock().unwrap().push_back(Sample {
                t: 100.0 + i as f64,
                words: 1000 * i,
                objects: 2 * i,
            });
        }
        let r = h.rates();
        assert_eq!(r.len(), 7);
        assert_eq!(r[0], (101.0, 1000.0, 2.0));
        assert_eq!(r[6], (107.0, 1000.0, 2.0)); // over the last 5 s
                                                // A member gone (totals drop): no negative rate.
        h.samples.lock().unwrap().push_back(Sample {
            t: 108.0,
            words: 0,
            objects: 0,
        });
        assert_eq!(h.rates().last().unwrap().1, 0.0);
    }
}
