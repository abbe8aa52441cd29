//! The state file: the last inventory and serial, saved after every new
//! snapshot so that a restarted server answers at once, before the source
//! (the AWS APIs) has been read.
//!
//! Written atomically (temporary file, fsync, rename, fsync of the folder):
//! a crash mid-write leaves the previous file. A file that cannot be read or
//! parsed, or was written for another zone, is logged and ignored: it never
//! stops the server and is never served.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::inventory::Inventory;
use crate::zone::Snapshot;

/// Bumped when the layout changes; other versions are ignored.
const FORMAT_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Saved<I> {
    version: u32,
    /// The zone's origin, to refuse a file written for another zone.
    zone: String,
    serial: u32,
    #[serde(with = "humantime_serde")]
    saved_at: SystemTime,
    inventory: I,
}

/// What a state file gave back.
#[derive(Debug)]
pub struct Restored {
    pub inventory: Inventory,
    pub serial: u32,
    pub saved_at: SystemTime,
}

/// Why a state file was not used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read state file {path}: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("state file {path} is corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("state file {path} is for zone {found}, not {expected}")]
    OtherZone {
        path: PathBuf,
        found: String,
        expected: String,
    },
    #[error("state file {path} has format version {found}, this build reads {FORMAT_VERSION}")]
    Version { path: PathBuf, found: u32 },
    #[error("cannot write state file {path}: {reason}")]
    Write { path: PathBuf, reason: String },
}

/// Reads the state file at `path` for the zone `origin` (as printed,
/// e.g. `local.`). `Ok(None)`: there is no file (a first start).
pub fn load(path: &Path, origin: &str) -> Result<Option<Restored>, StateError> {
    let text = match crate::files::read(path, crate::files::INVENTORY_CAP) {
        Ok(text) => text,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => {
            return Err(StateError::Unreadable {
                path: path.to_owned(),
                reason: e.to_string(),
            });
        }
    };
    let saved: Saved<Inventory> =
        serde_json::from_slice(&text).map_err(|e| StateError::Corrupt {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    if saved.version != FORMAT_VERSION {
        return Err(StateError::Version {
            path: path.to_owned(),
            found: saved.version,
        });
    }
    if saved.zone != origin {
        return Err(StateError::OtherZone {
            path: path.to_owned(),
            found: saved.zone,
            expected: origin.to_owned(),
        });
    }
    Ok(Some(Restored {
        inventory: saved.inventory,
        serial: saved.serial,
        saved_at: saved.saved_at,
    }))
}

/// Saves `snapshot`'s inventory and serial to `path`, atomically.
pub fn save(path: &Path, snapshot: &Snapshot) -> Result<(), StateError> {
    let error = |reason: String| StateError::Write {
        path: path.to_owned(),
        reason,
    };
    let saved = Saved {
        version: FORMAT_VERSION,
        zone: snapshot.origin().to_string(),
        serial: snapshot.serial(),
        saved_at: SystemTime::now(),
        inventory: &*snapshot.inventory,
    };
    let bytes = serde_json::to_vec(&saved).map_err(|e| error(e.to_string()))?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let file_name = path.file_name().unwrap_or_default().to_string_lossy();
    // Unique per write: the background writer and the final save at exit
    // may overlap.
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let sequence = WRITES.fetch_add(1, Ordering::Relaxed);
    let temp = dir.join(format!(
        ".{file_name}.{}.{sequence}.tmp",
        std::process::id()
    ));
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)?;
        // The rename is durable only once the folder is synced.
        std::fs::File::open(dir)?.sync_all()
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        error(e.to_string())
    })
}

/// Saves snapshots in the background, the newest one first: a burst of
/// publications costs one write, and a slow disk never holds up a refresh.
#[derive(Clone)]
pub struct Writer {
    latest: tokio::sync::watch::Sender<Option<Arc<Snapshot>>>,
}

impl Writer {
    /// Starts the writing task for `path`.
    pub fn start(path: PathBuf) -> Writer {
        let (latest, mut changes) = tokio::sync::watch::channel::<Option<Arc<Snapshot>>>(None);
        tokio::spawn(async move {
            while changes.changed().await.is_ok() {
                let Some(snapshot) = changes.borrow_and_update().clone() else {
                    continue;
                };
                let path = path.clone();
                let result = tokio::task::spawn_blocking(move || save(&path, &snapshot)).await;
                match result {
                    Ok(Ok(())) => {
                        metrics::counter!("ecs_dns_state_writes_total", "outcome" => "ok")
                            .increment(1)
                    }
                    Ok(Err(error)) => {
                        metrics::counter!("ecs_dns_state_writes_total", "outcome" => "error")
                            .increment(1);
                        tracing::warn!(%error, "state file not saved");
                    }
                    Err(error) => tracing::warn!(%error, "state file writer failed"),
                }
            }
        });
        Writer { latest }
    }

    /// Queues `snapshot` to be saved.
    pub fn offer(&self, snapshot: &Arc<Snapshot>) {
        self.latest.send_replace(Some(snapshot.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::ClusterStatus;

    fn snapshot() -> Snapshot {
        let config = crate::testing::config();
        let inventory = crate::source::file::parse(
            Path::new("demo.toml"),
            &std::fs::read_to_string(
                Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/demo-inventory.toml"),
            )
            .unwrap(),
            SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000),
        )
        .unwrap();
        Snapshot::build(&config.zone, Arc::new(inventory), None, 42)
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        assert!(load(&path, "local.").unwrap().is_none());
        let snap = snapshot();
        save(&path, &snap).unwrap();
        let restored = load(&path, "local.").unwrap().unwrap();
        assert_eq!(restored.serial, 42);
        assert_eq!(restored.inventory, *snap.inventory);
        assert!(matches!(
            load(&path, "other."),
            Err(StateError::OtherZone { .. })
        ));
        // no temporary file left behind
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn corrupt_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let full = serde_json::to_string(&Saved {
            version: FORMAT_VERSION,
            zone: "local.".into(),
            serial: 1,
            saved_at: SystemTime::now(),
            inventory: Inventory {
                sources_read: Vec::new(),
                clusters: vec![ClusterStatus {
                    source: None,
                    name: "c".into(),
                    refreshed_at: SystemTime::now(),
                    error: None,
                }],
                tasks: vec![],
            },
        })
        .unwrap();
        let cut = &full[..full.len() / 2];
        let future = full.replace("\"version\":1", "\"version\":99");
        for (text, want) in [
            ("", "corrupt"),
            ("not json", "corrupt"),
            (cut, "corrupt"),
            ("{}", "corrupt"),
            (future.as_str(), "format version 99"),
        ] {
            std::fs::write(&path, text).unwrap();
            let err = load(&path, "local.").unwrap_err().to_string();
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }
}
