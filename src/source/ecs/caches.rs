//! What is read once and kept: task definitions (immutable per ARN),
//! container instance → EC2 instance (fixed for a registration), EC2
//! instance addresses (fixed for the instance's life) and service aliases
//! (re-read after [`SERVICE_TAGS_MAX_AGE`]). Every entry no task references
//! any more is dropped after a poll, so the caches follow the cluster's size.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;

use super::convert::{InstanceFacts, TaskDefFacts};
use crate::inventory::Task;

/// Service tags can change at any time (TagResource): re-read them this
/// often. Only services whose tasks lack the alias tag are read at all.
pub const SERVICE_TAGS_MAX_AGE: Duration = Duration::from_secs(300);

#[derive(Default)]
pub struct Caches {
    /// Task-definition ARN → facts.
    pub task_defs: DashMap<String, Arc<TaskDefFacts>>,
    /// Container-instance ARN → EC2 instance id.
    pub container_instances: DashMap<String, String>,
    /// EC2 instance id → addresses.
    pub instances: DashMap<String, Arc<InstanceFacts>>,
    /// (cluster, service) → the service's `ecs-dns:name` tag, if any, and when
    /// it was read.
    pub service_aliases: DashMap<(String, String), (Option<String>, Instant)>,
}

impl Caches {
    /// Drops every entry that no task of `tasks` refers to.
    pub fn evict_unreferenced<'a>(&self, tasks: impl Iterator<Item = &'a Arc<Task>>) {
        let mut defs = HashSet::new();
        let mut container_instances = HashSet::new();
        let mut instances = HashSet::new();
        let mut services = HashSet::new();
        for task in tasks {
            defs.insert(task.task_definition_arn.as_str());
            if let Some(arn) = &task.container_instance_arn {
                container_instances.insert(arn.as_str());
            }
            if let Some(id) = &task.ec2_instance_id {
                instances.insert(id.as_str());
            }
            if let Some(service) = &task.service {
                services.insert((task.cluster.as_str(), service.as_str()));
            }
        }
        self.task_defs.retain(|arn, _| defs.contains(arn.as_str()));
        self.container_instances
            .retain(|arn, _| container_instances.contains(arn.as_str()));
        self.instances
            .retain(|id, _| instances.contains(id.as_str()));
        self.service_aliases.retain(|(cluster, service), _| {
            services.contains(&(cluster.as_str(), service.as_str()))
        });
    }

    /// The cached alias of a service, if read recently enough.
    pub fn fresh_service_alias(&self, cluster: &str, service: &str) -> Option<Option<String>> {
        let key = (cluster.to_owned(), service.to_owned());
        let entry = self.service_aliases.get(&key)?;
        let (alias, read_at) = entry.value();
        (read_at.elapsed() < SERVICE_TAGS_MAX_AGE).then(|| alias.clone())
    }

    /// The last alias read for a service, however old.
    pub fn any_service_alias(&self, cluster: &str, service: &str) -> Option<String> {
        let key = (cluster.to_owned(), service.to_owned());
        self.service_aliases
            .get(&key)
            .and_then(|e| e.value().0.clone())
    }

    pub fn sizes(&self) -> [usize; 4] {
        [
            self.task_defs.len(),
            self.container_instances.len(),
            self.instances.len(),
            self.service_aliases.len(),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_what_no_task_references() {
        let caches = Caches::default();
        for arn in ["td:1", "td:2"] {
            caches.task_defs.insert(arn.into(), Arc::default());
        }
        caches
            .container_instances
            .insert("ci-1".into(), "i-1".into());
        caches
            .container_instances
            .insert("ci-2".into(), "i-2".into());
        caches.instances.insert("i-1".into(), Arc::default());
        caches.instances.insert("i-2".into(), Arc::default());
        let now = Instant::now();
        caches
            .service_aliases
            .insert(("c".into(), "web".into()), (None, now));
        caches
            .service_aliases
            .insert(("c".into(), "old".into()), (None, now));
        let task = Task {
            cluster: "c".into(),
            service: Some("web".into()),
            task_definition_arn: "td:1".into(),
            container_instance_arn: Some("ci-1".into()),
            ec2_instance_id: Some("i-1".into()),
            ..Task::default()
        };
        caches.evict_unreferenced(std::iter::once(&Arc::new(task)));
        assert!(caches.task_defs.contains_key("td:1"));
        assert!(!caches.task_defs.contains_key("td:2"));
        assert!(caches.container_instances.contains_key("ci-1"));
        assert!(!caches.container_instances.contains_key("ci-2"));
        assert!(!caches.instances.contains_key("i-2"));
        assert_eq!(caches.sizes(), [1, 1, 1, 1]);
        assert_eq!(caches.fresh_service_alias("c", "web"), Some(None));
    }
}
