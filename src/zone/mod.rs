//! The zone snapshot: an immutable view of everything served, published
//! whole (through `arc-swap`) so that queries never wait for a refresh.

pub mod master;
pub mod publish;
pub mod serial;

/// The published snapshot: readers `load()` it without locking; `None` until
/// the first inventory is loaded.
pub type SharedZone = Arc<arc_swap::ArcSwapOption<Snapshot>>;

use std::collections::HashMap;
use std::sync::Arc;

use hickory_proto::rr::rdata::{A, AAAA, NS, SOA};
use hickory_proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordType};

use crate::config::ZoneConfig;
use crate::inventory::Inventory;
use crate::records::{self, RecordSet};

/// One name of the zone: its RRsets, sorted by type. An empty non-terminal
/// (a name that exists only because names below it do) has none.
#[derive(Clone, Debug, Default)]
pub struct Node {
    rrsets: Vec<(RecordType, Vec<Record>)>,
}

impl Node {
    pub fn rrset(&self, rtype: RecordType) -> Option<&[Record]> {
        self.rrsets
            .iter()
            .find(|(t, _)| *t == rtype)
            .map(|(_, records)| records.as_slice())
    }

    pub fn rrsets(&self) -> impl Iterator<Item = &[Record]> {
        self.rrsets.iter().map(|(_, records)| records.as_slice())
    }

    pub fn is_empty(&self) -> bool {
        self.rrsets.is_empty()
    }
}

/// Everything needed to answer a query, fixed at build time.
#[derive(Debug)]
pub struct Snapshot {
    origin: LowerName,
    serial: u32,
    soa: Record,
    negative_ttl: u32,
    /// Every record of the zone in canonical order, the SOA first.
    records: Vec<Record>,
    nodes: HashMap<LowerName, Node>,
    /// Wire-format answers for the common queries (`dns::fast`), rendered
    /// at build time; shared with the previous snapshot when nothing changed.
    fast: Arc<crate::dns::fast::Table>,
    /// What the snapshot was built from, for inspection (`/records`).
    pub inventory: Arc<Inventory>,
    pub record_set: RecordSet,
}

impl Snapshot {
    /// Builds the snapshot of `inventory`. The serial stays that of
    /// `previous` when nothing served changed, and rises (see
    /// [`serial::next`]) when something did.
    pub fn build(
        config: &ZoneConfig,
        inventory: Arc<Inventory>,
        previous: Option<&Snapshot>,
        now_unix: u32,
    ) -> Snapshot {
        let record_set = records::build(&inventory, &config.origin, &config.rules);
        let mut records = zone_records(config, &record_set);
        records.sort();
        records.dedup();

        let unchanged = previous.is_some_and(|p| p.same_content(config, &records));
        let serial = match previous {
            Some(p) if unchanged => p.serial,
            _ => serial::next(previous.map(|p| p.serial), now_unix),
        };
        let soa = soa_record(config, serial);

        let mut nodes: HashMap<LowerName, Node> = HashMap::new();
        let origin = LowerName::new(&config.origin);
        for record in std::iter::once(&soa).chain(&records) {
            let owner = LowerName::new(&record.name);
            add_empty_ancestors(&mut nodes, &owner, &origin);
            let node = nodes.entry(owner).or_default();
            match node
                .rrsets
                .iter_mut()
                .find(|(t, _)| *t == record.record_type())
            {
                Some((_, set)) => set.push(record.clone()),
                None => node
                    .rrsets
                    .push((record.record_type(), vec![record.clone()])),
            }
        }
        for node in nodes.values_mut() {
            node.rrsets.sort_by_key(|(t, _)| u16::from(*t));
        }
        records.insert(0, soa.clone());

        let mut snapshot = Snapshot {
            origin,
            serial,
            soa,
            negative_ttl: config.soa_ttl.min(config.negative_ttl),
            records,
            nodes,
            fast: Arc::default(),
            inventory,
            record_set,
        };
        snapshot.fast = match previous {
            // Same records and serial: the same bytes.
            Some(p) if unchanged => p.fast.clone(),
            _ => Arc::new(crate::dns::fast::Table::build(&snapshot)),
        };
        snapshot
    }

