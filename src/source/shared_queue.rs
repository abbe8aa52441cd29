//! One events queue for several sources: member accounts forward their ECS
//! events to one central bus, whose rule fills one queue. One reader
//! receives it, and each message goes to the source whose account and
//! region it names ([`origin::route`] over every source's scope); a
//! message that no source reads is counted as `foreign` and deleted here.
//!
//! Each source then applies and deletes only its own messages: were they
//! all handed to every source, each would delete the others' events as
//! foreign. A source that is busy (its channel full) does not hold up the
//! others: its batch is not handed over, stays undeleted, and SQS delivers
//! it again after the visibility timeout.

use std::sync::{Arc, Mutex};

use super::ecs::events;
use super::ecs::origin::{self, Scope};
use super::ecs::queue::{Queue, Received};
use super::{AbortOnDrop, FromQueue, receive_forever};

/// What one source reads of a shared queue: the queue (to delete its own
/// messages) and its messages.
pub struct Subscription {
    pub queue: Queue,
    pub rx: tokio::sync::mpsc::Receiver<FromQueue>,
    /// Keeps the reader running while any subscription lives.
    pub reader: Arc<AbortOnDrop>,
}

/// Starts reading `queue` for the sources whose scopes are `scopes`; one
/// subscription each, in their order.
pub fn subscribe(queue: Queue, scopes: Vec<Arc<Mutex<Scope>>>) -> Vec<Subscription> {
    let (txs, rxs): (Vec<_>, Vec<_>) = (scopes.iter())
        .map(|_| tokio::sync::mpsc::channel::<FromQueue>(4))
        .unzip();
    let reader = Arc::new(AbortOnDrop(tokio::spawn(route_forever(
        queue.clone(),
        scopes,
        txs,
    ))));
    (rxs.into_iter())
        .map(|rx| Subscription {
            queue: queue.clone(),
            rx,
            reader: reader.clone(),
        })
        .collect()
}

async fn route_forever(
    queue: Queue,
    scopes: Vec<Arc<Mutex<Scope>>>,
    txs: Vec<tokio::sync::mpsc::Sender<FromQueue>>,
) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<FromQueue>(4);
    let _receiver = AbortOnDrop(tokio::spawn(receive_forever(queue.clone(), tx)));
    while let Some(received) = rx.recv().await {
        let messages = match received {
            FromQueue::Failed(error) => {
                for tx in &txs {
                    let _ = tx.try_send(FromQueue::Failed(error.clone()));
                }
                continue;
            }
            FromQueue::Messages(messages) => messages,
        };
        // An empty receive is news too (the queue answers again).
        if messages.is_empty() {
            for tx in &txs {
                let _ = tx.try_send(FromQueue::Messages(Vec::new()));
            }
            continue;
        }
        let routes: Vec<(Scope, usize)> = (scopes.iter().enumerate())
            .map(|(i, scope)| (lock(scope).clone(), i))
            .collect();
        let (batches, foreign) = split(messages, &routes, txs.len());
        for (tx, batch) in txs.iter().zip(batches) {
            if !batch.is_empty() && tx.try_send(FromQueue::Messages(batch)).is_err() {
                crate::warn_throttled!(
                    "source busy",
                    "a source is still applying events: its new messages come back from the queue later"
                );
            }
        }
        if !foreign.is_empty() {
            metrics::counter!("ecs_dns_events_total", "type" => "task", "outcome" => "foreign")
                .increment(foreign.len() as u64);
            crate::warn_throttled!(
                "foreign event",
                "an event of an account or region no source reads: not used"
            );
            if let Err(error) = queue.delete(&foreign).await {
                crate::warn_throttled!("event delete failed", %error, "event messages not deleted: they come back as duplicates");
            }
        }
    }
}

/// Each message to the source whose scope covers what it names; the
/// receipts of those no source reads apart. A message that does not parse
/// goes to the first source, which counts it as malformed and deletes it.
fn split(
    messages: Vec<Received>,
    routes: &[(Scope, usize)],
    sources: usize,
) -> (Vec<Vec<Received>>, Vec<String>) {
    let mut batches: Vec<Vec<Received>> = (0..sources).map(|_| Vec::new()).collect();
    let mut foreign = Vec::new();
    for message in messages {
        let to = match events::parse(&message.body) {
            Ok(event) => origin::route(routes, &event.places()).copied(),
            Err(_) => Some(0),
        };
        match to.and_then(|i| batches.get_mut(i)) {
            Some(batch) => batch.push(message),
            None => foreign.push(message.receipt),
        }
    }
    (batches, foreign)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(receipt: &str, account: &str, region: &str) -> Received {
        let body = serde_json::json!({
            "version": "0", "id": receipt, "detail-type": "ECS Task State Change",
            "source": "aws.ecs", "account": account, "region": region,
            "time": "2026-12-05T10:00:00Z", "resources": [],
            "detail": {
                "clusterArn": format!("arn:aws:ecs:{region}:{account}:cluster/prod"),
                "taskArn": format!("arn:aws:ecs:{region}:{account}:task/prod/0123456789abcdef"),
                "lastStatus": "RUNNING", "desiredStatus": "RUNNING", "version": 1,
                "taskDefinitionArn": format!("arn:aws:ecs:{region}:{account}:task-definition/web:1"),
                "group": "service:web", "launchType": "FARGATE",
                "updatedAt": "2026-12-05T10:00:00Z", "containers": [], "attachments": []
            }
        });
        Received {
            body: body.to_string(),
            receipt: receipt.to_owned(),
        }
    }

    fn scope(account: &str, region: &str) -> Scope {
        Scope {
            account: Some(account.to_owned()),
            region: Some(region.to_owned()),
        }
    }

    #[test]
    fn each_message_goes_to_the_source_of_its_account_and_region() {
        let routes = [
            (scope("111111111111", "us-east-1"), 0),
            (scope("222222222222", "eu-west-1"), 1),
        ];
        let messages = vec![
            message("a", "111111111111", "us-east-1"),
            message("b", "222222222222", "eu-west-1"),
            message("c", "111111111111", "eu-west-1"),
            message("d", "333333333333", "us-east-1"),
            Received {
                body: "not json".into(),
                receipt: "e".into(),
            },
        ];
        let (batches, foreign) = split(messages, &routes, 2);
        let receipts = |b: &[Received]| b.iter().map(|m| m.receipt.clone()).collect::<Vec<_>>();
        assert_eq!(receipts(&batches[0]), ["a", "e"]);
        assert_eq!(receipts(&batches[1]), ["b"]);
        assert_eq!(foreign, ["c", "d"]);
    }
}
