//! What the worker announces about itself: the periodic `status` event,
//! the `--tally` table, and the snapshot the web server answers from.

use super::*;

impl Worker {
    /// Hands the state's summary to the web server (after an alignment or
    /// a commit).
    pub(super) fn publish_web(&mut self) {
        if let Some(w) = self.web.as_mut() {
            w.served.publish(&self.state, self.ready);
        }
    }

    pub(super) fn status(&mut self) {
        let memory = self.state.memory();
        if let Some(max) = self.settings.max_table_memory {
            if memory.total() > max {
                self.memory_warnings.warn(format_args!(
                    "local state takes about {} bytes, over --max-table-memory {max}",
                    memory.total()
                ));
            }
        }
        Event::Status(Status {
            objects: self.stats.objects,
            failed: self.stats.failed,
            bytes: self.stats.bytes,
            words: self.stats.words,
            transactions: self.stats.transactions,
            aborted: self.stats.aborted,
            ledger: self.state.done.keys().copied().collect(),
            repartition: self.state.tables.keys().copied().collect(),
            lister: self.state.lists(),
            table_words: self.state.table_words() as u64,
            table_bytes: memory.tables,
            done_objects: memory.done_objects,
            known_objects: memory.known_objects,
            known_bytes: memory.known,
            state_bytes: memory.total(),
            junk_records: self.state.junk_records,
            list_calls: discover::LIST_CALLS.load(Ordering::Relaxed),
            notices: self
                .state
                .discovery
                .as_ref()
                .map(|d| d.notices)
                .unwrap_or_default(),
            skipped_tokens: self.stats.skipped_tokens,
        })
        .emit();
    }

    /// `--tally N`: the top N words of the owned tables on stdout, as the
    /// original printed its "$$ TALLY $$". A closed stdout is not an error.
    pub(super) fn print_tally(&self) {
        let Some(n) = self.settings.tally else { return };
        let mut rows: Vec<(&str, u64)> = self
            .state
            .tables
            .values()
            .flat_map(|t| t.iter().map(|(w, &c)| (w.as_str(), c.max(0) as u64)))
            .collect();
        rows.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        rows.truncate(n);
        let mut out = std::io::stdout().lock();
        let _ =
            writeln!(out, "$$ TALLY $$\n{}", output::tally_table(&rows)).and_then(|()| out.flush());
    }
}
