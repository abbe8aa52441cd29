//! The query corpus of the conformance suite: exact query packets built from
//! a zone's master file, so that every server under test gets the same bytes.
//!
//! It covers what an authoritative server must get right (see the list in
//! [`build`]): every owner name with the common types, names that do not
//! exist, empty non-terminals, names outside the zone, other classes and
//! opcodes, malformed question counts, EDNS versions, the DO bit and buffer
//! sizes against RRsets large enough to be truncated.

use std::collections::BTreeMap;

use hickory_proto::op::{Edns, Message, OpCode, Query};
use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
use hickory_proto::rr::{DNSClass, Name, RecordType, TSigner};

/// One query of the corpus.
pub struct Case {
    /// What the query is, for reports: `name TYPE CLASS [options]`.
    pub label: String,
    /// The query as built; its ID is unique in the corpus.
    pub query: Message,
    /// The exact bytes sent (usually `query` encoded, sometimes patched).
    pub bytes: Vec<u8>,
    /// Malformed: sent on a TCP connection of its own, since a server may
    /// close the connection after it (Knot does), losing the queries behind.
    pub malformed: bool,
}

impl Case {
    pub fn id(&self) -> u16 {
        self.query.metadata.id
    }

    /// The type of the first question, if there is one.
    pub fn qtype(&self) -> Option<RecordType> {
        self.query.queries.first().map(|q| q.query_type())
    }
}

/// The common types every owner name is asked for.
pub const TYPES: [RecordType; 9] = [
    RecordType::A,
    RecordType::AAAA,
    RecordType::SRV,
    RecordType::TXT,
    RecordType::MX,
    RecordType::NS,
    RecordType::SOA,
    RecordType::CNAME,
    RecordType::ANY,
];

/// Owner names of a master file (as `ecs-dns records` writes it: one record
/// a line, owner first), each with its number of records.
pub fn owners(master: &str) -> BTreeMap<Name, usize> {
    let mut owners = BTreeMap::new();
    for line in master.lines() {
        if line.starts_with(';') || line.starts_with('$') || line.trim().is_empty() {
            continue;
        }
        let owner = line.split_whitespace().next().unwrap_or_default();
        let name = Name::from_ascii(owner).expect("owner name").to_lowercase();
        *owners.entry(name).or_insert(0) += 1;
    }
    owners
}

/// Names between an owner and the origin that own nothing themselves.
pub fn empty_non_terminals(origin: &Name, owners: &BTreeMap<Name, usize>) -> Vec<Name> {
    let mut ents: Vec<Name> = Vec::new();
    for owner in owners.keys() {
        let mut name = owner.base_name();
        while name.num_labels() > origin.num_labels() {
            if !owners.contains_key(&name) && !ents.contains(&name) {
                ents.push(name.clone());
            }
            name = name.base_name();
        }
    }
    ents.sort();
    ents
}

