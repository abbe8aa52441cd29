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
    /// On a DRAINING container instance, withdrawn because its service has
    /// another serving task in the same cluster.
    Draining,
    /// UNHEALTHY, but served because every task of its service in the cluster
    /// is (fail open, as Route 53 multivalue answers do).
    FailingOpen,
    /// Its service (or family), cluster or id maps to no usable label.
    Unnamed,
}

impl Verdict {
    /// Whether the task's addresses are served.
    pub fn is_served(self) -> bool {
        matches!(self, Verdict::Served | Verdict::FailingOpen)
    }
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
    let health = task.health_status.as_str();
    if health.eq_ignore_ascii_case("UNHEALTHY") {
        return Verdict::Unhealthy;
    }
    if task.has_health_check && !health.eq_ignore_ascii_case("HEALTHY") {
        return Verdict::Starting;
    }
    if task.ipv4.is_empty() && task.ipv6.is_empty() {
        return Verdict::NoAddress;
    }
    Verdict::Served
}

/// The rules that look at a whole service (its tasks in one cluster) rather
/// than one task, applied to the verdicts of [`verdict`] for those tasks:
///
/// - drain-aware: a served task on a DRAINING instance is withdrawn when the
///   service has another served task that is not draining; a service is never
///   emptied by draining alone;
/// - fail open (when `fail_open`): when no task of the service is served and
///   some are UNHEALTHY, those are served. Starting tasks (health UNKNOWN)
///   neither count nor get served.
pub fn apply_service_rules(verdicts: &mut [Verdict], draining: &[bool], fail_open: bool) {
    let steady = verdicts
        .iter()
        .zip(draining)
        .any(|(v, draining)| *v == Verdict::Served && !draining);
    if steady {
        for (v, draining) in verdicts.iter_mut().zip(draining) {
            if *v == Verdict::Served && *draining {
                *v = Verdict::Draining;
            }
        }
    }
    let any_served = verdicts.contains(&Verdict::Served);
    if fail_open && !any_served {
        for v in verdicts.iter_mut() {
            if *v == Verdict::Unhealthy {
                *v = Verdict::FailingOpen;
            }
        }
    }
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

    /// Each case: one service's tasks as (verdict of the task rule, on a
    /// draining instance), and the verdicts after the service rules.
    #[test]
    fn service_rules() {
        use Verdict::*;
        /// (what, tasks as (verdict, on a draining instance), fail_open, verdicts after)
        type Case<'a> = (&'a str, &'a [(Verdict, bool)], bool, &'a [Verdict]);
        let table: &[Case] = &[
            (
                "draining withdrawn when another serves",
                &[(Served, true), (Served, false)],
                true,
                &[Draining, Served],
            ),
            (
                "never emptied by draining alone",
                &[(Served, true), (Served, true)],
                true,
                &[Served, Served],
            ),
            (
                "a starting replacement does not count",
                &[(Served, true), (Starting, false)],
                true,
                &[Served, Starting],
            ),
            (
                "all unhealthy: fail open",
                &[(Unhealthy, false), (Unhealthy, false)],
                true,
                &[FailingOpen, FailingOpen],
            ),
            (
                "fail open off",
                &[(Unhealthy, false), (Unhealthy, false)],
                false,
                &[Unhealthy, Unhealthy],
            ),
            (
                "one healthy: no fail open",
                &[(Unhealthy, false), (Served, false)],
                true,
                &[Unhealthy, Served],
            ),
            (
                "starting tasks are not failed open",
                &[(Unhealthy, false), (Starting, false)],
                true,
                &[FailingOpen, Starting],
            ),
            (
                "only starting: nothing served",
                &[(Starting, false)],
                true,
                &[Starting],
            ),
            (
                "unhealthy on a draining instance",
                &[(Unhealthy, true)],
                true,
                &[FailingOpen],
            ),
            (
                "stopping tasks never fail open",
                &[(Stopping, false)],
                true,
                &[Stopping],
            ),
        ];
        for (what, tasks, fail_open, want) in table {
            let mut verdicts: Vec<Verdict> = tasks.iter().map(|(v, _)| *v).collect();
            let draining: Vec<bool> = tasks.iter().map(|(_, d)| *d).collect();
            apply_service_rules(&mut verdicts, &draining, *fail_open);
            assert_eq!(&verdicts, want, "{what}");
        }
    }

    #[test]
    fn no_address_is_not_served() {
        let mut t = task("RUNNING", "RUNNING", "HEALTHY", true);
        t.ipv4.clear();
        assert_eq!(verdict(&t), Verdict::NoAddress);
    }
}
