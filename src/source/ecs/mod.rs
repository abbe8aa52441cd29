//! The ECS source: where every running task is, read from the ECS and EC2
//! APIs on each poll.
//!
//! One poll: ListClusters (only when no clusters are configured), then per
//! cluster ListTasks (desired status RUNNING, pages of 100), DescribeTasks
//! (batches of 100 with tags, a few in parallel; in events mode's
//! reconcile, spread over a window: [`reconcile::batch_pause`]), one
//! ListContainerInstances(DRAINING) when the cluster has EC2 tasks, and only
//! what is not cached (see [`caches`]): DescribeTaskDefinition per new
//! task-definition ARN, DescribeContainerInstances for new container
//! instances, DescribeInstances for new EC2 instances, DescribeServices for
//! service aliases. A steady cluster of N tasks thus costs
//! 2 × ⌈N/100⌉ + 1 calls per poll (measured: 4 at 100 tasks, 22 at 1 000,
//! 202 at 10 000, with ListClusters).
//!
//! A cluster whose refresh fails keeps its last good tasks, and its
//! [`ClusterStatus`] says since when and why: the inventory is always whole,
//! and a failed or throttled call never removes a record.

pub mod caches;
pub mod calls;
pub mod convert;
pub mod discovery;
pub mod events;
pub mod origin;
pub mod queue;
pub mod reconcile;
pub mod retry;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_ecs::types as ecs;

use self::caches::Caches;
use self::calls::{CallCounts, CallSnapshot};
use self::convert::Placement;
use self::discovery::{Api, CallError};
use self::events::{Event, Judgement, Ledger, TaskChange};
use self::origin::Scope;
use self::queue::Queue;
use super::SourceError;
use crate::config::{AssumeRole, EcsConfig, EventsConfig};
use crate::inventory::{ALIAS_TAG, ClusterStatus, Inventory, Task};

/// Copies `scope` to `shared` (the shared queue's reader routes by it).
fn share(scope: &Scope, shared: &std::sync::Mutex<Scope>) {
    let mut shared = shared.lock().unwrap_or_else(|e| e.into_inner());
    if *shared != *scope {
        *shared = scope.clone();
    }
}

/// How long a stopped task is remembered, so that a late event cannot bring
/// it back (SQS keeps a message for at most the queue's retention, ~1 h in
/// the shipped stack).
const TOMBSTONE_FOR: Duration = Duration::from_secs(2 * 3600);

pub struct EcsSource {
    /// `[[sources]]` `name`, given to every task it reads; `None` for the
    /// one source of the flat keys.
    name: Option<crate::inventory::Text>,
    /// Configured clusters (names or ARNs); empty: every cluster.
    clusters: Vec<String>,
    region: Option<String>,
    /// Assumed for every call, if set.
    role: Option<AssumeRole>,
    endpoint_url: Option<String>,
    request_timeout: Duration,
    /// Made on the first refresh: loading the SDK configuration is async.
    api: Option<Api>,
    counts: Arc<CallCounts>,
    caches: Arc<Caches>,
    /// Cluster name → how the latest refresh went, and its tasks between a
    /// read and the inventory made of them.
    state: BTreeMap<String, ClusterState>,
    /// Events mode: the queue, made with the SDK configuration.
    events: Option<EventsConfig>,
    queue: Option<Queue>,
    ledger: Ledger,
    /// Tasks first seen in an event, per cluster: their tags (and health)
    /// come from the next batched re-read.
    awaiting_tags: BTreeMap<String, BTreeSet<String>>,
    /// The inventory last published (see [`EcsSource::published`]): the
    /// last good tasks of a cluster that fails are taken back from it, so
    /// that the source holds no copy of the tasks served.
    published: Option<Arc<Inventory>>,
    /// Whether the next full reads are events mode's reconciles (see
    /// [`EcsSource::set_reconciling`]).
    reconciling: bool,
    /// The account and region the source reads: events that name another
    /// are foreign (see [`origin`]).
    scope: Scope,
    /// A copy of `scope` for the reader of a queue shared with other
    /// sources ([`crate::source::shared_queue`]), kept up to date.
    shared_scope: Arc<std::sync::Mutex<Scope>>,
}

/// What one batch of event messages came to.
#[derive(Debug, Default)]
pub struct Applied {
    /// The inventory to publish, when something changed.
    pub inventory: Option<Inventory>,
    /// The messages that may be deleted (applied, or judged irrelevant).
    pub done: Vec<String>,
}

#[derive(Default)]
struct ClusterState {
    /// What to pass to the API: the configured name or the listed ARN.
    id: String,
    /// Moved into the inventory at the end of each refresh.
    tasks: Vec<Arc<Task>>,
    /// `None` until one refresh of the cluster succeeded.
    refreshed_at: Option<SystemTime>,
    error: Option<String>,
}

impl EcsSource {
    pub fn new(
        clusters: Vec<String>,
        region: Option<String>,
        request_timeout: Duration,
        events: Option<EventsConfig>,
    ) -> Self {
        let scope = Scope {
            region: region.clone(),
            account: None,
        };
        EcsSource {
            name: None,
            clusters,
            region,
            role: None,
            endpoint_url: None,
            request_timeout,
            api: None,
            counts: Arc::default(),
            caches: Arc::default(),
            state: BTreeMap::new(),
            events,
            queue: None,
            ledger: Ledger::new(TOMBSTONE_FOR),
            awaiting_tags: BTreeMap::new(),
            published: None,
            reconciling: false,
            shared_scope: Arc::new(std::sync::Mutex::new(scope.clone())),
            scope,
        }
    }

