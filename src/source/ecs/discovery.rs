//! The AWS calls, one function per operation, each counted (calls and
//! errors) and paged or batched to the API's limits.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_ecs::error::DisplayErrorContext;
use aws_sdk_ecs::types as ecs;

use super::calls::{CallCounts, Operation};
use super::convert::{self, InstanceFacts, TaskDefFacts};
use crate::inventory::ALIAS_TAG;

/// DescribeTasks, DescribeContainerInstances: at most 100 ARNs per call.
pub const DESCRIBE_BATCH: usize = 100;
/// ListTasks, ListClusters, ListContainerInstances: at most 100 per page.
pub const LIST_PAGE: i32 = 100;
/// DescribeServices: at most 10 services per call.
pub const SERVICES_BATCH: usize = 10;
/// DescribeInstances: at most 200 values in one filter.
pub const INSTANCES_BATCH: usize = 200;

/// DescribeTasks batches in flight at once: a 10 000-task cluster is 100
/// batches; a few in parallel cut the poll time without bursting past ECS's
/// request rate.
pub const DESCRIBE_CONCURRENCY: usize = 4;

fn joined<T>(done: Result<Result<T, CallError>, tokio::task::JoinError>) -> Result<T, CallError> {
    done.map_err(|e| CallError {
        operation: Operation::DescribeTasks.name(),
        reason: format!("batch task ended: {e}"),
    })?
}

/// One failed call: which operation and why, with the SDK's full context.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{operation}: {reason}")]
pub struct CallError {
    pub operation: &'static str,
    pub reason: String,
}

/// The ECS and EC2 clients, and the counters every call goes through.
#[derive(Clone)]
pub struct Api {
    pub ecs: aws_sdk_ecs::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub counts: Arc<CallCounts>,
}

impl Api {
    async fn call<T, E>(
        &self,
        op: Operation,
        request: impl Future<Output = Result<T, E>>,
    ) -> Result<T, CallError>
    where
        E: std::error::Error,
    {
        self.counts.call(op);
        request.await.map_err(|e| {
            self.counts.error(op);
            CallError {
                operation: op.name(),
                reason: DisplayErrorContext(&e).to_string(),
            }
        })
    }

    /// Sends `send(token)` for each page of a listing, from the first (no
    /// token) until a page comes without a next token, and hands each page
    /// to `take`. One helper for every paged ECS and EC2 call.
    async fn paged<P, E, F>(
        &self,
        op: Operation,
        mut send: impl FnMut(Option<String>) -> F,
        mut take: impl FnMut(&P),
        next_token: impl Fn(&P) -> Option<&str>,
    ) -> Result<(), CallError>
    where
        F: Future<Output = Result<P, E>>,
        E: std::error::Error,
    {
        let mut token = None;
        loop {
            let page = self.call(op, send(token.take())).await?;
            take(&page);
            match next_token(&page) {
                Some(next) if !next.is_empty() => token = Some(next.to_owned()),
                _ => return Ok(()),
            }
        }
    }

    /// Every cluster ARN of the account and region.
    pub async fn list_clusters(&self) -> Result<Vec<String>, CallError> {
        let mut out = Vec::new();
        self.paged(
            Operation::ListClusters,
            |token| {
                self.ecs
                    .list_clusters()
                    .max_results(LIST_PAGE)
                    .set_next_token(token)
                    .send()
            },
            |page| out.extend(page.cluster_arns().iter().cloned()),
            |page| page.next_token(),
        )
        .await?;
        Ok(out)
    }

    /// ARNs of the tasks of `cluster` whose desired status is RUNNING. Tasks
    /// ECS is stopping drop out of the list: they are withdrawn.
    pub async fn list_running_tasks(&self, cluster: &str) -> Result<Vec<String>, CallError> {
        let mut out = Vec::new();
        self.paged(
            Operation::ListTasks,
            |token| {
                self.ecs
                    .list_tasks()
                    .cluster(cluster)
                    .desired_status(ecs::DesiredStatus::Running)
                    .max_results(LIST_PAGE)
                    .set_next_token(token)
                    .send()
            },
            |page| out.extend(page.task_arns().iter().cloned()),
            |page| page.next_token(),
        )
        .await?;
        Ok(out)
    }

    /// The tasks `arns` with their tags, in batches of 100, up to
    /// [`DESCRIBE_CONCURRENCY`] batches in flight, each batch after the
    /// first sent `pause` after the one before (events mode's paced full
    /// read; zero otherwise). Tasks that vanished since they were listed are
    /// left out (ECS reports them as `failures`).
    pub async fn describe_tasks(
        &self,
        cluster: &str,
        arns: &[String],
        pause: Duration,
    ) -> Result<Vec<ecs::Task>, CallError> {
        let mut out = Vec::with_capacity(arns.len());
        // Dropping the set (an error, the cluster deadline) aborts the rest.
        let mut in_flight = tokio::task::JoinSet::new();
        for (i, batch) in arns.chunks(DESCRIBE_BATCH).enumerate() {
            if i > 0 && !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
            if in_flight.len() >= DESCRIBE_CONCURRENCY
                && let Some(done) = in_flight.join_next().await
            {
                out.extend(joined(done)?);
            }
            let (api, cluster, batch) = (self.clone(), cluster.to_owned(), batch.to_vec());
            in_flight.spawn(async move { api.describe_task_batch(&cluster, batch).await });
        }
        while let Some(done) = in_flight.join_next().await {
            out.extend(joined(done)?);
        }
        // Batches finish in any order: keep the inventory's order stable.
        out.sort_by(|a, b| a.task_arn().cmp(&b.task_arn()));
        Ok(out)
    }

