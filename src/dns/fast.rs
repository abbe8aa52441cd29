//! The fast path: answers rendered in wire format once per snapshot, so that
//! a common query costs a header check, one hash lookup and a few copies.
//!
//! Every template is produced by [`answer::respond`] itself, for the
//! lower-case name with an EDNS OPT, at the first query for the name. A
//! query is answered from a template only when `respond` would give the very
//! same bytes: same question bytes (copied as asked), ID, RD and CD copied,
//! the OPT dropped or kept, the DO bit and our buffer size patched in.
//! Anything else (other opcodes, classes, ANY, EDNS options hickory parses, a
//! name written with upper-case letters when the answer holds names besides
//! the owner, such as SRV targets or the SOA's, an answer that would be cut
//! to fit, ...) returns `None` and the front calls `respond`. The tests check
//! `fast == respond` over every name and type of a snapshot.
//!
//! A set that spreads load (A, AAAA or SRV of several records, with
//! rotation or a cap on) is kept as one piece per record, each rendered by
//! `respond` as the answer of that record alone: its answer record and the
//! addresses of its SRV target. A query's window of the set (the same one
//! `respond` takes, from [`Limits::pick`]) is then spliced from the pieces,
//! their counts added up and the pointers of the additional records to
//! their targets moved. That gives `respond`'s bytes only while no piece
//! compresses against another, which [`Pieces::build`] checks: each answer
//! record's owner is the question, an SRV target is written whole (hickory
//! never compresses it) and differs from every other, and each additional
//! record's owner points at its own piece's target.

use std::sync::OnceLock;

use hickory_proto::rr::{RData, RecordType};

use crate::config::Spread;
use crate::dns::Served;
use crate::dns::answer::{self, Limits};
use crate::wire::Transport;
use crate::wire::name_table::{self, NameId};
use crate::zone::Snapshot;

/// The EDNS buffer size templates are rendered for. Any configured
/// `max_udp_payload` works with them: see [`Rendered::usable`].
const RENDER_LIMIT: usize = 1232;
const MIN_UDP: usize = 512;
const HEADER: usize = 12;
/// Wire length of an OPT record without options.
const OPT_LEN: usize = 11;
/// Names with more labels take the slow path: hickory keeps at most 64
/// compression candidates, and a very deep question would use them up and
/// change how the SOA of a negative answer is compressed.
const MAX_FAST_LABELS: usize = 32;
/// Most compressed names in a spliced answer, the question's included:
/// hickory compresses the first 120 names of a message only
/// (`COMPRESSED_NAME_LIMIT`), and a splice assumes every owner is. The
/// window tests reach past it.
const MAX_SPLICED_NAMES: usize = 120;
/// Most label positions hickory keeps to compress later names against
/// (`COMPRESSION_CANDIDATE_LIMIT`): the question's labels, then each SRV
/// target's. A target past them is not pointed at by its addresses' owners,
/// so a splice with additional records stays within them.
const MAX_CANDIDATES: usize = 64;
/// Pointers reach this far, and hickory keeps no candidate beyond it.
const MAX_POINTER: usize = 0x3fff;

/// One pre-rendered response: the header, then everything after the
/// question, exactly as `respond` encoded it.
#[derive(Debug)]
struct Rendered {
    bytes: Box<[u8]>,
    /// Nothing was left out to fit [`RENDER_LIMIT`].
    full: bool,
    /// The question's case does not change the bytes (see [`any_case`]):
    /// usable for a question written in any case.
    any_case: bool,
    /// When this answer without its OPT does not fit 512 bytes: the answer
    /// to the query without EDNS (fitted to 512 bytes, no OPT).
    small: Option<Box<[u8]>>,
}

impl Rendered {
    /// Whether `respond` would send these bytes for a response of `len`
    /// bytes that must fit `limit`. `fit` tries the whole message, then
    /// without additionals, then truncated: a variant chosen at
    /// [`RENDER_LIMIT`] is also the one chosen at any smaller limit it fits
    /// in, and a whole message is chosen at any limit it fits in.
    fn usable(&self, len: usize, limit: usize) -> bool {
        len <= limit && (self.full || limit <= RENDER_LIMIT)
    }
}

/// A negative answer (NXDOMAIN or NODATA), rendered for one name and
/// reusable for any name in the zone: only the compression pointers after
/// the question move, all by the difference in name length.
#[derive(Debug)]
struct Negative {
    rendered: Rendered,
    /// Wire length of the name it was rendered for.
    name_len: usize,
    /// Offsets in `rendered.bytes` of the compression pointers to move.
    pointers: Box<[u16]>,
}

/// How the fast path answers one RRset of a name.
#[derive(Debug)]
enum Template {
    /// Always these bytes: a set of `records` records, in canonical order.
    Whole { rendered: Rendered, records: usize },
    /// A set that spreads load: spliced per query from its pieces.
    Spread(Pieces),
    /// Neither: every query for it takes the slow path.
    Slow,
}

/// The templates of one name, by query type.
type Templates = Box<[(u16, Template)]>;

/// A set that spreads load, one piece per record, in the set's order.
#[derive(Debug)]
struct Pieces {
    /// Header bytes 2 and 3 as `respond` wrote them (AA, rcode).
    flags: [u8; 2],
    /// Every piece's answer record, then its additional records, piece
    /// after piece with nothing between: consecutive pieces are one run.
    bytes: Box<[u8]>,
    pieces: Box<[Piece]>,
    /// Piece indexes in the order `respond` lists additional records: by
    /// SRV target name.
    additional_order: Box<[u16]>,
    /// The OPT record as rendered (patched per query).
    opt: [u8; OPT_LEN],
    /// Address records only: usable for a question in any case.
    any_case: bool,
}

