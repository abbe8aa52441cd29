//! The file source: an inventory file written by hand or by another tool,
//! re-read whenever it changes. It is how the demo runs without AWS.
//!
//! The file (TOML, or JSON when its name ends in `.json`) holds a list
//! `tasks`, each with the fields of [`Task`]. For brevity, `last_status` and
//! `desired_status` default to `RUNNING`, `health_status` to `UNKNOWN`,
//! `launch_type` to `EC2`, and `task_id` to the last part of `task_arn`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::SourceError;
use crate::config::ConfigError;
use crate::inventory::{ClusterStatus, Inventory, Task};

pub struct FileSource {
    path: PathBuf,
    /// Modification time and length of the file last read successfully.
    seen: Option<(SystemTime, u64)>,
    /// The tasks of the last good read (in ARN order), shared with the
    /// inventory published from it: a re-read hands back these very
    /// allocations for the tasks that did not change, so that it holds one
    /// copy of the tasks, not two, and the publication tells the unchanged
    /// tasks by pointer.
    previous: Vec<Arc<Task>>,
}

impl FileSource {
    pub fn new(path: PathBuf) -> FileSource {
        FileSource {
            path,
            seen: None,
            previous: Vec::new(),
        }
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
        let inventory = parse_reusing(&self.path, &text, modified, &self.previous)
            .map_err(|e| self.error(e))?;
        self.seen = Some(stamp);
        self.previous.clone_from(&inventory.tasks);
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
    parse_reusing(path, text, modified, &[])
}

/// [`parse`], handing back the allocation of each task of `previous` (in
/// ARN order, as a parse returns them) that a parsed task equals once its
/// defaults are filled in. Each task is compared as soon as it is read, so
/// that the unchanged ones are never held twice.
fn parse_reusing(
    path: &Path,
    text: &str,
    modified: SystemTime,
    previous: &[Arc<Task>],
) -> Result<Inventory, String> {
    let seed = FileSeed { previous };
    let tasks = if path.extension().is_some_and(|e| e == "json") {
        let mut json = serde_json::Deserializer::from_str(text);
        let tasks = seed.deserialize(&mut json).map_err(|e| e.to_string())?;
        json.end().map_err(|e| e.to_string())?;
        tasks
    } else {
        seed.deserialize(toml::Deserializer::new(text))
            .map_err(|e| e.to_string())?
    };
    let Some(mut tasks) = tasks else {
        return Err(
            "no `tasks` key: an empty or comment-only file is taken for a mistake and the last good data kept; write `tasks = []` (JSON: {\"tasks\": []}) for no tasks"
                .into(),
        );
    };
    for (index, task) in tasks.iter().enumerate() {
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
    // its tasks, held for as long as it is served.
    tasks.shrink_to_fit();
    // In ARN order, as a snapshot serves them (a stable sort: tasks that
    // share an ARN keep the file's order): the next read looks tasks up
    // here by ARN, and a publication matches them with the served ones in
    // one pass and patches the zone instead of building it again.
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

/// The file's top level: a table (JSON: an object) whose one key is
/// `tasks`. Required: an empty or comment-only file (a truncated rewrite,
/// an editor's empty buffer) is a mistake, never "no tasks"; `tasks = []`
/// says that. `None` when the key is missing.
struct FileSeed<'a> {
    previous: &'a [Arc<Task>],
}

const FIELDS: &[&str] = &["tasks"];

impl<'de> DeserializeSeed<'de> for FileSeed<'_> {
    type Value = Option<Vec<Arc<Task>>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_struct("InventoryFile", FIELDS, self)
    }
}

impl<'de> Visitor<'de> for FileSeed<'_> {
    type Value = Option<Vec<Arc<Task>>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a table with a list `tasks`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut seen, mut tasks) = (false, None);
        while let Some(key) = map.next_key::<String>()? {
            if key != "tasks" {
                return Err(de::Error::unknown_field(&key, FIELDS));
            }
            if seen {
                return Err(de::Error::duplicate_field("tasks"));
            }
            seen = true;
            // `"tasks": null` (JSON) is no key, as it was for serde's derive.
            tasks = map.next_value_seed(TasksSeed {
                previous: self.previous,
            })?;
        }
        Ok(tasks)
    }
}

/// The list `tasks`: each task read, its defaults filled in, and replaced
/// at once by the equal task of the previous read when there is one.
struct TasksSeed<'a> {
    previous: &'a [Arc<Task>],
}

impl<'de> DeserializeSeed<'de> for TasksSeed<'_> {
    type Value = Option<Vec<Arc<Task>>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for TasksSeed<'_> {
    type Value = Option<Vec<Arc<Task>>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of tasks")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        let list = TaskList {
            previous: self.previous,
        };
        deserializer.deserialize_seq(list).map(Some)
    }
}

struct TaskList<'a> {
    previous: &'a [Arc<Task>],
}

impl<'de> Visitor<'de> for TaskList<'_> {
    type Value = Vec<Arc<Task>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of tasks")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut tasks = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
        while let Some(mut task) = seq.next_element::<Task>()? {
            fill_defaults(&mut task);
            tasks.push(reuse(self.previous, task));
        }
        Ok(tasks)
    }
}

