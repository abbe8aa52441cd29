//! Whether a task can take traffic: the serving rule.

use serde::Serialize;

use crate::inventory::Task;

/// What the records function decided about one task, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Served under its names.
    Served,
    /// Not RUNNING yet (PROVISIONING, PENDING, ACTIVATING).
    Pending,
    /// RUNNING with a health check that has not passed yet (UNKNOWN).
    Starting,
    /// Reported UNHEALTHY.
    Unhealthy,
    /// ECS decided to stop it (desired status no longer RUNNING), or it has
    /// stopped: withdrawn even while its containers still drain.
    Stopping,
    /// Served by the rule, but no address is known for it.
    NoAddress,
    /// Its service (or family), cluster or id maps to no usable label.
    Unnamed,
}

const RUNNING: &str = "RUNNING";

/// The serving rule: last and desired status RUNNING and, when an essential
/// container defines a health check, HEALTHY; without one, anything but
/// UNHEALTHY.
pub fn verdict(task: &Task) -> Verdict {
    if !task.desired_status.eq_ignore_ascii_case(RUNNING) {
        return Verdict::Stopping;
    }
    if !task.last_status.eq_ignore_ascii_case(RUNNING) {
        return if is_past_running(&task.last_status) {
            Verdict::Stopping
        } else {
            Verdict::Pending
        };
    }
    let health = task.health_status.to_ascii_uppercase();
    if health == "UNHEALTHY" {
        return Verdict::Unhealthy;
    }
    if task.has_health_check && health != "HEALTHY" {
        return Verdict::Starting;
    }
    if task.ipv4.is_empty() && task.ipv6.is_empty() {
        return Verdict::NoAddress;
    }
    Verdict::Served
}

/// ECS task states after RUNNING.
fn is_past_running(status: &str) -> bool {
    [
        "DEACTIVATING",
        "STOPPING",
        "DEPROVISIONING",
        "STOPPED",
        "DELETED",
    ]
    .iter()
    .any(|s| s.eq_ignore_ascii_case(status))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn task(last: &str, desired: &str, health: &str, check: bool) -> Task {
        Task {
            last_status: last.into(),
            desired_status: desired.into(),
            health_status: health.into(),
            has_health_check: check,
            ipv4: vec![Ipv4Addr::new(10, 0, 0, 1)],
            ..Task::default()
        }
    }

    #[test]
    fn serving_rule() {
        use Verdict::*;
        // (last, desired, health, essential container has a health check, verdict)
        let table = [
            ("RUNNING", "RUNNING", "HEALTHY", true, Served),
            ("RUNNING", "RUNNING", "UNKNOWN", true, Starting),
            ("RUNNING", "RUNNING", "", true, Starting),
            ("RUNNING", "RUNNING", "UNHEALTHY", true, Unhealthy),
            ("RUNNING", "RUNNING", "UNKNOWN", false, Served),
            ("RUNNING", "RUNNING", "HEALTHY", false, Served),
            ("RUNNING", "RUNNING", "UNHEALTHY", false, Unhealthy),
            ("running", "running", "healthy", true, Served),
            ("RUNNING", "STOPPED", "HEALTHY", true, Stopping),
            ("RUNNING", "STOPPED", "UNKNOWN", false, Stopping),
            ("PENDING", "RUNNING", "UNKNOWN", false, Pending),
            ("PROVISIONING", "RUNNING", "UNKNOWN", false, Pending),
            ("ACTIVATING", "RUNNING", "UNKNOWN", false, Pending),
            ("DEACTIVATING", "RUNNING", "HEALTHY", false, Stopping),
            ("STOPPED", "STOPPED", "UNKNOWN", false, Stopping),
        ];
        for (last, desired, health, check, want) in table {
            assert_eq!(
                verdict(&task(last, desired, health, check)),
                want,
                "last={last} desired={desired} health={health} check={check}"
            );
        }
    }

    #[test]
    fn no_address_is_not_served() {
        let mut t = task("RUNNING", "RUNNING", "HEALTHY", true);
        t.ipv4.clear();
        assert_eq!(verdict(&t), Verdict::NoAddress);
    }
}