    /// The source one `[[sources]]` table (or the flat keys) configures.
    pub fn from_config(config: &EcsConfig) -> Self {
        let mut source = EcsSource::new(
            config.clusters.clone(),
            config.region.clone(),
            config.request_timeout,
            config.events.clone(),
        );
        source.name = config.name.as_deref().map(Into::into);
        source.counts = Arc::new(CallCounts::of_source(config.name.as_deref()));
        source.role = config.role.clone();
        source.endpoint_url = config.endpoint_url.clone();
        // The role's account is the one the source reads: events of any
        // other are foreign from the start.
        source.scope.account = config.role.as_ref().map(|r| r.account.clone());
        source.share_scope();
        source
    }

    /// What the source reads (region, account), as the reader of a shared
    /// queue routes by it.
    pub fn scope_handle(&self) -> Arc<std::sync::Mutex<Scope>> {
        self.shared_scope.clone()
    }

    fn share_scope(&self) {
        share(&self.scope, &self.shared_scope);
    }

    /// The source's name, if it has one (several sources).
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The SDK configuration of this source's calls: its region, endpoint
    /// and, if set, the role assumed.
    async fn sdk_config(&self) -> aws_config::SdkConfig {
        retry::load_sdk_config(retry::SdkTarget {
            region: self.region.as_deref(),
            endpoint_url: self.endpoint_url.as_deref(),
            role: self.role.as_ref(),
            request_timeout: self.request_timeout,
        })
        .await
    }

    /// Events mode: whether the next full reads are reconciles, that is
    /// full reads between which events are applied (not the polls while
    /// the queue cannot be read; a cluster's first read is never one). A
    /// reconcile spreads its DescribeTasks batches over a window
    /// ([`reconcile::batch_pause`]) and counts, per kind, what events had
    /// missed
    /// (`ecs_dns_reconcile_corrections_total{kind}`). Without events mode
    /// it stays off: every poll is the truth, there is nothing to correct.
    pub fn set_reconciling(&mut self, on: bool) {
        self.reconciling = on && self.events.is_some();
    }

    /// Events mode, if configured.
    pub fn events(&self) -> Option<&EventsConfig> {
        self.events.as_ref()
    }

    /// The events queue (events mode only), made on first use.
    pub async fn queue(&mut self) -> Result<Option<Queue>, SourceError> {
        if self.events.is_none() {
            return Ok(None);
        }
        if let Some(queue) = &self.queue {
            return Ok(Some(queue.clone()));
        }
        let queue = self.make_queue().await?;
        self.queue = Some(queue.clone());
        Ok(Some(queue))
    }

    /// A client of the events queue (events mode only; `Err` without).
    pub async fn make_queue(&self) -> Result<Queue, SourceError> {
        let Some(events) = &self.events else {
            return Err(SourceError::Other("no events queue configured".into()));
        };
        let url = events.queue_url.clone();
        // The queue is read as ecs-dns itself, never through a member
        // account's role, in the region its URL names.
        let region = queue::region_of_url(&url).or(self.region.as_deref());
        let config = retry::load_sdk_config(retry::SdkTarget {
            region,
            endpoint_url: self.endpoint_url.as_deref(),
            role: None,
            request_timeout: self.request_timeout,
        })
        .await;
        Ok(Queue::new(
            &config,
            &url,
            self.request_timeout,
            self.counts.clone(),
        ))
    }

    /// Tells the source which inventory is served now (the one its last
    /// refresh returned). A cluster whose next refresh fails keeps its tasks
    /// from it; a caller that does not hand it back gets no tasks for such
    /// a cluster.
    pub fn published(&mut self, inventory: Arc<Inventory>) {
        // Events mode keeps its tasks: holding the served inventory too
        // would keep an old one alive once events replace it.
        if self.events.is_none() {
            self.published = Some(inventory);
        }
    }

    /// The tasks of `cluster` in the inventory last published.
    fn published_tasks(&self, cluster: &str) -> Vec<Arc<Task>> {
        self.published.as_ref().map_or_else(Vec::new, |inventory| {
            (inventory.tasks.iter())
                .filter(|t| t.cluster == cluster)
                .cloned()
                .collect()
        })
    }

    /// AWS calls made so far, per operation.
    pub fn calls(&self) -> CallSnapshot {
        self.counts.snapshot()
    }

    /// Entries in the caches: task definitions, container instances, EC2
    /// instances, services.
    pub fn cache_sizes(&self) -> [usize; 4] {
        self.caches.sizes()
    }

    pub fn describe(&self) -> String {
        let clusters = if self.clusters.is_empty() {
            "all clusters".to_owned()
        } else {
            format!("clusters {}", self.clusters.join(","))
        };
        let region = self
            .region
            .as_deref()
            .unwrap_or("region from the environment");
        let what = match &self.events {
            Some(events) => format!(
                "ecs ({clusters}, {region}, events from {}, reconcile every {})",
                events.queue_url,
                humantime::format_duration(events.reconcile_interval)
            ),
            None => format!("ecs ({clusters}, {region})"),
        };
        let role = match &self.role {
            Some(role) => format!(", as {}", role.role_arn),
            None => String::new(),
        };
        let endpoint = match &self.endpoint_url {
            Some(url) => format!(", at {url}"),
            None => String::new(),
        };
        match &self.name {
            Some(name) => format!("{name}: {what}{role}{endpoint}"),
            None => format!("{what}{role}{endpoint}"),
        }
    }