/// The corpus for the zone `origin` whose master file is `master`:
/// 1. every owner name and empty non-terminal × [`TYPES`], without EDNS;
/// 2. the same names with mixed case (A, SRV), and under EDNS (A, SRV, ANY);
/// 3. names that do not exist, under existing names and beside them;
/// 4. names outside the zone, the root, odd but valid names;
/// 5. classes CH, HS and ANY (including `version.bind`-style queries);
/// 6. opcodes other than QUERY (IQUERY, STATUS, NOTIFY, UPDATE, unassigned);
/// 7. question count 0 and 2; a packet with QR set; packets cut short;
/// 8. EDNS version 1, the DO bit, and buffer sizes 0/512/1232/4096/65535
///    for the names with the largest RRsets, A/AAAA/SRV/ANY;
/// 9. other types (PTR, CAA, DS, DNSKEY, HTTPS, AXFR, IXFR, a private one);
/// 10. protocol edges: meta types as questions, refused transfers with RD
///     and EDNS, malformed COOKIE options, requests signed with an unknown
///     key.
pub fn build(origin: &Name, master: &str) -> Vec<Case> {
    let owners = owners(master);
    let ents = empty_non_terminals(origin, &owners);
    let names: Vec<Name> = owners.keys().chain(&ents).cloned().collect();
    let mut c = Corpus::default();

    // 1. Every name × the common types; RD set on every other query (it
    // must be copied).
    for name in &names {
        for qtype in TYPES {
            let mut q = question(name, qtype, DNSClass::IN);
            q.metadata.recursion_desired = c.cases.len() % 2 == 0;
            c.push(format!("{name} {qtype}"), q);
        }
    }
    // 2. Mixed case: the question is echoed as asked, the records match
    // case-insensitively (RFC 4343).
    for name in &names {
        let mixed = mix_case(name);
        for qtype in [RecordType::A, RecordType::SRV] {
            c.push(
                format!("{mixed} {qtype}"),
                question(&mixed, qtype, DNSClass::IN),
            );
        }
        for qtype in [RecordType::A, RecordType::SRV, RecordType::ANY] {
            let q = with_edns(question(name, qtype, DNSClass::IN), 1232, 0, false);
            c.push(format!("{name} {qtype} +edns"), q);
        }
    }
    // 3. Names that do not exist: below every owner, deeper below some, and
    // beside the apex.
    for (i, name) in owners.keys().enumerate() {
        let below = child(name, "nx");
        c.push(
            format!("{below} A"),
            question(&below, RecordType::A, DNSClass::IN),
        );
        if i % 4 == 0 {
            let deeper = child(&child(name, "b"), "a");
            c.push(
                format!("{deeper} AAAA"),
                question(&deeper, RecordType::AAAA, DNSClass::IN),
            );
        }
    }
    for label in ["*", "nope", "_tcp", "_http._tcp", "xn--bcher-kva"] {
        let name = Name::from_ascii(format!("{label}.{origin}")).expect("name");
        c.push(
            format!("{name} A"),
            question(&name, RecordType::A, DNSClass::IN),
        );
    }
    // 4. Outside the zone (an authoritative server is no resolver), and valid
    // names with unusual bytes.
    let origin_text = origin.to_ascii();
    let outside = [
        ".".to_owned(),
        "com.".to_owned(),
        "example.com.".to_owned(),
        format!("x{origin_text}"),
        format!("{origin_text}example."),
        format!("a.{origin_text}example."),
    ];
    for text in &outside {
        let name = Name::from_ascii(text).expect("name");
        for qtype in [RecordType::A, RecordType::NS, RecordType::SOA] {
            c.push(
                format!("{name} {qtype}"),
                question(&name, qtype, DNSClass::IN),
            );
        }
    }
    let long_label = "a".repeat(63);
    let odd = [
        format!("{long_label}.{origin_text}"),
        format!("{long_label}.{long_label}.{long_label}.{origin_text}"),
        format!("a\\.b.{origin_text}"),
    ];
    for text in &odd {
        let name = Name::from_ascii(text).expect("name");
        c.push(
            format!("{name} A"),
            question(&name, RecordType::A, DNSClass::IN),
        );
    }
    // 5. Other classes: CH (server identity queries, which both refuse) and
    // HS, and the query class ANY (RFC 1035 §3.2.5).
    for (text, qtype) in [
        ("version.bind.", RecordType::TXT),
        ("hostname.bind.", RecordType::TXT),
        ("id.server.", RecordType::TXT),
        ("version.server.", RecordType::TXT),
        ("authors.bind.", RecordType::TXT),
    ] {
        let name = Name::from_ascii(text).expect("name");
        c.push(
            format!("{name} {qtype} CH"),
            question(&name, qtype, DNSClass::CH),
        );
    }
    for (i, name) in names.iter().enumerate() {
        if i % 3 != 0 {
            continue;
        }
        for class in [DNSClass::CH, DNSClass::HS, DNSClass::ANY] {
            c.push(
                format!("{name} A {class}"),
                question(name, RecordType::A, class),
            );
        }
    }
    c.push(
        format!("{origin} SOA ANY"),
        question(origin, RecordType::SOA, DNSClass::ANY),
    );
    // 6. Opcodes other than QUERY.
    for (op, label) in [
        (OpCode::Unknown(1), "IQUERY"),
        (OpCode::Status, "STATUS"),
        (OpCode::Notify, "NOTIFY"),
        (OpCode::Update, "UPDATE"),
        (OpCode::Unknown(3), "opcode 3"),
        (OpCode::Unknown(6), "DSO"),
        (OpCode::Unknown(15), "opcode 15"),
    ] {
        let mut q = question(origin, RecordType::SOA, DNSClass::IN);
        q.metadata.op_code = op;
        c.push(format!("{origin} SOA {label}"), q.clone());
        c.push(
            format!("{origin} SOA {label} +edns"),
            with_edns(q, 1232, 0, false),
        );
    }
    // 7. Question counts other than one, a response sent as a query, and
    // packets cut short.
    c.push_malformed("no question".to_owned(), Message::query(), |_| {});
    c.push_malformed(
        "no question +edns".to_owned(),
        with_edns(Message::query(), 1232, 0, false),
        |_| {},
    );
    let mut two = question(origin, RecordType::SOA, DNSClass::IN);
    two.add_query(Query::query(origin.clone(), RecordType::NS));
    c.push_malformed("two questions".to_owned(), two.clone(), |_| {});
    c.push_malformed(
        "two questions +edns=1".to_owned(),
        with_edns(two.clone(), 1232, 1, false),
        |_| {},
    );
    two.metadata.op_code = OpCode::Notify;
    c.push_malformed("two questions NOTIFY".to_owned(), two, |_| {});
    let mut qr = question(origin, RecordType::SOA, DNSClass::IN);
    qr.metadata.message_type = hickory_proto::op::MessageType::Response;
    c.push_malformed("QR set (a response)".to_owned(), qr, |_| {});
    let whole = question(origin, RecordType::SOA, DNSClass::IN);
    for cut in [2, 11, 13, 17] {
        c.push_malformed(
            format!("{origin} SOA cut to {cut} bytes"),
            whole.clone(),
            |bytes| bytes.truncate(cut),
        );
    }
    // 8. EDNS: version 1 (BADVERS, RFC 6891 §6.1.3), DO (RFC 3225), and
    // buffer sizes against the largest RRsets.
    for (i, name) in names.iter().enumerate() {
        if i % 2 == 0 {
            let q = with_edns(question(name, RecordType::A, DNSClass::IN), 1232, 1, false);
            c.push(format!("{name} A +edns=1"), q);
        }
        if i % 2 == 1 {
            let q = with_edns(question(name, RecordType::A, DNSClass::IN), 1232, 0, true);
            c.push(format!("{name} A +dnssec"), q);
        }
    }
    let q = with_edns(
        question(origin, RecordType::SOA, DNSClass::IN),
        4096,
        1,
        true,
    );
    c.push(format!("{origin} SOA +edns=1 +dnssec"), q);
    let mut large: Vec<(&Name, &usize)> = owners.iter().collect();
    large.sort_by_key(|(name, count)| (std::cmp::Reverse(**count), (*name).clone()));
    for (name, _) in large.into_iter().take(12) {
        for qtype in [
            RecordType::A,
            RecordType::AAAA,
            RecordType::SRV,
            RecordType::ANY,
        ] {
            for size in [0u16, 512, 1232, 4096, 65535] {
                let q = with_edns(question(name, qtype, DNSClass::IN), 512, 0, false);
                c.push_with(format!("{name} {qtype} +bufsize={size}"), q, |bytes| {
                    set_opt_payload(bytes, size)
                });
            }
        }
    }
    // 9. Types the zone never has, meta types, zone transfers.
    let first = owners.keys().nth(1).unwrap_or(origin).clone();
    for name in [origin.clone(), first] {
        for qtype in [
            RecordType::PTR,
            RecordType::CAA,
            RecordType::DS,
            RecordType::DNSKEY,
            RecordType::RRSIG,
            RecordType::NSEC,
            RecordType::HTTPS,
            RecordType::NULL,
            RecordType::Unknown(65280),
            RecordType::AXFR,
            RecordType::IXFR,
        ] {
            c.push(
                format!("{name} {qtype}"),
                question(&name, qtype, DNSClass::IN),
            );
        }
    }
    // 10. Protocol edges: meta types asked as a question (OPT, TSIG, TKEY);
    // zone transfers refused with RD set and EDNS (the error copies RD and
    // answers OPT); COOKIE options of a length no cookie has (RFC 7873
    // §4: 8, or 16 to 40 bytes) and of a valid one; requests signed with a
    // key the server does not have (RFC 8945 §5.2.1: NOTAUTH, BADKEY).
    for qtype in [RecordType::OPT, RecordType::TSIG, RecordType::Unknown(249)] {
        let mut q = question(origin, qtype, DNSClass::IN);
        q.metadata.recursion_desired = true;
        c.push(format!("{origin} {qtype} +rec"), q.clone());
        c.push(
            format!("{origin} {qtype} +rec +edns"),
            with_edns(q, 1232, 0, false),
        );
    }
    for qtype in [RecordType::AXFR, RecordType::IXFR] {
        let mut q = question(origin, qtype, DNSClass::IN);
        q.metadata.recursion_desired = true;
        c.push(format!("{origin} {qtype} +rec"), q.clone());
        c.push(
            format!("{origin} {qtype} +rec +edns"),
            with_edns(q, 1232, 0, true),
        );
    }
    let apex_soa = question(origin, RecordType::SOA, DNSClass::IN);
    for len in [3usize, 8, 24, 41] {
        let q = with_edns(apex_soa.clone(), 1232, 0, false);
        c.push_with(format!("{origin} SOA +cookie of {len} bytes"), q, |bytes| {
            add_opt_option(bytes, 10, &vec![0xab; len])
        });
    }
    for qtype in [RecordType::SOA, RecordType::AXFR] {
        for edns in [false, true] {
            let mut q = question(origin, qtype, DNSClass::IN);
            q.metadata.recursion_desired = true;
            if edns {
                q = with_edns(q, 1232, 0, false);
            }
            c.push_signed(
                format!("{origin} {qtype} signed, unknown key, edns {edns}"),
                q,
            );
        }
    }
    c.cases
}

