//! One batch of the loop: count its objects (streamed, off the loop's
//! thread, the group served meanwhile), settle their outcomes, and commit
//! everything in one transaction with the consumed offsets (docs/design.md
//! §3); or forget an uncommitted batch.

use super::*;

impl Worker {
    /// Counts the batch's objects, applies its deltas to the totals, and
    /// commits all of it in one transaction with the input offsets.
    pub(super) fn process(&mut self, mut polled: Vec<Polled>, mut listed: Listed) -> Result<()> {
        let epoch = self.group.epoch();
        if !self.state.parked {
            let done = &self.state.done;
            let (here, records) = super::here::take(
                &mut listed.found,
                &polled,
                &self.settings.s3.bucket,
                self.ledger_partitions,
                &self.settings.ranged,
                |p| done.contains_key(&p),
            );
            listed.here = here;
            polled.extend(records);
        }
        let (done, tables) = (&self.state.done, &self.state.tables);
        let mut plan = batch::plan_with(
            polled,
            &self.settings.s3.bucket,
            self.settings.recount,
            |p, k| done.get(&p).and_then(|d| d.get(k)),
            |p, w| tables.get(&p).and_then(|t| t.get(w)).copied().unwrap_or(0),
            &mut self.state.splits,
        );
        for why in &plan.skipped {
            tracing::warn!("{}; skipped", crate::output::escape(why));
        }
        crate::web::metrics::skipped(plan.skipped.len());
        if let Some(key) = &plan.foreign {
            self.abandon(listed);
            return Err(state::foreign_bucket(
                &self.settings.kafka.app_id,
                key,
                &self.topics.ledger,
                &self.settings.s3.bucket,
            ));
        }
        for (p, key, done) in &plan.done {
            let set = self.state.done.entry(*p).or_default();
            match done {
                Some(d) => {
                    set.set(key, *d);
                }
                None => set.remove(key),
            }
        }
        super::watchdog::step("read old contributions");
        let olds = match self
            .old_contributions(&plan.jobs)
            .and_then(|olds| self.range_contributions(&mut plan.jobs).map(|()| olds))
        {
            Ok(olds) => olds,
            Err(e) => {
                self.abandon(listed);
                return Err(e);
            }
        };
        super::watchdog::step("count objects");
        let started = Instant::now();
        let outcomes = match self.count_objects(&plan.jobs) {
            Ok(outcomes) => outcomes,
            Err(e) => {
                self.abandon(listed);
                return Err(e);
            }
        };
        let count_ms = started.elapsed().as_millis() as u64;
        if self.group.epoch() != epoch {
            // A rebalance while counting: some input may have moved away.
            // Commit nothing; the next iteration rewinds.
            self.abandon(listed);
            return Ok(());
        }
        let Some(mut settled) = batch::settle(
            plan.jobs,
            outcomes,
            olds,
            &self.settings.worker_id,
            self.settings.recount,
        ) else {
            // Shutting down mid-batch: commit nothing; the records come again.
            self.abandon(listed);
            return Ok(());
        };
        for e in settled.events.drain(..) {
            e.emit();
        }
        if !self.state.parked {
            let (state, serde, partitions) = (&self.state, self.settings.serde, self.partitions);
            batch::fold_owned(
                &mut settled.deltas,
                &mut plan.totals,
                |w| crate::kafka::partition_for(&serde.key(w), partitions),
                |p| state.tables.contains_key(&p),
                |p, w| state.total(p, w),
            );
        }
        let layout = Layout {
            bucket: &self.settings.s3.bucket,
            partitions: self.partitions,
            ledger_partitions: self.ledger_partitions,
            serde: self.settings.serde,
        };
        let first = batch::first_records(&settled);
        super::watchdog::step("commit");
        let offsets = if plan.offsets.is_empty() {
            // Only `discovered` records: fenced all the same.
            failpoint::hit("commit.discovery_only");
            self.group.fence_offsets()?
        } else {
            self.group.offsets(&plan.offsets)?
        };
        let started = Instant::now();
        let settled_ref = &mut settled;
        let (listed_ref, totals) = (&listed, &plan.totals);
        let rest = move |landed: &[i64]| {
            batch::fill_pointers(settled_ref, landed);
            batch::records(layout, listed_ref, settled_ref, totals, landed)
        };
        match self
            .txn
            .commit_staged(&first, rest, &offsets, self.group.metadata())
        {
            Ok(()) => {
                for (p, end) in self.txn.changelog_ends() {
                    if self.state.tables.contains_key(&p) {
                        self.state.table_ends.insert(p, end);
                    }
                }
                Event::BatchCommitted {
                    discovered: (listed.found.len() + listed.here.len()) as u64,
                    objects: settled.counted + settled.failed + settled.retracted,
                    failed: settled.failed,
                    deltas: settled.deltas.len() as u64,
                    totals: plan.totals.len() as u64,
                    count_ms,
                    txn_ms: started.elapsed().as_millis() as u64,
                }
                .emit();
                self.events.ack(std::mem::take(&mut listed.ack));
                crate::web::metrics::committed(
                    settled.counted,
                    settled.failed,
                    settled.bytes,
                    settled.delta.words,
                );
                self.stats.transactions += 1;
                self.stats.objects += settled.counted;
                self.stats.failed += settled.failed;
                self.stats.bytes += settled.bytes;
                self.stats.words += settled.delta.words;
                self.purge.committed(&plan.offsets);
                self.state.committed.extend(&plan.offsets);
                if let (Some(d), Some(progress)) =
                    (self.state.discovery.as_mut(), listed.progress.as_ref())
                {
                    d.committed(progress);
                }
                self.stats.skipped_tokens += settled.delta.skipped_tokens;
                for (p, key, entry) in settled.ledger {
                    if split::is_work_key(&key) {
                        continue; // ranges and notes: not objects
                    }
                    if let Some(d) = self.state.discovery.as_mut() {
                        d.settled(&key, entry.as_ref());
                    }
                    if ledger::split_key(&key).1 {
                        continue;
                    }
                    self.state.splits.apply(p, &key, entry.as_ref());
                    let set = self.state.done.entry(p).or_default();
                    match entry {
                        Some(Entry::Counted {
                            etag, contribution, ..
                        }) => {
                            set.set(&key, Done::new(&etag, contribution.map(|c| c.offset)));
                        }
                        None | Some(Entry::Split { .. }) => set.remove(&key),
                        Some(_) => {}
                    }
                }
                let changed = !plan.totals.is_empty();
                for (word, (p, total)) in plan.totals {
                    let table = self.state.tables.entry(p).or_default();
                    if total == 0 {
                        table.remove(&word); // as Faust's `del table[word]`
                    } else {
                        table.insert(word, total);
                    }
                }
                if changed {
                    self.print_tally();
                }
                self.publish_web();
                Ok(())
            }
            Err(e) => {
                self.stats.aborted += 1;
                self.abandon(listed);
                self.resync = true;
                match e {
                    TxnError::Retry(e) => Event::BatchAborted {
                        reason: format!("{e:#}"),
                    }
                    .emit(),
                    TxnError::Lost(e) => tracing::warn!(
                        "transactional producer lost ({e:#}); re-initialising it and retrying the batch"
                    ),
                    TxnError::Fatal(e) => return Err(e),
                }
                Ok(())
            }
        }
    }