    async fn api(&mut self) -> Result<Api, SourceError> {
        if let Some(api) = &self.api {
            return Ok(api.clone());
        }
        let config = self.sdk_config().await;
        if config.region().is_none() {
            return Err(SourceError::Other(
                "ecs source: no AWS region: set `region` (ECS_DNS_REGION) or AWS_REGION".into(),
            ));
        }
        if self.scope.region.is_none() {
            self.scope.region = config.region().map(|r| r.as_ref().to_owned());
            self.share_scope();
        }
        let api = Api {
            ecs: aws_sdk_ecs::Client::new(&config),
            ec2: aws_sdk_ec2::Client::new(&config),
            counts: self.counts.clone(),
        };
        self.api = Some(api.clone());
        Ok(api)
    }

    /// One poll of every cluster. `Err` only when there is nothing at all to
    /// report: no cluster was ever read.
    pub async fn refresh(&mut self) -> Result<Option<Inventory>, SourceError> {
        let read = self.start_read().await?;
        self.finish_read(read.run().await)
    }

    /// The first part of a full read: which clusters to read
    /// (ListClusters, when none are configured), and how. The reading
    /// itself ([`FullRead::run`]) borrows nothing of the source: events
    /// mode applies events while a paced reconcile reads.
    pub async fn start_read(&mut self) -> Result<FullRead, SourceError> {
        let started = Instant::now();
        let before = self.counts.snapshot();
        let api = self.api().await?;
        let listing_error = self.update_cluster_list(&api).await;
        let mut deadline = retry::cluster_deadline(self.request_timeout);
        if self.reconciling {
            // The paced batches' pauses come on top.
            deadline += reconcile::MAX_PACING_WINDOW;
        }
        let clusters = (self.state.iter())
            .map(|(name, state)| {
                // A reconcile is paced; not a cluster's first read, which
                // is awaited to serve.
                let pace_over = match &self.events {
                    Some(events) if self.reconciling && state.refreshed_at.is_some() => {
                        Some(events.reconcile_interval)
                    }
                    _ => None,
                };
                (name.clone(), state.id.clone(), pace_over)
            })
            .collect();
        Ok(FullRead {
            reader: self.reader(),
            api,
            clusters,
            deadline,
            started,
            started_at: SystemTime::now(),
            before,
            listing_error,
            results: Vec::new(),
        })
    }

    fn reader(&self) -> Reader {
        Reader {
            caches: self.caches.clone(),
            source: self.name.clone(),
        }
    }

