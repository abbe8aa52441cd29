//! Differential conformance: ecs-dns and Knot DNS, serving the same zone,
//! get the same query corpus (`corpus.rs`) as the same bytes, over UDP and
//! over TCP (pipelined, 500 queries a connection; malformed queries each on
//! a connection of their own), and must answer alike.
//!
//! Compared per query: the RCODE (extended RCODE included), opcode, the
//! flags AA, TC, RA, RD and CD, the question section as echoed, EDNS
//! presence, version, DO bit and buffer size, and the answer, authority and
//! additional sections as sets of records (owner names compared
//! case-insensitively; TTLs compared), and the TSIG record (key, algorithm,
//! error, MAC size). The only differences accepted are
//! those in [`ALLOWED`], each with the RFC text that allows ecs-dns's answer.
//!
//! The zone Knot serves is `ecs-dns records` of the same configuration, with
//! the SOA serial the running ecs-dns picked (both take the Unix time).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::time::Duration;

use hickory_proto::op::{Message, OpCode, ResponseCode};
use hickory_proto::rr::rdata::tsig::TsigError;
use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::corpus::{self, Case};
use crate::harness::{Server, demo_config, run};
use crate::knot::Knot;

/// How long to wait for one UDP answer, or for the next TCP answer, before
/// counting the query as unanswered (loopback: generous).
const REPLY_WAIT: Duration = Duration::from_secs(5);

/// UDP queries in flight at once (well within socket buffers).
const UDP_WINDOW: usize = 32;

/// Queries written at once on one TCP connection.
const PIPELINE: usize = 500;

#[test]
fn demo_zone_answers_like_knot() {
    compare_with_knot(&demo_config(), "local");
}

/// The demo's reverse zones (IPv4 and IPv6), each against Knot serving
/// its `records --print`.
#[test]
fn demo_reverse_zones_answer_like_knot() {
    compare_with_knot(&demo_config(), "10.in-addr.arpa");
    compare_with_knot(&demo_config(), "4.3.2.1.8.1.f.1.0.0.6.2.ip6.arpa");
}

#[test]
fn large_rrsets_answer_like_knot() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("inventory.toml"), large_inventory()).unwrap();
    let config = dir.path().join("ecs-dns.toml");
    std::fs::write(
        &config,
        r#"zone = "svc.example"
source = "file"
inventory = "inventory.toml"
poll_interval = "1s"
nameservers = ["ns1.svc.example=127.0.0.1", "ns1.svc.example=::1", "ns.elsewhere.test"]
"#,
    )
    .unwrap();
    let truncated = compare_with_knot(&config, "svc.example");
    assert!(truncated > 0, "no query of the corpus was truncated");
}

/// Services whose RRsets do not fit the usual UDP sizes: `small` (6 tasks),
/// `mid` (30: A fits 512 bytes, SRV does not fit 1232), `big` (80: A, AAAA
/// and SRV exceed 1232, SRV exceeds 4096), each task with IPv4 and IPv6.
fn large_inventory() -> String {
    let mut out = String::new();
    let mut n = 0u32;
    for (service, tasks) in [("small", 6), ("mid", 30), ("big", 80)] {
        for _ in 0..tasks {
            n += 1;
            out.push_str(&format!(
                r#"[[tasks]]
cluster = "prod"
service = "{service}"
family = "{service}"
task_arn = "arn:aws:ecs:us-east-1:123456789012:task/prod/{n:032x}"
network_mode = "awsvpc"
ipv4 = ["10.{a}.{b}.{c}"]
ipv6 = ["2001:db8::{n:x}"]
ports = [{{ container_name = "app", container_port = 8080, name = "http" }}]

"#,
                a = n / 65536,
                b = (n / 256) % 256,
                c = n % 256,
            ));
        }
    }
    out
}

