//! Reverse names: which name an address of a served task points back to
//! (PTR), and the host names that addresses shared by several tasks point
//! to. Pure, like the rest of `records`.
//!
//! | address held by | PTR target | also served |
//! |---|---|---|
//! | one awsvpc (or Fargate) task | `<task-id>.<service>.Z`, the task's own name | (its A/AAAA already is) |
//! | bridge or host tasks of one EC2 instance | `<instance-id>.hosts.Z` | A/AAAA at `<instance-id>.hosts.Z` |
//! | tasks that are not of one instance | none (reported, kind `address`) | |
//!
//! Only served tasks (the verdicts that give A/AAAA records) count. A
//! bridge or host task's address is its instance's: it points at the host
//! whether one task or ten run there, so the name does not change as tasks
//! come and go. The host names are the zone's own (task records at them
//! are dropped and reported as `reserved`), and exist only when reverse
//! zones are served.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;

use hickory_proto::rr::Name;
use ipnet::IpNet;

use super::delta::Delta;
use super::{Collision, TaskNames, Verdict, labels};
use crate::inventory::{Inventory, NetworkMode, Task};
use crate::wire::name_table::{self, MAX_WIRE};

/// The label under which host names are: `<instance-id>.hosts.Z`.
pub const HOSTS_LABEL: &str = "hosts";

/// Every served address and the name it points back to, with the host
/// records those names need.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Pointers {
    /// Each address once, sorted, with its PTR target (lower-case wire).
    pub targets: Vec<(IpAddr, Target)>,
    /// The host names' address records: (owner, address), sorted.
    pub hosts: Vec<(Box<[u8]>, IpAddr)>,
    /// Addresses that several unrelated tasks hold: no PTR.
    pub collisions: Vec<Collision>,
}

/// A PTR target in lower-case wire format, shared by the pointers of the
/// publications it stays the same in.
pub type Target = Arc<[u8]>;

/// Every address of a served task with the task's index in its inventory,
/// sorted: which tasks to read again when an address is touched, so that
/// an event reads a few tasks rather than every one (reading 100 000 tasks
/// scattered over the heap was the largest single cost of an event).
pub type AddressHolders = Vec<(IpAddr, u32)>;

/// Who an address belongs to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Holder {
    /// An EC2 instance (its host-name label): bridge and host tasks.
    Host(String),
    /// One task (its index): awsvpc tasks, or tasks of no known instance.
    Task(usize),
}

impl Pointers {
    /// The targets of the addresses in `prefix`, in address order.
    pub fn within(&self, prefix: &IpNet) -> &[(IpAddr, Target)] {
        let (first, last) = (prefix.network(), prefix.broadcast());
        let start = self.targets.partition_point(|(ip, _)| *ip < first);
        let end = self.targets.partition_point(|(ip, _)| *ip <= last);
        &self.targets[start..end.max(start)]
    }

    /// Where `address` points, if a served task holds it.
    pub fn target(&self, address: IpAddr) -> Option<&[u8]> {
        let at = self.targets.binary_search_by(|(ip, _)| ip.cmp(&address));
        at.ok().map(|i| &*self.targets[i].1)
    }
}

/// The pointers of the served tasks of `inventory` (`verdicts` in its
/// order) in the zone `origin`, and who holds each address.
pub fn pointers(
    inventory: &Inventory,
    verdicts: &[Verdict],
    origin: &Name,
) -> (Pointers, AddressHolders) {
    let origin = name_table::wire_of(origin);
    let (holders, held) = holders(inventory, verdicts, 0..inventory.tasks.len(), |_| true);
    (group(&holders, inventory, &origin), held)
}

