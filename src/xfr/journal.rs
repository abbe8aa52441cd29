//! The IXFR journal: what changed between recent serials (RFC 1995).
//!
//! Each publication that changes the serial adds one [`Diff`]; the journal
//! keeps the most recent ones, bounded in count and in records, so that a
//! secondary a few serials behind gets only the changes, and one further
//! behind (or with an unknown serial) gets the whole zone instead.

use std::cmp::Ordering;
use std::collections::VecDeque;
use std::sync::Arc;

use hickory_proto::rr::Record;

use crate::zone::{Snapshot, serial};

/// Records removed and added from one serial to the next.
#[derive(Debug, PartialEq)]
pub struct Diff {
    pub from: Record,
    pub to: Record,
    pub removed: Vec<Record>,
    pub added: Vec<Record>,
}

impl Diff {
    pub fn from_serial(&self) -> u32 {
        soa_serial(&self.from)
    }

    pub fn to_serial(&self) -> u32 {
        soa_serial(&self.to)
    }

    fn len(&self) -> usize {
        self.removed.len() + self.added.len() + 2
    }

    /// The difference between two snapshots.
    pub fn between_snapshots(old: &Snapshot, new: &Snapshot) -> Diff {
        Diff {
            from: old.soa().clone(),
            to: new.soa().clone(),
            removed: old.records_not_in(new),
            added: new.records_not_in(old),
        }
    }

    /// The difference between two zones' records (each sorted, SOA first).
    /// A record whose TTL changed is removed and added again. The reference
    /// that [`Diff::between_snapshots`] is tested against.
    #[cfg(test)]
    pub fn between(old: &[Record], new: &[Record]) -> Option<Diff> {
        let (old_soa, old_rest) = old.split_first()?;
        let (new_soa, new_rest) = new.split_first()?;
        let mut removed = Vec::new();
        let mut added = Vec::new();
        let (mut i, mut j) = (0, 0);
        while i < old_rest.len() || j < new_rest.len() {
            match (old_rest.get(i), new_rest.get(j)) {
                (Some(a), Some(b)) => match a.cmp(b) {
                    Ordering::Less => {
                        removed.push(a.clone());
                        i += 1;
                    }
                    Ordering::Greater => {
                        added.push(b.clone());
                        j += 1;
                    }
                    Ordering::Equal => {
                        if a.ttl != b.ttl {
                            removed.push(a.clone());
                            added.push(b.clone());
                        }
                        i += 1;
                        j += 1;
                    }
                },
                (Some(a), None) => {
                    removed.push(a.clone());
                    i += 1;
                }
                (None, Some(b)) => {
                    added.push(b.clone());
                    j += 1;
                }
                (None, None) => break,
            }
        }
        Some(Diff {
            from: old_soa.clone(),
            to: new_soa.clone(),
            removed,
            added,
        })
    }
}

/// The serial of an SOA record (0 for anything else: never the case here).
pub fn soa_serial(record: &Record) -> u32 {
    match &record.data {
        hickory_proto::rr::RData::SOA(soa) => soa.serial,
        _ => 0,
    }
}

/// Recent diffs, oldest first, each ending where the next starts. Immutable:
/// each snapshot carries the journal that leads up to it.
#[derive(Debug, Default)]
pub struct Journal {
    diffs: VecDeque<Arc<Diff>>,
}

/// How much history is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JournalLimits {
    pub max_diffs: usize,
    pub max_records: usize,
}

impl Default for JournalLimits {
    fn default() -> Self {
        JournalLimits {
            max_diffs: 100,
            max_records: 100_000,
        }
    }
}

impl Journal {
    /// This journal with `diff` appended, trimmed to `limits` (oldest first
    /// out). A diff that does not start where the journal ends (a restart, or
    /// a serial set by hand) starts a new history.
    pub fn with(&self, diff: Diff, limits: JournalLimits) -> Journal {
        let continues = self
            .diffs
            .back()
            .is_none_or(|last| last.to_serial() == diff.from_serial());
        let mut diffs = if continues {
            self.diffs.clone()
        } else {
            VecDeque::new()
        };
        diffs.push_back(Arc::new(diff));
        let mut total: usize = diffs.iter().map(|d| d.len()).sum();
        while diffs.len() > limits.max_diffs.max(1)
            || (total > limits.max_records && diffs.len() > 1)
        {
            if let Some(first) = diffs.pop_front() {
                total -= first.len();
            }
        }
        Journal { diffs }
    }