/// Runs the corpus against both servers and fails on any unexplained
/// difference. Returns how many answers had TC set (both servers agreeing).
fn compare_with_knot(config: &Path, zone: &str) -> usize {
    let ours = Server::start(config, &[], zone);
    let origin = Name::from_ascii(zone).unwrap().to_lowercase();
    let master = export(config, zone, served_serial(ours.addr(), &origin));
    let knot = Knot::start(zone, &master);
    let knot_addr = SocketAddr::from(([127, 0, 0, 1], knot.port));

    let cases = corpus::build(&origin, &master);
    assert!(cases.len() >= 300, "corpus too small: {}", cases.len());

    let mut compared = 0;
    let mut truncated = 0;
    let mut allowed: HashMap<&str, usize> = HashMap::new();
    let mut unexplained: Vec<String> = Vec::new();
    for over in [Over::Udp, Over::Tcp] {
        let theirs = ask_all(knot_addr, &cases, over);
        let mine = ask_all(ours.addr(), &cases, over);
        for case in &cases {
            compared += 1;
            let k = outcome(theirs.get(&case.id()));
            let o = outcome(mine.get(&case.id()));
            if k == o {
                truncated += usize::from(k.summary().is_some_and(|s| s.flags[1]));
                continue;
            }
            match ALLOWED.iter().find(|a| (a.applies)(case, over, &k, &o)) {
                Some(a) => *allowed.entry(a.what).or_default() += 1,
                None => unexplained.push(format!(
                    "{} over {over:?}: {}\n  knot:    {k:?}\n  ecs-dns: {o:?}",
                    case.label,
                    k.differences(&o).join(", ")
                )),
            }
        }
    }
    let allowed_total: usize = allowed.values().sum();
    eprintln!(
        "conformance ({zone}): {} queries × UDP+TCP = {compared} compared; \
         {} differences: {allowed_total} allowed, {} unexplained; \
         {truncated} identical answers with TC",
        cases.len(),
        allowed_total + unexplained.len(),
        unexplained.len()
    );
    for a in ALLOWED {
        if let Some(count) = allowed.get(a.what) {
            eprintln!("  allowed {count:>4} × {}\n         ({})", a.what, a.rfc);
        }
    }
    assert!(
        unexplained.is_empty(),
        "{} unexplained differences from Knot:\n{}",
        unexplained.len(),
        unexplained.join("\n")
    );
    truncated
}

