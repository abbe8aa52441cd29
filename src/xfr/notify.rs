//! NOTIFY (RFC 1996): tells the secondaries that the serial changed, so they
//! transfer at once instead of waiting for their SOA refresh timer. A target
//! with a key gets its NOTIFY signed with it (RFC 8945), and only an answer
//! that verifies with that key acknowledges it.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, Record, RecordType, TSigner};
use tokio::net::UdpSocket;

use super::access;
use crate::config::NotifyTarget;

/// Tries per secondary and the wait for the first answer, doubled each try
/// (RFC 1996 §3.6 asks for retries with a bounded count).
const TRIES: u32 = 5;
const FIRST_WAIT: Duration = Duration::from_secs(1);

/// Sends a NOTIFY for `origin` (with its new SOA) to every target, each in its
/// own task, retried until acknowledged or `TRIES` is reached.
pub fn send_all(targets: &[NotifyTarget], origin: &Name, soa: &Record) {
    for target in targets {
        let address = target.address;
        let key = target.key.as_ref().map(|k| k.describe());
        let signer = match target.key.as_ref().map(access::signer).transpose() {
            Ok(signer) => signer,
            Err(error) => {
                metrics::counter!("ecs_dns_notify_total", "outcome" => "failed").increment(1);
                tracing::warn!(target = %address, key, %error, "NOTIFY not sent: the key cannot sign");
                continue;
            }
        };
        let origin = origin.clone();
        let soa = soa.clone();
        tokio::spawn(async move {
            let serial = super::journal::soa_serial(&soa);
            let sent = notify(address, signer.as_ref(), &origin, &soa, TRIES, FIRST_WAIT).await;
            match sent {
                Ok(tries) => {
                    metrics::counter!("ecs_dns_notify_total", "outcome" => "acknowledged")
                        .increment(1);
                    tracing::info!(target = %address, key, serial, tries, "NOTIFY acknowledged");
                }
                Err(error) => {
                    metrics::counter!("ecs_dns_notify_total", "outcome" => "failed").increment(1);
                    tracing::warn!(target = %address, key, serial, %error, "NOTIFY not acknowledged");
                }
            }
        });
    }
}

/// One NOTIFY exchange with up to `tries` tries, the first waiting
/// `first_wait` for an answer, signed with `signer` if given; returns how
/// many tries it took.
async fn notify(
    target: SocketAddr,
    signer: Option<&TSigner>,
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
    let unsigned = message(id, origin, soa)
        .to_vec()
        .map_err(|e| e.to_string())?;
    // A retry is the same message, signature included (RFC 8945 §5.1).
    let (bytes, signed) = match signer {
        Some(signer) => {
            let now = crate::zone::serial::unix_now();
            let (bytes, mac) = access::sign_request(signer, unsigned, now)?;
            (bytes, Some((signer, mac)))
        }
        None => (unsigned, None),
    };
    let mut wait = first_wait;
    let mut buf = [0u8; 4096];
    let mut unverified = None;
    for attempt in 1..=tries {
        socket
            .send_to(&bytes, target)
            .await
            .map_err(|e| e.to_string())?;
        let deadline = tokio::time::Instant::now() + wait;
        while let Ok(Ok((len, from))) =
            tokio::time::timeout_at(deadline, socket.recv_from(&mut buf)).await
        {
            if from != target {
                continue;
            }
            let signed = signed.as_ref().map(|(s, mac)| (*s, mac.as_slice()));
            match answer(&buf[..len], id, signed) {
                Answer::Acknowledged => return Ok(attempt),
                Answer::Rejected(why) => return Err(why),
                Answer::Unverified(why) => unverified = Some(why),
                Answer::NotOurs => {}
            }
        }
        wait *= 2;
    }
    Err(match unverified {
        Some(why) => format!("no answer that verifies after {tries} tries ({why})"),
        None => format!("no answer after {tries} tries"),
    })
}

fn message(id: u16, origin: &Name, soa: &Record) -> Message {
    let mut message = Message::new(id, MessageType::Query, OpCode::Notify);
    message.metadata.authoritative = true;
    message.add_query(Query::query(origin.clone(), RecordType::SOA));
    message.add_answer(soa.clone());
    message
}

/// What an answer to our NOTIFY says.
#[derive(Debug, PartialEq)]
enum Answer {
    /// Same ID, opcode NOTIFY, QR set, and when we signed, a TSIG that
    /// verifies. Any rcode ends the retries (a secondary that refuses will
    /// not change its mind).
    Acknowledged,
    /// An answer with a TSIG error (BADKEY, BADSIG, BADTIME): the secondary
    /// does not take our key; retrying will not help.
    Rejected(String),
    /// An answer to our signed NOTIFY that does not verify: not taken (it
    /// may be forged); the retries go on.
    Unverified(String),
    /// Not an answer to our NOTIFY.
    NotOurs,
}