    /// The old contributions of the batch's jobs that have one (read back
    /// from the contributions topic), in the order of `jobs`.
    pub(super) fn old_contributions(&self, jobs: &[batch::Job]) -> Result<Vec<Option<batch::Old>>> {
        jobs.iter()
            .map(|job| {
                let (Some(offset), Some(reader)) = (job.old, self.contributions.as_ref()) else {
                    return Ok(None);
                };
                let (words, chunks) = reader.read(job.partition, &job.ledger_key, offset)?;
                Ok(Some(batch::Old { words, chunks }))
            })
            .collect()
    }

    /// Reads back the contributions of the ranges of the splits the batch
    /// collects (docs/design.md §9), merged into each job's
    /// [`split::Collect::words`].
    /// Ranges keep contributions whatever `--on-change` says (an object
    /// overwritten mid-way takes its ranges back): without `recount`, the
    /// contributions topic is made, and its reader opened, when a batch
    /// first has ranges.
    pub(super) fn range_contributions(&mut self, jobs: &mut [batch::Job]) -> Result<()> {
        let ranges = jobs
            .iter()
            .any(|j| matches!(j.action, batch::Action::Range | batch::Action::Collect(_)));
        if ranges && self.contributions.is_none() {
            crate::kafka::admin::prepare_contributions_topic(
                &self.settings.kafka,
                &self.topics,
                self.ledger_partitions,
                self.settings.replication,
                &self.rt,
            )?;
            self.contributions = Some(contrib::Reader::new(
                &self.settings.kafka,
                &self.topics.contributions,
            )?);
        }
        for job in jobs {
            let batch::Action::Collect(c) = &mut job.action else {
                continue;
            };
            let Some(reader) = self.contributions.as_ref() else {
                anyhow::bail!(
                    "no contributions topic to collect the ranges of {}",
                    job.ledger_key
                );
            };
            for note in &c.notes {
                let Some(at) = note.contribution else {
                    continue;
                };
                let key = split::range_key(note.index, note.of, &note.etag, &job.ledger_key);
                let (words, _) = reader.read(note.partition, &key, at.offset)?;
                for (w, n) in words {
                    *c.words.entry(w).or_default() += n;
                }
            }
        }
        Ok(())
    }