    /// The last part of a full read: each cluster's tasks replaced by what
    /// was read (a cluster that failed keeps its last good tasks), what
    /// events had missed counted, and the inventory. A task an event
    /// changed while the read ran keeps what the event said: the event is
    /// newer than the read.
    pub fn finish_read(&mut self, read: FullRead) -> Result<Option<Inventory>, SourceError> {
        let FullRead {
            started,
            started_at,
            before,
            listing_error,
            results,
            ..
        } = read;
        let mut corrected = reconcile::Corrections::default();
        let mut corrected_clusters = Vec::new();
        let newer = self.ledger.applied_since(started_at);
        for (name, result) in results {
            // Read before: its last good tasks are those served now.
            // (Events mode keeps its tasks, and never empties one for want
            // of a published inventory.)
            let served = match self.events {
                None => self.published_tasks(&name),
                Some(_) => Vec::new(),
            };
            let kept = match (&result, self.state.get(&name)) {
                (Err(_), Some(state)) if state.refreshed_at.is_some() && self.events.is_none() => {
                    Some(served.clone())
                }
                _ => None,
            };
            let Some(state) = self.state.get_mut(&name) else {
                continue;
            };
            if let Some(kept) = kept {
                state.tasks = kept;
            }
            match result {
                Ok(mut tasks) => {
                    if state.error.is_some() {
                        tracing::info!(cluster = %name, "cluster recovered");
                    }
                    let before = if served.is_empty() {
                        &state.tasks
                    } else {
                        &served
                    };
                    reuse_unchanged(before, &mut tasks);
                    // The account of what the API returned: events that name
                    // another are foreign.
                    if let Some(task) = tasks.first() {
                        self.scope.learn(&task.task_arn);
                        share(&self.scope, &self.shared_scope);
                    }
                    let is_newer =
                        |arn: &str| newer.contains(events::task_key(&name, arn).as_str());
                    if !newer.is_empty() {
                        tasks = reconcile::with_newer_events(&state.tasks, tasks, &is_newer);
                    }
                    // A cluster read for the first time corrects nothing.
                    if self.reconciling && state.refreshed_at.is_some() {
                        let found = reconcile::corrections(&state.tasks, &tasks);
                        if found.total() > 0 {
                            for (kind, count) in found.by_kind() {
                                metrics::counter!("ecs_dns_reconcile_corrections_total", "kind" => kind)
                                    .increment(count as u64);
                            }
                            corrected.added += found.added;
                            corrected.removed += found.removed;
                            corrected.changed += found.changed;
                            corrected_clusters.push(name.clone());
                        }
                    }
                    state.tasks = tasks;
                    // The read gave every task's tags: none waits for them,
                    // but those an event started while it ran.
                    if let Some(waiting) = self.awaiting_tags.get_mut(&name) {
                        waiting.retain(|arn| is_newer(arn));
                    }
                    state.refreshed_at = Some(SystemTime::now());
                    state.error = None;
                }
                Err(error) => {
                    let age = state
                        .refreshed_at
                        .and_then(|t| t.elapsed().ok())
                        .map(|a| {
                            humantime::format_duration(Duration::from_secs(a.as_secs())).to_string()
                        })
                        .unwrap_or_else(|| "never read".into());
                    crate::warn_throttled!(
                        "cluster refresh failed",
                        cluster = %name,
                        %error,
                        data_age = %age,
                        tasks = state.tasks.len(),
                        "cluster refresh failed: keeping its last good tasks"
                    );
                    state.error = Some(error.to_string());
                }
            }
        }

        if corrected.total() > 0 {
            crate::warn_throttled!(
                "events missed",
                clusters = %corrected_clusters.join(","),
                added = corrected.added,
                removed = corrected.removed,
                changed = corrected.changed,
                "full read corrected tasks that events had missed (lost or late events)"
            );
        }
        let ever_read = self.state.values().any(|s| s.refreshed_at.is_some());
        if !ever_read {
            let reason = match (
                &listing_error,
                self.state.values().find_map(|s| s.error.clone()),
            ) {
                (Some(e), _) => e.to_string(),
                (None, Some(e)) => e,
                (None, None) => "no cluster found".to_owned(),
            };
            // An account with no cluster at all is not an error: it is an
            // empty inventory.
            if listing_error.is_none() && self.state.is_empty() {
                return Ok(Some(Inventory::default()));
            }
            return Err(SourceError::Other(format!("ecs source: {reason}")));
        }

        self.caches
            .evict_unreferenced(self.state.values().flat_map(|s| s.tasks.iter()));
        let running: HashSet<String> = (self.state.values())
            .flat_map(|s| s.tasks.iter())
            .map(|t| events::task_key(&t.cluster, &t.task_arn))
            .collect();
        self.ledger
            .trim(SystemTime::now(), &|key| running.contains(key));
        let in_use: HashSet<&str> = (self.state.values())
            .flat_map(|s| s.tasks.iter())
            .filter_map(|t| t.container_instance_arn.as_deref())
            .collect();
        self.ledger.trim_instances(&|arn| in_use.contains(arn));
        // The last reference to the published inventory goes with the
        // snapshot that serves it.
        self.published = None;
        let inventory = self.inventory();
        tracing::debug!(
            took = ?started.elapsed(),
            tasks = inventory.tasks.len(),
            calls = %self.counts.snapshot().since(&before),
            "ecs poll done"
        );
        Ok(Some(inventory))
    }

    /// Learns which clusters to read. A failed ListClusters keeps the
    /// clusters known so far (their tasks stay served).
    async fn update_cluster_list(&mut self, api: &Api) -> Option<CallError> {
        let ids = if self.clusters.is_empty() {
            match api.list_clusters().await {
                Ok(arns) => arns,
                Err(error) => {
                    tracing::warn!(%error, "ListClusters failed: keeping the clusters known so far");
                    return Some(error);
                }
            }
        } else {
            self.clusters.clone()
        };
        let mut wanted = HashSet::new();
        for id in ids {
            // A listed or configured cluster ARN says the account.
            self.scope.learn(&id);
            self.share_scope();
            let name = convert::cluster_name(&id);
            wanted.insert(name.clone());
            self.state.entry(name).or_default().id = id;
        }
        // A cluster that is gone from the account takes its tasks with it.
        self.state.retain(|name, _| wanted.contains(name));
        None
    }

