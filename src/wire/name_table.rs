//! Domain names held once each, in lower-case wire format, and known by a
//! small id. The record set refers to its names by id and the zone keeps the
//! same table, so that a hundred thousand names cost one buffer and one hash
//! index rather than an allocation (and a hickory `Name`) each.
//!
//! Wire format here is the uncompressed form of RFC 1035 §3.1: each label
//! preceded by its length, ending with the root's zero byte. Names are stored
//! in lower case; lookups take lower-case wire names.

use std::cmp::Ordering;
use std::fmt;
use std::hash::BuildHasher;

use hashbrown::HashTable;
use hickory_proto::rr::Name;

/// The index of a name in its [`NameTable`].
pub type NameId = u32;

/// The longest name in wire format (RFC 1035 §2.3.4).
pub const MAX_WIRE: usize = 255;

/// Names are hashed on every lookup, queries included: a fast hash, seeded
/// per process.
type Hasher = foldhash::fast::RandomState;

#[derive(Clone, Default)]
pub struct NameTable {
    /// Every name's bytes, one after the other.
    bytes: Vec<u8>,
    /// Where each name ends in `bytes`; name `i` starts where `i - 1` ends.
    ends: Vec<u32>,
    index: HashTable<NameId>,
    hasher: Hasher,
}

impl NameTable {
    pub fn with_capacity(names: usize) -> NameTable {
        NameTable {
            bytes: Vec::with_capacity(names * 24),
            ends: Vec::with_capacity(names),
            index: HashTable::with_capacity(names),
            hasher: Hasher::default(),
        }
    }

    /// The id of `wire` (lower case), adding it if it is new.
    pub fn intern(&mut self, wire: &[u8]) -> NameId {
        let hash = self.hasher.hash_one(wire);
        let (bytes, ends) = (&self.bytes, &self.ends);
        if let Some(&id) = self.index.find(hash, |&id| slice(bytes, ends, id) == wire) {
            return id;
        }
        let id = self.ends.len() as NameId;
        self.bytes.extend_from_slice(wire);
        self.ends.push(self.bytes.len() as u32);
        let (bytes, ends, hasher) = (&self.bytes, &self.ends, &self.hasher);
        self.index
            .insert_unique(hash, id, |&id| hasher.hash_one(slice(bytes, ends, id)));
        id
    }

    /// The id of `wire` (lower case), if the table has it.
    pub fn get(&self, wire: &[u8]) -> Option<NameId> {
        let hash = self.hasher.hash_one(wire);
        self.index.find(hash, |&id| self.wire(id) == wire).copied()
    }

    /// The name's wire bytes; empty for an id the table does not have.
    pub fn wire(&self, id: NameId) -> &[u8] {
        slice(&self.bytes, &self.ends, id)
    }

    /// The name as a hickory `Name`, for the slow answer path and tools.
    pub fn name(&self, id: NameId) -> Name {
        to_name(self.wire(id))
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Releases spare capacity once the table is complete.
    pub fn shrink_to_fit(&mut self) {
        self.bytes.shrink_to_fit();
        self.ends.shrink_to_fit();
        let (bytes, ends, hasher) = (&self.bytes, &self.ends, &self.hasher);
        self.index
            .shrink_to_fit(|&id| hasher.hash_one(slice(bytes, ends, id)));
    }

    /// Heap bytes held (for the benches).
    pub fn heap_bytes(&self) -> usize {
        self.bytes.capacity() + 4 * self.ends.capacity() + 5 * self.index.capacity()
    }
}

impl fmt::Debug for NameTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries((0..self.len() as NameId).map(|id| Display(self.wire(id))))
            .finish()
    }
}

fn slice<'a>(bytes: &'a [u8], ends: &[u32], id: NameId) -> &'a [u8] {
    let id = id as usize;
    let Some(&end) = ends.get(id) else {
        return &[];
    };
    let start = if id == 0 { 0 } else { ends[id - 1] };
    &bytes[start as usize..end as usize]
}

/// `name` in lower-case wire format.
pub fn wire_of(name: &Name) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len() + 2);
    for label in name.iter() {
        out.push(label.len() as u8);
        out.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    out.push(0);
    out
}

/// The labels of a wire name, most specific first, without the root.
pub fn labels(wire: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut at = 0;
    std::iter::from_fn(move || {
        let len = usize::from(*wire.get(at)?);
        let label = wire.get(at + 1..at + 1 + len).filter(|_| len > 0)?;
        at += 1 + len;
        Some(label)
    })
}

/// The name one label up, or `None` for the root.
pub fn parent(wire: &[u8]) -> Option<&[u8]> {
    let first = usize::from(*wire.first()?);
    if first == 0 {
        return None;
    }
    wire.get(first + 1..)
}

