//! The worker's local state (Kafka Streams' `TaskManager` side): the tables of
//! owned changelog partitions, the done sets of owned ledger partitions, and
//! discovery (for the owner of ledger partition 0). All of it is a cache of
//! what Kafka committed: [`State::align`] restores what a new assignment
//! brings (reading the topics to their end, [`super::restore`]) and drops
//! what it takes away; after a failure the worker clears it all and aligns
//! again.

use super::discover::{Discovery, Known};
use super::group::Assignment;
use super::ledger::Entry;
use super::restore;
use super::Fatal;
use crate::config::{KafkaArgs, Topics};
use crate::events::Event;
use crate::wire::Serde;
use anyhow::{anyhow, Result};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

/// What restoring needs to know.
pub struct Restore<'a> {
    pub kafka: &'a KafkaArgs,
    pub topics: &'a Topics,
    pub serde: Serde,
    pub bucket: &'a str,
    pub prefix: &'a str,
    pub interval: Duration,
    pub ledger_partitions: i32,
    pub stop: &'a AtomicBool,
    /// `--retry-failed`: discovery retries every failed object at once.
    pub retry_failed: bool,
}

/// Local state of the owned partitions.
#[derive(Default)]
pub struct State {
    /// Owned repartition (= changelog) partitions and their tables.
    pub tables: BTreeMap<i32, HashMap<String, i64>>,
    /// Owned ledger partitions: for each, the keys already done.
    pub done: BTreeMap<i32, HashSet<String>>,
    /// Discovery, when this worker owns ledger partition 0.
    pub discovery: Option<Discovery>,
    /// When the bucket was last listed.
    pub last_listing: Option<Instant>,
}

impl State {
    /// Forgets everything (rebuilt by the next [`State::align`]).
    pub fn clear(&mut self) {
        *self = State::default();
    }

    /// Whether `key` of ledger partition `p` is done.
    pub fn is_done(&self, p: i32, key: &str) -> bool {
        self.done.get(&p).is_some_and(|d| d.contains(key))
    }

    /// The current total of `word` in changelog partition `p`.
    pub fn total(&self, p: i32, word: &str) -> i64 {
        self.tables
            .get(&p)
            .and_then(|t| t.get(word))
            .copied()
            .unwrap_or(0)
    }

    /// Words in the owned tables.
    pub fn table_words(&self) -> usize {
        self.tables.values().map(HashMap::len).sum()
    }

    /// Brings the state in line with `owned`: drops partitions no longer
    /// owned or `revoked` since (their state is stale even if they came
    /// back), restores new ones, starts or stops discovery.
    pub fn align(
        &mut self,
        r: &Restore<'_>,
        owned: &Assignment,
        revoked: &HashSet<(String, i32)>,
    ) -> Result<()> {
        let kept = |topic: &str, p: i32, owned: &std::collections::BTreeSet<i32>| {
            owned.contains(&p) && !revoked.contains(&(topic.to_string(), p))
        };
        self.tables
            .retain(|&p, _| kept(&r.topics.repartition, p, &owned.repartition));
        self.done
            .retain(|&p, _| kept(&r.topics.ledger, p, &owned.ledger));
        if revoked.contains(&(r.topics.ledger.clone(), 0)) {
            self.discovery = None;
        }
        let new_tables: Vec<i32> = owned
            .repartition
            .iter()
            .copied()
            .filter(|p| !self.tables.contains_key(p))
            .collect();
        let new_ledger: Vec<i32> = owned
            .ledger
            .iter()
            .copied()
            .filter(|p| !self.done.contains_key(p))
            .collect();
        if !new_tables.is_empty() {
            self.tables.extend(restore_tables(r, &new_tables)?);
        }
        if !new_ledger.is_empty() {
            self.done.extend(restore_done(r, &new_ledger)?);
        }
        let lists = owned.ledger.contains(&0);
        if lists && self.discovery.is_none() {
            self.discovery = Some(start_discovery(r)?);
            self.last_listing = None;
        } else if !lists && self.discovery.is_some() {
            Event::ListerStopped.emit();
            self.discovery = None;
        }
        Ok(())
    }
}

