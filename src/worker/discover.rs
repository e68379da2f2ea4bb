//! Discovery: the one worker that owns ledger partition 0 lists the bucket
//! every interval and reports objects the ledger has never seen.
//!
//! Listing starts after the greatest key seen [`WATERMARK_LAG`] ago: keys
//! that arrive in order cost a short page (what arrived lately), whatever
//! the number of objects already counted, and keys that arrive a little out
//! of order (concurrent uploads finish in any order) are still found at the
//! next listing. A periodic full listing is the safety net for keys that
//! arrive far out of order.
//!
//! Full listings also retry failed objects: an object whose latest ledger
//! entry is `failed` is discovered again when a full listing still shows it
//! and it failed at least [`RETRY_FAILED_AFTER`] ago, or its ETag changed
//! since (it was replaced), or the worker started with `--retry-failed`.
//! Discovery learns of failures from the ledger when it starts and from the
//! batches its own process commits.
//!
//! Under `--on-change recount` (the default) discovery also follows
//! changes: it keeps a 31-bit fingerprint of each known key's ETag, and a
//! listed object whose ETag differs is reported as a change (a `discovered`
//! record under the object's change key, see [`super::ledger::change_key`]);
//! a full pass that this process ran from the start marks each key it lists,
//! and the known keys it did not list are gone: their ledger keys are found
//! by reading the ledger once ([`names_of`], only when some are gone) and a
//! `removed` record goes under each one's change key. One bit of each
//! entry marks the pass; the map stays at 17 bytes a slot.
//!
//! Listings ask for `encoding-type=url` and decode the keys when the answer
//! says they are encoded, as AWS requires for keys with control characters
//! (which XML 1.0 cannot carry): without it such keys come back with U+FFFD
//! in place and cannot be read. (versitygw 1.7 ignores the parameter, so
//! there keys with characters below U+0020 other than tab, newline and
//! carriage return stay unreadable.)

use super::keyset::{etag_tag, fp96, Fp, KeyMap};
use super::known::Failure;
pub use super::known::Known;
use super::ledger::{split_key, unix_now, Entry};
use super::notify::{Ack, Notice};
use super::restore;
use crate::config::KafkaArgs;
use anyhow::Result;
use aws_sdk_s3::Client;
use std::borrow::Cow;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

/// ListObjectsV2 requests made by this process (for status lines, tests
/// and the scale-out benchmark).
pub static LIST_CALLS: AtomicU64 = AtomicU64::new(0);

/// Default time between full listings (reconciliation passes): 10 minutes.
/// On a bucket of 1 M objects (1,000 pages) that is about 6 passes and
/// 6,000 LIST calls an hour (docs in `--reconcile-interval` and the README).
pub const RECONCILE_EVERY: Duration = Duration::from_secs(600);
/// Listings start after the watermark as it was this long ago.
pub const WATERMARK_LAG: Duration = Duration::from_secs(10);
/// A failed object is retried by a full listing this long after it failed.
pub const RETRY_FAILED_AFTER: Duration = Duration::from_secs(600);

/// An object found in the bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// Its key.
    pub key: String,
    /// Its ETag.
    pub etag: String,
    /// Its size.
    pub size: u64,
    /// A new version (or a retry) of an object the ledger knows: its
    /// `discovered` record goes under the object's change key.
    pub change: bool,
}

/// A known key's entry: bit 31 marks the full pass that last listed it,
/// the others fingerprint its ETag ([`tag31`]; [`UNKNOWN`], [`REMOVED`]).
pub(super) type Seen = u32;
const MARK: u32 = 1 << 31;
/// The version is not known (any listed ETag is a change).
pub(super) const UNKNOWN: u32 = 0;
/// Its removal is recorded and waits for the count stage.
pub(super) const REMOVED: u32 = 1;

/// The 31-bit fingerprint of an ETag (never [`UNKNOWN`] or [`REMOVED`]).
pub(super) fn tag31(etag: &str) -> u32 {
    (etag_tag(etag) & !MARK).max(2)
}

