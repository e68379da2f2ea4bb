//! Event-driven discovery (`--events`): S3 Event Notifications from an SQS
//! queue ([`sqs`]) or a Kafka topic ([`topic`]), parsed by [`s3event`].
//!
//! Only the lister (the owner of ledger partition 0) reads them: the worker
//! opens a [`Notices`] source when it starts listing and drops it when it
//! stops. Each loop iteration [`Notices::take`]s what arrived (never
//! waiting), hands the created objects to discovery (the same path as a
//! listed key: a `discovered` record in the iteration's transaction unless
//! the key is known), and keeps an [`Ack`]. The ack is given
//! ([`Notices::ack`]: SQS DeleteMessage, Kafka offset commit) only after
//! that transaction committed; an abandoned batch's messages come again
//! ([`Notices::nack`]: visibility back to 0 / the consumer re-reads from its
//! committed offsets). So an event is acknowledged only once the objects it
//! names are in the ledger, and a hand-over loses none: unacknowledged SQS
//! messages come back after their visibility timeout, and the topic's
//! committed offset moves only after a ledger commit.
//!
//! Events are at-least-once, late, duplicated, out of order, and may name
//! deleted objects: discovery dedups against the keys it knows, and an
//! object that is gone fails like a listed one that vanished. The listing
//! stays the safety net for lost events.

pub mod s3event;
pub mod sqs;
pub mod topic;

use super::discover::{Discovery, Listed};
use super::throttle::Throttle;
use crate::config::{KafkaArgs, S3Args};
use anyhow::{bail, Result};
pub use s3event::Notice;
use std::fmt;
use std::time::{Duration, Instant};

/// Pause before opening an event source again after it could not be.
const REOPEN: Duration = Duration::from_secs(5);

/// Where events come from (`--events`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Spec {
    /// `sqs:QUEUE_URL`: an SQS queue S3 sends notifications to.
    Sqs(String),
    /// `kafka:TOPIC`: a topic of the worker's Kafka cluster.
    Kafka(String),
}

impl std::str::FromStr for Spec {
    type Err = String;

    fn from_str(s: &str) -> Result<Spec, String> {
        match s.split_once(':') {
            Some(("sqs", url)) if url.starts_with("http://") || url.starts_with("https://") => {
                Ok(Spec::Sqs(url.to_string()))
            }
            Some(("sqs", url)) => Err(format!(
                "sqs:{url}: the queue URL must start with https:// (or http://), \
                 e.g. sqs:https://sqs.us-east-1.amazonaws.com/123456789012/queue"
            )),
            Some(("kafka", topic)) if !topic.is_empty() => Ok(Spec::Kafka(topic.to_string())),
            _ => Err(format!("{s}: expected sqs:QUEUE_URL or kafka:TOPIC")),
        }
    }
}

impl fmt::Display for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Spec::Sqs(url) => write!(f, "SQS queue {url}"),
            Spec::Kafka(topic) => write!(f, "Kafka topic {topic}"),
        }
    }
}

/// What an ack acknowledges (opaque to the loop).
#[derive(Debug, Default)]
pub struct Ack {
    /// SQS receipt handles.
    receipts: Vec<String>,
    /// Kafka: (partition, next offset) per partition read.
    offsets: Vec<(i32, i64)>,
}

impl Ack {
    /// Whether there is nothing to acknowledge.
    pub fn is_empty(&self) -> bool {
        self.receipts.is_empty() && self.offsets.is_empty()
    }
}

/// What one [`Notices::take`] brought.
#[derive(Debug, Default)]
pub struct Taken {
    /// The notices, in arrival order (of every bucket: discovery filters).
    pub notices: Vec<Notice>,
    /// Acknowledges the messages they came in (and those that carried no
    /// notice, or did not parse).
    pub ack: Ack,
    /// Why nothing could be read (the source is retried next time).
    pub error: Option<anyhow::Error>,
}

/// A live event source.
pub enum Notices {
    Sqs(sqs::Queue),
    Kafka(topic::Topic),
}

/// Most messages taken per iteration (the rest wait for the next one).
pub const MAX_TAKE: usize = 1_000;

impl Notices {
    /// Checks at start that the source exists and may be read: one clear
    /// line naming the queue or topic otherwise.
    pub async fn check(spec: &Spec, kafka: &KafkaArgs, s3: &S3Args) -> Result<()> {
        match spec {
            Spec::Sqs(url) => sqs::check(url, s3, kafka.connect_timeout).await,
            Spec::Kafka(topic) => {
                let (kafka, topic) = (kafka.clone(), topic.clone());
                tokio::task::spawn_blocking(move || topic::check(&kafka, &topic))
                    .await
                    .map_err(|e| anyhow::anyhow!("checking the events topic: {e}"))?
            }
        }
    }

    /// Opens the source (the lister does, when it starts listing).
    pub async fn open(spec: &Spec, kafka: &KafkaArgs, s3: &S3Args) -> Result<Notices> {
        Ok(match spec {
            Spec::Sqs(url) => Notices::Sqs(sqs::Queue::open(url, s3).await),
            Spec::Kafka(topic) => {
                if topic.is_empty() {
                    bail!("an empty events topic");
                }
                Notices::Kafka(topic::Topic::open(kafka, topic)?)
            }
        })
    }

