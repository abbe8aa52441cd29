//! The records of one zone in compact form: a name table, each name's
//! RRsets as a range of one array, each RRset's data as a range of another.
//! At 100 000 tasks this is about 300 bytes a task, where hickory `Record`s
//! (a `Name` and an `RData` each, names on the heap) were several kilobytes.
//! Answers that need hickory types get them made on demand
//! ([`super::NodeRef`]); the fast path never does.

use std::cmp::Ordering;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};

use hickory_proto::rr::RecordType;

use crate::records::{Data, Entry};
use crate::wire::name_table::{self, NameId, NameTable};

/// One RRset: its type and TTL, and where its data is in [`Store::data`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RRset {
    pub rtype: RecordType,
    pub ttl: u32,
    start: u32,
    end: u32,
}

/// A record to store: owner, TTL, data.
pub type Record = (NameId, u32, Data);

#[derive(Debug, Default)]
pub struct Store {
    names: NameTable,
    /// Whether each name is a node of the zone (it has records, or names
    /// below it do). Other names are only SRV or NS targets.
    is_node: Vec<bool>,
    /// The RRsets of name `i` are `sets[first_set[i]..first_set[i + 1]]`,
    /// sorted by type.
    first_set: Vec<u32>,
    sets: Vec<RRset>,
    /// Each RRset's data in canonical order (RFC 4034 §6.3), no duplicates.
    data: Vec<Data>,
    nodes: usize,
    /// How many nodes sit directly below each name: a name without records
    /// is a node (an empty non-terminal) while this is not zero.
    children: Vec<u32>,
    /// Unique in the process: a store patched from this one names it.
    generation: u64,
    /// The store this one was patched from, and the names whose records the
    /// patch replaced: a diff between the two looks at those names only.
    patched_from: Option<(u64, Vec<NameId>)>,
}

fn next_generation() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, AtomicOrdering::Relaxed)
}

impl Store {
    /// Stores `entries` (at `ttl`) and `extra` under `apex`, merging
    /// duplicates, and adds the empty non-terminals. An RRset whose records
    /// come with different TTLs takes the lowest (RFC 2181 §5.2).
    pub fn build(
        mut names: NameTable,
        apex: NameId,
        entries: &[Entry],
        ttl: u32,
        extra: &[Record],
    ) -> Store {
        let records =
            || (entries.iter().map(|e| (e.owner, ttl, e.data))).chain(extra.iter().copied());

        let mut is_node = vec![false; names.len()];
        for (owner, _, _) in records() {
            is_node[owner as usize] = true;
        }
        is_node[apex as usize] = true;
        let children = add_empty_non_terminals(&mut names, &mut is_node, apex);

        // Counting sort by owner: records of one name end up together.
        let mut first = vec![0u32; names.len() + 1];
        for (owner, _, _) in records() {
            first[owner as usize + 1] += 1;
        }
        for i in 1..first.len() {
            first[i] += first[i - 1];
        }
        let mut next = first.clone();
        let mut by_owner = vec![(0u32, Data::Soa); first[names.len()] as usize];
        for (owner, ttl, data) in records() {
            let at = &mut next[owner as usize];
            by_owner[*at as usize] = (ttl, data);
            *at += 1;
        }

        let mut store = Store::filling(is_node, children, names.len(), by_owner.len());
        for id in 0..names.len() {
            store.first_set.push(store.sets.len() as u32);
            let own = &mut by_owner[first[id] as usize..first[id + 1] as usize];
            own.sort_unstable_by(|a, b| cmp_data(&names, &a.1, &names, &b.1));
            store.add_sets(own);
        }
        store.first_set.push(store.sets.len() as u32);
        store.sets.shrink_to_fit();
        store.data.shrink_to_fit();
        store.names = names;
        store
    }

    /// A store whose nodes are known and whose records are about to be
    /// appended name by name (room for `sets` RRsets and `data` records);
    /// its name table comes last.
    fn filling(is_node: Vec<bool>, children: Vec<u32>, sets: usize, data: usize) -> Store {
        Store {
            first_set: Vec::with_capacity(is_node.len() + 1),
            sets: Vec::with_capacity(sets),
            data: Vec::with_capacity(data),
            nodes: is_node.iter().filter(|n| **n).count(),
            is_node,
            names: NameTable::default(),
            children,
            generation: next_generation(),
            patched_from: None,
        }
    }

