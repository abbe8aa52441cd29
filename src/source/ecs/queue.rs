//! The SQS queue EventBridge fills with ECS events: long-polled receives
//! and batched deletes, counted like every other AWS call. A message is
//! deleted only after what it says is published (or judged irrelevant):
//! one not deleted comes back after the queue's visibility timeout.

use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::DeleteMessageBatchRequestEntry;

use super::calls::{CallCounts, Operation};
use super::discovery::CallError;

/// How long a receive waits for a message (SQS's longest long poll).
pub const WAIT: Duration = Duration::from_secs(20);
/// Messages per receive and per delete (SQS's limit for both).
pub const BATCH: usize = 10;

/// One message: its body (the event) and what deletes it.
#[derive(Clone, Debug)]
pub struct Received {
    pub body: String,
    pub receipt: String,
}

/// The region of a queue URL, `https://sqs.REGION.amazonaws.com/ACCOUNT/NAME`
/// (also `sqs.REGION.amazonaws.com.cn`); `None` for another shape (an
/// emulator's, a VPC endpoint's).
pub fn region_of_url(url: &str) -> Option<&str> {
    let host = url.split("://").nth(1)?.split('/').next()?;
    let mut labels = host.split('.');
    (labels.next()? == "sqs").then_some(())?;
    let region = labels.next()?;
    (labels.next()? == "amazonaws").then_some(region)
}

#[derive(Clone)]
pub struct Queue {
    client: aws_sdk_sqs::Client,
    url: String,
    counts: Arc<CallCounts>,
}

impl Queue {
    /// A client of `url` whose attempts may last the long poll and
    /// `request_timeout` more (the ECS and EC2 clients' attempt timeout,
    /// `request_timeout`, would cut every long poll short).
    pub fn new(
        config: &SdkConfig,
        url: &str,
        request_timeout: Duration,
        counts: Arc<CallCounts>,
    ) -> Queue {
        let timeouts = super::retry::timeout_config(WAIT + request_timeout);
        let sqs = aws_sdk_sqs::config::Builder::from(config)
            .timeout_config(timeouts)
            .build();
        Queue {
            client: aws_sdk_sqs::Client::from_conf(sqs),
            url: url.to_owned(),
            counts,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Waits up to [`WAIT`] for up to [`BATCH`] messages.
    pub async fn receive(&self) -> Result<Vec<Received>, CallError> {
        let op = Operation::ReceiveMessage;
        self.counts.call(op);
        let result = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(BATCH as i32)
            .wait_time_seconds(WAIT.as_secs() as i32)
            .send()
            .await;
        let output = result.map_err(|e| {
            self.counts.error(op);
            CallError {
                operation: op.name(),
                reason: DisplayErrorContext(&e).to_string(),
            }
        })?;
        Ok(output
            .messages
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| {
                Some(Received {
                    receipt: m.receipt_handle?,
                    body: m.body.unwrap_or_default(),
                })
            })
            .collect())
    }

    /// Deletes the messages of `receipts`, [`BATCH`] a call. A failed
    /// delete is not fatal: the message comes back and is judged a
    /// duplicate.
    pub async fn delete(&self, receipts: &[String]) -> Result<(), CallError> {
        let op = Operation::DeleteMessageBatch;
        for batch in receipts.chunks(BATCH) {
            let entries: Vec<DeleteMessageBatchRequestEntry> = batch
                .iter()
                .enumerate()
                .filter_map(|(i, receipt)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(receipt)
                        .build()
                        .ok()
                })
                .collect();
            self.counts.call(op);
            let result = self
                .client
                .delete_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await;
            match result {
                Ok(output) if output.failed.is_empty() => {}
                Ok(output) => {
                    self.counts.error(op);
                    return Err(CallError {
                        operation: op.name(),
                        reason: format!("{} of {} not deleted", output.failed.len(), batch.len()),
                    });
                }
                Err(e) => {
                    self.counts.error(op);
                    return Err(CallError {
                        operation: op.name(),
                        reason: DisplayErrorContext(&e).to_string(),
                    });
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod url_tests {
    #[test]
    fn the_region_of_a_queue_url() {
        let of = super::region_of_url;
        assert_eq!(
            of("https://sqs.eu-west-2.amazonaws.com/1/q"),
            Some("eu-west-2")
        );
        assert_eq!(
            of("https://sqs.cn-north-1.amazonaws.com.cn/1/q"),
            Some("cn-north-1")
        );
        assert_eq!(of("http://127.0.0.1:4566/1/q"), None);
        assert_eq!(
            of("https://vpce-1.sqs.us-east-1.vpce.amazonaws.com/1/q"),
            None
        );
    }
}
