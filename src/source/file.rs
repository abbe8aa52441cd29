//! The file source: an inventory file written by hand or by another tool,
//! re-read whenever it changes. It is how the demo runs without AWS.
//!
//! The file (TOML, or JSON when its name ends in `.json`) holds a list
//! `tasks`, each with the fields of [`Task`]. For brevity, `last_status` and
//! `desired_status` default to `RUNNING`, `health_status` to `UNKNOWN`,
//! `launch_type` to `EC2`, and `task_id` to the last part of `task_arn`.
//!
//! Its data is dated by the read, not by the file's modification time: a
//! file nobody edits is still current while it is read (the demo's file is
//! hours old and ready all the same). While the file stays the same, its
//! last inventory is handed out again, re-dated, every [`redate_every`]
//! (30 s, or a quarter of `max_stale` when that is shorter), so that the
//! data age stays well below `max_stale` without a publication every poll.
//!
//! The inventory lists the tasks in ARN order. A re-read hands back the
//! previous read's allocation of every task that did not change, so that
//! it never holds the tasks twice and the publication patches the zone.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::SourceError;
use crate::config::ConfigError;
use crate::inventory::{ClusterStatus, Inventory, Task};

/// How often an unchanged file's inventory is handed out again with the
/// time of the read that found it unchanged: every 30 s, and at least four
/// times within `max_stale`.
pub fn redate_every(max_stale: Duration) -> Duration {
    Duration::from_secs(30).min(max_stale / 4)
}

pub struct FileSource {
    path: PathBuf,
    /// Modification time and length of the file last read successfully.
    seen: Option<(SystemTime, u64)>,
    /// When the last inventory was handed out: the time it was dated.
    dated: SystemTime,
    redate_every: Duration,
    /// The tasks of the last good read, shared with the inventory published
    /// from it: a re-read hands back these very allocations for the tasks
    /// that did not change, so that it holds one copy of the tasks, not
    /// two, and the publication tells the unchanged tasks by pointer.
    previous: Previous,
}

/// The tasks of a read, in ARN order, and where each was in the file: the
/// next read looks each task up first where the file had it (cheap when
/// the file keeps its order, as a rewrite with a few changes may), and
/// puts the tasks it reuses back in ARN order without sorting them again.
#[derive(Default)]
struct Previous {
    tasks: Vec<Arc<Task>>,
    /// For each task, its index in the file.
    file_of_sorted: Vec<u32>,
    /// For each index in the file, the task's place in `tasks`.
    sorted_of_file: Vec<u32>,
    /// Whether no two tasks share an ARN.
    strict: bool,
}