    /// Appends the RRsets of one name from its sorted records.
    fn add_sets(&mut self, records: &[(u32, Data)]) {
        let mut i = 0;
        while i < records.len() {
            let rtype = records[i].1.rtype();
            let start = self.data.len() as u32;
            let mut ttl = u32::MAX;
            while i < records.len() && records[i].1.rtype() == rtype {
                ttl = ttl.min(records[i].0);
                if self.data.last().filter(|_| self.data.len() as u32 > start)
                    != Some(&records[i].1)
                {
                    self.data.push(records[i].1);
                }
                i += 1;
            }
            self.sets.push(RRset {
                rtype,
                ttl,
                start,
                end: self.data.len() as u32,
            });
        }
    }

    pub fn names(&self) -> &NameTable {
        &self.names
    }

    /// This store with the records of each name in `owners` replaced by the
    /// ones given (none: the name has no records any more); every other
    /// name keeps its records. `names` is this store's table with any new
    /// names appended, so ids keep their meaning and data is copied as it
    /// is. Empty non-terminals follow. `None` when nothing changed.
    pub fn patched(
        &self,
        mut names: NameTable,
        apex: NameId,
        mut owners: Vec<(NameId, Vec<(u32, Data)>)>,
    ) -> Option<Store> {
        owners.sort_unstable_by_key(|(id, _)| *id);
        owners.dedup_by_key(|(id, _)| *id);
        for (_, records) in &mut owners {
            records.sort_unstable_by(|a, b| cmp_data(&names, &a.1, &names, &b.1));
        }
        let touched: Vec<NameId> = owners.iter().map(|(id, _)| *id).collect();
        let has_records = |id: NameId| match touched.binary_search(&id) {
            Ok(k) => !owners[k].1.is_empty(),
            Err(_) => !self.sets(id).is_empty(),
        };
        let mut is_node = self.is_node.clone();
        let mut children = self.children.clone();
        let apex_len = names.wire(apex).len();
        let mut scratch = Vec::with_capacity(name_table::MAX_WIRE);
        for &owner in &touched {
            // A name that gains or loses its node status tells its parent,
            // which may then gain or lose its own.
            let mut id = owner;
            loop {
                let at = id as usize;
                if is_node.len() <= at {
                    is_node.resize(at + 1, false);
                    children.resize(at + 1, 0);
                }
                let node = id == apex || has_records(id) || children[at] > 0;
                if node == is_node[at] {
                    break;
                }
                is_node[at] = node;
                scratch.clear();
                scratch.extend_from_slice(names.wire(id));
                let Some(parent) = name_table::parent(&scratch).filter(|p| p.len() >= apex_len)
                else {
                    break;
                };
                let parent = names.intern(parent);
                if children.len() <= parent as usize {
                    is_node.resize(parent as usize + 1, false);
                    children.resize(parent as usize + 1, 0);
                }
                let count = &mut children[parent as usize];
                *count = if node {
                    *count + 1
                } else {
                    count.saturating_sub(1)
                };
                id = parent;
            }
        }
        is_node.resize(names.len(), false);
        children.resize(names.len(), 0);

        let mut store = Store::filling(
            is_node,
            children,
            self.sets.len() + owners.len(),
            self.data.len() + owners.len(),
        );
        // Runs of names the patch leaves alone are copied whole.
        let mut from: NameId = 0;
        for (id, records) in &owners {
            store.copy_sets(self, from, *id);
            store.first_set.push(store.sets.len() as u32);
            store.add_sets(records);
            from = id + 1;
        }
        store.copy_sets(self, from, names.len() as NameId);
        store.first_set.push(store.sets.len() as u32);
        store.names = names;

        let same = store.nodes == self.nodes
            && touched.iter().all(|&id| {
                let (ours, theirs) = (store.sets(id), self.sets(id));
                ours.len() == theirs.len()
                    && ours.iter().zip(theirs).all(|(a, b)| {
                        a.rtype == b.rtype && a.ttl == b.ttl && store.data(a) == self.data(b)
                    })
            });
        if same {
            return None;
        }
        store.patched_from = Some((self.generation, touched));
        Some(store)
    }

    /// Whether the records of `id` are exactly `data` (in any order, with
    /// repeats), whatever their TTLs.
    pub fn holds_exactly(&self, id: NameId, data: &mut Vec<Data>) -> bool {
        data.sort_unstable_by(|a, b| cmp_data(&self.names, a, &self.names, b));
        data.dedup();
        let ours = self.sets(id).iter().flat_map(|set| self.data(set));
        ours.eq(data.iter())
    }