/// One record's part of a [`Pieces`].
#[derive(Debug)]
struct Piece {
    /// Where its answer record starts in [`Pieces::bytes`]; its additional
    /// records follow it.
    start: u32,
    answer_len: u16,
    additional_len: u16,
    additionals: u16,
    /// For each additional record: the offset of its owner pointer within
    /// the additional part, and the offset within the answer record it
    /// points at (the SRV target).
    pointers: Box<[(u16, u16)]>,
    /// Labels of its SRV target, each a compression candidate.
    labels: u16,
}

impl Piece {
    /// Compressed names the piece writes: the answer's owner and each
    /// additional record's.
    fn names(&self) -> usize {
        1 + usize::from(self.additionals)
    }
}

/// The templates of one snapshot. The default (empty) table sends every
/// query to the slow path.
///
/// A name's templates are rendered at the first query for it, not when the
/// snapshot is built: a build then costs milliseconds, not seconds, at
/// 100 000 tasks, and names nobody asks for cost no memory. The first query
/// for a name after a change pays one pass through `respond` per type of the
/// name; the rest are copies.
#[derive(Debug, Default)]
pub struct Table {
    /// The origin in lower-case wire format; empty when the table is off.
    origin: Box<[u8]>,
    /// By name id of the snapshot's store: (type, template) for each RRset
    /// of the name, once a query asked for it.
    templates: Box<[OnceLock<Templates>]>,
    nxdomain: Option<Negative>,
    nodata: Option<Negative>,
    /// The same for a question whose origin part ends in a label written
    /// with a capital (`nope.LOCAL`, as resolvers that randomise case send):
    /// no part of such a question matches the SOA's lower-case names, so
    /// the SOA is written whole rather than pointing into the question.
    nxdomain_capital: Option<Negative>,
    nodata_capital: Option<Negative>,
    /// Where the origin's last label starts in `origin`.
    origin_last: usize,
    /// Lower-case wire suffixes, longer than the origin, of the SOA's names:
    /// a question ending in one changes how the SOA is compressed.
    conflicts: Vec<Box<[u8]>>,
}

/// What the fast path reads of a query; nothing allocated.
struct Question {
    /// The name in lower case, wire format.
    lower: [u8; 255],
    len: usize,
    /// Offsets in `lower` where each label starts.
    starts: [u8; MAX_FAST_LABELS],
    labels: usize,
    has_upper: bool,
    qtype: u16,
    /// The EDNS buffer size and DO bit, when the query has an OPT.
    edns: Option<(u16, bool)>,
}

/// Writes into `out` the response `respond` would give to `request`, and
/// returns `true`; or returns `false` (and `out` is unspecified) when the
/// query needs the full answer function.
pub fn answer(
    served: &Served,
    request: &[u8],
    transport: Transport,
    limits: &Limits,
    out: &mut Vec<u8>,
) -> bool {
    served
        .answers()
        .try_answer(served.snapshot(), request, transport, limits, out)
        .is_some()
}

impl Table {
    /// The table of `snapshot`: its negative answers, rendered now, and a
    /// slot for each name's templates.
    pub fn build(snapshot: &Snapshot) -> Table {
        let origin = name_table::wire_of(snapshot.origin());
        let mut table = Table {
            conflicts: soa_conflicts(snapshot, &origin),
            origin_last: last_label_at(&origin),
            origin: origin.into_boxed_slice(),
            templates: (0..snapshot.store().names().len())
                .map(|_| OnceLock::new())
                .collect(),
            nxdomain: None,
            nodata: None,
            nxdomain_capital: None,
            nodata_capital: None,
        };
        // With a fallback, a name the zone lacks may still be answered.
        if !snapshot.has_fallback() {
            table.nxdomain = table.negative(snapshot, NegativeKind::NxDomain, false);
            table.nxdomain_capital = table.negative(snapshot, NegativeKind::NxDomain, true);
        }
        table.nodata = table.negative(snapshot, NegativeKind::NoData, false);
        table.nodata_capital = table.negative(snapshot, NegativeKind::NoData, true);
        table
    }

    /// The templates of node `id`, rendered now if no query asked before
    /// (a set that `spread` changes as pieces).
    fn templates(&self, snapshot: &Snapshot, id: NameId, spread: &Spread) -> Option<&Templates> {
        let slot = self.templates.get(id as usize)?;
        Some(slot.get_or_init(|| render_node(snapshot, id, spread)))
    }

    /// Renders the templates of every name now (benches and tests).
    pub fn render_all(&self, snapshot: &Snapshot, spread: &Spread) {
        for node in snapshot.nodes() {
            self.templates(snapshot, node.id(), spread);
        }
    }