/// What discovery knows: the keys in the ledger.
pub struct Discovery {
    bucket: String,
    prefix: String,
    seen: KeyMap<Seen>,
    /// `--on-change recount`: report new versions and removals.
    recount: bool,
    /// The mark of the current full pass (bit 31 of [`Seen`]).
    parity: u32,
    /// Whether the current full pass started in this process, from the
    /// first key: only such a pass says which keys are gone.
    full_from_start: bool,
    /// Seen keys whose latest ledger entry is `failed`, as far as this
    /// process knows.
    failed: HashMap<String, Failure>,
    watermark: Option<String>,
    /// The watermark before each listing since the oldest one that may
    /// still be the start of the next listing.
    history: VecDeque<(Instant, Option<String>)>,
    /// The quick listing in progress (after the lagging watermark).
    quick: Option<Pass>,
    /// The full listing (reconciliation pass) in progress.
    full: Option<Pass>,
    /// When the last full pass completed (Unix s); a new one starts
    /// `reconcile` later.
    full_done: Option<u64>,
    /// Time between full passes.
    reconcile: Duration,
    /// Keys per page (S3's default, 1,000, when `None`).
    page_size: Option<i32>,
    /// The full pass's position as last committed (resumed from there when
    /// a batch is abandoned).
    committed_after: Option<String>,
    /// Listed keys that do not decode to UTF-8 (warned about once).
    undecodable: HashSet<String>,
    /// Event notices taken in (see [`Discovery::notified`]).
    pub notices: crate::events::Notices,
    /// Keys an event said were removed, to confirm (HeadObject) before
    /// their removal is recorded.
    removal_notices: std::collections::BTreeSet<String>,
    /// The next pages of the passes in progress, requested ahead.
    ahead: Vec<page::Ahead>,
}

/// A listing in progress, one page at a time.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Pass {
    /// Where it started (S3 `StartAfter`).
    start_after: Option<String>,
    /// The next page (S3 `ContinuationToken`), once one was listed.
    token: Option<String>,
    /// The last key listed so far.
    last: Option<String>,
    /// When it started (Unix s).
    started: u64,
}

impl Pass {
    fn new(start_after: Option<String>, started: u64) -> Pass {
        Pass {
            last: start_after.clone(),
            start_after,
            token: None,
            started,
        }
    }
}

/// What one call of [`Discovery::poll`] found.
#[derive(Debug, Default)]
pub struct Listed {
    /// Objects not seen before (or failed ones due for a retry).
    pub found: Vec<Found>,
    /// Found objects the batch counts itself (see [`super::here`]): they
    /// get no `discovered` record.
    pub here: Vec<Found>,
    /// The full pass's progress to write with them, if it moved.
    pub progress: Option<Entry>,
    /// Known keys a completed full pass did not list (by fingerprint):
    /// gone from the bucket; [`names_of`] finds their keys.
    pub gone: Vec<Fp>,
    /// The keys of the objects gone (a `removed` record each).
    pub removed: Vec<String>,
    /// Why a page could not be listed (it is listed again next time).
    pub error: Option<anyhow::Error>,
    /// Acknowledges the event messages whose objects are in `found` (or
    /// known): given once the batch committed (see [`super::notify`]).
    pub ack: Ack,
}

/// A key of an `encoding-type=url` listing, decoded as AWS encodes it
/// (`+` for a space, `%XX` for other bytes); `None` if it is not UTF-8.
pub fn decode_key(encoded: &str) -> Option<Cow<'_, str>> {
    if !encoded.contains(['+', '%']) {
        return Some(Cow::Borrowed(encoded));
    }
    let spaced = encoded.replace('+', " ");
    let decoded = percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .ok()?;
    Some(Cow::Owned(decoded.into_owned()))
}

impl Discovery {
    /// Discovery of `bucket` under `prefix`, knowing what `known` says.
    pub fn new(bucket: &str, prefix: &str, known: Known, reconcile: Duration) -> Self {
        let Known {
            seen,
            greatest: watermark,
            failed,
            listing,
            ..
        } = known;
        // Resume the full pass where the ledger says it stood.
        let (full, full_done) = match listing {
            Some(Entry::Listing {
                after: Some(after),
                started,
                ..
            }) => (Some(Pass::new(Some(after), started)), None),
            Some(Entry::Listing {
                after: None,
                finished,
                ..
            }) => (None, finished),
            _ => (None, None),
        };
        Discovery {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
            seen,
            recount: true,
            parity: 0,
            full_from_start: false,
            failed,
            watermark,
            history: VecDeque::new(),
            quick: None,
            committed_after: full.as_ref().and_then(|p| p.last.clone()),
            full,
            full_done,
            reconcile,
            page_size: None,
            undecodable: HashSet::new(),
            notices: crate::events::Notices::default(),
            removal_notices: std::collections::BTreeSet::new(),
            ahead: Vec::new(),
        }
    }

