//! The zone snapshot: an immutable view of everything served, published
//! whole (through `arc-swap`) so that queries never wait for a refresh.
//!
//! The snapshot knows nothing of wire formats or network fronts: `dns`
//! answers from it, `xfr` transfers it, `publish` swaps it in.

pub mod master;
pub mod serial;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordType};

use crate::config::{ReverseZone, ZoneConfig};
use crate::inventory::Inventory;
use crate::records::reverse::{self, Pointers};
use crate::records::{self, Data, Only, RecordSet, Report};
use crate::wire::name_table::{self, NameId, NameTable};
pub use store::{RRset, Store};

mod store;

/// Everything needed to answer a query, fixed at build time.
#[derive(Debug)]
pub struct Snapshot {
    origin: LowerName,
    serial: u32,
    soa: Record,
    negative_ttl: u32,
    /// The records; shared with the previous snapshot when nothing changed.
    store: Arc<Store>,
    /// What the snapshot was built from, for inspection (`/records`).
    pub inventory: Arc<Inventory>,
    /// What the rules decided for each task, collisions, skipped names.
    pub report: Report,
    /// The service labels of each served task, which a patch uses to find
    /// the tasks under the labels it rebuilds.
    task_labels: records::TaskLabels,
    /// Whether no two tasks share an ARN: then the next inventory's tasks
    /// can be matched with these by ARN, and the snapshot patched.
    arns_strict: bool,
    /// What it was built with: the next snapshot can be patched from this
    /// one only when its configuration is the same.
    config: ZoneConfig,
    /// A forward zone with reverse zones beside it: where each served
    /// address points back to, which the reverse zones are built from.
    /// Empty otherwise.
    pointers: Arc<Pointers>,
    /// With `pointers`: which tasks hold each served address, for the next
    /// patch (see [`reverse::patched`]).
    address_holders: Arc<reverse::AddressHolders>,
    /// A reverse zone: its range and fallback.
    reverse: Option<ReverseOf>,
}

/// What a reverse zone's snapshot needs besides its records.
#[derive(Debug)]
struct ReverseOf {
    zone: ReverseZone,
    /// EC2's domain, when addresses no task holds answer EC2's names
    /// (`reverse_fallback`).
    fallback: Option<Name>,
    /// The forward zone's pointers it was built from: the next build
    /// whose pointers in this range are the same keeps its records.
    built_from: Arc<Pointers>,
}

/// What a reverse zone with a fallback answers for a name it does not have.
#[derive(Debug, PartialEq)]
pub enum Synthesized {
    /// The PTR EC2 would answer for the address.
    Ptr(Box<Record>),
    /// The name is above some address of the zone: it exists, empty.
    Empty,
}

