//! Who may transfer the zone: source prefixes, and TSIG keys (RFC 8945).
//!
//! Transfers are refused unless allowed. A request is allowed when its source
//! address is in `transfer_allow`, or when it is signed with a configured
//! TSIG key. A signed request whose signature does not verify is answered
//! NOTAUTH with the TSIG error (BADKEY, BADSIG, BADTIME), whatever its
//! address; every message of the answer to a signed request is signed.

use std::net::IpAddr;
use std::ops::Range;

use hickory_proto::op::Message;
use hickory_proto::rr::rdata::tsig::{TSIG, TsigAlgorithm, TsigError, make_tsig_record};
use hickory_proto::rr::{Name, Record, TSigner};
use ipnet::IpNet;

pub use crate::config::TsigKey;

/// The hickory signer of `key`.
fn signer(key: &TsigKey) -> Result<TSigner, String> {
    TSigner::new(
        key.secret().to_vec(),
        key.algorithm.clone(),
        key.name.clone(),
        FUDGE,
    )
    .map_err(|e| e.to_string())
}

/// Allowed clock difference, in seconds (RFC 8945 §10 recommends 300).
const FUDGE: u16 = 300;

/// The access rules for transfers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Access {
    pub allow: Vec<IpNet>,
    pub keys: Vec<TsigKey>,
}

/// What a transfer request may get.
pub enum Decision {
    /// Answer it; sign every message with this when the request was signed.
    Allowed(Option<Signer>),
    /// Not allowed: REFUSED (RFC 5936 §6).
    Refused,
    /// A bad signature: NOTAUTH, with this TSIG record (unsigned for BADKEY
    /// and BADSIG, signed for BADTIME).
    NotAuth {
        error: TsigError,
        tsig: Box<Record<TSIG>>,
    },
}

impl Access {
    pub fn is_enabled(&self) -> bool {
        !self.allow.is_empty() || !self.keys.is_empty()
    }

    /// Checks a transfer request (`bytes` as received, `message` parsed from
    /// them) from `peer` at `now` (Unix seconds).
    pub fn check(&self, bytes: &[u8], message: &Message, peer: IpAddr, now: u64) -> Decision {
        let Some(tsig) = &message.signature else {
            return if self.allow.iter().any(|net| net.contains(&peer)) {
                Decision::Allowed(None)
            } else {
                Decision::Refused
            };
        };
        let id = message.metadata.id;
        let Some(key) = self
            .keys
            .iter()
            .find(|k| k.name == tsig.name.to_lowercase())
        else {
            return not_auth(TsigError::BadKey, || {
                bare_tsig(
                    tsig.name.clone(),
                    TsigAlgorithm::HmacSha256,
                    now,
                    id,
                    TsigError::BadKey,
                )
            });
        };
        let Ok(signer) = signer(key) else {
            return Decision::Refused;
        };
        match signer.verify_message_byte(bytes, None, true) {
            Err(_) => not_auth(TsigError::BadSig, || {
                bare_tsig(
                    key.name.clone(),
                    key.algorithm.clone(),
                    now,
                    id,
                    TsigError::BadSig,
                )
            }),
            Ok((mac, _time, window)) => {
                if !in_window(&window, now) {
                    // BADTIME: signed, with our time (RFC 8945 §5.2.3).
                    let signing = Signer::new(signer, id, mac, now);
                    return match signing.error_tsig(TsigError::BadTime) {
                        Some(tsig) => Decision::NotAuth {
                            error: TsigError::BadTime,
                            tsig,
                        },
                        None => Decision::Refused,
                    };
                }
                Decision::Allowed(Some(Signer::new(signer, id, mac, now)))
            }
        }
    }
}

fn in_window(window: &Range<u64>, now: u64) -> bool {
    window.start <= now && now <= window.end
}

fn not_auth(error: TsigError, tsig: impl FnOnce() -> Box<Record<TSIG>>) -> Decision {
    Decision::NotAuth {
        error,
        tsig: tsig(),
    }
}

fn bare_tsig(
    name: Name,
    algorithm: TsigAlgorithm,
    now: u64,
    id: u16,
    error: TsigError,
) -> Box<Record<TSIG>> {
    Box::new(make_tsig_record(
        name,
        TSIG::new(
            algorithm,
            now,
            FUDGE,
            Vec::new(),
            id,
            Some(error),
            Vec::new(),
        ),
    ))
}

/// Signs the messages of one response, each chained to the one before
/// (RFC 8945 §5.3.1): the first over the request's MAC, the message and all
/// TSIG variables; each next one over the previous MAC, the message and the
/// timers only.
pub struct Signer {
    signer: TSigner,
    id: u16,
    previous_mac: Vec<u8>,
    time: u64,
    first: bool,
}

impl Signer {
    fn new(signer: TSigner, id: u16, request_mac: Vec<u8>, time: u64) -> Signer {
        Signer {
            signer,
            id,
            previous_mac: request_mac,
            time,
            first: true,
        }
    }