/// Reads an answer to our NOTIFY with `id`; `signed` is the signer and
/// the MAC of our NOTIFY when it was signed.
fn answer(bytes: &[u8], id: u16, signed: Option<(&TSigner, &[u8])>) -> Answer {
    let Ok(m) = Message::from_vec(bytes) else {
        return Answer::NotOurs;
    };
    if m.metadata.id != id
        || m.metadata.message_type != MessageType::Response
        || m.metadata.op_code != OpCode::Notify
    {
        return Answer::NotOurs;
    }
    let Some((signer, mac)) = signed else {
        return Answer::Acknowledged;
    };
    match m.signature().map(|tsig| tsig.data.error) {
        None => Answer::Unverified("the answer is not signed".into()),
        Some(Some(error)) => Answer::Rejected(format!(
            "the secondary answered {:?} with TSIG error {error:?}",
            m.metadata.response_code
        )),
        Some(None) => match access::check_mac(signer, bytes, Some(mac)) {
            Ok(_) => Answer::Acknowledged,
            Err(why) => Answer::Unverified(why),
        },
    }
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
        let tries = notify(target, None, &origin, &soa(), 3, Duration::from_millis(200)).await;
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
            None,
            &origin,
            &soa(),
            2,
            Duration::from_millis(50),
        )
        .await;
        assert_eq!(result, Err("no answer after 2 tries".into()));
    }

    fn key(secret: &str) -> crate::config::TsigKey {
        crate::config::TsigKey::parse(&format!("xfr-key:hmac-sha256:{secret}")).unwrap()
    }

    const SECRET: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTAwMzI=";
    const OTHER: &str = "b3RoZXItc2VjcmV0LW90aGVyLXNlY3JldC0wMDAwMzI=";

    /// A secondary with the key `secret` that answers each NOTIFY as our
    /// own server answers a signed request (verified, then signed), or
    /// unsigned when `unsigned`; returns what it saw.
    fn secondary(
        socket: UdpSocket,
        secret: &'static str,
        unsigned: bool,
        answers: usize,
    ) -> tokio::task::JoinHandle<Vec<Message>> {
        let us = super::super::Transfers::new(crate::config::TransferConfig {
            keys: vec![key(secret)],
            ..Default::default()
        });
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            let mut seen = Vec::new();
            for _ in 0..answers {
                let (len, from) = socket.recv_from(&mut buf).await.unwrap();
                let request = &buf[..len];
                seen.push(Message::from_vec(request).unwrap());
                let reply_to = |query: &Message| {
                    let mut reply = query.clone().into_response();
                    reply.signature = None;
                    reply.to_vec().ok()
                };
                let reply = if unsigned {
                    reply_to(&seen[seen.len() - 1]).unwrap()
                } else {
                    let answered = us.respond_signed(request, 1232, |query, _| reply_to(query));
                    let super::super::Signed::Reply(reply) = answered else {
                        panic!("not a signed request: {answered:?}");
                    };
                    reply
                };
                socket.send_to(&reply, from).await.unwrap();
            }
            seen
        })
    }

    #[tokio::test]
    async fn a_notify_with_a_key_is_signed_and_needs_a_signed_answer() {
        let origin = Name::from_str("local.").unwrap();
        let ours = super::access::signer(&key(SECRET)).unwrap();
        let wait = Duration::from_millis(100);

        // The secondary has the key: one try, its signed answer verified.
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let target = socket.local_addr().unwrap();
        let peer = secondary(socket, SECRET, false, 1);
        let tries = notify(target, Some(&ours), &origin, &soa(), 3, wait).await;
        assert_eq!(tries, Ok(1));
        let seen = peer.await.unwrap();
        assert_eq!(seen[0].metadata.op_code, OpCode::Notify);
        let tsig = seen[0].signature().expect("the NOTIFY is signed");
        assert_eq!(tsig.name, key(SECRET).name);

        // Another secret: BADSIG, no retry.
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let target = socket.local_addr().unwrap();
        let peer = secondary(socket, OTHER, false, 1);
        let tries = notify(target, Some(&ours), &origin, &soa(), 3, wait).await;
        assert_eq!(
            tries,
            Err("the secondary answered NotAuth with TSIG error BadSig".into())
        );
        assert_eq!(peer.await.unwrap().len(), 1);

        // An unsigned answer is not taken: retried, then given up.
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let target = socket.local_addr().unwrap();
        let peer = secondary(socket, SECRET, true, 2);
        let tries = notify(target, Some(&ours), &origin, &soa(), 2, wait).await;
        assert_eq!(
            tries,
            Err("no answer that verifies after 2 tries (the answer is not signed)".into())
        );
        assert_eq!(peer.await.unwrap().len(), 2);
    }
}
