//! `--events sqs:QUEUE_URL`: S3 Event Notifications in an SQS queue, the
//! AWS way (aws-sdk-sqs).
//!
//! A background task long-polls the queue (ReceiveMessage, up to 10
//! messages, 10 s wait) and hands the messages to the loop through a
//! bounded channel; the loop takes them without waiting. A message is
//! deleted only after the transaction with its discoveries committed
//! ([`Queue::ack`]); an abandoned batch's messages are made visible again
//! at once ([`Queue::nack`]), and those of a lister that went away come
//! back after the queue's visibility timeout.
//!
//! The endpoint is `AWS_ENDPOINT_URL_SQS` when set, otherwise the queue
//! URL's own origin (`https://sqs.REGION.amazonaws.com` on AWS, the local
//! server's address otherwise); the region is `--region`/`AWS_REGION`, else
//! the one in an AWS queue URL, else the AWS chain's.

use super::{notices_of, Taken, MAX_TAKE};
use crate::config::S3Args;
use anyhow::{anyhow, Result};
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry,
};
use aws_sdk_sqs::Client;
use std::time::Duration;
use tokio::sync::mpsc;

/// Longest wait of one ReceiveMessage (long polling: it returns as soon as
/// a message is there).
const WAIT: i32 = 10;
/// Longest pause between attempts while the queue cannot be read.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The endpoint for `queue_url`: `AWS_ENDPOINT_URL_SQS`, else the URL's
/// origin (scheme, host and port).
pub fn endpoint(queue_url: &str) -> String {
    if let Ok(e) = std::env::var("AWS_ENDPOINT_URL_SQS") {
        if !e.is_empty() {
            return e;
        }
    }
    let (scheme, rest) = queue_url.split_once("://").unwrap_or(("https", queue_url));
    let host = rest.split('/').next().unwrap_or(rest);
    format!("{scheme}://{host}")
}

/// The region of an AWS queue URL (`https://sqs.REGION.amazonaws.com/…`).
pub fn region_of(queue_url: &str) -> Option<&str> {
    let host = queue_url.split_once("://")?.1.split('/').next()?;
    let region = host.strip_prefix("sqs.")?.split_once(".amazonaws.com")?.0;
    (!region.is_empty() && !region.contains('.')).then_some(region)
}

/// The SQS client for `queue_url`.
pub async fn client(queue_url: &str, s3: &S3Args) -> Client {
    let region = s3
        .region
        .clone()
        .or_else(|| region_of(queue_url).map(str::to_string));
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(r) = region {
        loader = loader.region(aws_config::Region::new(r));
    }
    let shared = loader.load().await;
    let mut conf = aws_sdk_sqs::config::Builder::from(&shared)
        .endpoint_url(endpoint(queue_url))
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(10))
                .operation_attempt_timeout(Duration::from_secs(WAIT as u64 + 20))
                .build(),
        );
    if shared.region().is_none() {
        conf = conf.region(aws_config::Region::new("us-east-1"));
    }
    Client::from_conf(conf.build())
}

/// One line for a failed SQS call on `url`: the error code and message, or
/// the innermost cause (never credentials).
pub fn describe<E, R>(what: &str, url: &str, err: &SdkError<E, R>) -> anyhow::Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    let detail = match err {
        SdkError::ServiceError(se) => crate::s3::service_error(se.err()),
        SdkError::TimeoutError(_) => "no answer in time".to_string(),
        _ => crate::s3::root_cause(err),
    };
    anyhow!("{what} SQS queue {url}: {detail}")
}

/// Checks that the queue exists and may be read (GetQueueAttributes).
pub async fn check(url: &str, s3: &S3Args, timeout_s: u64) -> Result<()> {
    let client = client(url, s3).await;
    let call = client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout)
        .send();
    match tokio::time::timeout(Duration::from_secs(timeout_s), call).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(describe("cannot read", url, &e)),
        Err(_) => Err(anyhow!(
            "cannot read SQS queue {url}: no answer within {timeout_s} s"
        )),
    }
}

type Received = std::result::Result<Vec<aws_sdk_sqs::types::Message>, String>;

/// The queue, read by the lister.
pub struct Queue {
    url: String,
    client: Client,
    rx: mpsc::Receiver<Received>,
    receiver: tokio::task::JoinHandle<()>,
    rt: tokio::runtime::Handle,
}

impl Drop for Queue {
    fn drop(&mut self) {
        self.receiver.abort();
    }
}