/// Past this share of the tasks changed (one in 20), a whole build costs
/// about what a patch does.
const PATCH_MAX_CHANGED_SHARE: usize = 20;

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
        if let Some(previous) = previous
            && let Some(patched) = Snapshot::patch(config, &inventory, previous, now_unix)
        {
            return patched;
        }
        let (inventory, arns_strict) = in_arn_order(inventory);
        let RecordSet {
            mut names,
            mut entries,
            mut report,
            task_labels,
        } = records::build(&inventory, &config.origin, &config.rules);
        let (pointers, address_holders) = match config.reverse.is_empty() {
            true => (Arc::default(), Arc::default()),
            false => {
                let (pointers, held) =
                    reverse::pointers(&inventory, &report.verdicts, &config.origin);
                report
                    .collisions
                    .extend(pointers.collisions.iter().cloned());
                let pointers = match previous.filter(|p| *p.pointers == pointers) {
                    Some(p) => p.pointers.clone(),
                    None => Arc::new(pointers),
                };
                (pointers, Arc::new(held))
            }
        };
        let apex = names.intern(&name_table::wire_of(&config.origin));
        let extra = own_records(config, &mut names, apex, &pointers);
        reserve_zone_names(&extra, &names, &inventory, &mut entries, &mut report);
        records::sort_collisions(&mut report.collisions);
        let store = Store::build(names, apex, &entries, config.record_ttl, &extra);
        drop(entries);

        let unchanged = previous.filter(|p| {
            p.store.same_content(&store) && same_soa(&soa_record(config, p.serial), &p.soa)
        });
        let serial = match unchanged {
            Some(p) => p.serial,
            None => serial::next(previous.map(|p| p.serial), now_unix),
        };
        Snapshot {
            origin: LowerName::new(&config.origin),
            serial,
            soa: soa_record(config, serial),
            negative_ttl: config.soa_ttl.min(config.negative_ttl),
            store: match unchanged {
                Some(p) => p.store.clone(),
                None => Arc::new(store),
            },
            inventory,
            report,
            task_labels,
            arns_strict,
            config: config.clone(),
            pointers,
            address_holders,
            reverse: None,
        }
    }

    /// Builds the reverse zone `zone` of the forward snapshot `forward`
    /// (built with `config`): a PTR for each served address in its range
    /// (see [`records::reverse`]), its own SOA and the forward zone's NS.
    /// The serial follows `previous` as a forward zone's does.
    pub fn build_reverse(
        config: &ZoneConfig,
        zone: &ReverseZone,
        forward: &Snapshot,
        previous: Option<&Snapshot>,
        now_unix: u32,
    ) -> Snapshot {
        let config = ZoneConfig {
            origin: zone.origin.clone(),
            reverse: Vec::new(),
            ..config.clone()
        };
        let within = forward.pointers.within(&zone.prefix);
        let whole = || {
            let store = Self::reverse_store(&config, within);
            let unchanged = previous.filter(|p| {
                p.store.same_content(&store) && same_soa(&soa_record(&config, p.serial), &p.soa)
            });
            match unchanged {
                Some(p) => (p.store.clone(), p.serial),
                None => (
                    Arc::new(store),
                    serial::next(previous.map(|p| p.serial), now_unix),
                ),
            }
        };
        // The previous build of this zone with the same settings, and the
        // pointers in its range it was built from. Building a reverse zone
        // whole costs tens of milliseconds at 100 000 tasks; most
        // publications change a few addresses or none.
        let before = previous.and_then(|p| {
            let r = p.reverse.as_ref()?;
            (p.config == config && r.zone == *zone).then_some((p, r))
        });
        let (store, serial) = match before {
            Some((p, r)) if Arc::ptr_eq(&r.built_from, &forward.pointers) => {
                (p.store.clone(), p.serial)
            }
            Some((p, r)) => {
                match Self::patch_reverse(&config, p, r.built_from.within(&zone.prefix), within) {
                    Some(Some(store)) => (Arc::new(store), serial::next(Some(p.serial), now_unix)),
                    Some(None) => (p.store.clone(), p.serial),
                    None => whole(),
                }
            }
            None => whole(),
        };
        let collisions = (forward.report.collisions.iter())
            .filter(|c| c.kind == "address")
            .filter(|c| {
                (c.label.parse::<std::net::IpAddr>()).is_ok_and(|ip| zone.prefix.contains(&ip))
            })
            .cloned()
            .collect();
        Snapshot {
            origin: LowerName::new(&config.origin),
            serial,
            soa: soa_record(&config, serial),
            negative_ttl: config.soa_ttl.min(config.negative_ttl),
            store,
            inventory: forward.inventory.clone(),
            report: Report {
                verdicts: forward.report.verdicts.clone(),
                collisions,
                skipped: Vec::new(),
            },
            task_labels: records::TaskLabels::unknown(0),
            arns_strict: false,
            reverse: Some(ReverseOf {
                zone: zone.clone(),
                fallback: config.reverse_fallback.ec2_domain(),
                built_from: forward.pointers.clone(),
            }),
            pointers: Arc::default(),
            address_holders: Arc::default(),
            config,
        }
    }

    /// The records of the reverse zone `previous` (built with `config`
    /// from the pointers `old`) with the pointers `new` instead: a PTR
    /// added, moved or removed for each address that changed. `Some(None)`
    /// when none did; `None` when a whole build is needed (many changes, or
    /// a name table that has collected too many unused names).
    fn patch_reverse(
        config: &ZoneConfig,
        previous: &Snapshot,
        old: &[(std::net::IpAddr, reverse::Target)],
        new: &[(std::net::IpAddr, reverse::Target)],
    ) -> Option<Option<Store>> {
        // The addresses that changed and where each points now (nowhere:
        // its PTR goes), found before anything is copied.
        let max_changed = (new.len() / PATCH_MAX_CHANGED_SHARE).max(64);
        let mut changes: Vec<(std::net::IpAddr, Option<&reverse::Target>)> = Vec::new();
        let (mut i, mut j) = (0, 0);
        loop {
            let change = match (old.get(i), new.get(j)) {
                (Some(a), Some(b)) if a.0 == b.0 => {
                    (i, j) = (i + 1, j + 1);
                    if Arc::ptr_eq(&a.1, &b.1) || a.1 == b.1 {
                        continue;
                    }
                    (b.0, Some(&b.1))
                }
                (Some(a), Some(b)) if a.0 < b.0 => {
                    i += 1;
                    (a.0, None)
                }
                (Some(a), None) => {
                    i += 1;
                    (a.0, None)
                }
                (_, Some(b)) => {
                    j += 1;
                    (b.0, Some(&b.1))
                }
                (None, None) => break,
            };
            if changes.len() == max_changed {
                return None;
            }
            changes.push(change);
        }
        if changes.is_empty() {
            return Some(None);
        }
        let old_store = previous.store.as_ref();
        // Names in use: the nodes and at most one target per PTR.
        let unused = (old_store.names().len()).saturating_sub(old_store.node_count() + old.len());
        if unused > old_store.node_count() / 4 + 1024 {
            return None;
        }
        let mut names = old_store.names().clone();
        let apex = names.get(&name_table::wire_of(&config.origin))?;
        let mut owners: Vec<(NameId, Vec<(u32, Data)>)> = Vec::with_capacity(changes.len());
        for (address, target) in changes {
            let owner = names.intern(&reverse::reverse_wire(address));
            // An IPv6 /128 zone's one address is its apex, whose SOA and
            // NS a patch would replace.
            if owner == apex {
                return None;
            }
            let records = target.map(|t| (config.record_ttl, Data::Ptr(names.intern(t))));
            owners.push((owner, records.into_iter().collect()));
        }
        Some(old_store.patched(names, apex, owners))
    }

    /// The records of a reverse zone (built with `config`) whose served
    /// addresses point to `targets`: its own, and a PTR for each.
    fn reverse_store(
        config: &ZoneConfig,
        targets: &[(std::net::IpAddr, reverse::Target)],
    ) -> Store {
        let mut names = NameTable::default();
        let apex = names.intern(&name_table::wire_of(&config.origin));
        let mut records = zone_records(config, &mut names, apex);
        for (address, target) in targets {
            let owner = names.intern(&reverse::reverse_wire(*address));
            let target = names.intern(target);
            records.push((owner, config.record_ttl, Data::Ptr(target)));
        }
        Store::build(names, apex, &[], config.record_ttl, &records)
    }

    /// Where `address` points back to (a forward zone with reverse zones):
    /// the target's lower-case wire name, if one served task or host holds
    /// it.
    pub fn pointer(&self, address: std::net::IpAddr) -> Option<&[u8]> {
        self.pointers.target(address)
    }

    /// Whether the reverse zones fall back to EC2's names.
    pub fn falls_back(&self) -> bool {
        self.config.reverse_fallback != crate::config::ReverseFallback::None
    }

    /// The reverse zone's range, for a reverse zone.
    pub fn reverse_range(&self) -> Option<&ipnet::IpNet> {
        self.reverse.as_ref().map(|r| &r.zone.prefix)
    }

    /// Whether names the zone does not have may still be answered (a
    /// reverse zone's fallback): then no negative answer can be rendered
    /// once for all of them.
    pub fn has_fallback(&self) -> bool {
        self.reverse.as_ref().is_some_and(|r| r.fallback.is_some())
    }

    /// What a reverse zone with a fallback answers for `name`, which it
    /// does not have: EC2's name for an address in its range (IPv4), an
    /// empty name above such addresses; `None` (NXDOMAIN) for anything
    /// else and in every other zone.
    pub fn synthesized(&self, name: &LowerName) -> Option<Synthesized> {
        let reverse = self.reverse.as_ref()?;
        let domain = reverse.fallback.as_ref()?;
        let prefix = &reverse.zone.prefix;
        let wire = name_table::wire_of(name);
        let labels = name_table::labels(&wire).count();
        let full = reverse::full_labels(prefix.addr().is_ipv4());
        if labels < full {
            // Padded with zeros to a whole address: an address of the
            // range if every label is an octet.
            let mut padded = Vec::new();
            for _ in labels..full {
                padded.extend_from_slice(b"\x010");
            }
            padded.extend_from_slice(&wire);
            let address = reverse::address_of(&padded)?;
            return prefix.contains(&address).then_some(Synthesized::Empty);
        }
        let address = reverse::address_of(&wire).filter(|ip| prefix.contains(ip))?;
        let target = reverse::ec2_name(address, domain)?;
        Some(Synthesized::Ptr(Box::new(record(
            Name::from(name),
            self.config.record_ttl,
            RData::PTR(hickory_proto::rr::rdata::PTR(target)),
        ))))
    }

    /// The snapshot of `inventory` made from `previous` by rebuilding only
    /// the service labels whose records may have changed (see
    /// [`records::delta`]) and patching the store with them: a one-task
    /// event at 100 000 tasks costs a few milliseconds where a whole build
    /// costs a quarter of a second. `None` when a whole build is needed:
    /// another configuration, tasks that cannot be matched by ARN, many
    /// changes, a change at one of the zone's own names or at a name
    /// another service label also has records at, or a name table that
    /// has collected too many unused names.
    fn patch(
        config: &ZoneConfig,
        inventory: &Arc<Inventory>,
        previous: &Snapshot,
        now_unix: u32,
    ) -> Option<Snapshot> {
        let old_store = previous.store.as_ref();
        let unused = old_store
            .names()
            .len()
            .saturating_sub(old_store.node_count());
        if !previous.arns_strict
            || previous.config != *config
            || unused > old_store.node_count() / 4 + 1024
        {
            return None;
        }
        let old_report = &previous.report;
        let max_changed = (inventory.tasks.len() / PATCH_MAX_CHANGED_SHARE).max(64);
        let delta = records::delta(
            &previous.inventory,
            &old_report.verdicts,
            &previous.task_labels,
            inventory,
            &config.rules,
            max_changed,
        )?;
        let mut names = old_store.names().clone();
        let (old, new) = match delta.labels.is_empty() {
            true => (None, None),
            false => (
                Some(records::build_parts(
                    &previous.inventory,
                    &old_report.verdicts,
                    &config.origin,
                    Only::Labels(&delta.labels, &previous.task_labels),
                    &mut names,
                )),
                Some(records::build_parts(
                    inventory,
                    &delta.verdicts,
                    &config.origin,
                    Only::Labels(&delta.labels, &delta.task_labels),
                    &mut names,
                )),
            ),
        };
        let (old_entries, new_entries) = (
            old.as_ref().map_or(&[][..], |p| &p.entries[..]),
            new.as_ref().map_or(&[][..], |p| &p.entries[..]),
        );
        let mut before: BTreeMap<NameId, Vec<Data>> = BTreeMap::new();
        for entry in old_entries {
            before.entry(entry.owner).or_default().push(entry.data);
        }
        let mut after: BTreeMap<NameId, Vec<(u32, Data)>> =
            before.keys().map(|&id| (id, Vec::new())).collect();
        for entry in new_entries {
            after
                .entry(entry.owner)
                .or_default()
                .push((config.record_ttl, entry.data));
        }
        // The host names of reverse zones are the zone's own records: a
        // change of them is a whole build.
        // No task changed: the same tasks with the same verdicts point the
        // same way (reading them all again is most of a poll's time).
        // (The same tasks in the same places: who holds what is as before.)
        let (pointers, address_holders) = match config.reverse.is_empty() || delta.changed == 0 {
            true => (previous.pointers.clone(), previous.address_holders.clone()),
            false => {
                let (pointers, held) = reverse::patched(
                    &previous.pointers,
                    &previous.address_holders,
                    inventory,
                    &delta,
                    &config.origin,
                );
                if pointers.hosts != previous.pointers.hosts {
                    return None;
                }
                let pointers = match *previous.pointers == pointers {
                    true => previous.pointers.clone(),
                    false => Arc::new(pointers),
                };
                (pointers, Arc::new(held))
            }
        };
        let apex = names.get(&name_table::wire_of(&config.origin))?;
        let zone_owners: BTreeSet<NameId> = own_records(config, &mut names, apex, &pointers)
            .iter()
            .map(|(owner, _, _)| *owner)
            .collect();
        // The zone's own names, and names where records of other labels
        // are (the store holds more than these labels gave it): whole build.
        if after.keys().any(|id| zone_owners.contains(id))
            || before
                .iter_mut()
                .any(|(id, data)| !old_store.holds_exactly(*id, data))
        {
            return None;
        }

        let mut report = Report {
            verdicts: delta.verdicts,
            collisions: (old_report.collisions.iter())
                .filter(|c| match c.kind {
                    "cluster" => false,
                    "service" => !delta.labels.contains(&c.label),
                    "task" => !delta.labels.contains(&c.under),
                    "address" => false,
                    _ => true,
                })
                .cloned()
                .collect(),
            skipped: (old_report.skipped.iter())
                .filter(|s| !delta.labels.contains(&s.under))
                .cloned()
                .collect(),
        };
        report
            .collisions
            .extend(records::cluster_collisions(inventory, &report.verdicts));
        report
            .collisions
            .extend(pointers.collisions.iter().cloned());
        if let Some(new) = new {
            report.collisions.extend(new.collisions);
            report.skipped.extend(new.skipped);
        }
        records::sort_collisions(&mut report.collisions);
        report.skipped.sort();
        report.skipped.dedup();

        let patched = old_store.patched(names, apex, after.into_iter().collect());
        let serial = match patched {
            None => previous.serial,
            Some(_) => serial::next(Some(previous.serial), now_unix),
        };
        Some(Snapshot {
            origin: previous.origin.clone(),
            serial,
            soa: soa_record(config, serial),
            negative_ttl: previous.negative_ttl,
            store: patched.map_or_else(|| previous.store.clone(), Arc::new),
            inventory: inventory.clone(),
            report,
            task_labels: delta.task_labels,
            arns_strict: true,
            config: config.clone(),
            pointers,
            address_holders,
            reverse: None,
        })
    }

    /// Tasks its inventory lists more than once, and the first of them
    /// (see [`Inventory::duplicates`]). None, without sorting 100 000 ARNs
    /// again, when the build found every ARN greater than the one before.
    pub fn duplicate_tasks(&self) -> (usize, Option<String>) {
        match self.arns_strict {
            true => (0, None),
            false => self.inventory.duplicates(),
        }
    }

    /// Whether `other` serves the very same records and SOA: then anything
    /// derived from the records alone (such as pre-rendered answers) can be
    /// kept. True when the build found nothing changed and shared the store.
    pub fn same_records(&self, other: &Snapshot) -> bool {
        Arc::ptr_eq(&self.store, &other.store) && same_soa(&self.soa, &other.soa)
    }

    /// The records in compact form.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The node named `wire` (lower-case wire format), if the zone has it.
    pub fn lookup(&self, wire: &[u8]) -> Option<NodeRef<'_>> {
        let id = self.store.lookup(wire)?;
        Some(NodeRef { snapshot: self, id })
    }

    /// The node named `name`, if the zone has it.
    pub fn node(&self, name: &LowerName) -> Option<NodeRef<'_>> {
        self.lookup(&name_table::wire_of(name))
    }

    /// Every name of the zone, empty non-terminals included.
    pub fn nodes(&self) -> impl Iterator<Item = NodeRef<'_>> {
        self.store.nodes().map(|id| NodeRef { snapshot: self, id })
    }

    pub fn node_count(&self) -> usize {
        self.store.node_count()
    }

    /// Records served, the SOA included.
    pub fn record_count(&self) -> usize {
        self.store.record_count()
    }

    pub fn origin(&self) -> &LowerName {
        &self.origin
    }

    pub fn serial(&self) -> u32 {
        self.serial
    }

    /// The SOA record.
    pub fn soa(&self) -> &Record {
        &self.soa
    }

    /// The SOA as it goes in the authority section of a negative answer, with
    /// the TTL RFC 2308 §3 asks for: min(SOA TTL, SOA MINIMUM).
    pub fn negative_soa(&self) -> Record {
        let mut soa = self.soa.clone();
        soa.ttl = self.negative_ttl;
        soa
    }

    /// Every record as hickory `Record`s, the SOA first, then in canonical
    /// order (RFC 4034 §6.3: owner, type, data). Made one name at a time, so
    /// that a transfer of a large zone never holds all of it as hickory
    /// types; for transfers and the master file, not for queries.
    pub fn records_iter(&self) -> impl Iterator<Item = Record> + '_ {
        let names = self.store.names();
        let mut owners: Vec<NameId> = self
            .store
            .nodes()
            .filter(|&id| !self.store.sets(id).is_empty())
            .collect();
        owners.sort_unstable_by(|a, b| name_table::cmp_canonical(names.wire(*a), names.wire(*b)));
        let rest = owners.into_iter().flat_map(move |id| {
            let node = NodeRef { snapshot: self, id };
            let mut out = Vec::new();
            for set in node.sets() {
                if set.rtype != RecordType::SOA {
                    node.materialize(set, &mut out);
                }
            }
            out
        });
        std::iter::once(self.soa.clone()).chain(rest)
    }

    /// [`Snapshot::records_iter`], collected.
    pub fn records(&self) -> Vec<Record> {
        self.records_iter().collect()
    }

    /// The records of this snapshot that `other` does not have (or has with
    /// another TTL), the SOA left out, in canonical order: one side of an
    /// IXFR diff, without making the whole zone into hickory records.
    pub fn records_not_in(&self, other: &Snapshot) -> Vec<Record> {
        let mut out = Vec::new();
        self.store.not_in(&other.store, |id, set, data| {
            if let Some(rdata) = data.to_rdata(self.store.names()) {
                out.push(record(self.store.names().name(id), set.ttl, rdata));
            }
        });
        out.sort();
        out
    }

    /// How this snapshot's records differ from `previous`'s: (records
    /// added, records removed, the names either happened at, in lower-case
    /// wire format, sorted). A changed TTL counts as one of each; the SOA's
    /// serial is no change.
    pub fn changes_since(&self, previous: &Snapshot) -> (usize, usize, Vec<Vec<u8>>) {
        let mut names = std::collections::BTreeSet::new();
        let (mut added, mut removed) = (0, 0);
        self.store.not_in(&previous.store, |id, _, _| {
            added += 1;
            names.insert(self.store.names().wire(id).to_vec());
        });
        previous.store.not_in(&self.store, |id, _, _| {
            removed += 1;
            names.insert(previous.store.names().wire(id).to_vec());
        });
        (added, removed, names.into_iter().collect())
    }

    /// Names that have records (empty non-terminals not counted), in wire
    /// format.
    pub fn names(&self) -> impl Iterator<Item = &[u8]> {
        self.nodes()
            .filter(|node| !node.is_empty())
            .map(|node| self.store.names().wire(node.id))
    }

    /// The record set again, with each record's task, for inspection: the
    /// records function is pure, so this is what the snapshot was built from.
    pub fn record_set(&self) -> RecordSet {
        records::build(&self.inventory, &self.origin, &self.config.rules)
    }

    /// What reverse zones add for the tasks of this forward zone, each with
    /// the index of a task that holds the address (an EC2 host's address
    /// comes once for each of its tasks): the PTR records the reverse zones
    /// serve and the host names this zone answers the addresses at
    /// (`<instance-id>.hosts.Z`). Nothing without reverse zones, or in a
    /// reverse zone.
    pub fn task_pointers(&self) -> impl Iterator<Item = TaskPointer<'_>> + '_ {
        self.address_holders.iter().filter_map(|&(address, task)| {
            let target = self.pointers.target(address)?;
            let host = self
                .pointers
                .hosts
                .binary_search_by(|(owner, a)| (&**owner, *a).cmp(&(target, address)))
                .is_ok();
            let ptr_served = self
                .config
                .reverse
                .iter()
                .any(|zone| zone.prefix.contains(&address));
            Some(TaskPointer {
                address,
                target,
                task: task as usize,
                ptr_served,
                host,
            })
        })
    }
}