impl FileSource {
    /// The source of the file at `path`; see [`redate_every`].
    pub fn new(path: PathBuf, redate_every: Duration) -> FileSource {
        FileSource {
            path,
            seen: None,
            dated: SystemTime::UNIX_EPOCH,
            redate_every,
            previous: Previous::default(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the file if it changed since the last good read; an unchanged
    /// file's last inventory, dated now, once every `redate_every`.
    pub fn refresh(&mut self) -> Result<Option<Inventory>, SourceError> {
        let metadata = std::fs::metadata(&self.path).map_err(|e| self.error(e))?;
        let modified = metadata.modified().map_err(|e| self.error(e))?;
        let stamp = (modified, metadata.len());
        let now = SystemTime::now();
        if self.seen == Some(stamp) {
            let due = now.duration_since(self.dated).unwrap_or_default() >= self.redate_every;
            if !due {
                return Ok(None);
            }
            self.dated = now;
            return Ok(Some(Inventory {
                sources_read: Vec::new(),
                clusters: clusters_of(&self.previous.tasks, now),
                tasks: self.previous.tasks.clone(),
            }));
        }
        let text = crate::files::read_text(&self.path, crate::files::INVENTORY_CAP)
            .map_err(|e| self.error(e))?;
        let (inventory, previous) =
            parse_reusing(&self.path, &text, now, &self.previous).map_err(|e| self.error(e))?;
        self.seen = Some(stamp);
        self.dated = now;
        self.previous = previous;
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
        parse(path, &text, SystemTime::now()).map_err(bad)?;
    }
    Ok(())
}

/// Parses an inventory file's text; `read_at` dates every cluster in it.
pub fn parse(path: &Path, text: &str, read_at: SystemTime) -> Result<Inventory, String> {
    parse_reusing(path, text, read_at, &Previous::default()).map(|(inventory, _)| inventory)
}

/// The clusters `tasks` name (with their source, if the file names one),
/// each read at `read_at`.
fn clusters_of(tasks: &[Arc<Task>], read_at: SystemTime) -> Vec<ClusterStatus> {
    let mut names: Vec<(Option<&str>, &str)> = (tasks.iter())
        .map(|t| (t.source.as_deref(), t.cluster.as_str()))
        .collect();
    names.sort_unstable();
    names.dedup();
    (names.into_iter())
        .map(|(source, name)| ClusterStatus {
            source: source.map(str::to_owned),
            name: name.to_owned(),
            refreshed_at: read_at,
            error: None,
        })
        .collect()
}

/// [`parse`], handing back the allocation of each task of `previous` that
/// a parsed task equals once its defaults are filled in. Each task is
/// compared as soon as it is read, so that the unchanged ones are never
/// held twice. Also returns what the next read needs.
fn parse_reusing(
    path: &Path,
    text: &str,
    read_at: SystemTime,
    previous: &Previous,
) -> Result<(Inventory, Previous), String> {
    let json = path.extension().is_some_and(|e| e == "json");
    let blocks = (!json).then(|| toml_blocks(text, previous)).flatten();
    let tasks = match blocks {
        Some(read) => Some(read),
        None => {
            let mut matcher = Matcher::new(previous);
            let seed = FileSeed {
                matcher: &mut matcher,
            };
            if json {
                let mut json = serde_json::Deserializer::from_str(text);
                let tasks = seed.deserialize(&mut json).map_err(|e| e.to_string())?;
                json.end().map_err(|e| e.to_string())?;
                tasks
            } else {
                let toml = toml::Deserializer::parse(text).map_err(|e| e.to_string())?;
                seed.deserialize(toml).map_err(|e| e.to_string())?
            }
        }
    };
    let Some(read) = tasks else {
        return Err(
            "no `tasks` key: an empty or comment-only file is taken for a mistake and the last good data kept; write `tasks = []` (JSON: {\"tasks\": []}) for no tasks"
                .into(),
        );
    };
    for (index, (task, _)) in read.iter().enumerate() {
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
    // In ARN order, as a snapshot serves them (as a stable sort orders
    // them: tasks that share an ARN keep the file's order): a publication
    // matches them with the served ones in one pass and patches the zone
    // instead of building it again.
    let (order, strict) = match merged_order(previous, &read) {
        Some(order) => (order, true),
        None => sorted_order(&read),
    };
    // Collected from an exact-size iterator: no spare room, held for as
    // long as it is served.
    let tasks: Vec<Arc<Task>> = (order.iter())
        .map(|&j| read[j as usize].0.clone())
        .collect();
    let mut sorted_of_file = vec![0; order.len()];
    for (k, &j) in order.iter().enumerate() {
        sorted_of_file[j as usize] = k as u32;
    }
    drop(read);
    let next = Previous {
        tasks: tasks.clone(),
        file_of_sorted: order,
        sorted_of_file,
        strict,
    };
    Ok((
        Inventory {
            sources_read: Vec::new(),
            clusters: clusters_of(&tasks, read_at),
            tasks,
        },
        next,
    ))
}

/// A read task, and its place in the previous read's ARN order when it is
/// that task's allocation (each place at most once).
type Read = (Arc<Task>, Option<u32>);

/// The file indices of `read` in ARN order, without sorting the tasks
/// reused from `previous`: they keep their order, and the few others are
/// sorted and merged in. `None` (sort them all) unless the result is
/// strictly increasing, so that it is the order a stable sort would give.
fn merged_order(previous: &Previous, read: &[Read]) -> Option<Vec<u32>> {
    if !previous.strict || read.len() > u32::MAX as usize {
        return None;
    }
    // For each task of the previous read that is read again, where.
    let mut file_of_previous: Vec<Option<u32>> = vec![None; previous.tasks.len()];
    let mut others: Vec<u32> = Vec::new();
    for (j, (_, place)) in read.iter().enumerate() {
        match place {
            Some(k) => *file_of_previous.get_mut(*k as usize)? = Some(j as u32),
            None => others.push(j as u32),
        }
    }
    let arn = |j: u32| read[j as usize].0.task_arn.as_str();
    others.sort_by(|&a, &b| arn(a).cmp(arn(b)));
    if !others.windows(2).all(|w| arn(w[0]) < arn(w[1])) {
        return None;
    }
    let mut order = Vec::with_capacity(read.len());
    let mut others = others.into_iter().peekable();
    for (k, file) in file_of_previous.into_iter().enumerate() {
        let Some(j) = file else { continue };
        let here = previous.tasks[k].task_arn.as_str();
        while let Some(&o) = others.peek() {
            match arn(o).cmp(here) {
                std::cmp::Ordering::Less => order.push(others.next()?),
                std::cmp::Ordering::Equal => return None,
                std::cmp::Ordering::Greater => break,
            }
        }
        order.push(j);
    }
    order.extend(others);
    Some(order)
}

/// The file indices of `read` in ARN order (a stable sort), and whether no
/// two tasks share an ARN.
fn sorted_order(read: &[Read]) -> (Vec<u32>, bool) {
    let arn = |j: u32| read[j as usize].0.task_arn.as_str();
    let mut order: Vec<u32> = (0..read.len() as u32).collect();
    order.sort_by(|&a, &b| arn(a).cmp(arn(b)));
    let strict = order.windows(2).all(|w| arn(w[0]) < arn(w[1]));
    (order, strict)
}

/// A TOML file written as `[[tasks]]` blocks (as the demo's and every tool's
/// is), read one block at a time: a whole-document parse holds a tree of
/// every value with its position, some 8 KiB a task (a 100 000-task file
/// peaked at 780 MB, against 150 MB for the same tasks in JSON), where a
/// block is a few hundred bytes, parsed and dropped. `None` for any other
/// shape (keys before the first block, a header other than `[[tasks]]`
/// inside a block, `tasks = [...]`), and for a block that does not parse
/// alone: the whole document is parsed then, and its errors name the
/// file's lines. A `[[tasks]]` line inside a multi-line string leaves the
/// block before it unterminated, so a split is never taken for another
/// meaning.
fn toml_blocks(text: &str, previous: &Previous) -> Option<Vec<Read>> {
    let mut matcher = Matcher::new(previous);
    let mut read = Vec::new();
    let mut block: Option<usize> = None;
    let mut at = 0;
    let mut take = |from: usize, to: usize, read: &mut Vec<Read>| -> Option<()> {
        let mut task: Task = toml::from_str(&text[from..to]).ok()?;
        fill_defaults(&mut task);
        read.push(matcher.read(task));
        Some(())
    };
    for line in text.split_inclusive('\n') {
        let start = at;
        at += line.len();
        let trimmed = line.trim();
        if !trimmed.starts_with('[') {
            continue;
        }
        let rest = trimmed.strip_prefix("[[tasks]]")?.trim_start();
        if !(rest.is_empty() || rest.starts_with('#')) {
            return None;
        }
        match block {
            Some(from) => take(from, start, &mut read)?,
            // Before the first block: comments and blank lines only.
            None => {
                let preamble: toml::Table = toml::from_str(&text[..start]).ok()?;
                if !preamble.is_empty() {
                    return None;
                }
            }
        }
        block = Some(at);
    }
    take(block?, text.len(), &mut read)?;
    Some(read)
}

/// Finds the task of the previous read a parsed task equals: first where
/// the file had it (shifted as far as the last task found elsewhere was),
/// then among the tasks with its ARN.
struct Matcher<'a> {
    previous: &'a Previous,
    /// Places of `previous` handed out already.
    used: Vec<bool>,
    /// Index in the previous file minus index in this one, of the last task
    /// found.
    shift: i64,
    /// Tasks read so far.
    index: i64,
}

impl<'a> Matcher<'a> {
    fn new(previous: &'a Previous) -> Matcher<'a> {
        Matcher {
            previous,
            used: vec![false; previous.tasks.len()],
            shift: 0,
            index: 0,
        }
    }

    fn read(&mut self, task: Task) -> Read {
        let index = self.index;
        self.index += 1;
        let previous = self.previous;
        let hint = usize::try_from(index + self.shift).ok();
        let hinted = (hint.and_then(|j| previous.sorted_of_file.get(j)))
            .map(|&k| k as usize)
            .filter(|&k| (previous.tasks.get(k)).is_some_and(|p| **p == task));
        let found = hinted.or_else(|| {
            let first = previous
                .tasks
                .partition_point(|p| p.task_arn < task.task_arn);
            let k = (first..previous.tasks.len())
                .take_while(|&k| previous.tasks[k].task_arn == task.task_arn)
                .take(SAME_ARN_SCAN)
                .find(|&k| *previous.tasks[k] == task)?;
            if let Some(&j) = previous.file_of_sorted.get(k) {
                self.shift = i64::from(j) - index;
            }
            Some(k)
        });
        match found {
            Some(k) if !self.used[k] => {
                self.used[k] = true;
                (previous.tasks[k].clone(), Some(k as u32))
            }
            // The same task twice in the file: shared, placed by the sort.
            Some(k) => (previous.tasks[k].clone(), None),
            None => (Arc::new(task), None),
        }
    }
}

/// The file's top level: a table (JSON: an object) whose one key is
/// `tasks`. Required: an empty or comment-only file (a truncated rewrite,
/// an editor's empty buffer) is a mistake, never "no tasks"; `tasks = []`
/// says that. `None` when the key is missing.
struct FileSeed<'a, 'p> {
    matcher: &'a mut Matcher<'p>,
}

const FIELDS: &[&str] = &["tasks"];

impl<'de> DeserializeSeed<'de> for FileSeed<'_, '_> {
    type Value = Option<Vec<Read>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_struct("InventoryFile", FIELDS, self)
    }
}

impl<'de> Visitor<'de> for FileSeed<'_, '_> {
    type Value = Option<Vec<Read>>;

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
                matcher: &mut *self.matcher,
            })?;
        }
        Ok(tasks)
    }
}