    /// Where a listing at `now` starts: the watermark of the latest listing
    /// at least [`WATERMARK_LAG`] before `now` (older ones are dropped), or
    /// of the oldest listing known when none is that old.
    fn start_after(&mut self, now: Instant) -> Option<String> {
        while self.history.len() >= 2
            && now.saturating_duration_since(self.history[1].0) >= WATERMARK_LAG
        {
            self.history.pop_front();
        }
        match self.history.front() {
            Some((_, w)) => w.clone(),
            None => self.watermark.clone(),
        }
    }

    /// Objects known (in the ledger or found since).
    pub fn known(&self) -> usize {
        self.seen.len()
    }

    /// Estimated heap bytes of the known keys.
    pub fn memory(&self) -> u64 {
        self.seen.memory()
    }

    /// The object key of a ledger key, if it belongs to this bucket.
    pub fn key_of<'a>(bucket: &str, ledger_key: &'a str) -> Option<&'a str> {
        ledger_key
            .strip_prefix("s3://")?
            .strip_prefix(bucket)?
            .strip_prefix('/')
    }

    /// Lists one page of each listing in progress: the quick one (after the
    /// lagging watermark) when `quick` (its interval passed), and the full
    /// pass, started when due (every `reconcile` after the last one
    /// completed). Each page has its own deadline (`page_timeout`); a page
    /// that fails or times out is listed again at the next call, so a slow
    /// or flaky LIST slows a pass down but never starts it over. Returns the
    /// objects not seen yet (marked seen), and the full pass's progress.
    pub async fn poll(&mut self, client: &Client, quick: bool, page_timeout: Duration) -> Listed {
        let now = Instant::now();
        let unix = unix_now();
        let mut listed = Listed::default();
        // Until a full pass has completed, that pass walks every key anyway:
        // a quick listing after the watermark would walk the rest twice.
        let quick = quick && self.full_done.is_some();
        if quick && self.quick.is_none() {
            let after = self.start_after(now);
            // The watermark before this listing's finds: a later listing
            // within the lag starts no later than here.
            self.history.push_back((now, self.watermark.clone()));
            self.quick = Some(Pass::new(after, unix));
        }
        if self.full_due() {
            self.full = Some(Pass::new(None, unix));
            self.committed_after = None;
            self.parity ^= MARK;
            self.full_from_start = true;
        }
        for full in [false, true] {
            let pass = if full { &self.full } else { &self.quick };
            let Some(pass) = pass.clone() else { continue };
            let page = match self.take_ahead(full, &pass) {
                Some(ahead) => ahead.page(page_timeout).await,
                None => {
                    let req = self.request(&pass);
                    tokio::time::timeout(page_timeout, page::list(client, &req))
                        .await
                        .ok()
                }
            };
            let (objects, next) = match page {
                Some(Ok(page)) => self.decoded(page),
                Some(Err(e)) => {
                    listed.error = Some(e);
                    continue;
                }
                None => {
                    listed.error = Some(anyhow::anyhow!(
                        "cannot list s3://{}: no answer within {} s (the page is listed again)",
                        self.bucket,
                        page_timeout.as_secs()
                    ));
                    continue;
                }
            };
            let last = objects.last().map(|o| o.key.clone()).or(pass.last.clone());
            let mut retried = Vec::new();
            for mut obj in objects {
                let failure = self.failed.get(&obj.key);
                let retry = full && failure.is_some_and(|f| f.due(unix, &obj.etag));
                let retry_change = failure.is_some_and(|f| f.change);
                if retry {
                    retried.push(obj.key.clone());
                }
                let seen = self.seen.get(&obj.key);
                if let (true, Some(v)) = (full, seen) {
                    self.seen.set(&obj.key, (v & !MARK) | self.parity);
                }
                let changed = self.recount
                    && !retry
                    && !obj.etag.is_empty()
                    && seen.is_some_and(|v| v & !MARK != tag31(&obj.etag));
                if retry || changed || seen.is_none() {
                    obj.change = seen.is_some() && (changed || retry_change);
                    listed.found.push(obj);
                }
            }
            if !retried.is_empty() {
                tracing::info!(
                    "retrying {} failed objects of s3://{} (e.g. {})",
                    retried.len(),
                    self.bucket,
                    crate::output::escape(&retried[0])
                );
                for key in &retried {
                    self.failed.remove(key);
                }
            }
            let done = next.is_none();
            let moved = Pass {
                token: next,
                last,
                ..pass
            };
            if full {
                listed.progress = Some(Entry::Listing {
                    after: if done { None } else { moved.last.clone() },
                    started: moved.started,
                    finished: done.then_some(unix),
                });
                if done {
                    if self.recount && self.full_from_start {
                        listed.gone = self.unmarked();
                    }
                    self.full = None;
                    self.full_done = Some(unix);
                } else {
                    self.full = Some(moved);
                }
            } else {
                self.quick = (!done).then_some(moved);
            }
        }
        self.list_ahead(client);
        listed.found.sort_by(|a, b| a.key.cmp(&b.key));
        listed.found.dedup_by(|a, b| a.key == b.key);
        for f in &listed.found {
            self.seen.set(&f.key, tag31(&f.etag) | self.parity);
            if self.watermark.as_ref().is_none_or(|w| f.key > *w) {
                self.watermark = Some(f.key.clone());
            }
        }
        listed
    }

    /// The request for the next page of `pass`.
    fn request(&self, pass: &Pass) -> page::Request {
        page::Request {
            bucket: self.bucket.clone(),
            prefix: self.prefix.clone(),
            page_size: self.page_size,
            token: pass.token.clone(),
            after: pass.last.clone(),
        }
    }

    /// The page listed ahead for `pass` (the full one or not) at its
    /// position, if there is one still fresh; the others are dropped.
    fn take_ahead(&mut self, full: bool, pass: &Pass) -> Option<page::Ahead> {
        let i = self.ahead.iter().position(|a| a.serves(full, pass));
        let taken = i.map(|i| self.ahead.swap_remove(i));
        self.ahead.retain(|a| a.full() != full);
        taken
    }

    /// Requests the next page of each pass still in progress (see
    /// [`page`]).
    fn list_ahead(&mut self, client: &Client) {
        self.ahead.clear();
        for (full, pass) in [(false, &self.quick), (true, &self.full)] {
            let Some(pass) = pass else { continue };
            if let Some(a) = page::Ahead::start(client, full, pass, self.request(pass)) {
                self.ahead.push(a);
            }
        }
    }

    /// A page's objects, keys decoded, and the token of the next page.
    fn decoded(&mut self, page: page::Page) -> (Vec<Found>, Option<String>) {
        let mut objects = page.objects;
        if page.encoded {
            objects.retain_mut(|o| match self.decode(&o.key) {
                Some(Cow::Owned(key)) => {
                    o.key = key;
                    true
                }
                Some(Cow::Borrowed(_)) => true,
                None => false,
            });
        }
        (objects, page.next)
    }

    /// A listed key, URL-decoded. A key that is not UTF-8 once decoded
    /// cannot be read through the SDK: it is skipped, with one warning.
    fn decode<'k>(&mut self, encoded: &'k str) -> Option<Cow<'k, str>> {
        match decode_key(encoded) {
            Some(k) => Some(k),
            None => {
                if self.undecodable.insert(encoded.to_string()) {
                    tracing::warn!(
                        "skipping s3://{}/{encoded} (URL-encoded): its key is not UTF-8, \
                         which S3 clients cannot request",
                        self.bucket
                    );
                }
                None
            }
        }
    }

    /// Takes in a ledger entry this process committed for `ledger_key`
    /// (`None`: a tombstone): the key is in the ledger (seen, even if
    /// another lister discovered it), or gone for good; a failed object
    /// waits for a retry, any other is not failed.
    pub fn settled(&mut self, ledger_key: &str, entry: Option<&Entry>) {
        let (object, change) = split_key(ledger_key);
        let Some(key) = Self::key_of(&self.bucket, object) else {
            return;
        };
        match entry {
            None if change => {}
            None => {
                self.seen.remove(key);
                self.failed.remove(key);
            }
            Some(Entry::Failed { at, etag, .. }) => {
                let failure = Failure {
                    at: *at,
                    etag: etag.clone(),
                    change,
                };
                self.seen.set(key, tag31(etag) | self.parity);
                self.failed.insert(key.to_string(), failure);
            }
            Some(e) => {
                let tag = match e {
                    Entry::Counted { etag, .. }
                    | Entry::Discovered { etag, .. }
                    | Entry::Split { etag, .. } => tag31(etag),
                    _ => UNKNOWN,
                };
                self.seen.set(key, tag | self.parity);
                self.failed.remove(key);
            }
        }
    }

    /// Known keys the current full pass did not mark, now marked removed.
    fn unmarked(&mut self) -> Vec<Fp> {
        let parity = self.parity;
        let mut gone = Vec::new();
        for (fp, v) in self.seen.entries_mut() {
            if *v & MARK != parity && *v & !MARK != REMOVED {
                *v = REMOVED | (*v & MARK);
                gone.push(*fp);
            }
        }
        gone
    }

    /// Confirms the removal notices (see [`Discovery::removed`]): a key
    /// that HeadObject says is absent has its removal recorded in
    /// `listed`; one that is there is dropped (a re-upload, found by the
    /// listings and events); one that cannot be checked waits for the next
    /// call.
    pub async fn confirm_removals(&mut self, client: &Client, listed: &mut Listed) {
        let keys = std::mem::take(&mut self.removal_notices);
        for key in keys {
            let head = client.head_object().bucket(&self.bucket).key(&key).send();
            match tokio::time::timeout(Duration::from_secs(10), head).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) if e.as_service_error().is_some_and(|se| se.is_not_found()) => {
                    self.notice_removed(&key, listed);
                }
                _ => {
                    self.removal_notices.insert(key);
                }
            }
        }
    }

    /// The seam for S3 `ObjectRemoved` notices (the events path, issue 13):
    /// `key` is gone from the bucket, so its contribution is to be taken
    /// out. Adds it to `listed.removed` (a `removed` record under its
    /// change key, in the batch's transaction) when it is known and its
    /// removal is not recorded yet; returns whether it did. Notices may
    /// come late or out of order: hand in only a key confirmed absent
    /// (HeadObject says 404), or a re-upload could be taken out until the
    /// next full pass finds it again. `forget` undoes it with the batch.
    pub fn notice_removed(&mut self, key: &str, listed: &mut Listed) -> bool {
        if !self.recount || !key.starts_with(self.prefix.as_str()) {
            return false;
        }
        match self.seen.get(key) {
            Some(v) if v & !MARK != REMOVED => {
                self.seen.set(key, REMOVED | (v & MARK));
                listed.removed.push(key.to_string());
                true
            }
            _ => false,
        }
    }

    /// Follows new versions and removals (`--on-change recount`) or not.
    pub fn with_recount(mut self, recount: bool) -> Self {
        self.recount = recount;
        self
    }

    /// Forgets what an uncommitted batch found: new keys are unknown again,
    /// changed ones of unknown version, removed ones unmarked (the pass
    /// goes on from its last committed position and finds them again).
    pub fn forget(&mut self, listed: Listed) {
        for f in listed.found.into_iter().chain(listed.here) {
            match self.seen.get(&f.key) {
                Some(v) if f.change => {
                    self.seen.set(&f.key, UNKNOWN | (v & MARK));
                }
                _ => self.seen.remove(&f.key),
            }
        }
        let unmarked = self.parity ^ MARK;
        for key in &listed.removed {
            if self.seen.contains(key) {
                self.seen.set(key, UNKNOWN | unmarked);
            }
        }
        let gone: std::collections::HashSet<Fp> = listed.gone.into_iter().collect();
        if !gone.is_empty() {
            for (fp, v) in self.seen.entries_mut() {
                if gone.contains(fp) {
                    *v = UNKNOWN | unmarked;
                }
            }
        }
        self.ahead.clear();
        // The next quick listing starts after the watermark as it was about
        // [`WATERMARK_LAG`] ago (its history is kept): before the forgotten
        // keys, which it finds again.
        self.quick = None;
        // The full pass goes on from its last committed position.
        if let Some(full) = self.full.as_mut() {
            *full = Pass::new(self.committed_after.clone(), full.started);
        } else if self.committed_after.is_some() {
            self.full = Some(Pass::new(self.committed_after.clone(), unix_now()));
        }
    }

    /// Takes in event notices (`--events`, see [`super::notify`]): a created
    /// object of this bucket under the prefix that is not known is found, as
    /// a listed one would be (marked seen: its `discovered` record goes in
    /// the batch's transaction; [`Discovery::forget`] if that is abandoned);
    /// so is a failed one whose ETag changed. Known keys, other buckets and
    /// other prefixes are ignored; removals go to [`Discovery::removed`].
    /// Events do not move the watermark: the quick listing stays the safety
    /// net for keys that arrive in order.
    pub fn notified(&mut self, notices: Vec<Notice>) -> Vec<Found> {
        let mut found = Vec::new();
        for n in notices {
            if n.bucket() != self.bucket || !n.key().starts_with(&self.prefix) {
                self.notices.ignored += 1;
                continue;
            }
            match n {
                Notice::Created {
                    key, etag, size, ..
                } => {
                    self.notices.created += 1;
                    let failure = self.failed.get(&key);
                    let replaced = failure
                        .is_some_and(|f| !f.etag.is_empty() && !etag.is_empty() && f.etag != etag);
                    let failed_change = failure.is_some_and(|f| f.change);
                    let seen = self.seen.get(&key);
                    // A new version of a known object (`--on-change recount`).
                    let changed = self.recount
                        && !etag.is_empty()
                        && seen.is_some_and(|v| v & !MARK != tag31(&etag));
                    if replaced {
                        self.failed.remove(&key);
                    } else if seen.is_some() && !changed {
                        continue;
                    }
                    let mark = seen.map_or(self.parity, |v| v & MARK);
                    self.seen.set(&key, tag31(&etag) | mark);
                    self.notices.found += 1;
                    let change = seen.is_some() && (changed || failed_change);
                    found.push(Found {
                        key,
                        etag,
                        size,
                        change,
                    });
                }
                Notice::Removed { key, sequencer, .. } => self.removed(&key, &sequencer),
            }
        }
        found
    }

    /// An object of this bucket and prefix was deleted (an event notice).
    /// Under `--on-change recount` a known key waits in
    /// [`Discovery::removal_notices`] until [`Discovery::confirm_removals`]
    /// finds it absent (a notice may come after a re-upload); then its
    /// removal is recorded ([`Discovery::notice_removed`]).
    pub fn removed(&mut self, key: &str, sequencer: &str) {
        self.notices.removed += 1;
        if self.recount && self.seen.contains(key) && !self.removal_notices.contains(key) {
            self.removal_notices.insert(key.to_string());
        }
        tracing::debug!(
            "s3://{}/{} was removed (sequencer {sequencer})",
            self.bucket,
            crate::output::escape(key)
        );
    }

    /// Lists `n` keys per page (tests of many pages on a small bucket).
    pub fn with_page_size(mut self, n: Option<i32>) -> Self {
        self.page_size = n;
        self
    }

    /// Whether the next full pass is due (`--reconcile-interval` after the
    /// last one ended), whatever `--interval` says.
    pub fn full_due(&self) -> bool {
        self.full.is_none()
            && self
                .full_done
                .is_none_or(|done| unix_now() >= done.saturating_add(self.reconcile.as_secs()))
    }

    /// Whether a listing is under way: a full pass, or a quick listing with
    /// more pages to go (their pages are listed at every iteration, not only
    /// every interval).
    pub fn listing_under_way(&self) -> bool {
        self.full.is_some() || self.quick.is_some()
    }

    /// The batch with the listing `progress` committed.
    pub fn committed(&mut self, progress: &Entry) {
        if let Entry::Listing { after, .. } = progress {
            self.committed_after = after.clone();
        }
    }
}

/// The object keys of `bucket` whose fingerprints are `gone`, found by
/// reading the whole ledger (`ledger`, `partitions` partitions).
pub fn names_of(
    kafka: &KafkaArgs,
    ledger: &str,
    partitions: i32,
    bucket: &str,
    gone: &[Fp],
) -> Result<Vec<String>> {
    let mut want: std::collections::HashSet<Fp> = gone.iter().copied().collect();
    let mut names = Vec::new();
    let all: Vec<i32> = (0..partitions).collect();
    restore::read_to_end(kafka, ledger, &all, |_, k, _| {
        if want.is_empty() {
            return;
        }
        let Ok(k) = std::str::from_utf8(k) else {
            return;
        };
        let Some(key) = Discovery::key_of(bucket, split_key(k).0) else {
            return;
        };
        if want.remove(&fp96(key)) {
            names.push(key.to_string());
        }
    })?;
    names.sort();
    Ok(names)
}

mod page;
#[cfg(test)]
mod tests;