    /// Appends the RRsets of names `from..to` of `old` (none for names it
    /// does not have), one name after the other.
    fn copy_sets(&mut self, old: &Store, from: NameId, to: NameId) {
        let (from, to) = (from as usize, to as usize);
        let old_to = to.min(old.first_set.len().saturating_sub(1));
        if from < old_to {
            let (first, last) = (old.first_set[from] as usize, old.first_set[old_to] as usize);
            let set_shift = self.sets.len() as i64 - first as i64;
            self.first_set.extend(
                old.first_set[from..old_to]
                    .iter()
                    .map(|&f| (f as i64 + set_shift) as u32),
            );
            let sets = &old.sets[first..last];
            if let (Some(start), Some(end)) = (sets.first(), sets.last()) {
                let data_shift = self.data.len() as i64 - start.start as i64;
                self.data
                    .extend_from_slice(&old.data[start.start as usize..end.end as usize]);
                self.sets.extend(sets.iter().map(|set| RRset {
                    start: (set.start as i64 + data_shift) as u32,
                    end: (set.end as i64 + data_shift) as u32,
                    ..*set
                }));
            }
        }
        for _ in from.max(old_to)..to {
            self.first_set.push(self.sets.len() as u32);
        }
    }

    /// Whether this store was patched from another (tests).
    #[cfg(test)]
    pub fn is_patched(&self) -> bool {
        self.patched_from.is_some()
    }

    /// The names whose records a patch from `base` replaced, when this store
    /// was patched from `base`.
    fn touched_since(&self, base: &Store) -> Option<&[NameId]> {
        match &self.patched_from {
            Some((generation, touched)) if *generation == base.generation => Some(touched),
            _ => None,
        }
    }

    /// The node named `wire` (lower case): a name with records, or an empty
    /// non-terminal.
    pub fn lookup(&self, wire: &[u8]) -> Option<NameId> {
        self.names.get(wire).filter(|&id| self.is_node(id))
    }

    pub fn is_node(&self, id: NameId) -> bool {
        self.is_node.get(id as usize).copied().unwrap_or(false)
    }

    /// Every node, empty non-terminals included.
    pub fn nodes(&self) -> impl Iterator<Item = NameId> + '_ {
        (0..self.names.len() as NameId).filter(|&id| self.is_node(id))
    }

    pub fn node_count(&self) -> usize {
        self.nodes
    }

    /// Records stored (duplicates merged).
    pub fn record_count(&self) -> usize {
        self.data.len()
    }

    /// The RRsets of `id`, sorted by type; none for an empty non-terminal.
    pub fn sets(&self, id: NameId) -> &[RRset] {
        let id = id as usize;
        match (self.first_set.get(id), self.first_set.get(id + 1)) {
            (Some(&start), Some(&end)) => &self.sets[start as usize..end as usize],
            _ => &[],
        }
    }

    pub fn set(&self, id: NameId, rtype: RecordType) -> Option<&RRset> {
        self.sets(id).iter().find(|s| s.rtype == rtype)
    }

    pub fn data(&self, set: &RRset) -> &[Data] {
        &self.data[set.start as usize..set.end as usize]
    }

    /// Calls `found` with every record of this store that `other` does not
    /// hold with the same TTL: (owner, RRset, data). Both stores' RRsets are
    /// sorted, so each is one merge.
    pub fn not_in(&self, other: &Store, mut found: impl FnMut(NameId, &RRset, &Data)) {
        // One patched from the other: only the names the patch touched can
        // differ (their ids mean the same in both).
        let touched = self
            .touched_since(other)
            .or_else(|| other.touched_since(self));
        let ids: Box<dyn Iterator<Item = NameId>> = match touched {
            Some(touched) => Box::new(touched.iter().copied().filter(|&id| self.is_node(id))),
            None => Box::new(self.nodes()),
        };
        for id in ids {
            let theirs = other.lookup(self.names.wire(id));
            for set in self.sets(id) {
                let ours = self.data(set);
                let same_set = theirs
                    .and_then(|t| other.set(t, set.rtype))
                    .filter(|t| t.ttl == set.ttl);
                let Some(theirs) = same_set.map(|t| other.data(t)) else {
                    ours.iter().for_each(|d| found(id, set, d));
                    continue;
                };
                let mut j = 0;
                for data in ours {
                    while j < theirs.len()
                        && cmp_data(&other.names, &theirs[j], &self.names, data) == Ordering::Less
                    {
                        j += 1;
                    }
                    let held = theirs.get(j).is_some_and(|t| {
                        cmp_data(&other.names, t, &self.names, data) == Ordering::Equal
                    });
                    if !held {
                        found(id, set, data);
                    }
                }
            }
        }
    }

    /// Heap bytes held (for the benches).
    pub fn heap_bytes(&self) -> usize {
        self.names.heap_bytes()
            + self.is_node.capacity()
            + 4 * self.first_set.capacity()
            + size_of::<RRset>() * self.sets.capacity()
            + size_of::<Data>() * self.data.capacity()
    }

    /// Whether both stores hold the same records (names compared by value:
    /// ids differ from one build to the next).
    pub fn same_content(&self, other: &Store) -> bool {
        if self.nodes != other.nodes
            || self.sets.len() != other.sets.len()
            || self.data.len() != other.data.len()
        {
            return false;
        }
        self.nodes().all(|id| {
            let Some(theirs) = other.lookup(self.names.wire(id)) else {
                return false;
            };
            let (ours, theirs) = (self.sets(id), other.sets(theirs));
            ours.len() == theirs.len()
                && ours.iter().zip(theirs).all(|(a, b)| {
                    a.rtype == b.rtype
                        && a.ttl == b.ttl
                        && self.data(a).len() == other.data(b).len()
                        && (self.data(a).iter().zip(other.data(b))).all(|(x, y)| {
                            cmp_data(&self.names, x, &other.names, y) == Ordering::Equal
                        })
                })
        })
    }
}