    /// Signs `message` (which must carry no signature yet) and returns it
    /// encoded with its TSIG record.
    pub fn sign(&mut self, message: &mut Message) -> Result<Vec<u8>, String> {
        let unsigned = message.to_vec().map_err(|e| e.to_string())?;
        let stub = TSIG::new(
            self.signer.algorithm().clone(),
            self.time,
            self.signer.fudge(),
            Vec::new(),
            self.id,
            None,
            Vec::new(),
        );
        let tbs = if self.first {
            self.signer
                .encode_response_tbs(&self.previous_mac, &unsigned, &stub)
                .map_err(|e| e.to_string())?
        } else {
            timers_only_tbs(
                &self.previous_mac,
                &unsigned,
                self.time,
                self.signer.fudge(),
            )?
        };
        let mac = self.signer.sign(&tbs).map_err(|e| e.to_string())?;
        self.previous_mac = mac.clone();
        self.first = false;
        message.set_signature(Box::new(make_tsig_record(
            self.signer.signer_name().clone(),
            stub.set_mac(mac),
        )));
        message.to_vec().map_err(|e| e.to_string())
    }

    fn error_tsig(&self, error: TsigError) -> Option<Box<Record<TSIG>>> {
        let mut stub = TSIG::new(
            self.signer.algorithm().clone(),
            self.time,
            self.signer.fudge(),
            Vec::new(),
            self.id,
            Some(error),
            Vec::new(),
        );
        // An error response has no body of its own to cover here; the MAC
        // binds the request MAC and the TSIG variables.
        let tbs = self
            .signer
            .encode_response_tbs(&self.previous_mac, &[], &stub)
            .ok()?;
        let mac = self.signer.sign(&tbs).ok()?;
        stub = stub.set_mac(mac);
        Some(Box::new(make_tsig_record(
            self.signer.signer_name().clone(),
            stub,
        )))
    }
}

/// RFC 8945 §5.3.1: previous MAC (length-prefixed), the message, then Time
/// Signed (48 bits) and Fudge.
fn timers_only_tbs(
    previous_mac: &[u8],
    message: &[u8],
    time: u64,
    fudge: u16,
) -> Result<Vec<u8>, String> {
    let mac_len = u16::try_from(previous_mac.len()).map_err(|_| "MAC too long".to_string())?;
    let mut tbs = Vec::with_capacity(2 + previous_mac.len() + message.len() + 8);
    tbs.extend_from_slice(&mac_len.to_be_bytes());
    tbs.extend_from_slice(previous_mac);
    tbs.extend_from_slice(message);
    tbs.extend_from_slice(&time.to_be_bytes()[2..8]);
    tbs.extend_from_slice(&fudge.to_be_bytes());
    Ok(tbs)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A transfer request signed with `key` at `time`, as received.
    fn signed_request(key: &TsigKey, time: u64) -> (Vec<u8>, Message) {
        use hickory_proto::op::Query;
        use hickory_proto::rr::RecordType;
        let mut message = Message::query();
        message.metadata.id = 9;
        message.add_query(Query::query(
            Name::from_ascii("local.").unwrap(),
            RecordType::AXFR,
        ));
        let (tsig, _) = signer(key).unwrap().sign_message(&message, time).unwrap();
        message.set_signature(tsig);
        let bytes = message.to_vec().unwrap();
        let parsed = Message::from_vec(&bytes).unwrap();
        (bytes, parsed)
    }

    #[test]
    fn signed_requests_are_checked_key_mac_and_time() {
        let key = TsigKey::parse("xfr-key:hmac-sha256:c2VjcmV0LXNlY3JldA==").unwrap();
        let other = TsigKey::parse("xfr-key:hmac-sha256:b3RoZXItc2VjcmV0").unwrap();
        let stranger = TsigKey::parse("stranger:hmac-sha256:c2VjcmV0LXNlY3JldA==").unwrap();
        let access = Access {
            allow: vec![],
            keys: vec![key.clone()],
        };
        let peer: IpAddr = "192.0.2.1".parse().unwrap();
        let now = 1_800_000_000;
        // (what, signing key, signed at, expected outcome)
        let table: &[(&str, &TsigKey, u64, &str)] = &[
            ("good key, in time", &key, now, "allowed"),
            ("good key, within the fudge", &key, now - 299, "allowed"),
            ("good key, stale", &key, now - 1000, "BadTime"),
            ("good key, from the future", &key, now + 1000, "BadTime"),
            ("wrong secret", &other, now, "BadSig"),
            ("unknown key", &stranger, now, "BadKey"),
        ];
        for (what, signing, at, want) in table {
            let (bytes, message) = signed_request(signing, *at);
            let got = match access.check(&bytes, &message, peer, now) {
                Decision::Allowed(Some(_)) => "allowed".to_string(),
                Decision::Allowed(None) => "allowed unsigned".to_string(),
                Decision::Refused => "refused".to_string(),
                Decision::NotAuth { error, .. } => format!("{error:?}"),
            };
            assert_eq!(&got, want, "{what}");
        }
    }

    #[test]
    fn unsigned_requests_need_an_allowed_address() {
        let access = Access {
            allow: vec![crate::config::parse_prefix("127.0.0.2").unwrap()],
            keys: vec![],
        };
        let message = Message::query();
        let bytes = message.to_vec().unwrap();
        assert!(matches!(
            access.check(&bytes, &message, "127.0.0.2".parse().unwrap(), 0),
            Decision::Allowed(None)
        ));
        assert!(matches!(
            access.check(&bytes, &message, "127.0.0.1".parse().unwrap(), 0),
            Decision::Refused
        ));
        assert!(matches!(
            Access::default().check(&bytes, &message, "127.0.0.2".parse().unwrap(), 0),
            Decision::Refused
        ));
    }
}
