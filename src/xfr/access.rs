//! Who may transfer the zone (source prefixes, TSIG keys), and TSIG
//! (RFC 8945) on every signed request.
//!
//! Transfers are refused unless allowed. A request is allowed when its source
//! address is in `transfer_allow`, or when it is signed with a configured
//! TSIG key.
//!
//! Any signed request, a transfer or not, is verified (RFC 8945 §5.2): a key
//! is its name and its algorithm, so an unknown name or a known name with
//! another algorithm is BADKEY; a MAC that does not verify is BADSIG; a time
//! outside the request's fudge is BADTIME. Those get NOTAUTH with the TSIG
//! error, unsigned for BADKEY and BADSIG, signed for BADTIME (§5.3.2).
//! Every message of the answer to a request that verifies is signed (§5.3).

use std::net::IpAddr;

use hickory_proto::op::Message;
use hickory_proto::rr::rdata::tsig::{TSIG, TsigAlgorithm, TsigError, signed_bitmessage_to_buf};
use hickory_proto::rr::{Name, TSigner};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};
use ipnet::IpNet;

pub use crate::config::TsigKey;

/// The hickory signer of `key`.
pub(super) fn signer(key: &TsigKey) -> Result<TSigner, String> {
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

/// The TSIG record type (RFC 8945 §4.1).
const TSIG_TYPE: u16 = 250;

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
    /// A TSIG that does not verify: NOTAUTH, sealed by this.
    NotAuth(Rejection),
}

/// The TSIG of a request, checked.
pub enum Verified {
    /// The request carries no TSIG record.
    Unsigned,
    /// It verifies: sign every message of the answer with this.
    Valid(Signer),
    /// It does not: answer NOTAUTH, sealed by this.
    Invalid(Rejection),
}

/// The TSIG error of a request whose signature does not verify, and how to
/// put the TSIG record on the NOTAUTH answer.
pub struct Rejection {
    pub error: TsigError,
    seal: Seal,
}

enum Seal {
    /// BADKEY and BADSIG: a TSIG record with an empty MAC, naming the
    /// request's key and algorithm (RFC 8945 §5.3.2: the answer is unsigned,
    /// we cannot or must not use the key).
    Unsigned {
        key: Name,
        algorithm: TsigAlgorithm,
        time: u64,
        id: u16,
    },
    /// BADTIME: signed with the key, over the request's MAC, with the
    /// request's Time Signed and our time in Other Data (RFC 8945 §5.2.3),
    /// so that the client can tell its clock is off.
    Signed { signer: Signer, request_time: u64 },
}

impl Rejection {
    /// The NOTAUTH answer `response` (encoded, with no TSIG record yet) with
    /// its TSIG record appended.
    pub fn seal(self, mut response: Vec<u8>) -> Result<Vec<u8>, String> {
        match self.seal {
            Seal::Unsigned {
                key,
                algorithm,
                time,
                id,
            } => {
                let tsig = TSIG::new(
                    algorithm,
                    time,
                    FUDGE,
                    Vec::new(),
                    id,
                    Some(self.error),
                    Vec::new(),
                );
                append_tsig(&mut response, &key, &tsig)?;
                Ok(response)
            }
            Seal::Signed {
                signer,
                request_time,
            } => signer.sign_error(response, self.error, request_time),
        }
    }
}

impl Access {
    pub fn is_enabled(&self) -> bool {
        !self.allow.is_empty() || !self.keys.is_empty()
    }

    /// Checks a transfer request (`bytes` as received, `message` parsed from
    /// them) from `peer` at `now` (Unix seconds).
    pub fn check(&self, bytes: &[u8], message: &Message, peer: IpAddr, now: u64) -> Decision {
        match self.verify(bytes, message, now) {
            Verified::Unsigned if self.allow.iter().any(|net| net.contains(&peer)) => {
                Decision::Allowed(None)
            }
            Verified::Unsigned => Decision::Refused,
            Verified::Valid(signer) => Decision::Allowed(Some(signer)),
            Verified::Invalid(rejection) => Decision::NotAuth(rejection),
        }
    }

    /// Verifies the TSIG of a request (`bytes` as received, `message` parsed
    /// from them) at `now` (Unix seconds), in the order of RFC 8945 §5.2:
    /// key, MAC, time.
    pub fn verify(&self, bytes: &[u8], message: &Message, now: u64) -> Verified {
        let Some(tsig) = message.signature() else {
            return Verified::Unsigned;
        };
        let request = &tsig.data;
        let unsigned = |error| {
            Verified::Invalid(Rejection {
                error,
                seal: Seal::Unsigned {
                    key: tsig.name.clone(),
                    algorithm: request.algorithm.clone(),
                    time: now,
                    id: request.oid,
                },
            })
        };
        let name = tsig.name.to_lowercase();
        let Some(key) = self
            .keys
            .iter()
            .find(|k| k.name == name && k.algorithm == request.algorithm)
        else {
            return unsigned(TsigError::BadKey);
        };
        let Ok(signer) = signer(key) else {
            return unsigned(TsigError::BadKey);
        };
        if check_mac(&signer, bytes, None).is_err() {
            return unsigned(TsigError::BadSig);
        }
        let signing = Signer::new(signer, request.oid, request.mac.clone(), now);
        if now.abs_diff(request.time) > u64::from(request.fudge) {
            return Verified::Invalid(Rejection {
                error: TsigError::BadTime,
                seal: Seal::Signed {
                    signer: signing,
                    request_time: request.time,
                },
            });
        }
        Verified::Valid(signing)
    }
}