    /// Applies a batch of event messages (bodies and receipts): a task event
    /// newer than what was applied is converted like a poll's task (task
    /// definition and instance from the caches, read only when new), with
    /// the health a read gave before and its tags left for
    /// [`EcsSource::refresh_waiting`]; stopped tasks are withdrawn;
    /// container instance events set the drain state. Events of another
    /// account or region (`foreign`, see [`origin`]), of clusters not
    /// served, duplicates and stale events are judged and dropped;
    /// malformed messages are counted and dropped. A task is known by its
    /// cluster and id ([`events::task_key`]), whatever its ARN's format.
    /// `Err`: a read of the caches failed; none of the batch's task events
    /// is recorded, so their messages come back and are applied then (its
    /// container instance events are in the state already, and judged
    /// duplicates then).
    pub async fn apply_events(
        &mut self,
        messages: &[queue::Received],
    ) -> Result<Applied, SourceError> {
        let api = self.api().await?;
        let mut applied = Applied::default();
        let mut tasks: Vec<TaskChange> = Vec::new();
        let mut changed = false;
        // Which source reads what: (account, region) → source. One source
        // today.
        let routes = [(self.scope.clone(), ())];
        for message in messages {
            let parsed = events::parse(&message.body);
            let kind = match &parsed {
                Ok(event) => event.type_label(),
                Err(error) => error.type_label(),
            };
            let foreign = match &parsed {
                Ok(event) => {
                    origin::route(&routes, &event.places()).is_none()
                        || self.another_cluster_of_that_name(event)
                }
                Err(_) => false,
            };
            let outcome = match parsed {
                Err(error) => {
                    crate::warn_throttled!("malformed event", %error, "event message not used: deleted");
                    "malformed"
                }
                Ok(_) if foreign => {
                    crate::warn_throttled!(
                        "foreign event",
                        "an event of another account or region than the source reads: not used"
                    );
                    "foreign"
                }
                Ok(Event::Other { .. }) => "ignored",
                Ok(Event::Instance(change)) => {
                    let cluster = convert::cluster_name(&change.cluster_arn);
                    match (
                        self.state.get_mut(&cluster),
                        self.ledger.judge_instance(&change),
                    ) {
                        (None, _) => "ignored",
                        (Some(_), Judgement::Duplicate) => "duplicate",
                        (Some(_), Judgement::Stale | Judgement::AfterStop) => "stale",
                        (Some(state), Judgement::Apply) => {
                            let draining = change.is_draining();
                            for task in state.tasks.iter_mut().filter(|t| {
                                t.container_instance_arn.as_deref()
                                    == Some(change.container_instance_arn.as_str())
                            }) {
                                if task.instance_draining != draining {
                                    Arc::make_mut(task).instance_draining = draining;
                                    changed = true;
                                }
                            }
                            self.ledger.record_instance(&change);
                            "applied"
                        }
                    }
                }
                Ok(Event::Task(change)) => {
                    let cluster = convert::cluster_name(&change.cluster_arn);
                    if !self.state.contains_key(&cluster) {
                        "ignored"
                    } else {
                        match self.ledger.judge(&change) {
                            Judgement::Apply => {
                                observe_lag(change.time);
                                tasks.push(change);
                                // Counted once applied, below.
                                applied.done.push(message.receipt.clone());
                                continue;
                            }
                            Judgement::Duplicate => "duplicate",
                            Judgement::Stale | Judgement::AfterStop => "stale",
                        }
                    }
                }
            };
            metrics::counter!("ecs_dns_events_total", "type" => kind, "outcome" => outcome)
                .increment(1);
            applied.done.push(message.receipt.clone());
        }
        // Newest first per task, so that two versions in one batch apply
        // once; the others are counted as the ledger would judge them.
        tasks.sort_by_cached_key(|t| (t.key(), std::cmp::Reverse(t.version)));
        let (mut in_batch_duplicates, mut in_batch_stale) = (0, 0);
        tasks.dedup_by(|later, first| {
            let same = later.key() == first.key();
            match (same, later.version == first.version) {
                (true, true) => in_batch_duplicates += 1,
                (true, false) => in_batch_stale += 1,
                (false, _) => {}
            }
            same
        });
        // What the events say, converted like a poll's tasks (task
        // definition, instance and aliases from the caches): no DescribeTasks
        // on the way to the answer. Their tags (and health) are read in the
        // next batched re-read (`refresh_waiting`).
        let mut from_events: BTreeMap<String, Vec<ecs::Task>> = BTreeMap::new();
        for change in &tasks {
            let cluster = convert::cluster_name(&change.cluster_arn);
            if change.is_stopped() {
                let id = events::task_id(&change.task_arn);
                if let Some(state) = self.state.get_mut(&cluster) {
                    state.tasks.retain(|t| t.task_id != id);
                }
                if let Some(waiting) = self.awaiting_tags.get_mut(&cluster) {
                    waiting.retain(|arn| events::task_id(arn) != id);
                }
                changed = true;
            } else {
                from_events
                    .entry(cluster)
                    .or_default()
                    .push(change.to_task());
            }
        }
        for (cluster, raw) in from_events {
            let Some(id) = self.state.get(&cluster).map(|s| s.id.clone()) else {
                continue;
            };
            let found = self
                .reader()
                .tasks_of(&api, &cluster, &id, &raw)
                .await
                .map_err(|e| SourceError::Other(format!("ecs events: {e}")))?;
            let Some(state) = self.state.get_mut(&cluster) else {
                continue;
            };
            let waiting = self.awaiting_tags.entry(cluster).or_default();
            for mut task in found {
                // By id within the cluster: an old-format ARN in the event
                // and a new-format one read (or the reverse) are one task.
                match state.tasks.iter_mut().find(|t| t.task_id == task.task_id) {
                    Some(existing) => {
                        // What an event cannot say, a read said before; the
                        // ARN stays the one read.
                        task.task_arn.clone_from(&existing.task_arn);
                        task.health_status = existing.health_status.clone();
                        task.tags = existing.tags.clone();
                        if **existing != task {
                            *existing = Arc::new(task);
                            changed = true;
                        }
                    }
                    None => {
                        waiting.insert(task.task_arn.clone());
                        state.tasks.push(Arc::new(task));
                        changed = true;
                    }
                }
            }
        }
        let now = SystemTime::now();
        for change in &tasks {
            self.ledger.record(change, now);
            metrics::counter!("ecs_dns_events_total", "type" => "task", "outcome" => "applied")
                .increment(1);
        }
        for (outcome, count) in [
            ("duplicate", in_batch_duplicates),
            ("stale", in_batch_stale),
        ] {
            if count > 0 {
                metrics::counter!("ecs_dns_events_total", "type" => "task", "outcome" => outcome)
                    .increment(count);
            }
        }
        if changed {
            applied.inventory = Some(self.inventory());
        }
        Ok(applied)
    }

