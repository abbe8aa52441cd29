//! Why a task is or is not served, in words an operator reads at 3 a.m.:
//! the serving rule's verdict with the facts behind it, including what the
//! other tasks of its service are doing (the service rules decide drain and
//! fail-open from them).

use std::collections::HashMap;

use crate::inventory::Task;
use crate::records::Verdict;
use crate::zone::Snapshot;

/// A service in one cluster: `(cluster, service or family)`.
pub type ServiceKey<'a> = (&'a str, &'a str);

/// How many tasks a service has in one cluster, and how many are served.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServiceCounts {
    pub tasks: usize,
    pub served: usize,
}

/// The counts of the services of `wanted` tasks (positions in the
/// inventory), in one pass over the inventory.
pub fn service_counts<'a>(
    snapshot: &'a Snapshot,
    wanted: &[usize],
) -> HashMap<ServiceKey<'a>, ServiceCounts> {
    let tasks = &snapshot.inventory.tasks;
    let mut counts: HashMap<ServiceKey<'a>, ServiceCounts> = wanted
        .iter()
        .filter_map(|&i| tasks.get(i))
        .map(|t| (key(t), ServiceCounts::default()))
        .collect();
    for (task, verdict) in tasks.iter().zip(&snapshot.report.verdicts) {
        if let Some(count) = counts.get_mut(&key(task)) {
            count.tasks += 1;
            count.served += usize::from(verdict.is_served());
        }
    }
    counts
}

pub fn key(task: &Task) -> ServiceKey<'_> {
    (&task.cluster, task.service_or_family())
}

/// "1 other task", "2 other tasks".
fn others(n: usize) -> String {
    match n {
        1 => "1 other task".to_owned(),
        n => format!("{n} other tasks"),
    }
}

/// The reason `task` has `verdict`, given its service's counts.
pub fn reason(task: &Task, verdict: Option<Verdict>, service: ServiceCounts) -> String {
    let Some(verdict) = verdict else {
        return "no verdict: the task is not in the published snapshot".to_owned();
    };
    let served_others = service.served - usize::from(verdict.is_served()).min(service.served);
    let instance = task
        .ec2_instance_id
        .as_deref()
        .or(task.container_instance_arn.as_deref())
        .unwrap_or("(unknown)");
    match verdict {
        Verdict::Served if task.instance_draining => format!(
            "served although instance {instance} is DRAINING: no other task of the service is served \
             (draining alone never empties a service)"
        ),
        Verdict::Served if task.has_health_check => "served: RUNNING and HEALTHY".to_owned(),
        Verdict::Served => "served: RUNNING (its task definition has no health check)".to_owned(),
        Verdict::FailingOpen => format!(
            "served although UNHEALTHY: no task of the service is healthy ({} in this cluster), \
             so all unhealthy ones are served (fail open)",
            service.tasks
        ),
        Verdict::Pending => format!("not running yet: last status {}", task.last_status),
        Verdict::Starting => format!(
            "RUNNING, waiting for its health check to pass (health {})",
            or_unknown(&task.health_status)
        ),
        Verdict::Unhealthy if served_others > 0 => format!(
            "UNHEALTHY, and {} of the service {} served",
            others(served_others),
            if served_others == 1 { "is" } else { "are" }
        ),
        Verdict::Unhealthy => {
            "UNHEALTHY, and fail open is off, so it is not served (no task of the service is)"
                .to_owned()
        }
        Verdict::Stopping if !task.desired_status.eq_ignore_ascii_case("RUNNING") => format!(
            "ECS is stopping it: desired status {}, last status {}",
            task.desired_status, task.last_status
        ),
        Verdict::Stopping => format!("stopped: last status {}", task.last_status),
        Verdict::NoAddress => format!(
            "RUNNING, but no address is known yet ({} network mode: {})",
            serde_json::to_value(task.network_mode)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            match task.network_mode {
                crate::inventory::NetworkMode::Awsvpc => "the ENI has no address",
                _ => "the container instance's address is not known",
            }
        ),
        Verdict::Draining => format!(
            "instance {instance} is DRAINING, and {} of the service {} served elsewhere",
            others(served_others),
            if served_others == 1 { "is" } else { "are" }
        ),
        Verdict::Unnamed => {
            "not served: its service (or family), cluster or task id makes no valid DNS label"
                .to_owned()
        }
    }
}

fn or_unknown(text: &str) -> &str {
    if text.is_empty() { "UNKNOWN" } else { text }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(last: &str, desired: &str, health: &str) -> Task {
        Task {
            last_status: last.into(),
            desired_status: desired.into(),
            health_status: health.into(),
            has_health_check: true,
            ec2_instance_id: Some("i-0abc".into()),
            ..Task::default()
        }
    }

    #[test]
    fn reasons_in_words() {
        let counts = |tasks, served| ServiceCounts { tasks, served };
        let mut draining = task("RUNNING", "RUNNING", "HEALTHY");
        draining.instance_draining = true;
        // (task, verdict, service counts, the reason contains)
        let table: Vec<(Task, Verdict, ServiceCounts, &str)> = vec![
            (
                task("RUNNING", "RUNNING", "HEALTHY"),
                Verdict::Served,
                counts(1, 1),
                "RUNNING and HEALTHY",
            ),
            (
                task("RUNNING", "RUNNING", "UNHEALTHY"),
                Verdict::Unhealthy,
                counts(3, 2),
                "UNHEALTHY, and 2 other tasks of the service are served",
            ),
            (
                task("RUNNING", "RUNNING", "UNHEALTHY"),
                Verdict::Unhealthy,
                counts(2, 1),
                "1 other task of the service is served",
            ),
            (
                task("RUNNING", "RUNNING", "UNHEALTHY"),
                Verdict::Unhealthy,
                counts(2, 0),
                "fail open is off",
            ),
            (
                task("RUNNING", "RUNNING", "UNHEALTHY"),
                Verdict::FailingOpen,
                counts(2, 2),
                "fail open",
            ),
            (
                task("RUNNING", "STOPPED", "HEALTHY"),
                Verdict::Stopping,
                counts(1, 0),
                "desired status STOPPED",
            ),
            (
                task("STOPPED", "RUNNING", ""),
                Verdict::Stopping,
                counts(1, 0),
                "stopped: last status STOPPED",
            ),
            (
                task("PENDING", "RUNNING", ""),
                Verdict::Pending,
                counts(1, 0),
                "last status PENDING",
            ),
            (
                task("RUNNING", "RUNNING", ""),
                Verdict::Starting,
                counts(1, 0),
                "health UNKNOWN",
            ),
            (
                draining.clone(),
                Verdict::Draining,
                counts(2, 1),
                "instance i-0abc is DRAINING, and 1 other task of the service is served",
            ),
            (draining, Verdict::Served, counts(1, 1), "draining alone"),
            (
                task("RUNNING", "RUNNING", "HEALTHY"),
                Verdict::NoAddress,
                counts(1, 0),
                "no address",
            ),
            (
                task("RUNNING", "RUNNING", "HEALTHY"),
                Verdict::Unnamed,
                counts(1, 0),
                "no valid DNS label",
            ),
        ];
        for (task, verdict, counts, want) in table {
            let got = reason(&task, Some(verdict), counts);
            assert!(got.contains(want), "{verdict:?}: {got:?} lacks {want:?}");
        }
    }
}