    /// What arrived since the last call (at most [`MAX_TAKE`] messages),
    /// without waiting.
    pub fn take(&mut self) -> Taken {
        match self {
            Notices::Sqs(q) => q.take(),
            Notices::Kafka(t) => t.take(),
        }
    }

    /// The transaction with the discoveries of `ack`'s messages committed:
    /// they are done with (sent off in the background; a lost ack only
    /// means the messages come again, and their keys are known).
    pub fn ack(&mut self, ack: Ack) {
        if ack.is_empty() {
            return;
        }
        match self {
            Notices::Sqs(q) => q.ack(ack.receipts),
            Notices::Kafka(t) => t.ack(&ack.offsets),
        }
    }

    /// Whether a failed read is better retried with a new source: a Kafka
    /// consumer whose topic went away is opened again once it is back; the
    /// SQS receiver retries by itself.
    pub fn reopen_on_error(&self) -> bool {
        matches!(self, Notices::Kafka(_))
    }

    /// The batch with `ack`'s messages was abandoned: they must come again.
    /// Returns false when the source must be reopened for that (Kafka: a
    /// new consumer starts from the committed offsets).
    pub fn nack(&mut self, ack: Ack) -> bool {
        match self {
            Notices::Sqs(q) => {
                q.nack(ack.receipts);
                true
            }
            Notices::Kafka(_) => ack.is_empty(),
        }
    }
}

/// The worker's side of `--events`: the source while the worker lists the
/// bucket, opened again after a failure, its warnings rate-limited.
pub struct Events {
    spec: Option<Spec>,
    source: Option<Notices>,
    /// When a source that could not be opened (or read) is tried again.
    retry: Option<Instant>,
    warnings: Throttle,
}

impl Events {
    /// Events from `spec` (none without one).
    pub fn new(spec: Option<Spec>) -> Events {
        Events {
            spec,
            source: None,
            retry: None,
            warnings: Throttle::new(Duration::from_secs(10)),
        }
    }

    /// Whether a source is open (the worker lists the bucket with events).
    pub fn is_open(&self) -> bool {
        self.source.is_some()
    }

    /// Another worker lists the bucket: the source goes (what it took and
    /// did not acknowledge comes again).
    pub fn close(&mut self) {
        self.source = None;
    }

    /// Takes what arrived (without waiting) into `listed`: the created
    /// objects `discovery` does not know join its finds, and its ack is
    /// to be given once they are committed. Opens the source first if
    /// needed; a source that cannot be opened or read is warned about
    /// (rate-limited) and tried again, while the listing goes on.
    pub fn take(
        &mut self,
        rt: &tokio::runtime::Runtime,
        kafka: &KafkaArgs,
        s3: &S3Args,
        discovery: &mut Discovery,
        listed: &mut Listed,
    ) {
        let Some(spec) = &self.spec else { return };
        if self.source.is_none() {
            if self.retry.is_some_and(|t| Instant::now() < t) {
                return;
            }
            match rt.block_on(Notices::open(spec, kafka, s3)) {
                Ok(n) => {
                    self.source = Some(n);
                    self.retry = None;
                }
                Err(e) => {
                    self.warn(&e);
                    return;
                }
            }
        }
        let Some(source) = self.source.as_mut() else {
            return;
        };
        let taken = source.take();
        listed.found.extend(discovery.notified(taken.notices));
        listed.ack = taken.ack;
        if let Some(e) = taken.error {
            if source.reopen_on_error() {
                // What it took comes again from the committed offsets.
                self.source = None;
            }
            self.warn(&e);
        }
    }

    fn warn(&mut self, e: &anyhow::Error) {
        self.warnings.warn(format_args!(
            "{e:#} (retrying; the bucket's listing goes on)"
        ));
        if self.source.is_none() {
            self.retry = Some(Instant::now() + REOPEN);
        }
    }

    /// The transaction with the discoveries of `ack`'s messages committed
    /// (or there was nothing to commit): they are done with.
    pub fn ack(&mut self, ack: Ack) {
        if let Some(n) = self.source.as_mut() {
            n.ack(ack);
        }
    }

    /// The batch with `ack`'s messages was abandoned: they must come again.
    pub fn nack(&mut self, ack: Ack) {
        if let Some(n) = self.source.as_mut() {
            if !n.nack(ack) {
                self.source = None;
            }
        }
    }
}

/// The notices of one message body; a body that is not a notification is
/// reported (by `source`, naming the message) and acknowledged all the same
/// (it would come back forever).
pub fn notices_of(body: &[u8], source: &dyn fmt::Display, taken: &mut Taken) {
    match s3event::parse(body) {
        Ok(n) => taken.notices.extend(n),
        Err(e) => tracing::warn!("{source}: skipping a message: {e:#}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        let q = "https://sqs.us-east-1.amazonaws.com/123456789012/q";
        assert_eq!(format!("sqs:{q}").parse(), Ok(Spec::Sqs(q.into())));
        assert_eq!(
            "kafka:s3-events".parse(),
            Ok(Spec::Kafka("s3-events".into()))
        );
        for bad in ["sqs:q", "kafka:", "s3-events", "nats:x"] {
            assert!(bad.parse::<Spec>().is_err(), "{bad}");
        }
    }
}
