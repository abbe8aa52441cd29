//! NOTIFY (RFC 1996): tells the secondaries that the serial changed, so they
//! transfer at once instead of waiting for their SOA refresh timer.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, Record, RecordType};
use tokio::net::UdpSocket;

/// Tries per secondary and the wait for the first answer, doubled each try
/// (RFC 1996 §3.6 asks for retries with a bounded count).
const TRIES: u32 = 5;
const FIRST_WAIT: Duration = Duration::from_secs(1);

/// Sends a NOTIFY for `origin` (with its new SOA) to every target, each in its
/// own task, retried until acknowledged or `TRIES` is reached.
pub fn send_all(targets: &[SocketAddr], origin: &Name, soa: &Record) {
    for &target in targets {
        let origin = origin.clone();
        let soa = soa.clone();
        tokio::spawn(async move {
            let serial = super::journal::soa_serial(&soa);
            match notify(target, &origin, &soa, TRIES, FIRST_WAIT).await {
                Ok(tries) => {
                    metrics::counter!("ecs_dns_notify_total", "outcome" => "acknowledged")
                        .increment(1);
                    tracing::info!(%target, serial, tries, "NOTIFY acknowledged");
                }
                Err(error) => {
                    metrics::counter!("ecs_dns_notify_total", "outcome" => "failed").increment(1);
                    tracing::warn!(%target, serial, %error, "NOTIFY not acknowledged");
                }
            }
        });
    }
}

/// One NOTIFY exchange with up to `tries` tries, the first waiting
/// `first_wait` for an answer; returns how many tries it took.
async fn notify(
    target: SocketAddr,
    origin: &Name,
    soa: &Record,
    tries: u32,
    first_wait: Duration,
) -> Result<u32, String> {
    let bind: SocketAddr = if target.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        ([0u16; 8], 0).into()
    };
    let socket = UdpSocket::bind(bind).await.map_err(|e| e.to_string())?;
    let id = fastrand::u16(..);
    let bytes = message(id, origin, soa)
        .to_vec()
        .map_err(|e| e.to_string())?;
    let mut wait = first_wait;
    let mut buf = [0u8; 4096];
    for attempt in 1..=tries {
        socket
            .send_to(&bytes, target)
            .await
            .map_err(|e| e.to_string())?;
        let deadline = tokio::time::Instant::now() + wait;
        while let Ok(Ok((len, from))) =
            tokio::time::timeout_at(deadline, socket.recv_from(&mut buf)).await
        {
            if from == target && acknowledges(&buf[..len], id) {
                return Ok(attempt);
            }
        }
        wait *= 2;
    }
    Err(format!("no answer after {tries} tries"))
}

fn message(id: u16, origin: &Name, soa: &Record) -> Message {
    let mut message = Message::new(id, MessageType::Query, OpCode::Notify);
    message.metadata.authoritative = true;
    message.add_query(Query::query(origin.clone(), RecordType::SOA));
    message.add_answer(soa.clone());
    message
}

/// A response to our NOTIFY: same ID, opcode NOTIFY, QR set. Any rcode ends
/// the retries (a secondary that refuses will not change its mind).
fn acknowledges(bytes: &[u8], id: u16) -> bool {
    Message::from_vec(bytes).is_ok_and(|m| {
        m.metadata.id == id
            && m.metadata.message_type == MessageType::Response
            && m.metadata.op_code == OpCode::Notify
    })
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use hickory_proto::rr::RData;
    use hickory_proto::rr::rdata::SOA;

    use super::*;

    fn soa() -> Record {
        let origin = Name::from_str("local.").unwrap();
        Record::from_rdata(
            origin.clone(),
            60,
            RData::SOA(SOA::new(origin.clone(), origin, 42, 60, 10, 3600, 5)),
        )
    }

    /// A secondary that ignores the first NOTIFY and answers the second.
    #[tokio::test]
    async fn notify_is_retried_until_acknowledged() {
        let secondary = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let target = secondary.local_addr().unwrap();
        let peer = tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            let mut seen = Vec::new();
            for _ in 0..2 {
                let (len, from) = secondary.recv_from(&mut buf).await.unwrap();
                seen.push(Message::from_vec(&buf[..len]).unwrap());
                if seen.len() == 2 {
                    let reply = seen[1].clone().into_response();
                    secondary
                        .send_to(&reply.to_vec().unwrap(), from)
                        .await
                        .unwrap();
                }
            }
            seen
        });
        let origin = Name::from_str("local.").unwrap();
        let tries = notify(target, &origin, &soa(), 3, Duration::from_millis(200)).await;
        assert_eq!(tries, Ok(2));
        let seen = peer.await.unwrap();
        assert_eq!(seen[0].metadata.op_code, OpCode::Notify);
        assert!(seen[0].metadata.authoritative);
        assert_eq!(seen[0].queries[0].query_type(), RecordType::SOA);
        assert_eq!(seen[0].answers.len(), 1, "the new SOA rides along");
        assert_eq!(
            seen[0].metadata.id, seen[1].metadata.id,
            "a retry is the same message"
        );
    }

    #[tokio::test]
    async fn notify_gives_up_after_its_tries() {
        let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let origin = Name::from_str("local.").unwrap();
        let result = notify(
            silent.local_addr().unwrap(),
            &origin,
            &soa(),
            2,
            Duration::from_millis(50),
        )
        .await;
        assert_eq!(result, Err("no answer after 2 tries".into()));
    }
}