/// The tables of changelog partitions `parts`, read to their end.
fn restore_tables(r: &Restore<'_>, parts: &[i32]) -> Result<BTreeMap<i32, HashMap<String, i64>>> {
    let started = Instant::now();
    let mut tables: BTreeMap<i32, HashMap<String, i64>> =
        parts.iter().map(|&p| (p, HashMap::new())).collect();
    let (mut bad, mut records) = (0u64, 0u64);
    let serde = r.serde;
    restore::read_to_end_until(r.kafka, &r.topics.changelog, parts, r.stop, |p, k, v| {
        records += 1;
        match (serde.decode_key(k), v.map(|v| serde.decode_value(v))) {
            (Ok(word), Some(Ok(total))) => {
                tables.entry(p).or_default().insert(word, total);
            }
            (Ok(word), None) => {
                tables.entry(p).or_default().remove(&word);
            }
            _ => bad += 1,
        }
    })?;
    if bad > 0 {
        return Err(anyhow!(Fatal(format!(
            "{bad} records of {} do not decode with --serde {}: is the topic written in another format?",
            r.topics.changelog,
            serde.name()
        ))));
    }
    Event::Restored {
        what: "table".into(),
        topic: r.topics.changelog.clone(),
        partitions: parts.to_vec(),
        records,
        entries: tables.values().map(HashMap::len).sum::<usize>() as u64,
        seconds: started.elapsed().as_secs_f64(),
    }
    .emit();
    Ok(tables)
}

/// The done sets of ledger partitions `parts`, read to their end.
fn restore_done(r: &Restore<'_>, parts: &[i32]) -> Result<BTreeMap<i32, HashSet<String>>> {
    let started = Instant::now();
    let mut records = 0u64;
    let mut done: BTreeMap<i32, HashSet<String>> =
        parts.iter().map(|&p| (p, HashSet::new())).collect();
    restore::read_to_end_until(r.kafka, &r.topics.ledger, parts, r.stop, |p, k, v| {
        records += 1;
        // Done once is done for good: a later discovery of the same key is a
        // duplicate.
        if let Some(Ok(e)) = v.map(Entry::parse) {
            if e.is_done() {
                done.entry(p)
                    .or_default()
                    .insert(String::from_utf8_lossy(k).into_owned());
            }
        }
    })?;
    Event::Restored {
        what: "ledger".into(),
        topic: r.topics.ledger.clone(),
        partitions: parts.to_vec(),
        records,
        entries: done.values().map(HashSet::len).sum::<usize>() as u64,
        seconds: started.elapsed().as_secs_f64(),
    }
    .emit();
    Ok(done)
}

/// Discovery, knowing every key of the whole ledger and the failed ones.
fn start_discovery(r: &Restore<'_>) -> Result<Discovery> {
    let all: Vec<i32> = (0..r.ledger_partitions).collect();
    let mut known = Known::new(r.bucket);
    restore::read_to_end_until(r.kafka, &r.topics.ledger, &all, r.stop, |_, k, v| {
        known.add(k, v)
    })?;
    if r.retry_failed {
        known.retry_failed_now();
    }
    Event::ListerStarted {
        bucket: r.bucket.to_string(),
        prefix: r.prefix.to_string(),
        interval_s: r.interval.as_secs_f64(),
        known: known.len() as u64,
    }
    .emit();
    if known.failed() > 0 {
        tracing::info!(
            "{} objects failed before: retried {}",
            known.failed(),
            if r.retry_failed {
                "at the first listing (--retry-failed)"
            } else {
                "by a full listing 10 minutes after they failed, or once replaced"
            }
        );
    }
    Ok(Discovery::new(r.bucket, r.prefix, known))
}