/// Checks the MAC of the signed message `bytes` with `signer` (chained to
/// `previous`, the request's MAC, when `bytes` is a response), and returns
/// its TSIG record's data. Truncated MACs are not accepted. Does not look at
/// the time (the caller does, without overflow).
pub(super) fn check_mac(
    signer: &TSigner,
    bytes: &[u8],
    previous: Option<&[u8]>,
) -> Result<TSIG, String> {
    let (tbv, record) =
        signed_bitmessage_to_buf(bytes, previous, true).map_err(|e| e.to_string())?;
    let tsig = record.data;
    if record.name.to_lowercase() != signer.signer_name().to_lowercase()
        || tsig.algorithm != *signer.algorithm()
    {
        return Err("another key".into());
    }
    if Some(tsig.mac.len()) != mac_len(&tsig.algorithm) {
        return Err("truncated or overlong MAC".into());
    }
    signer
        .verify(&tbv, &tsig.mac)
        .map_err(|_| "the MAC does not verify".to_string())?;
    Ok(tsig)
}

/// Length of a whole MAC of `algorithm`.
fn mac_len(algorithm: &TsigAlgorithm) -> Option<usize> {
    match algorithm {
        TsigAlgorithm::HmacSha256 => Some(32),
        TsigAlgorithm::HmacSha384 => Some(48),
        TsigAlgorithm::HmacSha512 => Some(64),
        _ => None,
    }
}

/// Whether the message `bytes` is TSIG-signed: its last record is a TSIG
/// record (RFC 8945 §5.1 puts it last in the additional section). Read from
/// the wire without parsing or allocating; `false` for what does not walk.
pub fn is_signed(bytes: &[u8]) -> bool {
    bytes.get(10..12).is_some_and(|ar| ar != [0, 0]) && last_record_type(bytes) == Some(TSIG_TYPE)
}

fn last_record_type(bytes: &[u8]) -> Option<u16> {
    let count = |at: usize| {
        bytes
            .get(at..at + 2)
            .map(|c| usize::from(u16::from_be_bytes([c[0], c[1]])))
    };
    let (questions, records) = (count(4)?, count(6)? + count(8)? + count(10)?);
    let mut at = 12;
    for _ in 0..questions {
        at = skip_name(bytes, at)? + 4;
    }
    let mut rtype = None;
    for _ in 0..records {
        at = skip_name(bytes, at)?;
        let fixed = bytes.get(at..at + 10)?;
        rtype = Some(u16::from_be_bytes([fixed[0], fixed[1]]));
        at += 10 + usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
    }
    (at <= bytes.len()).then_some(rtype).flatten()
}

/// Where the name at `at` ends (after its last label or its pointer).
fn skip_name(bytes: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let label = *bytes.get(at)?;
        match label {
            0 => return Some(at + 1),
            l if l & 0xc0 == 0xc0 => return bytes.get(at + 1).map(|_| at + 2),
            l if l <= 63 => at += usize::from(l) + 1,
            _ => return None,
        }
    }
}

