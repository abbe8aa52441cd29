//! Sources: where the inventory comes from. A source reports facts (every
//! task it saw, with its raw state) and never decides what is served.

pub mod ecs;
pub mod file;
pub mod shared_queue;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::{Config, ConfigError, SourceConfig};
use crate::inventory::Inventory;
use crate::publish::Publisher;

/// Why a refresh produced nothing to publish. The last published inventory
/// stays in service.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("inventory file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("{0}")]
    Other(String),
}

/// How the source is read right now, in words ("polling every 5s",
/// "events from …", or polling because the events queue fails), for the
/// status page and `/readyz`. Cloned handles share one value.
#[derive(Clone, Debug, Default)]
pub struct Mode(Arc<Mutex<String>>);

impl Mode {
    pub fn new(text: String) -> Mode {
        Mode(Arc::new(Mutex::new(text)))
    }

    pub fn get(&self) -> String {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, text: String) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = text;
    }
}

/// The modes of every source, for the status page and `/readyz`: one
/// source's as it is, several as `name: mode; name: mode`.
#[derive(Clone, Debug, Default)]
pub struct Modes(Vec<(Option<String>, Mode)>);

impl Modes {
    /// A new mode, "starting", for each of `sources`.
    pub fn of(sources: &[Source]) -> (Modes, Vec<Mode>) {
        let modes: Vec<Mode> = (sources.iter())
            .map(|_| Mode::new("starting".to_owned()))
            .collect();
        let named = (sources.iter().zip(&modes))
            .map(|(source, mode)| (source.name().map(str::to_owned), mode.clone()))
            .collect();
        (Modes(named), modes)
    }

    pub fn get(&self) -> String {
        let parts: Vec<String> = (self.0.iter())
            .map(|(name, mode)| match name {
                Some(name) => format!("{name}: {}", mode.get()),
                None => mode.get(),
            })
            .collect();
        parts.join("; ")
    }
}

/// Every kind of source. An enum rather than a trait object: the set is
/// closed and each is `async`.
pub enum Source {
    File(file::FileSource),
    Ecs(Box<ecs::EcsSource>),
}

impl Source {
    /// Every source the configuration names: the file, or one ECS source
    /// per account and region (`[[sources]]`), each read on its own.
    pub fn all_from_config(config: &Config) -> Vec<Source> {
        match &config.source {
            SourceConfig::File { path } => vec![Source::File(file::FileSource::new(
                path.clone(),
                file::redate_every(config.max_stale),
            ))],
            SourceConfig::Ecs(list) => (list.iter())
                .map(|one| Source::Ecs(Box::new(ecs::EcsSource::from_config(one))))
                .collect(),
        }
    }

    /// The source's name when it is one of several (`[[sources]]`).
    pub fn name(&self) -> Option<&str> {
        match self {
            Source::File(_) => None,
            Source::Ecs(source) => source.name(),
        }
    }

    /// Checks what the source reads before it starts (the inventory file;
    /// see [`file::check`]); the ECS source has nothing to check offline.
    pub fn check(config: &Config, must_exist: bool) -> Result<(), ConfigError> {
        match &config.source {
            SourceConfig::File { path } => file::check(path, must_exist),
            SourceConfig::Ecs(_) => Ok(()),
        }
    }

    /// Reads the source once. `Ok(None)`: nothing changed since the last
    /// refresh. A source that covers several parts (clusters) returns the
    /// whole inventory, with failed parts kept from their last good read.
    pub async fn refresh(&mut self) -> Result<Option<Inventory>, SourceError> {
        match self {
            // A blocking read of a file of up to 512 MiB: not on a runtime
            // thread's time.
            Source::File(source) => tokio::task::block_in_place(|| source.refresh()),
            Source::Ecs(source) => source.refresh().await,
        }
    }

    /// Hands the source the inventory now served, the one its last refresh
    /// returned (see [`ecs::EcsSource::published`]).
    pub fn published(&mut self, inventory: std::sync::Arc<Inventory>) {
        match self {
            Source::File(_) => {}
            Source::Ecs(source) => source.published(inventory),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Source::File(source) => format!("file {}", source.path().display()),
            Source::Ecs(source) => source.describe(),
        }
    }

    /// What this source publishes through: its own part when it is one of
    /// several (it has a name), else `base` itself.
    pub fn publisher(&self, base: &Publisher) -> Publisher {
        match self.name() {
            Some(name) => base.for_part(name),
            None => base.clone(),
        }
    }

    /// Every source's description, `; `-separated.
    pub fn describe_all(sources: &[Source]) -> String {
        let all: Vec<String> = sources.iter().map(Source::describe).collect();
        all.join("; ")
    }
}

