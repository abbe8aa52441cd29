//! Several sources, one zone: each source publishes its own part of the
//! inventory, and the zone is built from all the parts together. A source
//! that fails keeps its last part, and one that has not read yet has none:
//! neither holds back the others' publications.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::inventory::Inventory;

/// Each named source's last published inventory.
pub type Parts = BTreeMap<String, Arc<Inventory>>;

/// The inventory of every part: clusters by source and name, tasks in ARN
/// order (the order every snapshot keeps), each shared, not copied.
pub fn merge(parts: &Parts) -> Inventory {
    let mut merged = Inventory {
        sources_read: parts.keys().cloned().collect(),
        clusters: Vec::with_capacity(parts.values().map(|p| p.clusters.len()).sum()),
        tasks: Vec::with_capacity(parts.values().map(|p| p.tasks.len()).sum()),
    };
    for part in parts.values() {
        merged.clusters.extend(part.clusters.iter().cloned());
        merged.tasks.extend(part.tasks.iter().cloned());
    }
    merged
        .clusters
        .sort_by(|a, b| (&a.source, &a.name).cmp(&(&b.source, &b.name)));
    merged.tasks.sort_by(|a, b| a.task_arn.cmp(&b.task_arn));
    merged
}

/// An inventory (restored from the state file) cut back into its named
/// sources' parts; what no named source read is left out.
pub fn split(inventory: &Inventory) -> Parts {
    let mut parts: BTreeMap<String, Inventory> = BTreeMap::new();
    for cluster in &inventory.clusters {
        if let Some(source) = &cluster.source {
            let part = parts.entry(source.clone()).or_default();
            part.clusters.push(cluster.clone());
        }
    }
    for task in &inventory.tasks {
        if let Some(source) = &task.source {
            let part = parts.entry(source.to_string()).or_default();
            part.tasks.push(task.clone());
        }
    }
    (parts.into_iter())
        .map(|(name, part)| (name, Arc::new(part)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{ClusterStatus, Task};

    fn task(source: &str, arn: &str) -> Arc<Task> {
        Arc::new(Task {
            source: Some(source.into()),
            cluster: "prod".into(),
            task_arn: arn.into(),
            ..Task::default()
        })
    }

    fn part(source: &str, arns: &[&str]) -> Arc<Inventory> {
        Arc::new(Inventory {
            sources_read: Vec::new(),
            clusters: vec![ClusterStatus {
                source: Some(source.into()),
                name: "prod".into(),
                refreshed_at: std::time::SystemTime::UNIX_EPOCH,
                error: None,
            }],
            tasks: arns.iter().map(|arn| task(source, arn)).collect(),
        })
    }

    #[test]
    fn parts_merge_in_arn_order_and_split_back() {
        let parts = Parts::from([
            ("west".into(), part("west", &["arn:2:a", "arn:2:c"])),
            ("east".into(), part("east", &["arn:1:b"])),
        ]);
        let merged = merge(&parts);
        let arns: Vec<&str> = merged.tasks.iter().map(|t| t.task_arn.as_str()).collect();
        assert_eq!(arns, ["arn:1:b", "arn:2:a", "arn:2:c"]);
        assert_eq!(merged.clusters.len(), 2);
        assert_eq!(merged.sources_read, ["east", "west"]);
        assert_eq!(merged.clusters[0].source.as_deref(), Some("east"));
        // Shared, not copied.
        assert!(Arc::ptr_eq(&merged.tasks[0], &parts["east"].tasks[0]));
        let back = split(&merged);
        assert_eq!(back.len(), 2);
        assert_eq!(back["west"].tasks.len(), 2);
        assert_eq!(back["east"].clusters, parts["east"].clusters);
    }
}
