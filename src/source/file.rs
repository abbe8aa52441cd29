//! The file source: an inventory file written by hand or by another tool,
//! re-read whenever it changes. It is how the demo runs without AWS.
//!
//! The file (TOML, or JSON when its name ends in `.json`) holds a list
//! `tasks`, each with the fields of [`Task`]. For brevity, `last_status` and
//! `desired_status` default to `RUNNING`, `health_status` to `UNKNOWN`,
//! `launch_type` to `EC2`, and `task_id` to the last part of `task_arn`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use serde::Deserialize;

use super::SourceError;
use crate::config::ConfigError;
use crate::inventory::{ClusterStatus, Inventory, Task};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InventoryFile {
    /// Required: an empty or comment-only file (a truncated rewrite, an
    /// editor's empty buffer) is a mistake, never "no tasks"; `tasks = []`
    /// says that.
    tasks: Option<Vec<Arc<Task>>>,
}

pub struct FileSource {
    path: PathBuf,
    /// Modification time and length of the file last read successfully.
    seen: Option<(SystemTime, u64)>,
}

impl FileSource {
    pub fn new(path: PathBuf) -> FileSource {
        FileSource { path, seen: None }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the file if it changed since the last good read.
    pub fn refresh(&mut self) -> Result<Option<Inventory>, SourceError> {
        let metadata = std::fs::metadata(&self.path).map_err(|e| self.error(e))?;
        let modified = metadata.modified().map_err(|e| self.error(e))?;
        let stamp = (modified, metadata.len());
        if self.seen == Some(stamp) {
            return Ok(None);
        }
        let text = crate::files::read_text(&self.path, crate::files::INVENTORY_CAP)
            .map_err(|e| self.error(e))?;
        let inventory = parse(&self.path, &text, modified).map_err(|e| self.error(e))?;
        self.seen = Some(stamp);
        tracing::info!(
            path = %self.path.display(),
            tasks = inventory.tasks.len(),
            "inventory file read"
        );
        Ok(Some(inventory))
    }

    fn error(&self, reason: impl ToString) -> SourceError {
        SourceError::File {
            path: self.path.display().to_string(),
            reason: reason.to_string(),
        }
    }
}

/// Checks that the inventory file can be read: a folder or an unreadable
/// file is a configuration error. With `must_exist` (for `check-config`) a
/// missing file is one too, and the file must parse; without (for `serve`) a
/// missing file is allowed, since another tool may write it later (the
/// server answers from the state file, or SERVFAIL, until then).
pub fn check(path: &Path, must_exist: bool) -> Result<(), ConfigError> {
    let bad = |reason: String| ConfigError::invalid("inventory", path.display(), reason);
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_exist => return Ok(()),
        Err(e) => return Err(bad(e.to_string())),
    };
    if !metadata.is_file() {
        return Err(bad("not a regular file".into()));
    }
    let text = crate::files::read_text(path, crate::files::INVENTORY_CAP)
        .map_err(|e| bad(e.to_string()))?;
    if must_exist {
        let modified = metadata.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        parse(path, &text, modified).map_err(bad)?;
    }
    Ok(())
}

/// Parses an inventory file's text; `modified` dates every cluster in it.
pub fn parse(path: &Path, text: &str, modified: SystemTime) -> Result<Inventory, String> {
    let file: InventoryFile = if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(text).map_err(|e| e.to_string())?
    } else {
        toml::from_str(text).map_err(|e| e.to_string())?
    };
    let Some(mut tasks) = file.tasks else {
        return Err(
            "no `tasks` key: an empty or comment-only file is taken for a mistake and the last good data kept; write `tasks = []` (JSON: {\"tasks\": []}) for no tasks"
                .into(),
        );
    };
    for (index, task) in tasks.iter_mut().enumerate() {
        // Just parsed: each task has one owner, nothing is copied.
        let task = Arc::make_mut(task);
        fill_defaults(task);
        if task.cluster.is_empty() {
            return Err(format!("tasks[{index}]: cluster is missing"));
        }
        if task.id().is_empty() {
            return Err(format!("tasks[{index}]: task_arn or task_id is needed"));
        }
        if task.service.is_none() && task.family.is_empty() {
            return Err(format!(
                "tasks[{index}] ({}): service or family is needed",
                task.id()
            ));
        }
    }
    // The list grew by doubling while it was read: up to twice the room of
    // its tasks (some 440 bytes each), held for as long as it is served.
    tasks.shrink_to_fit();
    // In ARN order, as a snapshot serves them (a stable sort: tasks that
    // share an ARN keep the file's order): a publication matches them with
    // the served ones in one pass and patches the zone instead of building
    // it again.
    if !tasks.is_sorted_by(|a, b| a.task_arn <= b.task_arn) {
        tasks.sort_by(|a, b| a.task_arn.cmp(&b.task_arn));
    }
    let mut names: Vec<&str> = tasks.iter().map(|t| t.cluster.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let clusters = names
        .into_iter()
        .map(|name| ClusterStatus {
            name: name.to_owned(),
            refreshed_at: modified,
            error: None,
        })
        .collect();
    Ok(Inventory { clusters, tasks })
}

fn fill_defaults(task: &mut Task) {
    for (field, default) in [
        (&mut task.last_status, "RUNNING"),
        (&mut task.desired_status, "RUNNING"),
        (&mut task.health_status, "UNKNOWN"),
        (&mut task.launch_type, "EC2"),
    ] {
        if field.is_empty() {
            *field = default.to_owned();
        }
    }
    if task.task_id.is_empty() {
        task.task_id = task.id().to_owned();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parsed list holds no spare room: it is kept as long as it is
    /// served, beside the next one while that is built.
    #[test]
    fn parsed_tasks_take_no_spare_room() {
        let tasks: Vec<String> = (0..1000)
            .map(|i| format!(r#"{{"cluster": "c", "service": "s", "task_id": "t{i}"}}"#))
            .collect();
        let text = format!(r#"{{"tasks": [{}]}}"#, tasks.join(","));
        let inventory = parse(Path::new("i.json"), &text, SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(inventory.tasks.len(), 1000);
        assert_eq!(inventory.tasks.capacity(), 1000);
        assert_eq!(inventory.tasks[999].last_status, "RUNNING");
    }

    fn json_task(i: usize, ip: &str) -> String {
        format!(
            r#"{{"cluster": "c{}", "service": "s{}", "task_arn": "arn:aws:ecs:us-east-1:1:task/c/t{i:04}", "ipv4": ["{ip}"]}}"#,
            i % 3,
            i % 7
        )
    }

    /// Tasks come out in ARN order whatever the file's order (the order a
    /// snapshot serves them in); the file's order still names the entry at
    /// fault.
    #[test]
    fn tasks_in_arn_order_errors_in_file_order() {
        let tasks: Vec<String> = (0..50).rev().map(|i| json_task(i, "10.0.0.1")).collect();
        let text = format!(r#"{{"tasks": [{}]}}"#, tasks.join(","));
        let inventory = parse(Path::new("i.json"), &text, SystemTime::UNIX_EPOCH).unwrap();
        assert!(inventory.tasks.is_sorted_by(|a, b| a.task_arn < b.task_arn));
        let text = r#"{"tasks": [{"cluster": "c", "service": "s", "task_id": "a"}, {"service": "s", "task_id": "b"}]}"#;
        let error = parse(Path::new("i.json"), text, SystemTime::UNIX_EPOCH).unwrap_err();
        assert_eq!(error, "tasks[1]: cluster is missing");
    }
}