/// Runs every source, each with its own loop, until the task is dropped.
/// Several sources publish each its part ([`Publisher::for_part`]), so one
/// that fails or is slow never holds back the others' publications.
pub async fn run_all(
    sources: Vec<Source>,
    interval: Duration,
    publisher: Publisher,
    modes: Vec<Mode>,
) {
    let mut subscriptions = shared_subscriptions(&sources).await;
    let mut loops = tokio::task::JoinSet::new();
    for (index, (source, mode)) in sources.into_iter().zip(modes).enumerate() {
        let publisher = source.publisher(&publisher);
        let subscription = subscriptions.remove(&index);
        loops.spawn(run_with(source, interval, publisher, mode, subscription));
    }
    while loops.join_next().await.is_some() {}
}

/// The sources that share an events queue, by index: one reader per such
/// queue, routing each message to its source ([`shared_queue`]). A queue
/// that cannot be made yet is left to each source, which retries.
async fn shared_subscriptions(
    sources: &[Source],
) -> std::collections::HashMap<usize, shared_queue::Subscription> {
    let mut by_queue: std::collections::BTreeMap<&str, Vec<usize>> = Default::default();
    for (index, source) in sources.iter().enumerate() {
        if let Source::Ecs(ecs) = source
            && let Some(events) = ecs.events()
        {
            by_queue.entry(&events.queue_url).or_default().push(index);
        }
    }
    let mut out = std::collections::HashMap::new();
    for indices in by_queue.into_values().filter(|i| i.len() > 1) {
        let Source::Ecs(first) = &sources[indices[0]] else {
            continue;
        };
        let Ok(queue) = first.make_queue().await else {
            continue;
        };
        let scopes = (indices.iter())
            .filter_map(|&i| match &sources[i] {
                Source::Ecs(ecs) => Some(ecs.scope_handle()),
                Source::File(_) => None,
            })
            .collect();
        let subscribed = shared_queue::subscribe(queue, scopes);
        out.extend(indices.into_iter().zip(subscribed));
    }
    out
}

/// Refreshes `source` every `interval` and publishes what it reports, until
/// the task is dropped. A refresh starts `interval` after the previous one
/// ended, so refreshes never overlap. An ECS source in events mode also
/// applies the events of its queue as they come ([`run_events`]).
pub async fn run(source: Source, interval: Duration, publisher: Publisher, mode: Mode) {
    run_with(source, interval, publisher, mode, None).await;
}

/// [`run`], with the messages of a queue shared with other sources when
/// `subscription` is given.
async fn run_with(
    mut source: Source,
    interval: Duration,
    publisher: Publisher,
    mode: Mode,
    subscription: Option<shared_queue::Subscription>,
) {
    if let Source::Ecs(ecs) = &source
        && ecs.events().is_some()
    {
        return run_events(&mut source, interval, publisher, mode, subscription).await;
    }
    let polling = format!("polling every {}", humantime::format_duration(interval));
    mode.set(polling.clone());
    let mut failing = None;
    loop {
        refresh_and_publish(&mut source, &publisher, &mut failing).await;
        // Each source says its own error (several sources fail apart).
        mode.set(match &failing {
            Some(error) => format!("{polling}; the last read failed: {error}"),
            None => polling.clone(),
        });
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = publisher.refresh_requested() => {}
        }
    }
}

/// One full read of the source, published.
async fn refresh_and_publish(
    source: &mut Source,
    publisher: &Publisher,
    failing: &mut Option<String>,
) {
    let started = std::time::Instant::now();
    let result = source.refresh().await;
    let describe = source.describe();
    if publish_read(result, started, publisher, failing, &describe).await {
        // The ECS source keeps no copy of what it published: hand it
        // back, for a cluster whose next read fails.
        if let Some(served) = publisher.served_part() {
            source.published(served);
        }
    }
}

/// Counts a full read (begun at `started`) by outcome and publishes what it
/// found; whether it published.
async fn publish_read(
    result: Result<Option<Inventory>, SourceError>,
    started: std::time::Instant,
    publisher: &Publisher,
    failing: &mut Option<String>,
    source: &str,
) -> bool {
    let outcome = match &result {
        Ok(Some(_)) => "updated",
        Ok(None) => "unchanged",
        Err(_) => "error",
    };
    // `source` only with several sources: one source's series stay as
    // they were.
    let mut labels = vec![metrics::Label::new("outcome", outcome)];
    let part: Vec<metrics::Label> = (publisher.part_name())
        .map(|name| metrics::Label::new("source", name.to_owned()))
        .into_iter()
        .collect();
    labels.extend(part.iter().cloned());
    metrics::histogram!("ecs_dns_refresh_duration_seconds", part).record(started.elapsed());
    metrics::counter!("ecs_dns_refreshes_total", labels).increment(1);
    match result {
        Ok(Some(inventory)) => {
            if failing.take().is_some() {
                tracing::info!(%source, "source recovered");
            }
            publish(publisher, inventory).await;
            true
        }
        Ok(None) => false,
        Err(error) => {
            *failing = Some(error.to_string());
            crate::warn_throttled!(
                "source refresh failed",
                %source,
                %error,
                "source refresh failed: serving the last good data"
            );
            false
        }
    }
}