    /// Whether `event` is of a cluster that has the name of a served one but
    /// is another (see [`origin::other_cluster`]).
    fn another_cluster_of_that_name(&self, event: &Event) -> bool {
        let Some(arn) = event.cluster_arn() else {
            return false;
        };
        (self.state.get(&convert::cluster_name(arn)))
            .is_some_and(|state| origin::other_cluster(&state.id, arn))
    }

    /// Re-reads known tasks (ARNs per cluster name) with DescribeTasks,
    /// through the same conversion as a poll; a task asked for and not
    /// returned (MISSING) is gone. Whether any task changed.
    async fn reread(
        &mut self,
        api: &Api,
        to_read: BTreeMap<String, Vec<String>>,
    ) -> Result<bool, SourceError> {
        let mut changed = false;
        for (cluster, arns) in to_read {
            let Some(id) = self.state.get(&cluster).map(|s| s.id.clone()) else {
                continue;
            };
            let read = async {
                let raw = api.describe_tasks(&id, &arns, Duration::ZERO).await?;
                let found = self.reader().tasks_of(api, &cluster, &id, &raw).await?;
                Ok::<_, CallError>((raw, found))
            };
            let (raw, found) = read
                .await
                .map_err(|e| SourceError::Other(format!("ecs events: {e}")))?;
            let Some(state) = self.state.get_mut(&cluster) else {
                continue;
            };
            let returned: HashSet<&str> = raw.iter().filter_map(|t| t.task_arn()).collect();
            let before = state.tasks.len();
            state
                .tasks
                .retain(|t| !arns.contains(&t.task_arn) || returned.contains(t.task_arn.as_str()));
            changed |= state.tasks.len() != before;
            for task in found {
                // Only tasks already known are re-read; one that went
                // meanwhile stays gone.
                match state.tasks.iter_mut().find(|t| t.task_arn == task.task_arn) {
                    Some(existing) if **existing == task => {}
                    Some(existing) => {
                        *existing = Arc::new(task);
                        changed = true;
                    }
                    None => {}
                }
            }
        }
        Ok(changed)
    }

    /// Events mode: re-reads, in batches of 100 per cluster, the tasks that
    /// wait for their health check (events say nothing of health, and a
    /// task turning HEALTHY sends none) and the tasks first seen in an event
    /// (for their tags); nothing when none waits. The inventory when a task
    /// changed.
    pub async fn refresh_waiting(&mut self) -> Result<Option<Inventory>, SourceError> {
        let mut to_read: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, state) in &self.state {
            let tagless = self.awaiting_tags.get(name);
            let arns: Vec<String> = state
                .tasks
                .iter()
                .filter(|t| waits_for_health(t) || tagless.is_some_and(|w| w.contains(&t.task_arn)))
                .map(|t| t.task_arn.clone())
                .collect();
            if !arns.is_empty() {
                to_read.insert(name.clone(), arns);
            }
        }
        if to_read.is_empty() {
            self.awaiting_tags.clear();
            return Ok(None);
        }
        let api = self.api().await?;
        let changed = self.reread(&api, to_read).await?;
        self.awaiting_tags.clear();
        Ok(changed.then(|| self.inventory()))
    }

    /// The inventory of every cluster, the tasks moved out of the state.
    fn inventory(&mut self) -> Inventory {
        let mut inventory = Inventory::default();
        let count = self.state.values().map(|s| s.tasks.len()).sum();
        inventory.tasks.reserve_exact(count);
        for (name, state) in &mut self.state {
            let refreshed_at = state.refreshed_at.unwrap_or(SystemTime::UNIX_EPOCH);
            let age = refreshed_at.elapsed().unwrap_or_default().as_secs_f64();
            // Labelled as `ops::metrics` labels it from the snapshot.
            let mut labels = vec![metrics::Label::new("cluster", name.clone())];
            if let Some(source) = &self.name {
                labels.push(metrics::Label::new("source", source.to_string()));
            }
            metrics::gauge!("ecs_dns_cluster_data_age_seconds", labels).set(age);
            inventory.clusters.push(ClusterStatus {
                source: self.name.as_deref().map(str::to_owned),
                name: name.clone(),
                refreshed_at,
                error: state.error.clone(),
            });
            if self.events.is_some() {
                // Events apply to the tasks between full reads: events mode
                // keeps them, shared with the served inventory.
                inventory.tasks.extend(state.tasks.iter().cloned());
            } else {
                inventory.tasks.append(&mut state.tasks);
            }
        }
        inventory
    }
}

/// A full read of every cluster, between [`EcsSource::start_read`] and
/// [`EcsSource::finish_read`].
pub struct FullRead {
    reader: Reader,
    api: Api,
    /// Name, what to pass to the API, and the interval to pace over.
    clusters: Vec<(String, String, Option<Duration>)>,
    deadline: Duration,
    started: Instant,
    started_at: SystemTime,
    before: CallSnapshot,
    listing_error: Option<CallError>,
    results: Vec<(String, ClusterRead)>,
}

/// One cluster's tasks, or why they could not be read.
type ClusterRead = Result<Vec<Arc<Task>>, CallError>;

impl FullRead {
    /// Reads each cluster, within its deadline.
    pub async fn run(mut self) -> FullRead {
        for (name, id, pace_over) in &self.clusters {
            let deadline = self.deadline;
            let read = self.reader.read_cluster(&self.api, name, id, *pace_over);
            let result = (tokio::time::timeout(deadline, read).await).unwrap_or_else(|_| {
                Err(CallError {
                    operation: "poll",
                    reason: format!("cluster refresh exceeded its deadline of {deadline:?}"),
                })
            });
            self.results.push((name.clone(), result));
        }
        self
    }
}