/// The list `tasks`: each task read, its defaults filled in, and replaced
/// at once by the equal task of the previous read when there is one.
struct TasksSeed<'a, 'p> {
    matcher: &'a mut Matcher<'p>,
}

impl<'de> DeserializeSeed<'de> for TasksSeed<'_, '_> {
    type Value = Option<Vec<Read>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for TasksSeed<'_, '_> {
    type Value = Option<Vec<Read>>;

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
            matcher: self.matcher,
        };
        deserializer.deserialize_seq(list).map(Some)
    }
}

struct TaskList<'a, 'p> {
    matcher: &'a mut Matcher<'p>,
}

impl<'de> Visitor<'de> for TaskList<'_, '_> {
    type Value = Vec<Read>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a list of tasks")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut tasks = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
        while let Some(mut task) = seq.next_element::<Task>()? {
            fill_defaults(&mut task);
            tasks.push(self.matcher.read(task));
        }
        Ok(tasks)
    }
}

/// Tasks of one ARN compared, at most (a file of tasks without ARNs
/// shares the empty one: those are not reused past this many).
const SAME_ARN_SCAN: usize = 16;

fn fill_defaults(task: &mut Task) {
    for (field, default) in [
        (&mut task.last_status, "RUNNING"),
        (&mut task.desired_status, "RUNNING"),
        (&mut task.health_status, "UNKNOWN"),
        (&mut task.launch_type, "EC2"),
    ] {
        if field.is_empty() {
            *field = default.into();
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
    /// A TOML file of `[[tasks]]` blocks is read a block at a time, and
    /// gives the very tasks the whole-document parse gives; other shapes
    /// and broken blocks take the whole-document parse and its errors.
    #[test]
    fn toml_blocks_read_as_the_whole_document_does() {
        let whole = |text: &str| -> Result<Vec<Task>, String> {
            let none = Previous::default();
            let mut matcher = Matcher::new(&none);
            let seed = FileSeed {
                matcher: &mut matcher,
            };
            let toml = toml::Deserializer::parse(text).map_err(|e| e.to_string())?;
            let read = seed.deserialize(toml).map_err(|e| e.to_string())?;
            Ok(read
                .unwrap_or_default()
                .into_iter()
                .map(|(t, _)| (*t).clone())
                .collect())
        };
        let blocks = |text: &str| {
            toml_blocks(text, &Previous::default()).map(|read| {
                read.into_iter()
                    .map(|(t, _)| (*t).clone())
                    .collect::<Vec<_>>()
            })
        };
        let demo = include_str!("../../conf/demo-inventory.toml");
        let demo_tasks = blocks(demo).expect("the demo is read a block at a time");
        assert_eq!(demo_tasks.len(), 8);
        assert_eq!(Ok(demo_tasks), whole(demo));
        let two = "# two tasks\n\n[[tasks]] # first\ncluster = \"c\"\ntask_id = \"a\"\nservice = \"s\"\nports = [\n  { container_name = \"x\", container_port = 80 },\n]\n[[tasks]]\ncluster = \"c\"\ntask_id = \"b\"\nfamily = \"f\"\n";
        assert_eq!(blocks(two).map(|t| t.len()), Some(2));
        assert_eq!(Ok(blocks(two).unwrap()), whole(two));
        for other in [
            // Keys before the first block, the inline form, a sub-table.
            "x = 1\n[[tasks]]\ncluster = \"c\"\ntask_id = \"a\"\nservice = \"s\"\n",
            "tasks = [{ cluster = \"c\", task_id = \"a\", service = \"s\" }]\n",
            "[[tasks]]\ncluster = \"c\"\ntask_id = \"a\"\nservice = \"s\"\n[[tasks.ports]]\ncontainer_name = \"x\"\ncontainer_port = 80\n",
            // A header line inside a multi-line string: not a split.
            "[[tasks]]\ncluster = \"c\"\ntask_id = \"a\"\nservice = \"\"\"\n[[tasks]]\n\"\"\"\n",
            // A broken block, an unknown key after the last one.
            "[[tasks]]\ncluster = \n",
            "[[tasks]]\ncluster = \"c\"\ntask_id = \"a\"\nservice = \"s\"\nnope = 1\n",
            "",
        ] {
            assert_eq!(blocks(other), None, "{other}");
        }
        // That fallback still reads what it can and refuses the rest.
        assert_eq!(
            whole(
                "[[tasks]]\ncluster = \"c\"\ntask_id = \"a\"\nservice = \"\"\"\n[[tasks]]\n\"\"\"\n"
            )
            .map(|t| t.len()),
            Ok(1)
        );
    }

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
            let mut source = FileSource::new(path.clone(), Duration::from_secs(30));
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

    /// Re-reads of a file edited at random (tasks replaced, changed,
    /// inserted, removed, moved, and sometimes two sharing an ARN) give
    /// what a first read of the same file gives, in the same order, and
    /// every task equal to one of the previous read with its ARN is that
    /// task's allocation.
    #[test]
    fn rereads_after_random_edits_equal_a_first_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inventory.json");
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let mut tasks: Vec<(usize, String)> = (0..300).map(|i| (i, "10.0.0.1".into())).collect();
        let mut fresh = 1000;
        let mut source = FileSource::new(path.clone(), Duration::from_secs(30));
        let mut before: Vec<Arc<Task>> = Vec::new();
        for round in 0..60 {
            for _ in 0..next(6) {
                let at = next(tasks.len());
                match next(6) {
                    0 => {
                        tasks[at].0 = {
                            fresh += 1;
                            fresh
                        }
                    }
                    1 => tasks[at].1 = format!("10.1.{}.{}", round, next(250)),
                    2 => {
                        fresh += 1;
                        tasks.insert(at, (fresh, "10.0.0.2".into()));
                    }
                    3 => drop(tasks.remove(at)),
                    4 => {
                        let task = tasks.remove(at);
                        tasks.insert(next(tasks.len()), task);
                    }
                    // A second task with an ARN already there, for a while.
                    _ if (20..25).contains(&round) => {
                        tasks.push((tasks[at].0, "10.2.0.1".into()));
                    }
                    _ => {}
                }
            }
            if round == 30 {
                let mut seen = std::collections::HashSet::new();
                tasks.retain(|(i, _)| seen.insert(*i));
            }
            let listed: Vec<String> = tasks.iter().map(|(i, ip)| json_task(*i, ip)).collect();
            // Padded to a new length, so that the rewrite is seen.
            let text = format!(
                r#"{{"tasks": [{}]}}{}"#,
                listed.join(","),
                " ".repeat(round)
            );
            std::fs::write(&path, &text).unwrap();
            let read = source.refresh().unwrap().unwrap();
            let first = parse(&path, &text, SystemTime::UNIX_EPOCH).unwrap();
            assert_eq!(read.tasks, first.tasks, "round {round}");
            for task in &read.tasks {
                let same: Vec<&Arc<Task>> = (before.iter())
                    .filter(|b| b.task_arn == task.task_arn)
                    .collect();
                if let [only] = same[..]
                    && **only == **task
                    && read
                        .tasks
                        .iter()
                        .filter(|t| t.task_arn == task.task_arn)
                        .count()
                        == 1
                {
                    assert!(
                        Arc::ptr_eq(only, task),
                        "round {round}: {} copied",
                        task.task_arn
                    );
                }
            }
            before = read.tasks;
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