#[cfg(test)]
impl Snapshot {
    /// The snapshot of `tasks` under `zone`, with no previous one (tests).
    pub(crate) fn of_tasks(
        zone: &ZoneConfig,
        tasks: impl IntoIterator<Item = crate::inventory::Task>,
        serial: u32,
    ) -> Snapshot {
        Snapshot::build(zone, Arc::new(Inventory::of_tasks(tasks)), None, serial)
    }
}

/// A task's address as the reverse zones see it ([`Snapshot::task_pointers`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TaskPointer<'a> {
    pub address: std::net::IpAddr,
    /// Where its PTR points, lower-case wire.
    pub target: &'a [u8],
    pub task: usize,
    /// A reverse zone serves the PTR (the address is in its range).
    pub ptr_served: bool,
    /// The forward zone answers `address` at `target`, an EC2 host's name.
    pub host: bool,
}

/// One node of a snapshot: a name with its RRsets, or an empty non-terminal.
#[derive(Clone, Copy)]
pub struct NodeRef<'a> {
    snapshot: &'a Snapshot,
    id: NameId,
}

impl<'a> NodeRef<'a> {
    pub fn id(&self) -> NameId {
        self.id
    }

    /// The RRsets, sorted by type.
    pub fn sets(&self) -> &'a [RRset] {
        self.snapshot.store.sets(self.id)
    }

    pub fn is_empty(&self) -> bool {
        self.sets().is_empty()
    }

    /// The records of type `rtype`, made into hickory `Record`s.
    pub fn rrset(&self, rtype: RecordType) -> Option<Vec<Record>> {
        let set = self.snapshot.store.set(self.id, rtype)?;
        let mut out = Vec::new();
        self.materialize(set, &mut out);
        Some(out)
    }

    /// Every RRset, made into hickory `Record`s, sorted by type.
    pub fn rrsets(self) -> impl Iterator<Item = Vec<Record>> + 'a {
        self.sets().iter().map(move |set| {
            let mut out = Vec::new();
            self.materialize(set, &mut out);
            out
        })
    }

    fn materialize(&self, set: &RRset, out: &mut Vec<Record>) {
        let store = &self.snapshot.store;
        let owner = store.names().name(self.id);
        for data in store.data(set) {
            match data.to_rdata(store.names()) {
                Some(rdata) => out.push(record(owner.clone(), set.ttl, rdata)),
                None => out.push(self.snapshot.soa.clone()),
            }
        }
    }
}