/// Marks every name between a node and the apex as a node, adding it to the
/// table when no record has it as owner; returns how many nodes are directly
/// below each name.
fn add_empty_non_terminals(
    names: &mut NameTable,
    is_node: &mut Vec<bool>,
    apex: NameId,
) -> Vec<u32> {
    let apex_len = names.wire(apex).len();
    let owners: Vec<NameId> = (0..is_node.len() as NameId)
        .filter(|&id| is_node[id as usize] && id != apex)
        .collect();
    let mut children = vec![0u32; names.len()];
    let mut scratch = Vec::with_capacity(name_table::MAX_WIRE);
    for owner in owners {
        scratch.clear();
        scratch.extend_from_slice(names.wire(owner));
        let mut at = 0;
        // Each node counts once in its parent: owners here, empty
        // non-terminals when first marked.
        while let Some(parent) = name_table::parent(&scratch[at..]) {
            if parent.len() < apex_len {
                break;
            }
            let id = names.intern(parent) as usize;
            if is_node.len() <= id {
                is_node.resize(id + 1, false);
                children.resize(id + 1, 0);
            }
            children[id] += 1;
            if is_node[id] {
                break;
            }
            is_node[id] = true;
            at = scratch.len() - parent.len();
        }
    }
    children.resize(names.len(), 0);
    children
}

/// RFC 4034 §6.3 order: by type, then by the data's wire bytes, names
/// uncompressed and in lower case. `a` and `b` may come from different
/// stores, each with its own name table.
fn cmp_data(names_a: &NameTable, a: &Data, names_b: &NameTable, b: &Data) -> Ordering {
    let by_type = u16::from(a.rtype()).cmp(&u16::from(b.rtype()));
    by_type.then_with(|| match (a, b) {
        (Data::A(x), Data::A(y)) => x.octets().cmp(&y.octets()),
        (Data::Aaaa(x), Data::Aaaa(y)) => x.octets().cmp(&y.octets()),
        (
            Data::Srv {
                priority: p1,
                weight: w1,
                port: o1,
                target: t1,
            },
            Data::Srv {
                priority: p2,
                weight: w2,
                port: o2,
                target: t2,
            },
        ) => (p1, w1, o1)
            .cmp(&(p2, w2, o2))
            .then_with(|| names_a.wire(*t1).cmp(names_b.wire(*t2))),
        (Data::Ns(x), Data::Ns(y)) | (Data::Ptr(x), Data::Ptr(y)) => {
            names_a.wire(*x).cmp(names_b.wire(*y))
        }
        _ => Ordering::Equal,
    })
}
