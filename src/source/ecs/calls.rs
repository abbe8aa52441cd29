//! Counts of AWS calls per operation: exported as metrics and kept in
//! atomics, so the benchmark and tests can read how many calls a poll made.

use std::sync::atomic::{AtomicU64, Ordering};

/// How many operations there are.
const COUNT: usize = 10;

/// Every AWS operation the ECS source calls (and `docker/iam-policy.json`
/// allows: keep the two lists equal).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    ListClusters,
    ListTasks,
    DescribeTasks,
    DescribeTaskDefinition,
    DescribeContainerInstances,
    ListContainerInstances,
    DescribeServices,
    DescribeInstances,
    /// SQS, events mode: the source's own queue.
    ReceiveMessage,
    DeleteMessageBatch,
}

impl Operation {
    pub const ALL: [Operation; COUNT] = [
        Operation::ListClusters,
        Operation::ListTasks,
        Operation::DescribeTasks,
        Operation::DescribeTaskDefinition,
        Operation::DescribeContainerInstances,
        Operation::ListContainerInstances,
        Operation::DescribeServices,
        Operation::DescribeInstances,
        Operation::ReceiveMessage,
        Operation::DeleteMessageBatch,
    ];

    /// The names of [`Operation::ALL`], in order: the metrics' label values.
    pub const NAMES: [&'static str; COUNT] = [
        "ListClusters",
        "ListTasks",
        "DescribeTasks",
        "DescribeTaskDefinition",
        "DescribeContainerInstances",
        "ListContainerInstances",
        "DescribeServices",
        "DescribeInstances",
        "ReceiveMessage",
        "DeleteMessageBatch",
    ];

    pub fn name(self) -> &'static str {
        Self::NAMES[self.index()]
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Calls and errors per operation since the source was made. A call is one
/// SDK operation (its internal retries are not counted again).
#[derive(Debug, Default)]
pub struct CallCounts {
    calls: [AtomicU64; COUNT],
    errors: [AtomicU64; COUNT],
    /// The source's name, a `source` label of the metrics (several
    /// sources only).
    source: Option<String>,
}

/// A copy of the counters at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallSnapshot {
    pub calls: [u64; COUNT],
    pub errors: [u64; COUNT],
}

impl CallCounts {
    /// The counters of the source named `source`.
    pub fn of_source(source: Option<&str>) -> CallCounts {
        CallCounts {
            source: source.map(str::to_owned),
            ..CallCounts::default()
        }
    }

    fn labels(&self, op: Operation) -> Vec<metrics::Label> {
        let mut labels = vec![metrics::Label::new("operation", op.name())];
        if let Some(source) = &self.source {
            labels.push(metrics::Label::new("source", source.clone()));
        }
        labels
    }

    pub fn call(&self, op: Operation) {
        self.calls[op.index()].fetch_add(1, Ordering::Relaxed);
        metrics::counter!("ecs_dns_aws_calls_total", self.labels(op)).increment(1);
    }

    pub fn error(&self, op: Operation) {
        self.errors[op.index()].fetch_add(1, Ordering::Relaxed);
        metrics::counter!("ecs_dns_aws_errors_total", self.labels(op)).increment(1);
    }

    pub fn snapshot(&self) -> CallSnapshot {
        let mut out = CallSnapshot::default();
        for op in Operation::ALL {
            out.calls[op.index()] = self.calls[op.index()].load(Ordering::Relaxed);
            out.errors[op.index()] = self.errors[op.index()].load(Ordering::Relaxed);
        }
        out
    }
}

impl CallSnapshot {
    pub fn calls(&self, op: Operation) -> u64 {
        self.calls[op.index()]
    }

    pub fn errors(&self, op: Operation) -> u64 {
        self.errors[op.index()]
    }

    pub fn total_calls(&self) -> u64 {
        self.calls.iter().sum()
    }

    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &CallSnapshot) -> CallSnapshot {
        let mut out = CallSnapshot::default();
        for i in 0..self.calls.len() {
            out.calls[i] = self.calls[i].saturating_sub(earlier.calls[i]);
            out.errors[i] = self.errors[i].saturating_sub(earlier.errors[i]);
        }
        out
    }
}

impl std::fmt::Display for CallSnapshot {
    /// `ListTasks=2 DescribeTasks=1 ...`, only operations that were called.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for op in Operation::ALL {
            let calls = self.calls(op);
            if calls == 0 {
                continue;
            }
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            write!(f, "{}={calls}", op.name())?;
            let errors = self.errors(op);
            if errors > 0 {
                write!(f, "(errors={errors})")?;
            }
        }
        if first {
            f.write_str("none")?;
        }
        Ok(())
    }
}