/// `previous` and `previous_held`, the pointers of an earlier inventory
/// and who held each address, brought up to date for `inventory` by
/// `delta`: the same as [`pointers`]. Only the addresses the delta touched
/// (those of the tasks added, removed or changed and of those whose
/// verdict changed) can point elsewhere; their holders now are among the
/// tasks the delta read again and those that held them before, so only
/// those tasks are read, and one event costs a pass over the addresses
/// rather than a read of every task.
pub fn patched(
    previous: &Pointers,
    previous_held: &[(IpAddr, u32)],
    inventory: &Inventory,
    delta: &Delta,
    origin: &Name,
) -> (Pointers, AddressHolders) {
    let origin = name_table::wire_of(origin);
    let touched = &delta.touched[..];
    let is_touched = |ip: &IpAddr| touched.binary_search(ip).is_ok();
    let new_index = |old: u32| delta.new_of_old.get(old as usize).and_then(|&n| n);
    let mut candidates = delta.read_again.clone();
    for ip in touched {
        let start = previous_held.partition_point(|(held, _)| held < ip);
        let held_before = previous_held[start..]
            .iter()
            .take_while(|(held, _)| held == ip);
        candidates.extend(held_before.filter_map(|&(_, old)| Some(new_index(old)? as usize)));
    }
    candidates.sort_unstable();
    candidates.dedup();
    let (holders, fresh_held) = holders(inventory, &delta.verdicts, candidates.into_iter(), |ip| {
        is_touched(&ip)
    });
    let fresh = group(&holders, inventory, &origin);
    // An address not touched is held by tasks the delta did not change:
    // the same tasks, at their new places (which keep their order).
    let mut held: AddressHolders = (previous_held.iter())
        .filter(|(ip, _)| !is_touched(ip))
        .filter_map(|&(ip, old)| Some((ip, new_index(old)?)))
        .chain(fresh_held)
        .collect();
    held.sort();
    // Both lists are in address order: a stable sort of the two runs is a
    // merge.
    let mut targets: Vec<(IpAddr, Target)> = (previous.targets.iter())
        .filter(|(ip, _)| !is_touched(ip))
        .cloned()
        .chain(fresh.targets)
        .collect();
    targets.sort_by_key(|(ip, _)| *ip);
    let mut hosts: Vec<(Box<[u8]>, IpAddr)> = (previous.hosts.iter())
        .filter(|(_, ip)| !is_touched(ip))
        .cloned()
        .chain(fresh.hosts)
        .collect();
    hosts.sort();
    hosts.dedup();
    let address = |c: &Collision| c.label.parse::<IpAddr>().ok();
    let mut collisions: Vec<Collision> = (previous.collisions.iter())
        .filter(|c| address(c).is_some_and(|ip| !is_touched(&ip)))
        .cloned()
        .chain(fresh.collisions)
        .collect();
    collisions.sort_by_key(address);
    let pointers = Pointers {
        targets,
        hosts,
        collisions,
    };
    (pointers, held)
}

/// Who holds each address that `wanted` picks of the served tasks at
/// `indices` (increasing), sorted, each holder of an address once; and
/// each such address with the index of every task that holds it.
fn holders(
    inventory: &Inventory,
    verdicts: &[Verdict],
    indices: impl Iterator<Item = usize>,
    wanted: impl Fn(IpAddr) -> bool,
) -> (Vec<(IpAddr, Holder)>, AddressHolders) {
    let mut holders: Vec<(IpAddr, Holder)> = Vec::new();
    let mut held: AddressHolders = Vec::new();
    for index in indices {
        let (Some(task), Some(verdict)) = (inventory.tasks.get(index), verdicts.get(index)) else {
            continue;
        };
        if !verdict.is_served() {
            continue;
        }
        let addresses = (task.ipv4.iter().copied().map(IpAddr::V4))
            .chain(task.ipv6.iter().copied().map(IpAddr::V6))
            .filter(|ip| wanted(*ip));
        let mut holder = None;
        for ip in addresses {
            let holder = holder.get_or_insert_with(|| match host_label(task) {
                Some(host) => Holder::Host(host),
                None => Holder::Task(index),
            });
            holders.push((ip, holder.clone()));
            held.push((ip, index as u32));
        }
    }
    holders.sort_unstable();
    holders.dedup();
    held.sort_unstable();
    held.dedup();
    (holders, held)
}

/// The pointers of the addresses in `holders` (sorted, from [`holders`]).
fn group(holders: &[(IpAddr, Holder)], inventory: &Inventory, origin: &[u8]) -> Pointers {
    let mut out = Pointers::default();
    let mut hosts = BTreeSet::new();
    for group in holders.chunk_by(|a, b| a.0 == b.0) {
        let address = group[0].0;
        if let Holder::Host(host) = &group[0].1 {
            // A host's address records stand whoever else claims it.
            if let Some(owner) = host_name(host, origin) {
                hosts.insert((owner, address));
            }
        }
        if let [(_, holder)] = group {
            let target = match holder {
                Holder::Host(host) => host_name(host, origin),
                Holder::Task(index) => task_name(&inventory.tasks[*index], origin),
            };
            if let Some(target) = target {
                out.targets.push((address, target.into()));
            }
            continue;
        }
        out.collisions.push(Collision {
            kind: "address",
            label: address.to_string(),
            inputs: group
                .iter()
                .map(|(_, holder)| match holder {
                    Holder::Host(host) => format!("host {host}"),
                    Holder::Task(i) => {
                        let task = &inventory.tasks[*i];
                        format!("{} (task {})", task.service_or_family(), task.id())
                    }
                })
                .collect(),
            under: String::new(),
        });
    }
    out.hosts = hosts.into_iter().collect();
    out
}

