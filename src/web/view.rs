//! What the web server sees of the worker: a small [`Snapshot`] the loop
//! publishes (readiness, owned partitions, committed offsets), and the
//! [`Query`] channel the loop answers between its steps from its own
//! tables and done sets ([`Served::serve`]).
//!
//! The loop is one task that owns its state: queries wait in a bounded
//! channel and the loop answers them without ever waiting for a client
//! (the reply is a oneshot send). It serves them at the start of every
//! iteration (at least every 200 ms when idle) and every 100 ms while a
//! batch's objects are counted. While it restores a table it answers
//! nothing: the server answers 503 from the snapshot's `restoring` flag.

use super::metrics;
use crate::worker::batch::Input;
use crate::worker::state::State;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Queries waiting for the loop; more are refused (503).
const QUEUE: usize = 256;
/// The loop recomputes its local top list at most this often.
const TOP_REFRESH: Duration = Duration::from_secs(1);
/// Longest top list a worker computes.
pub const MAX_TOP: usize = 1000;

/// The worker's state as the server may read it at any time.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Snapshot {
    pub worker: String,
    /// Tables restored, in the group, not resyncing.
    pub ready: bool,
    /// Restoring or resyncing now: tables may be incomplete.
    pub restoring: bool,
    /// Owned repartition (= changelog) partitions.
    pub repartition: Vec<i32>,
    /// Owned ledger partitions.
    pub ledger: Vec<i32>,
    pub lister: bool,
    /// Committed offset of each owned repartition partition the tables reflect.
    pub repartition_offsets: BTreeMap<i32, i64>,
    /// Committed offset of each owned ledger partition.
    pub ledger_offsets: BTreeMap<i32, i64>,
}

/// The count of one word, as its owner knows it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WordAnswer {
    pub word: String,
    pub count: i64,
    /// Its changelog (= repartition) partition.
    pub partition: i32,
    /// The repartition offset the count reflects: every delta before it
    /// is in the count, and the changelog holds the count.
    pub offset: i64,
    /// The worker that answered.
    pub worker: String,
}

/// One worker's top words.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TopAnswer {
    pub worker: String,
    /// The partitions the list covers.
    pub partitions: Vec<i32>,
    pub words: Vec<(String, i64)>,
}

/// The ledger state of one object, as the owner of its ledger partition
/// knows it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ObjectAnswer {
    /// The ledger key (`s3://bucket/key`).
    pub key: String,
    pub partition: i32,
    /// `done` (counted or failed: in the owner's done set) or `pending`
    /// (discovered and not yet done, or unknown).
    pub state: String,
    /// The ledger offset the answer reflects.
    pub offset: i64,
    pub worker: String,
}

/// A question for the loop. `None` as an answer: the partition is not
/// owned (any more).
pub enum Query {
    Word {
        word: String,
        partition: i32,
        reply: oneshot::Sender<Option<WordAnswer>>,
    },
    Top {
        n: usize,
        reply: oneshot::Sender<TopAnswer>,
    },
    Object {
        key: String,
        partition: i32,
        reply: oneshot::Sender<Option<ObjectAnswer>>,
    },
}

/// The server's side: the snapshot and the way to ask the loop.
pub struct Shared {
    snapshot: RwLock<Snapshot>,
    queries: mpsc::Sender<Query>,
}

impl Shared {
    /// A copy of the current snapshot.
    pub fn snapshot(&self) -> Snapshot {
        self.snapshot.read().expect("not poisoned").clone()
    }

    /// Hands `q` to the loop; false when the queue is full or the loop gone.
    pub fn ask(&self, q: Query) -> bool {
        self.queries.try_send(q).is_ok()
    }
}

/// The loop's side.
pub struct Served {
    shared: Arc<Shared>,
    queries: mpsc::Receiver<Query>,
    /// The local top list and when it was computed.
    top: Option<(Instant, TopAnswer)>,
    /// Commits since the top list was computed.
    changed: bool,
}

/// A shared view and the loop's side of it.
pub fn new(worker: &str) -> (Arc<Shared>, Served) {
    let (tx, rx) = mpsc::channel(QUEUE);
    let shared = Arc::new(Shared {
        snapshot: RwLock::new(Snapshot {
            worker: worker.to_string(),
            ..Snapshot::default()
        }),
        queries: tx,
    });
    let served = Served {
        shared: Arc::clone(&shared),
        queries: rx,
        top: None,
        changed: true,
    };
    (shared, served)
}