    /// Renders a negative answer for a name that needs no special case;
    /// with `capital`, for a question whose origin part ends in a label
    /// written with a capital letter.
    fn negative(&self, snapshot: &Snapshot, kind: NegativeKind, capital: bool) -> Option<Negative> {
        let (name, rtype) = match kind {
            NegativeKind::NxDomain => {
                // A label that is no name of the zone and no SOA name.
                let name = (0..100)
                    .map(|i| probe_name(&self.origin, i))
                    .find(|n| snapshot.lookup(n).is_none() && !self.conflicts_with(n))?;
                (name, u16::from(RecordType::A))
            }
            NegativeKind::NoData => {
                let apex = snapshot.lookup(&self.origin)?;
                let rtype = [RecordType::TXT, RecordType::NULL, RecordType::HINFO]
                    .into_iter()
                    .find(|t| apex.sets().iter().all(|set| set.rtype != *t))?;
                (self.origin.to_vec(), u16::from(rtype))
            }
        };
        let mut name = name;
        if capital {
            let last = name.len() - self.origin.len() + self.origin_last;
            let written = name.get_mut(last + 1..)?;
            if !written.iter().any(u8::is_ascii_lowercase) {
                return None;
            }
            written.make_ascii_uppercase();
        }
        let mut query = Vec::new();
        write_query(&mut query, &name, rtype, true);
        let rendered = render(snapshot, &query, name.len(), true, &canonical())?;
        if !rendered.full || rendered.bytes[3] & 0x0f != kind.rcode() {
            return None;
        }
        let pointers = soa_pointers(&rendered.bytes)?;
        // Written for any such question only if nothing points into it.
        let question_end = u16::try_from(HEADER + name.len() + 4).ok()?;
        if capital
            && pointers.iter().any(|&at| {
                let at = usize::from(at);
                let target =
                    u16::from_be_bytes([rendered.bytes[at], rendered.bytes[at + 1]]) & 0x3fff;
                target < question_end
            })
        {
            return None;
        }
        Some(Negative {
            rendered,
            name_len: name.len(),
            pointers,
        })
    }

    /// Number of names whose templates are rendered (for the benches).
    pub fn rendered(&self) -> usize {
        self.templates.iter().filter(|t| t.get().is_some()).count()
    }

    /// Bytes held by the rendered templates (for the benches).
    pub fn template_bytes(&self) -> usize {
        let size = |t: &Template| match t {
            Template::Whole { rendered: r, .. } => {
                r.bytes.len() + r.small.as_ref().map_or(0, |s| s.len())
            }
            Template::Spread(p) => {
                p.bytes.len()
                    + p.additional_order.len() * size_of::<u16>()
                    + (p.pieces.iter())
                        .map(|piece| size_of::<Piece>() + piece.pointers.len() * 4)
                        .sum::<usize>()
            }
            Template::Slow => 0,
        };
        let slots = self.templates.len() * size_of::<OnceLock<Templates>>();
        slots
            + (self.templates.iter().filter_map(OnceLock::get))
                .map(|t| {
                    t.iter()
                        .map(|(_, t)| size_of::<(u16, Template)>() + size(t))
                        .sum::<usize>()
                })
                .sum::<usize>()
    }

    fn try_answer(
        &self,
        snapshot: &Snapshot,
        request: &[u8],
        transport: Transport,
        limits: &Limits,
        out: &mut Vec<u8>,
    ) -> Option<()> {
        if self.origin.is_empty() {
            return None;
        }
        let q = parse(request)?;
        let name = &q.lower[..q.len];
        let question_end = HEADER + q.len + 4;
        let node = snapshot.store().lookup(name);
        let templates = node.and_then(|id| self.templates(snapshot, id, &limits.spread));
        let (rendered, negative) = match templates {
            Some(sets) => match sets.iter().find(|(t, _)| *t == q.qtype).map(|(_, t)| t) {
                Some(Template::Spread(pieces)) => {
                    return splice(pieces, &q, request, transport, limits, out);
                }
                Some(Template::Whole { records, .. }) if limits.spread.changes(*records) => {
                    return None;
                }
                // The answer's owner names point back at the question: its
                // bytes must be those the template was rendered with.
                Some(Template::Whole { rendered, .. }) if !q.has_upper || rendered.any_case => {
                    (rendered, None)
                }
                Some(_) => return None,
                None => {
                    let n = self.negative_for(&q, request, NegativeKind::NoData)?;
                    (&n.rendered, Some(n))
                }
            },
            None if node.is_some() => return None,
            None => {
                let n = self.negative_for(&q, request, NegativeKind::NxDomain)?;
                (&n.rendered, Some(n))
            }
        };

        // A big answer to a UDP query without EDNS has its own template.
        let small = match (q.edns, transport) {
            (None, Transport::Udp) => rendered.small.as_deref(),
            _ => None,
        };
        let bytes = small.unwrap_or(&rendered.bytes);
        let tail = &bytes[HEADER..];
        let (tail, limit) = match (q.edns, small) {
            (Some((payload, _)), _) => (tail, udp_limit(transport, usize::from(payload), limits)),
            (None, Some(_)) => (tail, MIN_UDP),
            (None, None) => (
                tail.get(..tail.len().checked_sub(OPT_LEN)?)?,
                match transport {
                    Transport::Udp => MIN_UDP,
                    Transport::Tcp => usize::from(u16::MAX),
                },
            ),
        };
        let len = question_end + tail.len();
        let usable = match small {
            Some(_) => len <= MIN_UDP,
            None => rendered.usable(len, limit),
        };
        if !usable {
            return None;
        }

        out.clear();
        out.extend_from_slice(&request[..2]);
        push_flags(out, [bytes[2], bytes[3]], request);
        out.extend_from_slice(&bytes[4..HEADER]);
        out.extend_from_slice(&request[HEADER..question_end]);
        let tail_start = out.len();
        out.extend_from_slice(tail);
        match (q.edns, small) {
            (None, Some(_)) => {}
            (Some((_, dnssec_ok)), _) => patch_opt(out, limits, dnssec_ok),
            (None, None) => {
                let additional = u16::from_be_bytes([out[10], out[11]]).checked_sub(1)?;
                out[10..12].copy_from_slice(&additional.to_be_bytes());
            }
        }
        if let Some(negative) = negative {
            let delta = q.len as isize - negative.name_len as isize;
            for &at in &negative.pointers {
                let at = tail_start + usize::from(at) - HEADER;
                let old = u16::from_be_bytes([out[at], out[at + 1]]) & 0x3fff;
                let new = u16::try_from(old as isize + delta)
                    .ok()
                    .filter(|p| *p < 0x3fff)?;
                out[at..at + 2].copy_from_slice(&(0xc000 | new).to_be_bytes());
            }
        }
        Some(())
    }