/// What a read of the API needs beyond the client: the caches (task
/// definitions, instances, service aliases). Cheap to clone, and owns what
/// it uses, so that a reconcile's read can run while events are applied.
#[derive(Clone)]
struct Reader {
    caches: Arc<Caches>,
    /// The source's name, given to every task read.
    source: Option<crate::inventory::Text>,
}

impl Reader {
    /// The tasks of one cluster, or why they could not be read.
    /// With `pace_over` (a reconcile's interval), its DescribeTasks
    /// batches are spread out ([`reconcile::batch_pause`]).
    async fn read_cluster(
        &self,
        api: &Api,
        name: &str,
        id: &str,
        pace_over: Option<Duration>,
    ) -> Result<Vec<Arc<Task>>, CallError> {
        let arns = api.list_running_tasks(id).await?;
        if arns.is_empty() {
            return Ok(Vec::new());
        }
        let pause = pace_over.map_or(Duration::ZERO, |interval| {
            reconcile::batch_pause(interval, arns.len().div_ceil(discovery::DESCRIBE_BATCH))
        });
        // A few batches at a time, each converted before the next are
        // read: the SDK's answers (kilobytes a task) never pile up for a
        // whole cluster (they made most of a poll's peak memory).
        let mut draining = None;
        let mut tasks = Vec::with_capacity(arns.len());
        let group = discovery::DESCRIBE_BATCH * discovery::DESCRIBE_CONCURRENCY;
        for (i, arns) in arns.chunks(group).enumerate() {
            if i > 0 && !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
            let raw = api.describe_tasks(id, arns, pause).await?;
            if draining.is_none() && raw.iter().any(|t| t.container_instance_arn().is_some()) {
                draining = Some(api.list_draining(id).await?);
            }
            let converted = self.convert(api, name, id, &raw, draining.as_ref()).await?;
            tasks.extend(converted.into_iter().map(Arc::new));
        }
        tasks.sort_by(|a, b| a.task_arn.cmp(&b.task_arn));
        Ok(tasks)
    }

    /// The inventory facts of described tasks: their task definitions,
    /// instances, drain state and service aliases from the caches, read
    /// for what is not cached yet.
    async fn tasks_of(
        &self,
        api: &Api,
        name: &str,
        id: &str,
        raw: &[ecs::Task],
    ) -> Result<Vec<Task>, CallError> {
        let draining = match raw.iter().any(|t| t.container_instance_arn().is_some()) {
            true => Some(api.list_draining(id).await?),
            false => None,
        };
        self.convert(api, name, id, raw, draining.as_ref()).await
    }

    /// [`Reader::tasks_of`], with the cluster's DRAINING container
    /// instances already listed (`None`: no task of `raw` is on one).
    async fn convert(
        &self,
        api: &Api,
        name: &str,
        id: &str,
        raw: &[ecs::Task],
        draining: Option<&HashSet<String>>,
    ) -> Result<Vec<Task>, CallError> {
        self.learn_task_definitions(api, raw).await?;
        self.learn_instances(api, id, raw).await?;
        let aliases = self.service_aliases(api, name, id, raw).await;

        let mut tasks = Vec::with_capacity(raw.len());
        for task in raw {
            let Some(def) = task
                .task_definition_arn()
                .and_then(|arn| self.caches.task_defs.get(arn))
                .map(|d| d.value().clone())
            else {
                continue;
            };
            let container_instance = task.container_instance_arn();
            let ec2_instance_id = container_instance
                .and_then(|arn| self.caches.container_instances.get(arn))
                .map(|id| id.value().clone());
            let instance = ec2_instance_id
                .as_deref()
                .and_then(|id| self.caches.instances.get(id))
                .map(|i| i.value().clone());
            let placement = Placement {
                ec2_instance_id: ec2_instance_id.as_deref(),
                instance: instance.as_deref(),
                instance_draining: container_instance
                    .is_some_and(|arn| draining.is_some_and(|d| d.contains(arn))),
            };
            let alias = service_of(task)
                .and_then(|s| aliases.get(s))
                .and_then(|a| a.as_deref());
            let mut converted = convert::task(name, task, &def, placement, alias);
            converted.source = self.source.clone();
            tasks.push(converted);
        }
        Ok(tasks)
    }

    /// Describes each task definition not seen before (they never change).
    async fn learn_task_definitions(&self, api: &Api, raw: &[ecs::Task]) -> Result<(), CallError> {
        let new: BTreeSet<&str> = raw
            .iter()
            .filter_map(|t| t.task_definition_arn())
            .filter(|arn| !self.caches.task_defs.contains_key(*arn))
            .collect();
        for arn in new {
            let facts = api.describe_task_definition(arn).await?;
            self.caches
                .task_defs
                .insert(arn.to_owned(), Arc::new(facts));
        }
        Ok(())
    }