#[derive(Default)]
struct Corpus {
    cases: Vec<Case>,
}

impl Corpus {
    fn push(&mut self, label: String, query: Message) {
        self.push_with(label, query, |_| {});
    }

    fn push_malformed(&mut self, label: String, query: Message, patch: impl FnOnce(&mut Vec<u8>)) {
        self.push_with(label, query, patch);
        if let Some(case) = self.cases.last_mut() {
            case.malformed = true;
        }
    }

    /// Adds `query` under the next ID, signed with a key no server under
    /// test has (`nokey.`, hmac-sha256).
    fn push_signed(&mut self, label: String, mut query: Message) {
        let id = u16::try_from(self.cases.len() + 1).expect("fewer than 65 536 cases");
        query.metadata.id = id;
        let signer = TSigner::new(
            vec![7; 32],
            TsigAlgorithm::HmacSha256,
            Name::from_ascii("nokey.").expect("key name"),
            300,
        )
        .expect("signer");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs();
        let (tsig, _) = signer.sign_message(&query, now).expect("sign");
        query.set_signature(tsig);
        let bytes = query.to_vec().expect("encode query");
        self.cases.push(Case {
            label,
            query,
            bytes,
            malformed: false,
        });
    }

    /// Adds `query` under the next ID, its encoding edited by `patch`.
    fn push_with(&mut self, label: String, mut query: Message, patch: impl FnOnce(&mut Vec<u8>)) {
        let id = u16::try_from(self.cases.len() + 1).expect("fewer than 65 536 cases");
        query.metadata.id = id;
        let mut bytes = query.to_vec().expect("encode query");
        patch(&mut bytes);
        self.cases.push(Case {
            label,
            query,
            bytes,
            malformed: false,
        });
    }
}