/// The master file of the zone `zone` of `config`, with the SOA serial set
/// to `serial`.
fn export(config: &Path, zone: &str, serial: u32) -> String {
    let config = config.to_str().unwrap();
    let out = run(&["records", "--config", config, "--print", zone]);
    assert!(out.status.success(), "ecs-dns records failed: {out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let mut replaced = false;
    let lines: Vec<String> = text
        .lines()
        .map(|line| {
            let mut fields: Vec<&str> = line.split_whitespace().collect();
            if fields.get(3) == Some(&"SOA") && fields.len() == 11 {
                let serial = serial.to_string();
                fields[6] = &serial;
                replaced = true;
                return fields.join(" ");
            }
            line.to_owned()
        })
        .collect();
    assert!(replaced, "no SOA record in:\n{text}");
    lines.join("\n") + "\n"
}

/// The SOA serial the server at `addr` serves for `origin`.
fn served_serial(addr: SocketAddr, origin: &Name) -> u32 {
    let mut query = Message::query();
    query.add_query(hickory_proto::op::Query::query(
        origin.clone(),
        RecordType::SOA,
    ));
    query.metadata.id = 1;
    let reply = exchange_udp(addr, &query.to_vec().unwrap(), 1).expect("SOA answer");
    let reply = Message::from_vec(&reply).unwrap();
    match reply.answers.first().map(|r| &r.data) {
        Some(RData::SOA(soa)) => soa.serial,
        other => panic!("no SOA in the answer: {other:?}"),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Over {
    Udp,
    Tcp,
}

/// Answers by query ID.
fn ask_all(addr: SocketAddr, cases: &[Case], over: Over) -> HashMap<u16, Vec<u8>> {
    match over {
        Over::Udp => cases
            .chunks(UDP_WINDOW)
            .flat_map(|window| udp_window(addr, window))
            .collect(),
        Over::Tcp => {
            // Well-formed queries pipelined, PIPELINE at a time per
            // connection (servers close a connection after so many queries:
            // ecs-dns after `tcp_max_queries`); malformed ones each on a
            // connection of their own, all at once (a dropped one costs one
            // REPLY_WAIT, not one each).
            let (malformed, good): (Vec<&Case>, Vec<&Case>) =
                cases.iter().partition(|c| c.malformed);
            let mut answers = HashMap::new();
            for chunk in good.chunks(PIPELINE) {
                answers.extend(pipelined_tcp(addr, chunk));
            }
            std::thread::scope(|scope| {
                let alone: Vec<_> = malformed
                    .iter()
                    .map(|case| scope.spawn(move || pipelined_tcp(addr, &[case])))
                    .collect();
                for thread in alone {
                    answers.extend(thread.join().unwrap());
                }
            });
            answers
        }
    }
}

/// Sends the queries of `window` on one UDP socket, then collects answers
/// until all came or none came for REPLY_WAIT.
fn udp_window(addr: SocketAddr, window: &[Case]) -> HashMap<u16, Vec<u8>> {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.connect(addr).unwrap();
    socket.set_read_timeout(Some(REPLY_WAIT)).unwrap();
    for case in window {
        socket.send(&case.bytes).unwrap();
    }
    let mut answers = HashMap::new();
    let mut buf = vec![0u8; 65535];
    while answers.len() < window.len() {
        let Ok(n) = socket.recv(&mut buf) else { break };
        if n >= 2 {
            answers.insert(u16::from_be_bytes([buf[0], buf[1]]), buf[..n].to_vec());
        }
    }
    answers
}

/// Sends `query` and waits for the answer with `id` (`None` if none came).
fn exchange_udp(addr: SocketAddr, query: &[u8], id: u16) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.connect(addr).unwrap();
    socket.set_read_timeout(Some(REPLY_WAIT)).unwrap();
    socket.send(query).unwrap();
    let mut buf = vec![0u8; 65535];
    loop {
        let n = socket.recv(&mut buf).ok()?;
        if n >= 2 && u16::from_be_bytes([buf[0], buf[1]]) == id {
            return Some(buf[..n].to_vec());
        }
    }
}

/// Every query on one TCP connection, written without waiting for answers
/// (RFC 7766 §6.2.1.1 pipelining); answers matched by ID, in any order.
fn pipelined_tcp(addr: SocketAddr, cases: &[&Case]) -> HashMap<u16, Vec<u8>> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(REPLY_WAIT)).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let frames: Vec<u8> = cases
        .iter()
        .flat_map(|c| {
            let len = u16::try_from(c.bytes.len()).unwrap().to_be_bytes();
            len.into_iter().chain(c.bytes.iter().copied())
        })
        .collect();
    // Written from another thread: a server that answers while reading must
    // not block on a full socket buffer while we block writing.
    let write = std::thread::spawn(move || writer.write_all(&frames));
    let mut answers = HashMap::new();
    while answers.len() < cases.len() {
        let mut len = [0u8; 2];
        if stream.read_exact(&mut len).is_err() {
            break;
        }
        let mut message = vec![0u8; usize::from(u16::from_be_bytes(len))];
        if stream.read_exact(&mut message).is_err() {
            break;
        }
        if message.len() >= 2 {
            answers.insert(u16::from_be_bytes([message[0], message[1]]), message);
        }
    }
    let _ = write.join().unwrap();
    if cases.len() > 1 {
        eprintln!(
            "{addr}: {} answers to {} queries pipelined on one TCP connection",
            answers.len(),
            cases.len(),
        );
    }
    answers
}

/// What a server did with one query, in comparable form.
#[derive(Debug, PartialEq)]
enum Outcome {
    NoReply,
    Unparsable(String),
    Reply(Summary),
}

#[derive(Debug, PartialEq)]
struct Summary {
    rcode: ResponseCode,
    opcode: OpCode,
    /// AA, TC, RA, RD, CD.
    flags: [bool; 5],
    /// Questions as echoed, case kept.
    question: Vec<String>,
    /// (version, DO, buffer size).
    edns: Option<(u8, bool, u16)>,
    answer: Vec<String>,
    authority: Vec<String>,
    additional: Vec<String>,
    /// The TSIG record: (key name, algorithm, TSIG error, MAC size).
    tsig: Option<(String, String, Option<TsigError>, usize)>,
}