    /// A negative template fits a name in the zone whose origin part is
    /// written in lower case (the SOA's names point at it) and that does not
    /// end in one of the SOA's own names.
    fn negative_for(&self, q: &Question, request: &[u8], kind: NegativeKind) -> Option<&Negative> {
        let origin_at = q.len.checked_sub(self.origin.len())?;
        let written = request.get(HEADER + origin_at..HEADER + q.len)?;
        // In the zone: the question ends in the origin, in any case, at a
        // label boundary.
        if q.lower[origin_at..q.len] != *self.origin
            || !q.starts[..q.labels].contains(&(origin_at as u8))
            || q.labels > MAX_FAST_LABELS / 2
            || self.conflicts_with(&q.lower[..q.len])
        {
            return None;
        }
        let (lower, capital) = match kind {
            NegativeKind::NxDomain => (&self.nxdomain, &self.nxdomain_capital),
            NegativeKind::NoData => (&self.nodata, &self.nodata_capital),
        };
        if written == &*self.origin {
            return lower.as_ref();
        }
        let last = written.get(self.origin_last + 1..)?;
        if last.iter().any(u8::is_ascii_uppercase) {
            return capital.as_ref();
        }
        None
    }

    fn conflicts_with(&self, name: &[u8]) -> bool {
        self.conflicts.iter().any(|c| name.ends_with(c))
    }
}

#[derive(Clone, Copy)]
enum NegativeKind {
    NxDomain,
    NoData,
}

impl NegativeKind {
    fn rcode(self) -> u8 {
        match self {
            NegativeKind::NxDomain => 3,
            NegativeKind::NoData => 0,
        }
    }
}

/// Over UDP the client's EDNS buffer size, at least 512, at most ours; over
/// TCP 64 KiB (as in `answer::size_limit`).
fn udp_limit(transport: Transport, payload: usize, limits: &Limits) -> usize {
    match transport {
        Transport::Tcp => usize::from(u16::MAX),
        Transport::Udp => payload.clamp(MIN_UDP, usize::from(limits.max_udp_payload).max(MIN_UDP)),
    }
}

/// Label bytes the fast path takes, lower-cased; 0 for any other byte (the
/// slow path decides what those mean).
const LABEL_BYTE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = match c {
            b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' => c,
            b'A'..=b'Z' => c + 32,
            _ => 0,
        };
        b += 1;
    }
    table
};

/// Reads the header, the one question and an optional plain OPT of a
/// standard query; `None` for anything else.
fn parse(request: &[u8]) -> Option<Question> {
    let header = request.get(..HEADER)?;
    // QR clear and opcode QUERY; one question, no answer or authority.
    if header[2] & 0xf8 != 0 || header[4..10] != [0, 1, 0, 0, 0, 0] || header[10] != 0 {
        return None;
    }
    let additional = header[11];
    let mut q = Question {
        lower: [0; 255],
        len: 0,
        starts: [0; MAX_FAST_LABELS],
        labels: 0,
        has_upper: false,
        qtype: 0,
        edns: None,
    };
    let mut at = HEADER;
    loop {
        let label = usize::from(*request.get(at)?);
        if label == 0 {
            break;
        }
        if label > 63 || q.len + label + 2 > 255 || q.labels == MAX_FAST_LABELS {
            return None;
        }
        q.starts[q.labels] = q.len as u8;
        q.labels += 1;
        q.lower[q.len] = label as u8;
        for (i, &byte) in request.get(at + 1..at + 1 + label)?.iter().enumerate() {
            let lower = LABEL_BYTE[usize::from(byte)];
            if lower == 0 {
                return None;
            }
            q.has_upper |= lower != byte;
            q.lower[q.len + 1 + i] = lower;
        }
        q.len += label + 1;
        at += label + 1;
    }
    q.lower[q.len] = 0;
    q.len += 1;
    at += 1;
    let fixed = request.get(at..at + 4)?;
    q.qtype = u16::from_be_bytes([fixed[0], fixed[1]]);
    let qclass = u16::from_be_bytes([fixed[2], fixed[3]]);
    // IN only; no meta types (OPT, TKEY, TSIG, IXFR, AXFR, MAILB, MAILA, ANY).
    if qclass != 1 || matches!(q.qtype, 0 | 41 | 249..=255) {
        return None;
    }
    at += 4;
    match additional {
        0 => {}
        1 => {
            // root name, type OPT, class = buffer size, ext-rcode 0,
            // version 0, flags, options we ignore; nothing after it.
            let opt = request.get(at..at + OPT_LEN)?;
            if opt[0] != 0 || opt[1..3] != [0, 41] || opt[5] != 0 || opt[6] != 0 {
                return None;
            }
            let options_len = usize::from(u16::from_be_bytes([opt[9], opt[10]]));
            let options = request.get(at + OPT_LEN..at + OPT_LEN + options_len)?;
            if !ignored_options(options) {
                return None;
            }
            q.edns = Some((u16::from_be_bytes([opt[3], opt[4]]), opt[7] & 0x80 != 0));
            at += OPT_LEN + options_len;
        }
        _ => return None,
    }
    (at == request.len()).then_some(q)
}

