//! What the fronts answer from: a snapshot together with its pre-rendered
//! answers, built together and published in one swap, so that no query can
//! pair a new snapshot with the answers of an old one. The reverse zones
//! (`reverse_zones`) are published in the same swap as the forward zone
//! they are built from.

use std::sync::Arc;

use hickory_proto::rr::LowerName;

use crate::config::ZoneConfig;
use crate::wire::name_table;
use crate::wire::question::{is_under, question_name};
use crate::zone::Snapshot;

use super::fast;

/// A snapshot and the fast path's answer table for it; for the forward
/// zone, the reverse zones served beside it too.
#[derive(Debug)]
pub struct Served {
    snapshot: Arc<Snapshot>,
    /// Shared with the previous `Served` when its snapshot serves the very
    /// same records: the same bytes, already rendered.
    answers: Arc<fast::Table>,
    /// The origin in lower-case wire format, to find a query's zone.
    origin: Box<[u8]>,
    /// The reverse zones (empty in a reverse zone itself).
    reverse: Vec<Served>,
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
        Served {
            origin: name_table::wire_of(snapshot.origin()).into_boxed_slice(),
            snapshot,
            answers,
            reverse: Vec::new(),
        }
    }

    /// This forward zone with its reverse zones (`config.reverse`) beside
    /// it, each built from its snapshot; each reverse zone's serial follows
    /// the same zone's in `previous` (without one, it is `now_unix`).
    pub fn with_reverse_zones(
        mut self,
        config: &ZoneConfig,
        previous: Option<&Served>,
        now_unix: u32,
    ) -> Served {
        self.reverse = (config.reverse.iter())
            .map(|zone| {
                let before = previous.and_then(|p| p.reverse_zone(&LowerName::new(&zone.origin)));
                let built = Snapshot::build_reverse(
                    config,
                    zone,
                    &self.snapshot,
                    before.map(|p| p.snapshot().as_ref()),
                    now_unix,
                );
                Served::new(Arc::new(built), before)
            })
            .collect();
        self
    }

    /// The forward zone's snapshot.
    pub fn snapshot(&self) -> &Arc<Snapshot> {
        &self.snapshot
    }

    /// The pre-rendered answers of [`Served::snapshot`].
    pub fn answers(&self) -> &fast::Table {
        &self.answers
    }

    /// The reverse zones, in the order configured.
    pub fn reverse(&self) -> &[Served] {
        &self.reverse
    }

    /// The reverse zone whose origin is `origin`, if there is one.
    pub fn reverse_zone(&self, origin: &LowerName) -> Option<&Served> {
        self.reverse.iter().find(|r| r.snapshot.origin() == origin)
    }

    /// Every zone served: the forward zone, then the reverse zones.
    pub fn zones(&self) -> impl Iterator<Item = &Served> {
        std::iter::once(self).chain(&self.reverse)
    }

    /// The zone that answers `request`: the reverse zone its question is
    /// in, else the forward zone (which refuses names outside it). Costs
    /// nothing without reverse zones.
    pub fn zone_for(&self, request: &[u8]) -> &Served {
        if self.reverse.is_empty() {
            return self;
        }
        let Some(name) = question_name(request) else {
            return self;
        };
        (self.reverse.iter())
            .find(|r| is_under(name, &r.origin))
            .unwrap_or(self)
    }
}