fn outcome(reply: Option<&Vec<u8>>) -> Outcome {
    let Some(bytes) = reply else {
        return Outcome::NoReply;
    };
    let message = match Message::from_vec(bytes) {
        Ok(m) => m,
        Err(e) => return Outcome::Unparsable(format!("{e}")),
    };
    let m = &message.metadata;
    Outcome::Reply(Summary {
        rcode: m.response_code,
        opcode: m.op_code,
        flags: [
            m.authoritative,
            m.truncation,
            m.recursion_available,
            m.recursion_desired,
            m.checking_disabled,
        ],
        question: message
            .queries
            .iter()
            .map(|q| {
                format!(
                    "{} {} {}",
                    q.name().to_ascii(),
                    q.query_class(),
                    q.query_type()
                )
            })
            .collect(),
        edns: message
            .edns
            .as_ref()
            .map(|e| (e.version(), e.flags().dnssec_ok, e.max_payload())),
        answer: section(&message.answers),
        authority: section(&message.authorities),
        additional: section(&message.additionals),
        tsig: message.signature().map(|t| {
            (
                t.name.to_lowercase().to_ascii(),
                t.data.algorithm.to_string(),
                t.data.error,
                t.data.mac.len(),
            )
        }),
    })
}

/// Records as sorted text, lower-cased: owner names and names in RDATA
/// compare case-insensitively (RFC 4343; Knot compresses names in RDATA
/// against the question as asked, so they come back in its case). The zones
/// compared hold no case-sensitive RDATA (no TXT).
fn section(records: &[Record]) -> Vec<String> {
    let mut out: Vec<String> = records
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {} {}",
                r.name.to_lowercase().to_ascii(),
                r.ttl,
                r.dns_class,
                r.record_type(),
                r.data
            )
            .to_lowercase()
        })
        .collect();
    out.sort();
    out
}

impl Outcome {
    fn summary(&self) -> Option<&Summary> {
        match self {
            Outcome::Reply(s) => Some(s),
            _ => None,
        }
    }

    /// Names of the fields that differ, for the report.
    fn differences(&self, other: &Outcome) -> Vec<&'static str> {
        let (Some(a), Some(b)) = (self.summary(), other.summary()) else {
            return vec!["outcome"];
        };
        let mut out = Vec::new();
        let fields: [(&str, bool); 9] = [
            ("rcode", a.rcode == b.rcode),
            ("opcode", a.opcode == b.opcode),
            ("flags", a.flags == b.flags),
            ("question", a.question == b.question),
            ("edns", a.edns == b.edns),
            ("answer", a.answer == b.answer),
            ("authority", a.authority == b.authority),
            ("additional", a.additional == b.additional),
            ("tsig", a.tsig == b.tsig),
        ];
        for (name, same) in fields {
            if !same {
                out.push(name);
            }
        }
        out
    }
}

/// A difference from Knot that an RFC allows: which cases, what shape it
/// must have, and the RFC text that makes ecs-dns's answer correct.
struct Allowed {
    what: &'static str,
    rfc: &'static str,
    applies: fn(&Case, Over, &Outcome, &Outcome) -> bool,
}

/// The allow-list: every accepted difference, one row each, as narrow as
/// the difference itself (the rest of the answer must be identical).
static ALLOWED: &[Allowed] = &[
    Allowed {
        what: "ANY over TCP: ecs-dns answers every RRset of the name, Knot one",
        rfc: "RFC 8482 §4.1 and §7: a minimal ANY answer is an option a \
              responder may take (ecs-dns takes it over UDP, where ANY is an \
              amplification vector); the conventional, complete answer stays \
              valid, and over TCP it amplifies nothing",
        applies: any_over_tcp,
    },
    Allowed {
        what: "UDP answer too large for all additional records: Knot keeps \
               those that fit, ecs-dns drops the additional section",
        rfc: "RFC 2181 §9: TC is set only when required data does not fit; \
              additional data may be left out, in part or whole, without TC \
              (RFC 1034 §4.3.2 step 6: additional data is optional)",
        applies: additional_left_out,
    },
    Allowed {
        what: "NOTIFY and UPDATE: Knot NOTAUTH (no ACL allows them), \
               ecs-dns NOTIMP",
        rfc: "RFC 1035 §4.1.1: NOTIMP, the name server does not support the \
              requested kind of query; ecs-dns implements neither NOTIFY \
              (RFC 1996) nor UPDATE (RFC 2136)",
        applies: notify_or_update,
    },
    Allowed {
        what: "zone transfer queries: Knot NOTAUTH (NOTIMP for AXFR over UDP), \
               ecs-dns REFUSED",
        rfc: "RFC 5936 §2.2.1 and §4.2: a server may refuse a transfer, \
              REFUSED being the policy refusal; AXFR over UDP is not defined",
        applies: transfer_refused,
    },
    Allowed {
        what: "AXFR over UDP signed with a key neither server has: Knot \
               NOTIMP, ecs-dns NOTAUTH with TSIG error BADKEY",
        rfc: "RFC 8945 §5.2: the TSIG of a signed request is checked before \
              the request is processed, and a key the server does not know \
              gets NOTAUTH with BADKEY (§5.2.1); ecs-dns checks every signed \
              request first, so that each answer to one carries a TSIG",
        applies: signed_axfr_over_udp,
    },
    Allowed {
        what: "two questions, or a question cut short: Knot drops the query, \
               ecs-dns answers FORMERR",
        rfc: "RFC 1035 §4.1.1: FORMERR, the server was unable to interpret \
              the query; RFC 9619: a query with QDCOUNT > 1 is malformed, \
              and FORMERR is a valid answer to it",
        applies: formerr_for_malformed,
    },
];