    /// Maps new container instances to EC2 instances, and reads the
    /// addresses of EC2 instances not seen before.
    async fn learn_instances(
        &self,
        api: &Api,
        cluster: &str,
        raw: &[ecs::Task],
    ) -> Result<(), CallError> {
        let new: Vec<String> = raw
            .iter()
            .filter_map(|t| t.container_instance_arn())
            .filter(|arn| !self.caches.container_instances.contains_key(*arn))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .map(str::to_owned)
            .collect();
        if !new.is_empty() {
            for (arn, instance_id) in api.describe_container_instances(cluster, &new).await? {
                self.caches.container_instances.insert(arn, instance_id);
            }
        }
        let unknown: Vec<String> = raw
            .iter()
            .filter_map(|t| t.container_instance_arn())
            .filter_map(|arn| {
                self.caches
                    .container_instances
                    .get(arn)
                    .map(|id| id.value().clone())
            })
            // EXTERNAL instances (mi-...) are not EC2 instances.
            .filter(|id| id.starts_with("i-") && !self.caches.instances.contains_key(id))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if !unknown.is_empty() {
            for (id, facts) in api.describe_instances(&unknown).await? {
                self.caches.instances.insert(id, Arc::new(facts));
            }
        }
        Ok(())
    }

    /// The `ecs-dns:name` tag of each service whose tasks lack one of their
    /// own. A failure here is not fatal: the aliases read before stay.
    async fn service_aliases(
        &self,
        api: &Api,
        name: &str,
        cluster: &str,
        raw: &[ecs::Task],
    ) -> BTreeMap<String, Option<String>> {
        let needed: BTreeSet<&str> = raw
            .iter()
            .filter(|t| !t.tags().iter().any(|tag| tag.key() == Some(ALIAS_TAG)))
            .filter_map(service_of)
            .collect();
        let mut out = BTreeMap::new();
        let mut stale = Vec::new();
        for service in needed {
            match self.caches.fresh_service_alias(name, service) {
                Some(alias) => {
                    out.insert(service.to_owned(), alias);
                }
                None => stale.push(service.to_owned()),
            }
        }
        if stale.is_empty() {
            return out;
        }
        match api.service_aliases(cluster, &stale).await {
            Ok(read) => {
                let now = Instant::now();
                for (service, alias) in read {
                    self.caches
                        .service_aliases
                        .insert((name.to_owned(), service.clone()), (alias.clone(), now));
                    out.insert(service, alias);
                }
            }
            Err(error) => {
                crate::warn_throttled!("service tags not read", cluster = %name, %error, "service tags not read: keeping the aliases read before");
                for service in stale {
                    let alias = self.caches.any_service_alias(name, &service);
                    out.insert(service, alias);
                }
            }
        }
        out
    }
}

/// Replaces each task of `read` that equals the task of `before` with its
/// ARN by that task: a read keeps one allocation of every task that did not
/// change (the new copies go at once), and the publication tells them by
/// pointer.
fn reuse_unchanged(before: &[Arc<Task>], read: &mut [Arc<Task>]) {
    let before: HashMap<&str, &Arc<Task>> =
        (before.iter()).map(|t| (t.task_arn.as_str(), t)).collect();
    for task in read {
        if let Some(&old) = before.get(task.task_arn.as_str())
            && **old == **task
        {
            *task = old.clone();
        }
    }
}

/// RUNNING, meant to run, with a health check that has not passed yet:
/// the serving rule's `starting`.
fn waits_for_health(task: &Task) -> bool {
    let running = |s: &str| s.eq_ignore_ascii_case("RUNNING");
    let health = task.health_status.as_str();
    running(&task.last_status)
        && running(&task.desired_status)
        && task.has_health_check
        && !health.eq_ignore_ascii_case("HEALTHY")
        && !health.eq_ignore_ascii_case("UNHEALTHY")
}

/// Records how old an event is when it is applied (`time`: the envelope's).
fn observe_lag(time: Option<SystemTime>) {
    let Some(at) = time else {
        return;
    };
    let lag = SystemTime::now().duration_since(at).unwrap_or_default();
    metrics::histogram!("ecs_dns_event_lag_seconds").record(lag.as_secs_f64());
}

/// `service:NAME` → `NAME`.
fn service_of(task: &ecs::Task) -> Option<&str> {
    task.group()
        .and_then(|g| g.strip_prefix("service:"))
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A read's copy of a task that did not change is dropped for the task
    /// already held; a changed or new task is kept as read.
    #[test]
    fn a_read_keeps_the_tasks_that_did_not_change() {
        let held = crate::testing::web_inventory(&[[10, 0, 0, 1], [10, 0, 0, 2]]).tasks;
        let mut arns = held.iter().enumerate().map(|(i, t)| {
            let mut t = (**t).clone();
            t.task_arn = format!("arn:aws:ecs:r:1:task/prod/t{i}");
            Arc::new(t)
        });
        let (a, b) = (arns.next().unwrap(), arns.next().unwrap());
        let held = vec![a.clone(), b.clone()];
        let mut moved = (*b).clone();
        moved.ipv4 = vec![std::net::Ipv4Addr::new(10, 0, 0, 9)];
        let mut new = (*a).clone();
        new.task_arn.push('x');
        let mut read = vec![Arc::new((*a).clone()), Arc::new(moved), Arc::new(new)];
        reuse_unchanged(&held, &mut read);
        assert!(Arc::ptr_eq(&read[0], &a), "unchanged: the held task");
        assert!(!Arc::ptr_eq(&read[1], &b), "changed: as read");
        assert_eq!(read[1].ipv4, [std::net::Ipv4Addr::new(10, 0, 0, 9)]);
        assert!(read[2].task_arn.ends_with('x'), "new: as read");
    }
}