/// The SOA, the apex NS records and the address records of in-zone name
/// servers, all at the SOA's TTL.
fn zone_records(config: &ZoneConfig, names: &mut NameTable, apex: NameId) -> Vec<store::Record> {
    let ttl = config.soa_ttl;
    let mut out = vec![(apex, ttl, Data::Soa)];
    for ns in &config.nameservers {
        let target = names.intern(&name_table::wire_of(&ns.name));
        out.push((apex, ttl, Data::Ns(target)));
        if config.origin.zone_of(&ns.name) {
            for address in &ns.addresses {
                let data = match address {
                    std::net::IpAddr::V4(ip) => Data::A(*ip),
                    std::net::IpAddr::V6(ip) => Data::Aaaa(*ip),
                };
                out.push((target, ttl, data));
            }
        }
    }
    out
}

/// [`zone_records`], and the address records of the host names that
/// reverse zones point at (at the records' TTL).
fn own_records(
    config: &ZoneConfig,
    names: &mut NameTable,
    apex: NameId,
    pointers: &Pointers,
) -> Vec<store::Record> {
    let mut out = zone_records(config, names, apex);
    for (owner, address) in &pointers.hosts {
        let data = match address {
            std::net::IpAddr::V4(ip) => Data::A(*ip),
            std::net::IpAddr::V6(ip) => Data::Aaaa(*ip),
        };
        out.push((names.intern(owner), config.record_ttl, data));
    }
    out
}