    /// The diffs leading from `serial` to the journal's end, or `None` when
    /// `serial` is not in the journal.
    pub fn since(&self, serial: u32) -> Option<Vec<Arc<Diff>>> {
        let start = self.diffs.iter().position(|d| d.from_serial() == serial)?;
        Some(self.diffs.iter().skip(start).cloned().collect())
    }

    pub fn len(&self) -> usize {
        self.diffs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.diffs.is_empty()
    }
}

/// Whether `client` is at or past `current` (serial arithmetic): nothing to
/// send.
pub fn is_current(client: u32, current: u32) -> bool {
    matches!(
        serial::compare(client, current),
        Some(Ordering::Equal | Ordering::Greater)
    )
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::str::FromStr;

    use hickory_proto::rr::rdata::{A, SOA as SoaData};
    use hickory_proto::rr::{Name, RData};

    use super::*;

    fn soa(serial: u32) -> Record {
        let name = Name::from_str("local.").unwrap();
        Record::from_rdata(
            name.clone(),
            60,
            RData::SOA(SoaData::new(name.clone(), name, serial, 60, 10, 3600, 5)),
        )
    }

    fn a(owner: &str, last: u8, ttl: u32) -> Record {
        Record::from_rdata(
            Name::from_ascii(owner).unwrap(),
            ttl,
            RData::A(A(Ipv4Addr::new(10, 0, 0, last))),
        )
    }

    fn zone(serial: u32, mut records: Vec<Record>) -> Vec<Record> {
        records.sort();
        records.insert(0, soa(serial));
        records
    }

    #[test]
    fn diff_between_zones() {
        let old = zone(
            1,
            vec![
                a("a.local.", 1, 10),
                a("b.local.", 2, 10),
                a("c.local.", 3, 10),
            ],
        );
        let new = zone(
            2,
            vec![
                a("a.local.", 1, 10),
                a("c.local.", 3, 30),
                a("d.local.", 4, 10),
            ],
        );
        let diff = Diff::between(&old, &new).unwrap();
        assert_eq!((diff.from_serial(), diff.to_serial()), (1, 2));
        let show = |rs: &[Record]| {
            rs.iter()
                .map(|r| format!("{} {}", r.name, r.ttl))
                .collect::<Vec<_>>()
        };
        assert_eq!(show(&diff.removed), ["b.local. 10", "c.local. 10"]);
        assert_eq!(show(&diff.added), ["c.local. 30", "d.local. 10"]);
    }

    #[test]
    fn journal_chains_trims_and_restarts() {
        let limits = JournalLimits {
            max_diffs: 3,
            max_records: 1000,
        };
        let mut journal = Journal::default();
        let mut zones = vec![zone(10, vec![])];
        for serial in 11..=15 {
            zones.push(zone(serial, vec![a("x.local.", serial as u8, 10)]));
            let n = zones.len();
            journal = journal.with(Diff::between(&zones[n - 2], &zones[n - 1]).unwrap(), limits);
        }
        assert_eq!(journal.len(), 3, "trimmed to 3");
        assert!(journal.since(11).is_none(), "too old");
        let chain = journal.since(12).unwrap();
        assert_eq!(
            chain
                .iter()
                .map(|d| (d.from_serial(), d.to_serial()))
                .collect::<Vec<_>>(),
            [(12, 13), (13, 14), (14, 15)]
        );
        // A diff that does not continue the history replaces it.
        let restarted = journal.with(
            Diff::between(&zone(100, vec![]), &zone(101, vec![])).unwrap(),
            limits,
        );
        assert_eq!(restarted.len(), 1);
        assert!(restarted.since(14).is_none());

        let tiny = JournalLimits {
            max_diffs: 10,
            max_records: 5,
        };
        let big = Diff::between(
            &zone(1, vec![]),
            &zone(2, vec![a("a.local.", 1, 10), a("b.local.", 2, 10)]),
        )
        .unwrap();
        let small = Diff::between(
            &zone(2, vec![a("a.local.", 1, 10), a("b.local.", 2, 10)]),
            &zone(3, vec![a("a.local.", 1, 10), a("b.local.", 2, 10)]),
        )
        .unwrap();
        let j = Journal::default().with(big, tiny).with(small, tiny);
        assert_eq!(j.len(), 1, "record budget drops the oldest");
    }

    #[test]
    fn current_serials() {
        assert!(is_current(5, 5));
        assert!(is_current(6, 5));
        assert!(!is_current(4, 5));
        assert!(!is_current(u32::MAX, 1), "wrapped: 1 is after u32::MAX");
    }
}
