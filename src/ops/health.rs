//! Readiness: whether this server should take traffic.
//!
//! Ready once a zone is loaded (from the source or the state file) and its
//! data is younger than `max_stale`. A stale server still answers (the last
//! good data beats no data); readiness only tells the load balancer and the
//! operator that something upstream is wrong.

use std::time::{Duration, SystemTime};

use crate::zone::Snapshot;

/// The age of the oldest cluster's data; `None` for an inventory that covers
/// no cluster (nothing can be stale).
pub fn data_age(snapshot: &Snapshot, now: SystemTime) -> Option<Duration> {
    snapshot
        .inventory
        .clusters
        .iter()
        .map(|c| now.duration_since(c.refreshed_at).unwrap_or_default())
        .max()
}

/// What readiness asks of the zone.
#[derive(Clone, Copy, Debug)]
pub struct Needs<'a> {
    /// Data older than this is stale.
    pub max_stale: Duration,
    /// Sources each read at least once (`ready_needs_all_sources`); empty:
    /// any one is enough.
    pub sources: &'a [String],
}

/// `Ok` with a short description when ready, `Err` with the reason when not.
pub fn readiness(
    snapshot: Option<&Snapshot>,
    now: SystemTime,
    needs: Needs<'_>,
) -> Result<String, String> {
    let max_stale = needs.max_stale;
    let Some(snapshot) = snapshot else {
        return Err("no zone loaded yet: the source has not been read successfully and no state file was restored".into());
    };
    let read = &snapshot.inventory.sources_read;
    if let Some(missing) = needs.sources.iter().find(|s| !read.contains(s)) {
        return Err(format!(
            "source {missing} has not been read yet (ready_needs_all_sources); answering from the others"
        ));
    }
    match data_age(snapshot, now) {
        Some(age) if age > max_stale => {
            let oldest = snapshot
                .inventory
                .clusters
                .iter()
                .min_by_key(|c| c.refreshed_at)
                .map(|c| match &c.source {
                    Some(source) => format!("{} of source {source}", c.name),
                    None => c.name.clone(),
                })
                .unwrap_or_default();
            Err(format!(
                "data is stale: cluster {oldest} was last read {} ago (max_stale {}); still answering from it",
                humantime::format_duration(round(age)),
                humantime::format_duration(max_stale)
            ))
        }
        Some(age) => Ok(format!(
            "ready: serial {}, data age {}",
            snapshot.serial(),
            humantime::format_duration(round(age))
        )),
        None => Ok(format!("ready: serial {}, no clusters", snapshot.serial())),
    }
}

fn round(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::inventory::{ClusterStatus, Inventory};

    fn snapshot(ages: &[u64], now: SystemTime) -> Snapshot {
        let config = crate::testing::config();
        let clusters = ages
            .iter()
            .enumerate()
            .map(|(i, age)| ClusterStatus {
                source: None,
                name: format!("c{i}"),
                refreshed_at: now - Duration::from_secs(*age),
                error: None,
            })
            .collect();
        let inventory = Inventory {
            sources_read: Vec::new(),
            clusters,
            tasks: vec![],
        };
        Snapshot::build(&config.zone, Arc::new(inventory), None, 1)
    }

    #[test]
    fn ready_table() {
        let now = SystemTime::now();
        let max = Duration::from_secs(60);
        // (cluster ages, ready?, reason contains)
        let table: [(Option<&[u64]>, bool, &str); 5] = [
            (None, false, "no zone loaded"),
            (Some(&[]), true, "no clusters"),
            (Some(&[5, 10]), true, "ready"),
            (Some(&[5, 61]), false, "cluster c1"),
            (Some(&[60]), true, "ready"),
        ];
        for (ages, ready, text) in table {
            let snap = ages.map(|a| snapshot(a, now));
            let needs = Needs {
                max_stale: max,
                sources: &[],
            };
            let got = readiness(snap.as_ref(), now, needs);
            assert_eq!(got.is_ok(), ready, "{ages:?}: {got:?}");
            let message = got.unwrap_or_else(|e| e);
            assert!(message.contains(text), "{ages:?}: {message}");
        }
    }

    /// With `ready_needs_all_sources`, a source not read yet keeps the zone
    /// not ready; without, the others are enough.
    #[test]
    fn every_source_read_when_asked() {
        let now = SystemTime::now();
        let mut snap = snapshot(&[1], now);
        let mut inventory = (*snap.inventory).clone();
        inventory.sources_read = vec!["east".into()];
        snap = Snapshot::build(&crate::testing::config().zone, Arc::new(inventory), None, 1);
        let both = ["east".to_owned(), "west".to_owned()];
        let needs = |sources| Needs {
            max_stale: Duration::from_secs(60),
            sources,
        };
        let got = readiness(Some(&snap), now, needs(&both));
        assert_eq!(
            got,
            Err("source west has not been read yet (ready_needs_all_sources); answering from the others".into())
        );
        assert!(readiness(Some(&snap), now, needs(&[])).is_ok());
        assert!(readiness(Some(&snap), now, needs(&both[..1])).is_ok());
    }
}