/// A snapshot build (a quarter of a second at 100 000 tasks): off the
/// runtime's threads, which serve TCP and the ops listener. Awaited, so
/// that publications keep their order.
async fn publish(publisher: &Publisher, inventory: Inventory) {
    let publisher = publisher.clone();
    if let Err(error) = tokio::task::spawn_blocking(move || publisher.publish(inventory)).await {
        tracing::error!(%error, "publication failed: serving the last good data");
    }
}

/// How long events are gathered before one publication (and at least
/// `publish_min_interval` after the last: a burst, a deployment of hundreds
/// of tasks, is a few snapshots, not hundreds, so the serial, NOTIFY and
/// the IXFR journal are not flooded).
const GATHER: Duration = Duration::from_millis(100);

/// What the queue's receiver tells the source loop.
pub enum FromQueue {
    Messages(Vec<ecs::queue::Received>),
    Failed(String),
}

/// Events mode: the queue's messages are applied as they arrive; tasks
/// waiting for their health check are re-read every `poll_interval`; the
/// full read runs every `reconcile_interval` to repair what events missed, or
/// every `poll_interval` while the queue cannot be read (then the log, the
/// `ecs_dns_events_mode` gauge and the status page say so), until a
/// receive succeeds again.
async fn run_events(
    source: &mut Source,
    poll_interval: Duration,
    publisher: Publisher,
    mode: Mode,
    subscription: Option<shared_queue::Subscription>,
) {
    let Source::Ecs(ecs) = source else {
        return;
    };
    let reconcile = ecs.events().map_or(poll_interval, |e| e.reconcile_interval);
    let publish_min = ecs
        .events()
        .map_or(Duration::ZERO, |e| e.publish_min_interval);
    // Messages wait in the channel while a batch is applied; SQS keeps the
    // rest. A shared queue's reader routes them to us.
    let (queue, mut rx, _reader) = match subscription {
        Some(shared) => (shared.queue, shared.rx, shared.reader),
        None => {
            let queue = loop {
                match ecs.queue().await {
                    Ok(Some(queue)) => break queue,
                    Ok(None) => return,
                    Err(error) => {
                        tracing::warn!(%error, "events queue not usable yet: retrying");
                        tokio::time::sleep(poll_interval).await;
                    }
                }
            };
            let (tx, rx) = tokio::sync::mpsc::channel::<FromQueue>(4);
            let receiver = tokio::spawn(receive_forever(queue.clone(), tx));
            (queue, rx, Arc::new(AbortOnDrop(receiver)))
        }
    };
    tracing::info!(queue = queue.url(), reconcile = %humantime::format_duration(reconcile), "events mode");
    let events_mode = format!(
        "events from {}, full read every {}",
        queue.url(),
        humantime::format_duration(reconcile)
    );
    mode.set(events_mode.clone());
    let mut healthy = true;
    metrics::gauge!("ecs_dns_events_mode").set(1.0);
    let mut failing = None;
    let mut last_publication = tokio::time::Instant::now();
    let mut read_once = false;
    loop {
        if let Source::Ecs(ecs) = &mut *source {
            // While the queue fails, full reads are polls: nothing to pace
            // or to count as missed.
            ecs.set_reconciling(healthy);
        }
        // A reconcile (paced: up to 30 s at 10 000 tasks) reads while
        // events are applied. The first read, which everything waits for,
        // and the polls while the queue fails are awaited.
        let started = std::time::Instant::now();
        let mut full_read: Option<Pin<Box<dyn Future<Output = ecs::FullRead> + Send>>> = None;
        if healthy && read_once {
            let Source::Ecs(ecs) = &mut *source else {
                return;
            };
            match ecs.start_read().await {
                Ok(read) => full_read = Some(Box::pin(read.run())),
                Err(error) => {
                    publish_read(Err(error), started, &publisher, &mut failing, "ecs").await;
                }
            }
        } else {
            refresh_and_publish(source, &publisher, &mut failing).await;
            read_once = true;
        }
        let Source::Ecs(ecs) = &mut *source else {
            return;
        };
        let wait = if healthy { reconcile } else { poll_interval };
        let next_read = tokio::time::Instant::now() + wait;
        let mut next_health_read = tokio::time::Instant::now() + poll_interval;
        loop {
            tokio::select! {
                read = async {
                    match full_read.as_mut() {
                        Some(read) => read.await,
                        None => std::future::pending().await,
                    }
                } => {
                    full_read = None;
                    let describe = ecs.describe();
                    let result = ecs.finish_read(read);
                    publish_read(result, started, &publisher, &mut failing, &describe).await;
                }
                // A read still running is waited for.
                () = tokio::time::sleep_until(next_read), if full_read.is_none() => break,
                // Tasks waiting for a health check (events will not say
                // when they pass) or for their tags (events carry none).
                () = tokio::time::sleep_until(next_health_read) => {
                    next_health_read = tokio::time::Instant::now() + poll_interval;
                    match ecs.refresh_waiting().await {
                        Ok(Some(inventory)) => publish(&publisher, inventory).await,
                        Ok(None) => {}
                        Err(error) => crate::warn_throttled!(
                            "waiting tasks not read",
                            %error,
                            "tasks waiting for their health check or tags not re-read: trying again"
                        ),
                    }
                }
                () = publisher.refresh_requested(), if full_read.is_none() => break,
                received = rx.recv() => match received {
                    None => return,
                    Some(FromQueue::Failed(error)) => {
                        if healthy {
                            crate::warn_throttled!(
                                "events queue failing",
                                %error,
                                "events queue cannot be read: polling every poll_interval until it can"
                            );
                            metrics::gauge!("ecs_dns_events_mode").set(0.0);
                            mode.set(format!(
                                "polling every {} while the events queue cannot be read: {error}",
                                humantime::format_duration(poll_interval)
                            ));
                            healthy = false;
                        }
                        if tokio::time::Instant::now() + poll_interval < next_read {
                            break;
                        }
                    }
                    Some(FromQueue::Messages(mut messages)) => {
                        if !healthy {
                            tracing::info!("events queue read again: back to events mode");
                            metrics::gauge!("ecs_dns_events_mode").set(1.0);
                            mode.set(events_mode.clone());
                            healthy = true;
                        }
                        gather(&mut rx, &mut messages, last_publication + publish_min).await;
                        if !messages.is_empty() {
                            apply(ecs, &queue, &publisher, &messages).await;
                            last_publication = tokio::time::Instant::now();
                        }
                    }
                },
            }
        }
    }
}