/// The templates of node `id`: each RRset's answer, and for an answer too
/// big for 512 bytes without its OPT, the answer without EDNS; a set that
/// `spread` changes, as pieces.
fn render_node(snapshot: &Snapshot, id: NameId, spread: &Spread) -> Templates {
    let key = snapshot.store().names().wire(id);
    let mut query = Vec::with_capacity(300);
    let mut answers = Vec::new();
    for set in snapshot.store().sets(id) {
        let rtype = u16::from(set.rtype);
        let records = snapshot.store().data(set).len();
        write_query(&mut query, key, rtype, true);
        if answer::spreads(set.rtype) && spread.changes(records) {
            let pieces = Pieces::build(snapshot, key, set.rtype, &query, records);
            answers.push((rtype, pieces.map_or(Template::Slow, Template::Spread)));
            continue;
        }
        let Some(mut rendered) = render(snapshot, &query, key.len(), true, &canonical()) else {
            answers.push((rtype, Template::Slow));
            continue;
        };
        if rendered.bytes.len() - OPT_LEN + key.len() + 4 > MIN_UDP {
            write_query(&mut query, key, rtype, false);
            let small = render(snapshot, &query, key.len(), false, &canonical());
            rendered.any_case &= small.as_ref().is_some_and(|small| small.any_case);
            rendered.small = small.map(|small| small.bytes);
        }
        answers.push((rtype, Template::Whole { rendered, records }));
    }
    answers.into_boxed_slice()
}

impl Pieces {
    /// The pieces of the `records` records of `rtype` at node `id`, each
    /// the answer `respond` gives to `query` (for the node's lower-case
    /// name, `name_len` bytes, with an OPT) when its window is that record
    /// alone; `None` when some piece could compress against another (see
    /// the module's doc), and the set then takes the slow path.
    fn build(
        snapshot: &Snapshot,
        key: &[u8],
        rtype: RecordType,
        query: &[u8],
        records: usize,
    ) -> Option<Pieces> {
        let name_len = key.len();
        let question_end = HEADER + name_len + 4;
        let mut bytes = Vec::new();
        let mut pieces = Vec::with_capacity(records);
        let mut targets: Vec<&[u8]> = Vec::new();
        let mut flags = None;
        let mut opt = None;
        let mut rendered_all = Vec::with_capacity(records);
        for record in 0..records {
            let alone = Limits {
                spread: Spread {
                    rotate: true,
                    max_answers: std::num::NonZeroU16::new(1),
                },
                pick: u32::try_from(record).ok()?,
                ..Limits::default()
            };
            let rendered = render(snapshot, query, name_len, true, &alone)?;
            if !rendered.full {
                return None;
            }
            rendered_all.push(rendered);
        }
        for rendered in &rendered_all {
            let message = &rendered.bytes;
            // Header, then the answer record, the additional records, the OPT.
            let counts = message.get(4..HEADER)?;
            let additionals = u16::from_be_bytes([counts[6], counts[7]]).checked_sub(1)?;
            // One question, one answer, no authority.
            if counts[..6] != [0, 1, 0, 1, 0, 0] {
                return None;
            }
            let flags_now = [message[2], message[3]];
            if *flags.get_or_insert(flags_now) != flags_now {
                return None;
            }
            // Offsets in the message as sent: the question sits before
            // what `rendered` keeps.
            let at = |i: usize| i + question_end - HEADER;
            let answer = record_at(message, HEADER)?;
            if message.get(HEADER..HEADER + 2) != Some(&[0xc0, 0x0c][..])
                || answer.rtype != u16::from(rtype)
            {
                return None;
            }
            let (target, labels) = match rtype {
                RecordType::SRV => {
                    let target = message.get(answer.rdata + 6..answer.end)?;
                    // Written whole, never compressed.
                    let labels = plain_labels(target)?;
                    if targets.contains(&target) {
                        return None;
                    }
                    targets.push(target);
                    (Some((at(answer.rdata + 6), at(answer.end))), labels)
                }
                _ => (None, 0),
            };
            let start = bytes.len();
            bytes.extend_from_slice(&message[HEADER..answer.end]);
            let mut pointers = Vec::new();
            let mut next = answer.end;
            for _ in 0..additionals {
                let rr = record_at(message, next)?;
                let owner = message.get(next..next + 2)?;
                let points = usize::from(u16::from_be_bytes([owner[0], owner[1]]) & 0x3fff);
                let (target_start, target_end) = target?;
                if owner[0] & 0xc0 != 0xc0
                    || rr.rdata != next + 12
                    || !matches!(rr.rtype, 1 | 28)
                    || !(target_start..target_end).contains(&points)
                {
                    return None;
                }
                pointers.push((
                    u16::try_from(next - answer.end).ok()?,
                    u16::try_from(points - at(HEADER)).ok()?,
                ));
                next = rr.end;
            }
            bytes.extend_from_slice(&message[answer.end..next]);
            let opt_now: [u8; OPT_LEN] = message.get(next..)?.try_into().ok()?;
            if *opt.get_or_insert(opt_now) != opt_now {
                return None;
            }
            pieces.push(Piece {
                start: u32::try_from(start).ok()?,
                answer_len: u16::try_from(answer.end - HEADER).ok()?,
                additional_len: u16::try_from(next - answer.end).ok()?,
                additionals,
                pointers: pointers.into_boxed_slice(),
                labels,
            });
        }
        // `respond` lists additional records by target name.
        let mut additional_order: Vec<u16> = (0..u16::try_from(records).ok()?).collect();
        if rtype == RecordType::SRV {
            let set = snapshot.lookup(key)?.rrset(rtype)?;
            let target_of = |i: u16| match set.get(usize::from(i)).map(|r| &r.data) {
                Some(RData::SRV(srv)) => Some(hickory_proto::rr::LowerName::new(&srv.target)),
                _ => None,
            };
            additional_order.sort_by_key(|&i| target_of(i));
        }
        Some(Pieces {
            flags: flags?,
            bytes: bytes.into_boxed_slice(),
            pieces: pieces.into_boxed_slice(),
            additional_order: additional_order.into_boxed_slice(),
            opt: opt?,
            any_case: matches!(rtype, RecordType::A | RecordType::AAAA),
        })
    }
}

