//! What the fronts answer from: a snapshot together with its pre-rendered
//! answers, built together and published in one swap, so that no query can
//! pair a new snapshot with the answers of an old one.

use std::sync::Arc;

use crate::zone::Snapshot;

use super::fast;

/// A snapshot and the fast path's answer table for it.
#[derive(Debug)]
pub struct Served {
    snapshot: Arc<Snapshot>,
    /// Shared with the previous `Served` when its snapshot serves the very
    /// same records: the same bytes, already rendered.
    answers: Arc<fast::Table>,
}

/// The published zone: readers `load()` it without locking; `None` until the
/// first inventory is loaded.
pub type SharedZone = Arc<arc_swap::ArcSwapOption<Served>>;

impl Served {
    /// Pairs `snapshot` with its answer table: `previous`'s when it serves
    /// the same records, else a new one (names render at their first query).
    pub fn new(snapshot: Arc<Snapshot>, previous: Option<&Served>) -> Served {
        let answers = match previous.filter(|p| p.snapshot.same_records(&snapshot)) {
            Some(p) => p.answers.clone(),
            None => Arc::new(fast::Table::build(&snapshot)),
        };
        Served { snapshot, answers }
    }

    pub fn snapshot(&self) -> &Arc<Snapshot> {
        &self.snapshot
    }

    /// The pre-rendered answers of [`Served::snapshot`].
    pub fn answers(&self) -> &fast::Table {
        &self.answers
    }
}