    /// Reads and counts the batch's objects, [`COUNT_CONCURRENCY`] at a
    /// time and no more than [`COUNT_KIB_AT_ONCE`] of them at once
    /// ([`kib_of`]); outcomes in the order of `jobs` (a retraction reads
    /// nothing). The group is served meanwhile, however long it takes (see
    /// [`Group::serve_while`]).
    pub(super) fn count_objects(&mut self, jobs: &[batch::Job]) -> Result<Vec<Outcome>> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let handle = self.rt.handle().clone();
        // Ranges read at once (--range-concurrency).
        let permits = Arc::new(tokio::sync::Semaphore::new(
            self.settings.ranged.concurrency.max(1),
        ));
        let bytes = Arc::new(tokio::sync::Semaphore::new(COUNT_KIB_AT_ONCE as usize));
        let tasks: Vec<_> = jobs
            .iter()
            .map(|job| {
                let retract = match &job.action {
                    batch::Action::Retract => true,
                    batch::Action::Collect(c) => c.then() != Some(&batch::Action::Count),
                    _ => false,
                };
                let range = match &job.listed {
                    Entry::Range(w) if job.action == batch::Action::Range => {
                        Some(ranged::count_one(ranged::RangeRead {
                            client: self.s3.clone(),
                            bucket: self.settings.s3.bucket.clone(),
                            key: job.object_key.clone(),
                            etag: w.etag.clone(),
                            size: w.size,
                            range: (w.start, w.end),
                            opts: self.settings.count,
                            stop: Arc::clone(&self.stop),
                        }))
                    }
                    _ => None,
                };
                let permits = Arc::clone(&permits);
                let (bytes, kib) = (Arc::clone(&bytes), kib_of(job));
                let count = object::count(
                    self.s3.clone(),
                    self.settings.s3.bucket.clone(),
                    job.object_key.clone(),
                    self.settings.count,
                    self.settings.formats,
                    Arc::clone(&self.stop),
                    job.listed_etag().map(str::to_string),
                    self.settings.ranged,
                );
                async move {
                    if let Some(range) = range {
                        let Ok(_permit) = permits.acquire().await else {
                            return Outcome::Interrupted;
                        };
                        return range.await;
                    }
                    if retract {
                        return Outcome::Failed(String::new()); // not read
                    }
                    let Ok(_bytes) = bytes.acquire_many(kib).await else {
                        return Outcome::Interrupted;
                    };
                    // A test's slow object (see crate::failpoint).
                    let _ = tokio::task::spawn_blocking(|| failpoint::hit("count.slow")).await;
                    count.await
                }
            })
            .collect();
        let (done, outcomes) = std::sync::mpsc::channel();
        let spawner = handle.clone();
        let (state, mut web) = (&self.state, self.web.as_mut());
        handle.spawn(async move {
            let all: Vec<Outcome> =
                futures::stream::iter(tasks.into_iter().map(|t| spawner.spawn(t)))
                    .buffered(COUNT_CONCURRENCY)
                    .map(|r| {
                        r.unwrap_or_else(|e| Outcome::Failed(format!("counting panicked: {e}")))
                    })
                    .collect()
                    .await;
            let _ = done.send(all);
        });
        self.group.serve_while(|wait| {
            super::watchdog::alive();
            if let Some(w) = web.as_mut() {
                w.served.serve(state);
            }
            match outcomes.recv_timeout(wait) {
                Ok(all) => Some(all),
                Err(RecvTimeoutError::Timeout) => None,
                // The counting task is gone: nothing of the batch commits.
                Err(RecvTimeoutError::Disconnected) => {
                    Some(jobs.iter().map(|_| Outcome::Interrupted).collect())
                }
            }
        })
    }

    /// Forgets an uncommitted batch's discoveries.
    pub(super) fn abandon(&mut self, mut listed: Listed) {
        let ack = std::mem::take(&mut listed.ack);
        if let Some(d) = self.state.discovery.as_mut() {
            d.forget(listed);
        }
        // Their events must come again.
        self.events.nack(ack);
    }
}

/// The share of [`COUNT_KIB_AT_ONCE`] an object's read takes: its listed
/// size in KiB, at least 1, at most all of it.
fn kib_of(job: &batch::Job) -> u32 {
    let size = match &job.listed {
        Entry::Discovered { size, .. } => *size,
        _ => 0,
    };
    size.div_ceil(1024).clamp(1, COUNT_KIB_AT_ONCE as u64) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(size: u64) -> batch::Job {
        batch::Job {
            partition: 0,
            ledger_key: "s3://b/k".into(),
            object_key: "k".into(),
            listed: Entry::Discovered {
                etag: "\"e\"".into(),
                size,
            },
            action: batch::Action::Count,
            old: None,
            change: false,
        }
    }

    #[test]
    fn objects_take_their_size_of_the_bytes_read_at_once() {
        assert_eq!(kib_of(&job(0)), 1);
        assert_eq!(kib_of(&job(10)), 1);
        assert_eq!(kib_of(&job(1025)), 2);
        assert_eq!(kib_of(&job(64 << 20)), 64 << 10);
        // 32 objects of 8 MiB: all at once; of 64 MiB: 4 at once; one of
        // 1 GiB: alone (it takes everything)
        assert!(32 * kib_of(&job(8 << 20)) <= COUNT_KIB_AT_ONCE);
        assert_eq!(COUNT_KIB_AT_ONCE / kib_of(&job(64 << 20)), 4);
        assert_eq!(kib_of(&job(1 << 30)), COUNT_KIB_AT_ONCE);
    }
}