/// The reverse name of `address` (`5.1.0.10.in-addr.arpa.`, nibbles for
/// IPv6) in lower-case wire format.
pub fn reverse_wire(address: IpAddr) -> Vec<u8> {
    let mut out = Vec::with_capacity(73);
    let mut label = |text: &str| {
        out.push(text.len() as u8);
        out.extend_from_slice(text.as_bytes());
    };
    match address {
        IpAddr::V4(ip) => {
            for octet in ip.octets().iter().rev() {
                label(&octet.to_string());
            }
            label("in-addr");
        }
        IpAddr::V6(ip) => {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            for byte in ip.octets().iter().rev() {
                for nibble in [byte & 0x0f, byte >> 4] {
                    let digit = [HEX[usize::from(nibble)]];
                    label(std::str::from_utf8(&digit).unwrap_or("0"));
                }
            }
            label("ip6");
        }
    }
    label("arpa");
    out.push(0);
    out
}

/// The address a full-length reverse name (lower-case wire) stands for;
/// `None` for any other name.
pub fn address_of(wire: &[u8]) -> Option<IpAddr> {
    let labels: Vec<&[u8]> = name_table::labels(wire).collect();
    match labels.as_slice() {
        [d, c, b, a, b"in-addr", b"arpa"] => {
            let octet = |l: &[u8]| -> Option<u8> {
                // Decimal without leading zeros, as the reverse name has it.
                let text = std::str::from_utf8(l).ok()?;
                (text.len() == 1 || !text.starts_with('0'))
                    .then(|| text.parse().ok())
                    .flatten()
            };
            Some(IpAddr::from([octet(a)?, octet(b)?, octet(c)?, octet(d)?]))
        }
        [nibbles @ .., b"ip6", b"arpa"] if nibbles.len() == 32 => {
            let mut octets = [0u8; 16];
            for (i, label) in nibbles.iter().rev().enumerate() {
                let [digit] = label else { return None };
                let value = (*digit as char).to_digit(16)? as u8;
                if digit.is_ascii_uppercase() {
                    return None;
                }
                octets[i / 2] |= if i % 2 == 0 { value << 4 } else { value };
            }
            Some(IpAddr::from(octets))
        }
        _ => None,
    }
}

/// How many labels a full reverse name has below `arpa`'s tree: 4 + 2
/// for IPv4, 32 + 2 for IPv6.
pub fn full_labels(address_is_v4: bool) -> usize {
    if address_is_v4 { 6 } else { 34 }
}

/// EC2's private DNS name for `address` under `domain` (see
/// `ReverseFallback`): `ip-10-0-1-5.ec2.internal.`, IPv4 only.
pub fn ec2_name(address: IpAddr, domain: &Name) -> Option<Name> {
    let IpAddr::V4(ip) = address else {
        return None;
    };
    let [a, b, c, d] = ip.octets();
    Name::from_ascii(format!("ip-{a}-{b}-{c}-{d}"))
        .ok()?
        .append_domain(domain)
        .ok()
}

/// The label of a bridge or host task's instance: the task is reached at
/// the instance's address.
fn host_label(task: &Task) -> Option<String> {
    match task.network_mode {
        NetworkMode::Bridge | NetworkMode::Host => {
            let id = task.ec2_instance_id.as_deref()?;
            labels::host_label(id).map(|l| l.into_owned())
        }
        NetworkMode::Awsvpc | NetworkMode::None => None,
    }
}

/// `<host>.hosts.Z` in wire format.
fn host_name(host: &str, origin: &[u8]) -> Option<Box<[u8]>> {
    join(&[host, HOSTS_LABEL], origin)
}

/// The task's own name, `<task-id>.<service>.Z`, under its first service
/// label (the one SRV records target).
fn task_name(task: &Task, origin: &[u8]) -> Option<Box<[u8]>> {
    let names = TaskNames::of(task)?;
    join(&[&names.task, &names.services[0]], origin)
}

fn join(labels: &[&str], origin: &[u8]) -> Option<Box<[u8]>> {
    let mut wire = Vec::with_capacity(MAX_WIRE);
    for label in labels {
        wire.push(label.len() as u8);
        wire.extend_from_slice(label.as_bytes());
    }
    wire.extend_from_slice(origin);
    (wire.len() <= MAX_WIRE).then(|| wire.into_boxed_slice())
}

#[cfg(test)]
mod tests;