/// The names the zone's own records use (the apex, the in-zone name
/// servers) belong to the zone: anyone who can name a task or tag it must
/// not add an address to the zone's NS. Task records at those names are
/// dropped and reported as collisions of kind `reserved`.
fn reserve_zone_names(
    zone_records: &[store::Record],
    names: &NameTable,
    inventory: &Inventory,
    entries: &mut Vec<records::Entry>,
    report: &mut Report,
) {
    let reserved: std::collections::BTreeSet<NameId> =
        zone_records.iter().map(|(owner, _, _)| *owner).collect();
    let mut taken: std::collections::BTreeMap<NameId, std::collections::BTreeSet<String>> =
        std::collections::BTreeMap::new();
    entries.retain(|entry| {
        if !reserved.contains(&entry.owner) {
            return true;
        }
        if let Some(task) = inventory.tasks.get(entry.task) {
            taken.entry(entry.owner).or_default().insert(format!(
                "{} (task {})",
                task.service_or_family(),
                task.id()
            ));
        }
        false
    });
    for (owner, inputs) in taken {
        report.collisions.push(records::Collision {
            kind: "reserved",
            label: name_table::Display(names.wire(owner)).to_string(),
            inputs: inputs.into_iter().collect(),
            under: String::new(),
        });
    }
}