    async fn describe_task_batch(
        &self,
        cluster: &str,
        batch: Vec<String>,
    ) -> Result<Vec<ecs::Task>, CallError> {
        let request = self
            .ecs
            .describe_tasks()
            .cluster(cluster)
            .set_tasks(Some(batch))
            .include(ecs::TaskField::Tags)
            .send();
        let page = self.call(Operation::DescribeTasks, request).await?;
        // Taken, not copied: a page of 100 tasks is some hundreds of KB.
        Ok(page.tasks.unwrap_or_default())
    }

    pub async fn describe_task_definition(&self, arn: &str) -> Result<TaskDefFacts, CallError> {
        let request = self
            .ecs
            .describe_task_definition()
            .task_definition(arn)
            .send();
        let output = self
            .call(Operation::DescribeTaskDefinition, request)
            .await?;
        output
            .task_definition()
            .map(convert::task_definition)
            .ok_or_else(|| CallError {
                operation: Operation::DescribeTaskDefinition.name(),
                reason: format!("no task definition in the answer for {arn}"),
            })
    }

    /// Container-instance ARN → EC2 instance id, in batches of 100.
    pub async fn describe_container_instances(
        &self,
        cluster: &str,
        arns: &[String],
    ) -> Result<Vec<(String, String)>, CallError> {
        let mut out = Vec::new();
        for batch in arns.chunks(DESCRIBE_BATCH) {
            let request = self
                .ecs
                .describe_container_instances()
                .cluster(cluster)
                .set_container_instances(Some(batch.to_vec()))
                .send();
            let page = self
                .call(Operation::DescribeContainerInstances, request)
                .await?;
            out.extend(page.container_instances().iter().filter_map(|ci| {
                Some((
                    ci.container_instance_arn()?.to_owned(),
                    ci.ec2_instance_id()?.to_owned(),
                ))
            }));
        }
        Ok(out)
    }

    /// ARNs of the container instances of `cluster` that are DRAINING: one
    /// call per cluster and poll (more only past 100 draining instances).
    pub async fn list_draining(&self, cluster: &str) -> Result<HashSet<String>, CallError> {
        let mut out = HashSet::new();
        self.paged(
            Operation::ListContainerInstances,
            |token| {
                self.ecs
                    .list_container_instances()
                    .cluster(cluster)
                    .status(ecs::ContainerInstanceStatus::Draining)
                    .max_results(LIST_PAGE)
                    .set_next_token(token)
                    .send()
            },
            |page| out.extend(page.container_instance_arns().iter().cloned()),
            |page| page.next_token(),
        )
        .await?;
        Ok(out)
    }

    /// Service name → its `ecs-dns:name` tag (if any), in batches of 10.
    pub async fn service_aliases(
        &self,
        cluster: &str,
        services: &[String],
    ) -> Result<HashMap<String, Option<String>>, CallError> {
        let mut out = HashMap::new();
        for batch in services.chunks(SERVICES_BATCH) {
            let request = self
                .ecs
                .describe_services()
                .cluster(cluster)
                .set_services(Some(batch.to_vec()))
                .include(ecs::ServiceField::Tags)
                .send();
            let page = self.call(Operation::DescribeServices, request).await?;
            for service in page.services() {
                let Some(name) = service.service_name() else {
                    continue;
                };
                let alias = service
                    .tags()
                    .iter()
                    .find(|t| t.key() == Some(ALIAS_TAG))
                    .and_then(|t| t.value())
                    .map(str::to_owned);
                out.insert(name.to_owned(), alias);
            }
            // A service that is gone keeps no alias: remember that too, so it
            // is not asked for again on every poll.
            for name in batch {
                out.entry(name.clone()).or_insert(None);
            }
        }
        Ok(out)
    }

    /// Addresses of the EC2 instances `ids`. An `instance-id` filter rather
    /// than `InstanceIds`: an id that no longer exists is left out instead of
    /// failing the whole call.
    pub async fn describe_instances(
        &self,
        ids: &[String],
    ) -> Result<Vec<(String, InstanceFacts)>, CallError> {
        let mut out = Vec::new();
        for batch in ids.chunks(INSTANCES_BATCH) {
            let filter = aws_sdk_ec2::types::Filter::builder()
                .name("instance-id")
                .set_values(Some(batch.to_vec()))
                .build();
            self.paged(
                Operation::DescribeInstances,
                |token| {
                    self.ec2
                        .describe_instances()
                        .filters(filter.clone())
                        .max_results(1000)
                        .set_next_token(token)
                        .send()
                },
                |page| {
                    for instance in page.reservations().iter().flat_map(|r| r.instances()) {
                        if let Some(id) = instance.instance_id() {
                            out.push((id.to_owned(), convert::instance(instance)));
                        }
                    }
                },
                |page| page.next_token(),
            )
            .await?;
        }
        Ok(out)
    }
}