/// Adds what else arrives within [`GATHER`], and until `not_before`, to
/// `messages`.
async fn gather(
    rx: &mut tokio::sync::mpsc::Receiver<FromQueue>,
    messages: &mut Vec<ecs::queue::Received>,
    not_before: tokio::time::Instant,
) {
    let until = (tokio::time::Instant::now() + GATHER).max(not_before);
    while let Ok(Some(FromQueue::Messages(more))) = tokio::time::timeout_at(until, rx.recv()).await
    {
        messages.extend(more);
    }
}

/// Applies one batch, publishes it, then deletes its messages.
async fn apply(
    source: &mut ecs::EcsSource,
    queue: &ecs::queue::Queue,
    publisher: &Publisher,
    messages: &[ecs::queue::Received],
) {
    match source.apply_events(messages).await {
        Ok(applied) => {
            if let Some(inventory) = applied.inventory {
                publish(publisher, inventory).await;
            }
            if let Err(error) = queue.delete(&applied.done).await {
                crate::warn_throttled!("event delete failed", %error, "event messages not deleted: they come back as duplicates");
            }
        }
        Err(error) => {
            crate::warn_throttled!(
                "events not applied",
                %error,
                "events not applied: their messages come back, and the next full read repairs"
            );
        }
    }
}

/// Long-polls `queue` until the loop ends; a failed receive is reported and
/// retried after a pause (the loop falls back to polling meanwhile).
pub(crate) async fn receive_forever(
    queue: ecs::queue::Queue,
    tx: tokio::sync::mpsc::Sender<FromQueue>,
) {
    let mut failed_before = false;
    loop {
        let sent = match queue.receive().await {
            // Nothing new; after a failure, an empty receive is the news
            // that the queue is back.
            Ok(messages) if messages.is_empty() && !failed_before => continue,
            Ok(messages) => {
                failed_before = false;
                tx.send(FromQueue::Messages(messages)).await
            }
            Err(error) => {
                failed_before = true;
                let sent = tx.send(FromQueue::Failed(error.to_string())).await;
                tokio::time::sleep(Duration::from_secs(5)).await;
                sent
            }
        };
        if sent.is_err() {
            return;
        }
    }
}

/// Stops a spawned task when the loop that owns it ends.
pub struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