/// RFC 4034 §6.1 canonical order of two lower-case wire names: label by
/// label from the root down, each label compared as bytes (a shorter label
/// first when one is a prefix of the other); a name sorts before the names
/// below it.
pub fn cmp_canonical(a: &[u8], b: &[u8]) -> Ordering {
    let (mut starts_a, mut starts_b) = ([0u8; 128], [0u8; 128]);
    let count_a = label_starts(a, &mut starts_a);
    let count_b = label_starts(b, &mut starts_b);
    for i in 1..=count_a.min(count_b) {
        let ours = label_at(a, starts_a[count_a - i]);
        let theirs = label_at(b, starts_b[count_b - i]);
        match ours.cmp(theirs) {
            Ordering::Equal => {}
            other => return other,
        }
    }
    count_a.cmp(&count_b)
}

/// Where each label of `wire` starts (a wire name is at most 255 bytes and
/// 127 labels); returns how many labels.
fn label_starts(wire: &[u8], starts: &mut [u8; 128]) -> usize {
    let (mut at, mut count) = (0usize, 0usize);
    while let Some(&len) = wire.get(at) {
        if len == 0 || count == starts.len() || at > usize::from(u8::MAX) {
            break;
        }
        starts[count] = at as u8;
        count += 1;
        at += 1 + usize::from(len);
    }
    count
}

fn label_at(wire: &[u8], start: u8) -> &[u8] {
    let start = usize::from(start);
    let len = usize::from(wire.get(start).copied().unwrap_or(0));
    wire.get(start + 1..start + 1 + len).unwrap_or_default()
}

/// The hickory `Name` of a wire name. Names in a [`NameTable`] were built
/// from valid labels, so the root fallback is never taken in practice.
pub fn to_name(wire: &[u8]) -> Name {
    Name::from_labels(labels(wire)).unwrap_or_else(|_| Name::root())
}

/// A wire name in presentation format, with the trailing dot.
pub struct Display<'a>(pub &'a [u8]);

impl fmt::Display for Display<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut any = false;
        for label in labels(self.0) {
            any = true;
            for &byte in label {
                match byte {
                    b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' => {
                        write!(f, "{}", byte as char)?
                    }
                    _ => write!(f, "\\{byte:03}")?,
                }
            }
            f.write_str(".")?;
        }
        if !any {
            f.write_str(".")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Display<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(text: &str) -> Vec<u8> {
        wire_of(&Name::from_ascii(text).unwrap())
    }

    #[test]
    fn interning_gives_one_id_per_name() {
        let mut table = NameTable::with_capacity(2);
        let names = ["local.", "web.local.", "Web.Local.", "a.web.local.", "."];
        let ids: Vec<NameId> = names.iter().map(|n| table.intern(&wire(n))).collect();
        assert_eq!(ids, vec![0, 1, 1, 2, 3], "case folds, ids are dense");
        assert_eq!(table.len(), 4);
        for (name, id) in names.iter().zip(&ids) {
            assert_eq!(table.get(&wire(name)), Some(*id), "{name}");
            assert_eq!(table.name(*id), Name::from_ascii(name).unwrap(), "{name}");
        }
        assert_eq!(table.get(&wire("nope.local.")), None);
        assert_eq!(table.wire(99), b"");
        table.shrink_to_fit();
        assert_eq!(table.get(&wire("a.web.local.")), Some(2));
    }

    #[test]
    fn wire_helpers() {
        let name = wire("_http._tcp.web.local.");
        let labels: Vec<&[u8]> = labels(&name).collect();
        assert_eq!(labels, vec![&b"_http"[..], b"_tcp", b"web", b"local"]);
        assert_eq!(parent(&name), Some(&wire("_tcp.web.local.")[..]));
        assert_eq!(parent(&wire(".")), None);
        assert_eq!(Display(&name).to_string(), "_http._tcp.web.local.");
        assert_eq!(Display(&wire(".")).to_string(), ".");
        assert_eq!(Display(&[3, b'a', b'.', b'b', 0]).to_string(), "a\\046b.");
    }

    /// The example of RFC 4034 §6.1, shuffled, comes back in its order.
    #[test]
    fn canonical_order() {
        let rfc = [
            "example.",
            "a.example.",
            "yljkjljk.a.example.",
            "z.a.example.",
            "zabc.a.example.",
            "z.example.",
            "*.z.example.",
        ];
        let mut names: Vec<Vec<u8>> = rfc.iter().rev().map(|n| wire(n)).collect();
        names.swap(1, 4);
        names.sort_by(|a, b| cmp_canonical(a, b));
        let sorted: Vec<String> = names.iter().map(|n| Display(n).to_string()).collect();
        // `*` is not a character Display writes as is.
        assert_eq!(sorted[..6], rfc[..6]);
        assert_eq!(sorted[6], "\\042.z.example.");
        assert_eq!(cmp_canonical(&wire("."), &wire("a.")), Ordering::Less);
        assert_eq!(cmp_canonical(&wire("b.a."), &wire("b.a.")), Ordering::Equal);
    }
}
