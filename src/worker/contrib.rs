//! Contributions: what each counted object added to the totals, kept so
//! that an overwrite or a delete can take it back out exactly
//! (`--on-change recount`, docs/design.md §8).
//!
//! The contributions topic (`<app>-<table>-contributions`, compacted, as
//! many partitions as the ledger) holds an object's word counts in chunks
//! keyed `s3://bucket/key#<i>`, each under [`CHUNK_BYTES`] of JSON, in the
//! object's ledger partition, so the count stage that owns the object owns
//! them too. They are written in the transaction of the object's `counted`
//! ledger record, which says where chunk 0 is ([`Contribution`]); a
//! retraction reads them back by offset ([`Reader`]), in the transaction
//! that writes the object's new record. A recount writes chunks under the
//! same keys (compaction then drops the old ones) and tombstones the old
//! chunks past the new count; a delete tombstones them all.

use crate::config::KafkaArgs;
use crate::count::WordCounts;
use crate::kafka::QuietContext;
use anyhow::{anyhow, bail, Context, Result};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// Target size of a chunk's JSON (well under Kafka's 1 MB record limit; a
/// word is at most 64 KiB, so a chunk never exceeds it by much).
pub const CHUNK_BYTES: usize = 256 * 1024;
/// A read of a contribution that makes no progress for this long fails
/// (the batch is retried).
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// One chunk's value.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Chunk {
    /// The version counted.
    pub etag: String,
    /// This chunk's index.
    pub chunk: u32,
    /// Chunks of the contribution.
    pub chunks: u32,
    /// Word → occurrences.
    pub words: BTreeMap<String, u64>,
}

/// The key of chunk `i` of the object with ledger key `ledger_key`.
pub fn chunk_key(ledger_key: &str, i: u32) -> String {
    format!("{ledger_key}#{i}")
}

/// An object's word counts as chunk values (at least one, maybe empty).
pub fn chunks(etag: &str, counts: &WordCounts) -> Vec<Vec<u8>> {
    let mut parts: Vec<BTreeMap<String, u64>> = vec![BTreeMap::new()];
    let mut size = 0;
    let mut words: Vec<(&str, u64)> = counts.iter().collect();
    words.sort_unstable();
    for (w, n) in words {
        let entry = w.len() + 26;
        if size + entry > CHUNK_BYTES && size > 0 {
            parts.push(BTreeMap::new());
            size = 0;
        }
        size += entry;
        parts.last_mut().expect("one part").insert(w.to_string(), n);
    }
    let n = parts.len() as u32;
    parts
        .into_iter()
        .enumerate()
        .map(|(i, words)| {
            serde_json::to_vec(&Chunk {
                etag: etag.to_string(),
                chunk: i as u32,
                chunks: n,
                words,
            })
            .expect("chunks serialize")
        })
        .collect()
}

/// Word deltas that turn `old` into `new` (zero ones left out).
pub fn diff(new: &WordCounts, old: &HashMap<String, u64>) -> HashMap<String, i64> {
    let mut d: HashMap<String, i64> = old.iter().map(|(w, &n)| (w.clone(), -(n as i64))).collect();
    for (w, n) in new.iter() {
        *d.entry(w.to_string()).or_default() += n as i64;
    }
    d.retain(|_, n| *n != 0);
    d
}

/// Reads contributions back (read_committed), by offset.
pub struct Reader {
    consumer: BaseConsumer<QuietContext>,
    topic: String,
}

impl Reader {
    /// A reader of `topic`.
    pub fn new(args: &KafkaArgs, topic: &str) -> Result<Reader> {
        Ok(Reader {
            consumer: super::restore::reader(args, "contributions")?,
            topic: topic.to_string(),
        })
    }