/// The answer to query `q` from a set's pieces: the window `limits` picks,
/// whole if it fits, else without its additional records, else truncated.
/// Writes into `out`.
fn splice(
    pieces: &Pieces,
    q: &Question,
    request: &[u8],
    transport: Transport,
    limits: &Limits,
    out: &mut Vec<u8>,
) -> Option<()> {
    if q.has_upper && !pieces.any_case {
        return None;
    }
    let n = pieces.pieces.len();
    let (first, count) = limits.spread.window(n, limits.pick);
    // The window as the pieces from `first` on, then those before it: no
    // division per piece (a 64-bit one costs tens of cycles on some CPUs).
    let (before, from_first) = pieces.pieces.split_at(first.min(n));
    let window = || from_first.iter().chain(before).take(count);
    let question_end = HEADER + q.len + 4;
    // One pass over the window for every sum below.
    let mut sums = WindowSums::default();
    for piece in window() {
        sums.add(piece);
    }
    let (answers, additionals) = (sums.answer_bytes, sums.additional_bytes);
    let (limit, opt) = match q.edns {
        Some((payload, _)) => (udp_limit(transport, usize::from(payload), limits), OPT_LEN),
        None if transport == Transport::Udp => (MIN_UDP, 0),
        None => (usize::from(u16::MAX), 0),
    };
    // As `answer::fit`: whole, else without additional records, else
    // truncated (TC, no records).
    let whole = question_end + answers + additionals + opt;
    let with_additionals = whole <= limit;
    let truncated = !with_additionals && whole - additionals > limit;
    let (count, additional_count) = match (truncated, with_additionals) {
        (true, _) => (0, 0),
        (false, true) => (count, sums.additionals),
        (false, false) => (count, 0),
    };
    let names = match additional_count {
        0 => 1 + count,
        _ => 1 + sums.names,
    };
    if names > MAX_SPLICED_NAMES {
        return None;
    }
    // The additional records' owners point at targets hickory still kept.
    if additional_count > 0
        && (q.labels + sums.labels > MAX_CANDIDATES || question_end + answers >= MAX_POINTER)
    {
        return None;
    }

    out.clear();
    out.extend_from_slice(&request[..2]);
    let tc = if truncated { 0x02 } else { 0 };
    push_flags(out, [pieces.flags[0] | tc, pieces.flags[1]], request);
    out.extend_from_slice(&[0, 1]);
    out.extend_from_slice(&u16::try_from(count).ok()?.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    let arcount = additional_count + usize::from(opt > 0);
    out.extend_from_slice(&u16::try_from(arcount).ok()?.to_be_bytes());
    out.extend_from_slice(&request[HEADER..question_end]);
    // Where each piece's answer record lands, by piece index; a window
    // that fits MAX_SPLICED_NAMES has fewer pieces than this.
    let mut placed = [0u16; MAX_SPLICED_NAMES];
    if additionals == 0 {
        // Address records (or SRV without their addresses' pieces): the
        // window's answers are two runs of `bytes`, from `first` on and
        // then from the start, copied whole. `count` here is what the
        // answer carries: 0 when truncated.
        let head = from_first.len().min(count);
        for run in [&from_first[..head], &before[..count - head]] {
            if let (Some(start), Some(end)) = (run.first(), run.last()) {
                let end = end.start as usize + usize::from(end.answer_len);
                out.extend_from_slice(&pieces.bytes[start.start as usize..end]);
            }
        }
    } else {
        for (place, piece) in placed.iter_mut().zip(window()).take(count) {
            *place = u16::try_from(out.len()).ok()?;
            let start = piece.start as usize;
            out.extend_from_slice(&pieces.bytes[start..start + usize::from(piece.answer_len)]);
        }
    }
    if additional_count > 0 {
        for &index in &pieces.additional_order {
            let index = usize::from(index);
            // Its place in the window: `index` counted from `first`.
            let i = if index >= first {
                index - first
            } else {
                index + n - first
            };
            if i >= count {
                continue;
            }
            let piece = &pieces.pieces[index];
            let from = piece.start as usize + usize::from(piece.answer_len);
            let at = out.len();
            out.extend_from_slice(&pieces.bytes[from..from + usize::from(piece.additional_len)]);
            for &(offset, target) in &piece.pointers {
                // Below MAX_POINTER: the answers end before it.
                let pointer = 0xc000 | (placed[i] + target);
                let offset = at + usize::from(offset);
                out[offset..offset + 2].copy_from_slice(&pointer.to_be_bytes());
            }
        }
    }
    if let Some((_, dnssec_ok)) = q.edns {
        out.extend_from_slice(&pieces.opt);
        patch_opt(out, limits, dnssec_ok);
    }
    Some(())
}

/// What [`splice`] needs to know of a window's pieces, summed in one pass.
#[derive(Default)]
struct WindowSums {
    answer_bytes: usize,
    additional_bytes: usize,
    additionals: usize,
    names: usize,
    labels: usize,
}

impl WindowSums {
    fn add(&mut self, piece: &Piece) {
        self.answer_bytes += usize::from(piece.answer_len);
        self.additional_bytes += usize::from(piece.additional_len);
        self.additionals += usize::from(piece.additionals);
        self.names += piece.names();
        self.labels += usize::from(piece.labels);
    }
}

/// Header bytes 2 and 3 of a response: ours (`flags`), with the query's
/// RD and CD copied.
fn push_flags(out: &mut Vec<u8>, flags: [u8; 2], request: &[u8]) {
    out.push((flags[0] & !0x01) | (request[2] & 0x01));
    out.push((flags[1] & !0x10) | (request[3] & 0x10));
}

/// The OPT record that ends `out`, patched to our buffer size and the
/// query's DO bit.
fn patch_opt(out: &mut [u8], limits: &Limits, dnssec_ok: bool) {
    let opt = out.len() - OPT_LEN;
    let ours = limits.max_udp_payload.max(MIN_UDP as u16);
    out[opt + 3..opt + 5].copy_from_slice(&ours.to_be_bytes());
    if dnssec_ok {
        out[opt + 7] |= 0x80;
    }
}

/// Limits that answer every set whole, in canonical order.
fn canonical() -> Limits {
    Limits {
        spread: Spread {
            rotate: false,
            max_answers: None,
        },
        ..Limits::default()
    }
}

/// Where a resource record of `message` starting at `at` keeps its type,
/// its data and its end.
struct RecordAt {
    rtype: u16,
    rdata: usize,
    end: usize,
}

fn record_at(message: &[u8], at: usize) -> Option<RecordAt> {
    let fixed = skip_name(message, at, &mut Vec::new())?;
    let head = message.get(fixed..fixed + 10)?;
    let rdata = fixed + 10;
    let end = rdata + usize::from(u16::from_be_bytes([head[8], head[9]]));
    (end <= message.len()).then_some(RecordAt {
        rtype: u16::from_be_bytes([head[0], head[1]]),
        rdata,
        end,
    })
}

/// The number of labels of `name` when it is one whole name in wire
/// format, without a pointer.
fn plain_labels(name: &[u8]) -> Option<u16> {
    let (mut at, mut labels) = (0, 0u16);
    loop {
        match usize::from(*name.get(at)?) {
            0 => return (at + 1 == name.len()).then_some(labels),
            len @ 1..=63 => {
                at += len + 1;
                labels += 1;
            }
            _ => return None,
        }
    }
}

/// Whether `options` (an OPT record's data) is well formed and holds only
/// options that `respond` ignores and hickory reads as opaque bytes: DNS
/// COOKIE (resolvers such as BIND and `dig` send one with every query; a
/// server without cookie support ignores it, RFC 7873 §5.2), padding,
/// keepalive and unknown codes. NSID, DAU and Client Subnet, which hickory
/// parses and may reject, take the slow path.
fn ignored_options(mut options: &[u8]) -> bool {
    const PARSED: [u16; 3] = [3, 5, 8];
    while !options.is_empty() {
        let Some(head) = options.get(..4) else {
            return false;
        };
        let code = u16::from_be_bytes([head[0], head[1]]);
        let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
        if PARSED.contains(&code) {
            return false;
        }
        let Some(rest) = options.get(4 + len..) else {
            return false;
        };
        options = rest;
    }
    true
}

/// A query for `name` (wire format) and `rtype`, with a plain OPT if `edns`.
fn write_query(out: &mut Vec<u8>, name: &[u8], rtype: u16, edns: bool) {
    out.clear();
    out.extend_from_slice(&[0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, u8::from(edns)]);
    out.extend_from_slice(name);
    out.extend_from_slice(&rtype.to_be_bytes());
    out.extend_from_slice(&[0, 1]);
    if !edns {
        return;
    }
    let payload = RENDER_LIMIT as u16;
    out.extend_from_slice(&[0, 0, 41]);
    out.extend_from_slice(&payload.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
}

/// `respond`'s answer to `query` (whose name is `name_len` bytes long, with
/// an OPT if `edns`), without its question; `None` if it is not the shape
/// templates need.
fn render(
    snapshot: &Snapshot,
    query: &[u8],
    name_len: usize,
    edns: bool,
    limits: &Limits,
) -> Option<Rendered> {
    let limits = Limits {
        max_udp_payload: RENDER_LIMIT as u16,
        ..*limits
    };
    let (mut message, limit) =
        answer::respond_message(Some(snapshot), query, Transport::Udp, &limits)?;
    let before = (
        message.answers.len(),
        message.authorities.len(),
        message.additionals.len(),
    );
    let bytes = answer::fit(&mut message, limit);
    let after = (
        message.answers.len(),
        message.authorities.len(),
        message.additionals.len(),
    );
    let question_end = HEADER + name_len + 4;
    // The question must come back as sent, and the OPT last and plain.
    let question_ok = bytes.get(HEADER..question_end) == query.get(HEADER..question_end);
    let opt = bytes.get(bytes.len().checked_sub(OPT_LEN)?..)?;
    let opt_ok = !edns
        || (opt[..3] == [0, 0, 41] && opt[9..] == [0, 0] && bytes.len() >= question_end + OPT_LEN);
    if !question_ok || !opt_ok || bytes[4..6] != [0, 1] {
        return None;
    }
    let mut stored = Vec::with_capacity(bytes.len() - name_len - 4);
    stored.extend_from_slice(&bytes[..HEADER]);
    stored.extend_from_slice(&bytes[question_end..]);
    Some(Rendered {
        any_case: any_case(&stored),
        bytes: stored.into_boxed_slice(),
        full: before == after && !message.metadata.truncation,
        small: None,
    })
}

/// Whether a template (header, then what follows the question) is the same
/// whatever the case of the question: only address records, each owned by
/// the question (a pointer to offset 12, which `respond` writes because it
/// keeps the question's case in answer owners), nothing in the authority
/// section, at most an OPT in the additional one. Names anywhere else would
/// compress against the question only when their case matches it.
fn any_case(bytes: &[u8]) -> bool {
    let count = |at: usize| {
        bytes
            .get(at..at + 2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
    };
    let (Some(answers), Some(0), Some(additional @ 0..=1)) = (count(6), count(8), count(10)) else {
        return false;
    };
    let mut at = HEADER;
    for _ in 0..answers {
        let Some(fixed) = bytes.get(at..at + 12) else {
            return false;
        };
        let rdlen = usize::from(u16::from_be_bytes([fixed[10], fixed[11]]));
        if fixed[..2] != [0xc0, 0x0c] || !matches!(fixed[2..4], [0, 1] | [0, 28]) {
            return false;
        }
        at += 12 + rdlen;
    }
    let opt_ok = additional == 0 || bytes.get(at..at + 3) == Some(&[0, 0, 41][..]);
    let end = at + usize::from(additional) * OPT_LEN;
    opt_ok && end == bytes.len()
}

/// Offsets of the compression pointers in a negative template: one SOA in
/// the authority section, then the OPT. `None` for any other shape.
fn soa_pointers(bytes: &[u8]) -> Option<Box<[u16]>> {
    let counts = bytes.get(4..HEADER)?;
    if counts != [0, 1, 0, 0, 0, 1, 0, 1] {
        return None;
    }
    let mut pointers = Vec::new();
    let mut at = skip_name(bytes, HEADER, &mut pointers)?;
    let fixed = bytes.get(at..at + 10)?;
    if fixed[..2] != [0, 6] {
        return None;
    }
    let rdata_end = at + 10 + usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
    at = skip_name(bytes, at + 10, &mut pointers)?;
    at = skip_name(bytes, at, &mut pointers)?;
    if at + 20 != rdata_end || rdata_end + OPT_LEN != bytes.len() {
        return None;
    }
    Some(pointers.into_boxed_slice())
}

/// Walks a name at `at`, noting where a compression pointer is; returns
/// where the name ends.
fn skip_name(bytes: &[u8], mut at: usize, pointers: &mut Vec<u16>) -> Option<usize> {
    loop {
        let label = *bytes.get(at)?;
        match label {
            0 => return Some(at + 1),
            l if l & 0xc0 == 0xc0 => {
                pointers.push(u16::try_from(at).ok()?);
                return Some(at + 2);
            }
            l if l <= 63 => at += usize::from(l) + 1,
            _ => return None,
        }
    }
}

/// The in-zone suffixes, longer than the origin, of the SOA's MNAME and
/// RNAME (those that a question could share with them).
fn soa_conflicts(snapshot: &Snapshot, origin: &[u8]) -> Vec<Box<[u8]>> {
    let mut out: Vec<Box<[u8]>> = Vec::new();
    let soa = match &snapshot.soa().data {
        RData::SOA(soa) => Some(soa),
        _ => None,
    };
    for name in soa.into_iter().flat_map(|s| [&s.mname, &s.rname]) {
        let name = name_table::wire_of(name);
        let mut at = 0;
        while at < name.len() && name[at] != 0 {
            let suffix = &name[at..];
            if suffix.len() > origin.len() && suffix.ends_with(origin) {
                out.push(suffix.into());
            }
            at += usize::from(name[at]) + 1;
        }
    }
    out
}

/// A name "nx-probe-I.ORIGIN" in wire format.
/// Where the last label of wire name `name` starts (its length byte).
fn last_label_at(name: &[u8]) -> usize {
    let (mut at, mut last) = (0, 0);
    while let Some(&len) = name.get(at) {
        if len == 0 {
            break;
        }
        last = at;
        at += usize::from(len) + 1;
    }
    last
}

fn probe_name(origin: &[u8], i: usize) -> Vec<u8> {
    let label = format!("nx-probe-{i}");
    let mut out = vec![label.len() as u8];
    out.extend_from_slice(label.as_bytes());
    out.extend_from_slice(origin);
    out
}

#[cfg(test)]
#[path = "fast/tests.rs"]
mod tests;