/// Tasks of one ARN compared, at most (a file of tasks without ARNs
/// shares the empty one: those are not reused past this many).
const SAME_ARN_SCAN: usize = 16;

/// The task of `previous` (in ARN order) equal to `task`, shared, or
/// `task` in a new allocation.
fn reuse(previous: &[Arc<Task>], task: Task) -> Arc<Task> {
    let first = previous.partition_point(|p| p.task_arn < task.task_arn);
    let same_arn = (previous.get(first..).unwrap_or_default().iter())
        .take_while(|p| p.task_arn == task.task_arn)
        .take(SAME_ARN_SCAN);
    for candidate in same_arn {
        if **candidate == task {
            return candidate.clone();
        }
    }
    Arc::new(task)
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

    /// A re-read holds one copy of the tasks: each task that did not
    /// change (compared once its defaults are filled in: the file leaves
    /// them out) is the very allocation of the previous read; the changed
    /// one is new.
    #[test]
    fn a_reread_shares_the_unchanged_tasks() {
        let dir = tempfile::tempdir().unwrap();
        for extension in ["json", "toml"] {
            let path = dir.path().join(format!("inventory.{extension}"));
            let write = |changed: Option<usize>| {
                let tasks: Vec<(usize, &str)> = (0..200)
                    .map(|i| {
                        (
                            i,
                            if Some(i) == changed {
                                "10.9.9.99"
                            } else {
                                "10.0.0.1"
                            },
                        )
                    })
                    .collect();
                let text = match extension {
                    "json" => {
                        let tasks: Vec<String> =
                            tasks.iter().map(|&(i, ip)| json_task(i, ip)).collect();
                        format!(r#"{{"tasks": [{}]}}"#, tasks.join(","))
                    }
                    _ => (tasks.iter())
                        .map(|&(i, ip)| {
                            format!(
                                "[[tasks]]\ncluster = \"c{}\"\nservice = \"s{}\"\ntask_arn = \"arn:aws:ecs:us-east-1:1:task/c/t{i:04}\"\nipv4 = [\"{ip}\"]\n",
                                i % 3,
                                i % 7
                            )
                        })
                        .collect(),
                };
                std::fs::write(&path, text).unwrap();
            };
            let mut source = FileSource::new(path.clone());
            write(None);
            let first = source.refresh().unwrap().unwrap();
            // A longer file: seen as changed whatever the clock's resolution.
            write(Some(123));
            let second = source.refresh().unwrap().unwrap();
            assert_eq!(first.tasks.len(), 200);
            assert_eq!(second.tasks.len(), 200);
            for (old, new) in first.tasks.iter().zip(&second.tasks) {
                assert_eq!(old.task_arn, new.task_arn, "{extension}: same order");
                if new.task_arn.ends_with("/t0123") {
                    assert!(
                        !Arc::ptr_eq(old, new),
                        "{extension}: the changed task is new"
                    );
                    assert_eq!(
                        new.ipv4,
                        ["10.9.9.99".parse::<std::net::Ipv4Addr>().unwrap()]
                    );
                } else {
                    assert!(
                        Arc::ptr_eq(old, new),
                        "{extension}: {} copied",
                        new.task_arn
                    );
                }
            }
        }
    }

    /// Tasks come out in ARN order whatever the file's order (the order a
    /// snapshot serves them in, and the one the next read looks them up
    /// in); the file's order still names the entry at fault.
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

    /// The top level is what serde's derive made of it: one key `tasks`,
    /// no other, not twice; missing (or JSON `null`) is the "no `tasks`
    /// key" error.
    #[test]
    fn the_top_level_is_one_key() {
        let json = |text: &str| parse(Path::new("i.json"), text, SystemTime::UNIX_EPOCH);
        let toml = |text: &str| parse(Path::new("i.toml"), text, SystemTime::UNIX_EPOCH);
        assert!(json(r#"{"tasks": []}"#).unwrap().tasks.is_empty());
        assert!(toml("tasks = []").unwrap().tasks.is_empty());
        for missing in [
            json("{}"),
            json(r#"{"tasks": null}"#),
            toml(""),
            toml("# nothing"),
        ] {
            assert!(missing.unwrap_err().starts_with("no `tasks` key"));
        }
        let unknown = json(r#"{"tasks": [], "task": []}"#).unwrap_err();
        assert!(
            unknown.contains("unknown field `task`, expected `tasks`"),
            "{unknown}"
        );
        let unknown = toml("tasks = []\ntask = []").unwrap_err();
        assert!(
            unknown.contains("unknown field `task`, expected `tasks`"),
            "{unknown}"
        );
        let twice = json(r#"{"tasks": [], "tasks": []}"#).unwrap_err();
        assert!(twice.contains("duplicate field `tasks`"), "{twice}");
        let trailing = json(r#"{"tasks": []} x"#).unwrap_err();
        assert!(trailing.contains("trailing characters"), "{trailing}");
        let unknown_in_task =
            json(r#"{"tasks": [{"cluster": "c", "task_id": "t", "family": "f", "bad": 1}]}"#)
                .unwrap_err();
        assert!(
            unknown_in_task.contains("unknown field `bad`"),
            "{unknown_in_task}"
        );
    }
}