fn replies<'a>(knot: &'a Outcome, ours: &'a Outcome) -> Option<(&'a Summary, &'a Summary)> {
    Some((knot.summary()?, ours.summary()?))
}

/// Whether `knot` and `ours` differ in no field but `fields`.
fn differ_only_in(knot: &Outcome, ours: &Outcome, fields: &[&str]) -> bool {
    knot.differences(ours).iter().all(|f| fields.contains(f))
}

fn any_over_tcp(case: &Case, over: Over, knot: &Outcome, ours: &Outcome) -> bool {
    let Some((k, o)) = replies(knot, ours) else {
        return false;
    };
    let types = |answer: &[String]| {
        let mut types: Vec<String> = answer
            .iter()
            .filter_map(|r| r.split_whitespace().nth(3).map(str::to_owned))
            .collect();
        types.sort();
        types.dedup();
        types.len()
    };
    case.qtype() == Some(RecordType::ANY)
        && over == Over::Tcp
        && differ_only_in(knot, ours, &["answer", "additional"])
        && types(&k.answer) == 1
        && types(&o.answer) > 1
        && k.answer.iter().all(|r| o.answer.contains(r))
        && k.additional.iter().all(|r| o.additional.contains(r))
}

fn additional_left_out(_: &Case, over: Over, knot: &Outcome, ours: &Outcome) -> bool {
    let Some((k, o)) = replies(knot, ours) else {
        return false;
    };
    over == Over::Udp
        && differ_only_in(knot, ours, &["additional"])
        && o.additional.is_empty()
        && !k.additional.is_empty()
}

fn notify_or_update(case: &Case, _: Over, knot: &Outcome, ours: &Outcome) -> bool {
    let Some((k, o)) = replies(knot, ours) else {
        return false;
    };
    matches!(case.query.metadata.op_code, OpCode::Notify | OpCode::Update)
        && differ_only_in(knot, ours, &["rcode"])
        && k.rcode == ResponseCode::NotAuth
        && o.rcode == ResponseCode::NotImp
}

fn transfer_refused(case: &Case, _: Over, knot: &Outcome, ours: &Outcome) -> bool {
    let Some((k, o)) = replies(knot, ours) else {
        return false;
    };
    matches!(case.qtype(), Some(RecordType::AXFR | RecordType::IXFR))
        && differ_only_in(knot, ours, &["rcode"])
        && matches!(k.rcode, ResponseCode::NotAuth | ResponseCode::NotImp)
        && o.rcode == ResponseCode::Refused
        && o.answer.is_empty()
}

fn signed_axfr_over_udp(case: &Case, over: Over, knot: &Outcome, ours: &Outcome) -> bool {
    let Some((k, o)) = replies(knot, ours) else {
        return false;
    };
    case.query.signature().is_some()
        && case.qtype() == Some(RecordType::AXFR)
        && over == Over::Udp
        && differ_only_in(knot, ours, &["rcode", "tsig"])
        && k.rcode == ResponseCode::NotImp
        && o.rcode == ResponseCode::NotAuth
        && o.tsig
            .as_ref()
            .is_some_and(|t| t.2 == Some(TsigError::BadKey) && t.3 == 0)
}

fn formerr_for_malformed(case: &Case, _: Over, knot: &Outcome, ours: &Outcome) -> bool {
    let Outcome::Reply(o) = ours else {
        return false;
    };
    case.malformed
        && *knot == Outcome::NoReply
        && o.rcode == ResponseCode::FormErr
        && o.answer.is_empty()
        && o.authority.is_empty()
        && o.additional.is_empty()
}