impl Queue {
    /// Starts receiving (call within the worker's runtime).
    pub async fn open(url: &str, s3: &S3Args) -> Queue {
        let client = client(url, s3).await;
        let (tx, rx) = mpsc::channel(64);
        let receiver = tokio::spawn(receive(client.clone(), url.to_string(), tx));
        Queue {
            url: url.to_string(),
            client,
            rx,
            receiver,
            rt: tokio::runtime::Handle::current(),
        }
    }

    /// The messages received so far.
    pub fn take(&mut self) -> Taken {
        let mut taken = Taken::default();
        while taken.ack.receipts.len() < MAX_TAKE {
            match self.rx.try_recv() {
                Ok(Ok(messages)) => {
                    for m in messages {
                        let at = format!(
                            "SQS queue {} message {}",
                            self.url,
                            m.message_id().unwrap_or("?")
                        );
                        notices_of(m.body().unwrap_or_default().as_bytes(), &at, &mut taken);
                        if let Some(r) = m.receipt_handle {
                            taken.ack.receipts.push(r);
                        }
                    }
                }
                Ok(Err(e)) => {
                    taken.error = Some(anyhow!("{e}"));
                }
                Err(_) => break,
            }
        }
        taken
    }

    /// Deletes the messages (in the background, 10 a call).
    pub fn ack(&mut self, receipts: Vec<String>) {
        self.in_batches(receipts, |client, url, batch| async move {
            let entries = batch.into_iter().map(|(id, receipt)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(id)
                    .receipt_handle(receipt)
                    .build()
                    .expect("id and receipt handle are set")
            });
            let sent = client
                .delete_message_batch()
                .queue_url(&url)
                .set_entries(Some(entries.collect()))
                .send()
                .await;
            if let Err(e) = sent {
                tracing::warn!(
                    "{:#} (the messages come again; their objects are known)",
                    describe("cannot delete messages from", &url, &e)
                );
            }
        });
    }

    /// Makes the messages visible again at once (in the background).
    pub fn nack(&mut self, receipts: Vec<String>) {
        self.in_batches(receipts, |client, url, batch| async move {
            let entries = batch.into_iter().map(|(id, receipt)| {
                ChangeMessageVisibilityBatchRequestEntry::builder()
                    .id(id)
                    .receipt_handle(receipt)
                    .visibility_timeout(0)
                    .build()
                    .expect("id and receipt handle are set")
            });
            // A failure only means they come back after the visibility
            // timeout.
            let _ = client
                .change_message_visibility_batch()
                .queue_url(&url)
                .set_entries(Some(entries.collect()))
                .send()
                .await;
        });
    }

    /// Runs `call` in the background on the receipts, 10 at a time (SQS's
    /// most per batch call), each paired with its id in the batch.
    fn in_batches<F, Fut>(&self, receipts: Vec<String>, call: F)
    where
        F: Fn(Client, String, Vec<(String, String)>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let (client, url) = (self.client.clone(), self.url.clone());
        self.rt.spawn(async move {
            for chunk in receipts.chunks(10) {
                let batch = chunk
                    .iter()
                    .enumerate()
                    .map(|(i, r)| (i.to_string(), r.clone()))
                    .collect();
                call(client.clone(), url.clone(), batch).await;
            }
        });
    }
}

/// Long-polls the queue for as long as the receiver lives; errors are sent
/// on too (the loop warns), with a growing pause between attempts.
async fn receive(client: Client, url: String, tx: mpsc::Sender<Received>) {
    let mut backoff = Duration::from_millis(500);
    loop {
        let got = client
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .wait_time_seconds(WAIT)
            .send()
            .await;
        let sent = match got {
            Ok(out) => {
                backoff = Duration::from_millis(500);
                let messages = out.messages.unwrap_or_default();
                if messages.is_empty() {
                    continue;
                }
                tx.send(Ok(messages)).await
            }
            Err(e) => {
                let line = format!("{:#}", describe("cannot receive from", &url, &e));
                let sent = tx.send(Err(line)).await;
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                sent
            }
        };
        if sent.is_err() {
            return; // the queue was dropped
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_and_regions_of_queue_urls() {
        let aws = "https://sqs.eu-west-3.amazonaws.com/123456789012/wordstream-events";
        assert_eq!(region_of(aws), Some("eu-west-3"));
        assert_eq!(region_of("http://127.0.0.1:9324/000000000000/q"), None);
        if std::env::var_os("AWS_ENDPOINT_URL_SQS").is_none() {
            assert_eq!(endpoint(aws), "https://sqs.eu-west-3.amazonaws.com");
            assert_eq!(
                endpoint("http://127.0.0.1:9324/000000000000/q"),
                "http://127.0.0.1:9324"
            );
        }
    }
}