fn question(name: &Name, qtype: RecordType, class: DNSClass) -> Message {
    let mut message = Message::query();
    let mut query = Query::query(name.clone(), qtype);
    query.set_query_class(class);
    message.add_query(query);
    message
}

fn with_edns(mut message: Message, payload: u16, version: u8, dnssec_ok: bool) -> Message {
    let mut edns = Edns::new();
    edns.set_max_payload(payload);
    edns.set_version(version);
    edns.set_dnssec_ok(dnssec_ok);
    message.set_edns(edns);
    message
}

/// Sets the UDP payload size of the OPT record that ends `bytes` (an OPT
/// without options: name, type, class, TTL, RDLENGTH = 11 bytes). hickory
/// raises sizes below 512 when encoding; RFC 6891 §6.2.5 says a server must
/// treat them as 512, which is what this lets the corpus check.
fn set_opt_payload(bytes: &mut [u8], size: u16) {
    let opt = bytes.len() - 11;
    assert_eq!(&bytes[opt..opt + 3], &[0, 0, 41], "OPT record last");
    bytes[opt + 3..opt + 5].copy_from_slice(&size.to_be_bytes());
}

/// Appends the option `code` with `data` to the OPT record that ends
/// `bytes` (one without options, as [`set_opt_payload`] expects), whatever
/// its length: hickory would not encode a malformed one.
fn add_opt_option(bytes: &mut Vec<u8>, code: u16, data: &[u8]) {
    let opt = bytes.len() - 11;
    assert_eq!(&bytes[opt..opt + 3], &[0, 0, 41], "OPT record last");
    assert_eq!(&bytes[opt + 9..], &[0, 0], "no options yet");
    let len = u16::try_from(data.len()).expect("short option");
    bytes[opt + 9..].copy_from_slice(&(len + 4).to_be_bytes());
    bytes.extend_from_slice(&code.to_be_bytes());
    bytes.extend_from_slice(&len.to_be_bytes());
    bytes.extend_from_slice(data);
}

fn child(name: &Name, label: &str) -> Name {
    Name::from_ascii(label)
        .expect("label")
        .append_domain(name)
        .expect("name")
}

/// `name` with its letters alternately upper and lower case.
fn mix_case(name: &Name) -> Name {
    let mut upper = true;
    let text: String = name
        .to_ascii()
        .chars()
        .map(|ch| {
            if ch.is_ascii_alphabetic() {
                upper = !upper;
                if upper {
                    return ch.to_ascii_uppercase();
                }
            }
            ch
        })
        .collect();
    Name::from_ascii(text).expect("mixed-case name")
}