/// Appends the TSIG record of `key` with `tsig` to the encoded message
/// `bytes`, names uncompressed and in lower case (as they are digested,
/// RFC 8945 §4.3.3), and counts it in ARCOUNT.
fn append_tsig(bytes: &mut Vec<u8>, key: &Name, tsig: &TSIG) -> Result<(), String> {
    let additional = bytes
        .get(10..12)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .and_then(|n| n.checked_add(1))
        .ok_or("no header, or a full additional section")?;
    let mut record = Vec::with_capacity(64 + tsig.mac.len());
    let mut encoder = BinEncoder::new(&mut record);
    key.emit(&mut encoder.with_name_encoding(NameEncoding::UncompressedLowercase))
        .map_err(|e| e.to_string())?;
    encoder.emit_u16(TSIG_TYPE).map_err(|e| e.to_string())?;
    encoder.emit_u16(255).map_err(|e| e.to_string())?; // class ANY
    encoder.emit_u32(0).map_err(|e| e.to_string())?; // TTL
    let rdata = tsig.to_bytes().map_err(|e| e.to_string())?;
    let rdlength = u16::try_from(rdata.len()).map_err(|_| "TSIG RDATA too long")?;
    encoder.emit_u16(rdlength).map_err(|e| e.to_string())?;
    encoder.emit_vec(&rdata).map_err(|e| e.to_string())?;
    bytes.extend_from_slice(&record);
    bytes[10..12].copy_from_slice(&additional.to_be_bytes());
    Ok(())
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

    /// Bytes the TSIG record adds to a message: room to leave when fitting
    /// an answer to a UDP size.
    pub fn overhead(&self) -> usize {
        let name_len = |name: &Name| name.to_bytes().map_or(255, |b| b.len());
        let mac = mac_len(self.signer.algorithm()).unwrap_or(64);
        // owner, type, class, TTL, RDLENGTH; algorithm, time, fudge, MAC
        // size, MAC, original ID, error, other length.
        name_len(self.signer.signer_name())
            + 10
            + name_len(&self.signer.algorithm().to_name())
            + 6
            + 2
            + 2
            + mac
            + 6
    }

    /// Signs `message` (which must carry no signature) and returns it
    /// encoded with its TSIG record.
    pub fn sign(&mut self, message: &Message) -> Result<Vec<u8>, String> {
        let bytes = message.to_vec().map_err(|e| e.to_string())?;
        self.sign_bytes(bytes)
    }

    /// Signs the encoded message `bytes` (with no TSIG record) and returns
    /// it with its TSIG record appended.
    pub fn sign_bytes(&mut self, mut bytes: Vec<u8>) -> Result<Vec<u8>, String> {
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
                .encode_response_tbs(&self.previous_mac, &bytes, &stub)
                .map_err(|e| e.to_string())?
        } else {
            timers_only_tbs(&self.previous_mac, &bytes, self.time, self.signer.fudge())?
        };
        let mac = self.signer.sign(&tbs).map_err(|e| e.to_string())?;
        self.previous_mac = mac.clone();
        self.first = false;
        append_tsig(&mut bytes, self.signer.signer_name(), &stub.set_mac(mac))?;
        Ok(bytes)
    }

    /// Signs the error answer `bytes` with TSIG error `error`; for BADTIME
    /// with the request's time and ours in Other Data (RFC 8945 §5.2.3).
    fn sign_error(
        self,
        mut bytes: Vec<u8>,
        error: TsigError,
        request_time: u64,
    ) -> Result<Vec<u8>, String> {
        let (time, other) = match error {
            TsigError::BadTime => (request_time, self.time.to_be_bytes()[2..8].to_vec()),
            _ => (self.time, Vec::new()),
        };
        let stub = TSIG::new(
            self.signer.algorithm().clone(),
            time,
            self.signer.fudge(),
            Vec::new(),
            self.id,
            Some(error),
            other,
        );
        let tbs = self
            .signer
            .encode_response_tbs(&self.previous_mac, &bytes, &stub)
            .map_err(|e| e.to_string())?;
        let mac = self.signer.sign(&tbs).map_err(|e| e.to_string())?;
        append_tsig(&mut bytes, self.signer.signer_name(), &stub.set_mac(mac))?;
        Ok(bytes)
    }
}

/// Signs the request `bytes` (encoded, with no TSIG record) with `signer`
/// at `time` (RFC 8945 §4.3: the message, then the TSIG variables), and
/// returns it with its TSIG record, and its MAC (to verify the answer).
pub fn sign_request(
    signer: &TSigner,
    mut bytes: Vec<u8>,
    time: u64,
) -> Result<(Vec<u8>, Vec<u8>), String> {
    let id = bytes
        .get(..2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
        .ok_or("no header")?;
    let stub = TSIG::new(
        signer.algorithm().clone(),
        time,
        signer.fudge(),
        Vec::new(),
        id,
        None,
        Vec::new(),
    );
    let mut tbs = Vec::with_capacity(bytes.len() + 64);
    let mut encoder = BinEncoder::new(&mut tbs);
    encoder.emit_vec(&bytes).map_err(|e| e.to_string())?;
    stub.emit_tsig_for_mac(&mut encoder, signer.signer_name())
        .map_err(|e| e.to_string())?;
    let mac = signer.sign(&tbs).map_err(|e| e.to_string())?;
    append_tsig(&mut bytes, signer.signer_name(), &stub.set_mac(mac.clone()))?;
    Ok((bytes, mac))
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
        let key =
            TsigKey::parse("xfr-key:hmac-sha256:c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTAwMzI=")
                .unwrap();
        let other =
            TsigKey::parse("xfr-key:hmac-sha256:b3RoZXItc2VjcmV0LW90aGVyLXNlY3JldC0wMDAwMzI=")
                .unwrap();
        let stranger =
            TsigKey::parse("stranger:hmac-sha256:c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTAwMzI=")
                .unwrap();
        // RFC 8945 §5.2.1: a key is its name and its algorithm.
        let other_algorithm =
            TsigKey::parse("xfr-key:hmac-sha512:c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTAwMzI=")
                .unwrap();
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
            (
                "known name, another algorithm",
                &other_algorithm,
                now,
                "BadKey",
            ),
            ("unknown key", &stranger, now, "BadKey"),
        ];
        for (what, signing, at, want) in table {
            let (bytes, message) = signed_request(signing, *at);
            let got = match access.check(&bytes, &message, peer, now) {
                Decision::Allowed(Some(_)) => "allowed".to_string(),
                Decision::Allowed(None) => "allowed unsigned".to_string(),
                Decision::Refused => "refused".to_string(),
                Decision::NotAuth(rejection) => format!("{:?}", rejection.error),
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