    /// The word counts of `ledger_key`'s contribution whose chunk 0 is at
    /// `offset` of partition `p`, and its number of chunks.
    pub fn read(
        &self,
        p: i32,
        ledger_key: &str,
        offset: i64,
    ) -> Result<(HashMap<String, u64>, u32)> {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&self.topic, p, Offset::Offset(offset))?;
        self.consumer
            .assign(&tpl)
            .with_context(|| format!("cannot read {}[{p}]", self.topic))?;
        let prefix = format!("{ledger_key}#");
        let missing = || {
            anyhow!(
                "the contribution of {} is not in {}[{p}] from offset {offset}",
                crate::output::escape(ledger_key),
                self.topic,
            )
        };
        let mut found: Vec<bool> = Vec::new();
        let mut chunks = None;
        let mut words = HashMap::new();
        let mut last = Instant::now();
        while chunks.is_none() || found.iter().any(|f| !f) {
            if last.elapsed() > READ_TIMEOUT {
                return Err(missing()).context(format!("no progress for {READ_TIMEOUT:?}"));
            }
            match self.consumer.poll(Duration::from_millis(200)) {
                Some(Ok(m)) => {
                    last = Instant::now();
                    let ours = m
                        .key()
                        .and_then(|k| std::str::from_utf8(k).ok())
                        .and_then(|k| k.strip_prefix(prefix.as_str()))
                        .is_some_and(|i| i.parse::<u32>().is_ok());
                    let (true, Some(value)) = (ours, m.payload()) else {
                        continue;
                    };
                    let chunk: Chunk = serde_json::from_slice(value).with_context(|| {
                        format!(
                            "{}[{p}]@{} is not a contribution chunk",
                            self.topic,
                            m.offset()
                        )
                    })?;
                    if m.offset() == offset && chunk.chunk != 0 {
                        bail!(missing());
                    }
                    let n = *chunks.get_or_insert(chunk.chunks.max(1));
                    found.resize(n as usize, false);
                    let i = chunk.chunk as usize;
                    if i < found.len() && !found[i] {
                        found[i] = true;
                        words.extend(chunk.words);
                    }
                }
                Some(Err(KafkaError::PartitionEOF(_))) => bail!(missing()),
                Some(Err(e)) => tracing::debug!("reading {}: {e}", self.topic),
                None => {}
            }
        }
        Ok((words, chunks.unwrap_or(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::count::{Counter, Options};

    fn counts(text: &str) -> WordCounts {
        let mut c = Counter::new(Options::default());
        c.feed(text.as_bytes());
        c.finish()
    }

    #[test]
    fn chunks_stay_under_the_size_and_hold_every_word() {
        let text: String = (0..40_000).map(|i| format!("w{} ", word(i))).collect();
        let c = counts(&text);
        let values = chunks("\"e\"", &c);
        assert!(values.len() > 1);
        let mut all = BTreeMap::new();
        for (i, v) in values.iter().enumerate() {
            assert!(v.len() < CHUNK_BYTES + 1024, "chunk {i}: {} bytes", v.len());
            let chunk: Chunk = serde_json::from_slice(v).unwrap();
            assert_eq!((chunk.chunk, chunk.chunks), (i as u32, values.len() as u32));
            all.extend(chunk.words);
        }
        assert_eq!(all.len(), c.distinct());
        assert_eq!(chunks("\"e\"", &counts("")).len(), 1);
    }

    fn word(mut i: usize) -> String {
        let mut s = String::new();
        loop {
            s.push((b'a' + (i % 26) as u8) as char);
            i /= 26;
            if i == 0 {
                return s;
            }
        }
    }

    #[test]
    fn diff_is_new_minus_old_without_zeros() {
        let old = HashMap::from([("a".to_string(), 2), ("b".to_string(), 1)]);
        let d = diff(&counts("a a c"), &old);
        assert_eq!(
            d,
            HashMap::from([("b".to_string(), -1), ("c".to_string(), 1)])
        );
        let gone = diff(&WordCounts::new(), &old);
        assert_eq!(gone["a"], -2);
    }
}