/// Puts the tasks in the order of their ARN (when they are not already),
/// the order every listing shows them in and the one a patch matches tasks
/// by: then a listing needs no sort of its own per snapshot (65 ms at
/// 100 000 tasks, on the first request after each publication). Also
/// whether every ARN is distinct.
fn in_arn_order(mut inventory: Arc<Inventory>) -> (Arc<Inventory>, bool) {
    // One pass in the usual case: each task's ARN is read once.
    let strict = |i: &Inventory| i.tasks.windows(2).all(|w| w[0].task_arn < w[1].task_arn);
    if strict(&inventory) {
        return (inventory, true);
    }
    if !(inventory.tasks).is_sorted_by(|a, b| a.task_arn <= b.task_arn) {
        Arc::make_mut(&mut inventory)
            .tasks
            .sort_by(|a, b| a.task_arn.cmp(&b.task_arn));
    }
    let strict = strict(&inventory);
    (inventory, strict)
}

/// Equal, TTL included (hickory's `Record` equality ignores TTLs).
fn same_soa(a: &Record, b: &Record) -> bool {
    a == b && a.ttl == b.ttl
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

fn record(name: Name, ttl: u32, data: RData) -> Record {
    let mut record = Record::from_rdata(name, ttl, data);
    record.dns_class = DNSClass::IN;
    record
}

#[cfg(test)]
mod tests;