impl Served {
    /// Marks the tables as being restored (before an alignment or a resync).
    pub fn restoring(&mut self) {
        let mut s = self.shared.snapshot.write().expect("not poisoned");
        s.restoring = true;
        s.ready = false;
        metrics::set_ready(false);
    }

    /// Publishes the state after an alignment or a commit.
    pub fn publish(&mut self, state: &State, ready: bool) {
        self.changed = true;
        let mut rep = BTreeMap::new();
        let mut led = BTreeMap::new();
        for (&(input, p), &off) in &state.committed {
            match input {
                Input::Repartition => rep.insert(p, off),
                Input::Ledger => led.insert(p, off),
            };
        }
        let ready = ready && !state.parked;
        let mut s = self.shared.snapshot.write().expect("not poisoned");
        s.ready = ready;
        s.restoring = false;
        s.repartition = state.tables.keys().copied().collect();
        s.ledger = state.done.keys().copied().collect();
        s.lister = state.lists();
        s.repartition_offsets = rep;
        s.ledger_offsets = led;
        metrics::set_owned(s.repartition.len(), s.ledger.len());
        metrics::set_table_words(state.table_words());
        metrics::set_ready(ready);
    }

    /// Answers every waiting query from `state`; never waits.
    pub fn serve(&mut self, state: &State) {
        while let Ok(q) = self.queries.try_recv() {
            match q {
                Query::Word {
                    word,
                    partition,
                    reply,
                } => {
                    let _ = reply.send(self.word(state, word, partition));
                }
                Query::Top { n, reply } => {
                    let mut top = self.top(state);
                    top.words.truncate(n);
                    let _ = reply.send(top);
                }
                Query::Object {
                    key,
                    partition,
                    reply,
                } => {
                    let _ = reply.send(self.object(state, key, partition));
                }
            }
        }
    }

    fn worker(&self) -> String {
        self.shared
            .snapshot
            .read()
            .expect("not poisoned")
            .worker
            .clone()
    }

    fn word(&self, state: &State, word: String, p: i32) -> Option<WordAnswer> {
        let table = state.tables.get(&p)?;
        let offset = answerable(state, Input::Repartition, p)?;
        let count = table.get(&word).copied().unwrap_or(0);
        Some(WordAnswer {
            word,
            count,
            partition: p,
            offset,
            worker: self.worker(),
        })
    }

    fn object(&self, state: &State, key: String, p: i32) -> Option<ObjectAnswer> {
        let done = state.done.get(&p)?;
        let offset = answerable(state, Input::Ledger, p)?;
        Some(ObjectAnswer {
            state: if done.contains(&key) {
                "done"
            } else {
                "pending"
            }
            .into(),
            key,
            partition: p,
            offset,
            worker: self.worker(),
        })
    }

    /// The local top [`MAX_TOP`], recomputed at most every [`TOP_REFRESH`]
    /// and only after a change.
    fn top(&mut self, state: &State) -> TopAnswer {
        if let Some((at, top)) = &self.top {
            if !self.changed || at.elapsed() < TOP_REFRESH {
                return top.clone();
            }
        }
        let mut words: Vec<(&String, i64)> = state
            .tables
            .values()
            .flat_map(|t| t.iter().map(|(w, &c)| (w, c)))
            .collect();
        let order =
            |a: &(&String, i64), b: &(&String, i64)| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0));
        if words.len() > MAX_TOP {
            words.select_nth_unstable_by(MAX_TOP, order);
            words.truncate(MAX_TOP);
        }
        words.sort_unstable_by(order);
        let top = TopAnswer {
            worker: self.worker(),
            partitions: if state.parked {
                Vec::new()
            } else {
                state.tables.keys().copied().collect()
            },
            words: words.into_iter().map(|(w, c)| (w.clone(), c)).collect(),
        };
        self.top = Some((Instant::now(), top.clone()));
        self.changed = false;
        top
    }
}

/// The committed offset of `(input, p)` that a local answer reflects (-1
/// before any commit), or `None` while the state is parked (a resync).
fn answerable(state: &State, input: Input, p: i32) -> Option<i64> {
    if state.parked {
        return None;
    }
    Some(state.committed.get(&(input, p)).copied().unwrap_or(-1))
}