    /// The pre-rendered answers of this snapshot.
    pub fn fast(&self) -> &crate::dns::fast::Table {
        &self.fast
    }

    /// Every name of the zone with its node, empty non-terminals included.
    pub fn nodes(&self) -> impl Iterator<Item = (&LowerName, &Node)> {
        self.nodes.iter()
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    pub fn origin(&self) -> &LowerName {
        &self.origin
    }

    pub fn serial(&self) -> u32 {
        self.serial
    }

    /// The SOA as it goes in the authority section of a negative answer, with
    /// the TTL RFC 2308 §3 asks for: min(SOA TTL, SOA MINIMUM).
    pub fn negative_soa(&self) -> Record {
        let mut soa = self.soa.clone();
        soa.ttl = self.negative_ttl;
        soa
    }

    pub fn node(&self, name: &LowerName) -> Option<&Node> {
        self.nodes.get(name)
    }

    /// Every record, the SOA first, then in canonical order.
    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// Names that have records (empty non-terminals not counted).
    pub fn names(&self) -> impl Iterator<Item = &LowerName> {
        self.nodes
            .iter()
            .filter(|(_, node)| !node.is_empty())
            .map(|(name, _)| name)
    }

    /// Whether `records` (sorted, SOA excluded) and the SOA fields other than
    /// the serial are what this snapshot serves.
    /// (hickory's `Record` equality ignores TTLs, hence the explicit check.)
    fn same_content(&self, config: &ZoneConfig, records: &[Record]) -> bool {
        let same = |a: &Record, b: &Record| a == b && a.ttl == b.ttl;
        let ours = self.records.get(1..).unwrap_or_default();
        ours.len() == records.len()
            && ours.iter().zip(records).all(|(a, b)| same(a, b))
            && same(&soa_record(config, self.serial), &self.soa)
    }
}

fn add_empty_ancestors(
    nodes: &mut HashMap<LowerName, Node>,
    owner: &LowerName,
    origin: &LowerName,
) {
    let mut name = owner.base_name();
    while name.num_labels() > origin.num_labels() && !nodes.contains_key(&name) {
        let parent = name.base_name();
        nodes.insert(name, Node::default());
        name = parent;
    }
}

fn soa_record(config: &ZoneConfig, serial: u32) -> Record {
    let soa = SOA::new(
        config.soa_mname.clone(),
        config.soa_rname.clone(),
        serial,
        ttl_i32(config.soa_refresh),
        ttl_i32(config.soa_retry),
        ttl_i32(config.soa_expire),
        config.negative_ttl,
    );
    record(config.origin.clone(), config.soa_ttl, RData::SOA(soa))
}

/// SOA timers are signed 32-bit in hickory; config limits them to 2^31 - 1.
fn ttl_i32(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

/// The apex NS records, address records of in-zone name servers, and the
/// records of the record set, all without the SOA.
fn zone_records(config: &ZoneConfig, set: &RecordSet) -> Vec<Record> {
    let mut out = Vec::with_capacity(set.entries.len() + 2 * config.nameservers.len());
    for ns in &config.nameservers {
        out.push(record(
            config.origin.clone(),
            config.soa_ttl,
            RData::NS(NS(ns.name.clone())),
        ));
        if config.origin.zone_of(&ns.name) {
            for address in &ns.addresses {
                let data = match address {
                    std::net::IpAddr::V4(ip) => RData::A(A(*ip)),
                    std::net::IpAddr::V6(ip) => RData::AAAA(AAAA(*ip)),
                };
                out.push(record(ns.name.clone(), config.soa_ttl, data));
            }
        }
    }
    for entry in &set.entries {
        out.push(record(
            entry.name.clone(),
            config.record_ttl,
            entry.data.clone(),
        ));
    }
    out
}

fn record(name: Name, ttl: u32, data: RData) -> Record {
    let mut record = Record::from_rdata(name, ttl, data);
    record.dns_class = DNSClass::IN;
    record
}

#[cfg(test)]
mod tests;
