//! Sources: where the inventory comes from. A source reports facts (every
//! task it saw, with its raw state) and never decides what is served.

pub mod ecs;
pub mod file;

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

/// Every kind of source. An enum rather than a trait object: the set is
/// closed and each is `async`.
pub enum Source {
    File(file::FileSource),
    Ecs(Box<ecs::EcsSource>),
}

impl Source {
    pub fn from_config(config: &Config) -> anyhow::Result<Source> {
        match &config.source {
            SourceConfig::File { path } => Ok(Source::File(file::FileSource::new(path.clone()))),
            SourceConfig::Ecs {
                clusters,
                region,
                request_timeout,
            } => Ok(Source::Ecs(Box::new(ecs::EcsSource::new(
                clusters.clone(),
                region.clone(),
                *request_timeout,
            )))),
        }
    }

    /// Checks what the source reads before it starts (the inventory file;
    /// see [`file::check`]); the ECS source has nothing to check offline.
    pub fn check(config: &Config, must_exist: bool) -> Result<(), ConfigError> {
        match &config.source {
            SourceConfig::File { path } => file::check(path, must_exist),
            SourceConfig::Ecs { .. } => Ok(()),
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

    pub fn describe(&self) -> String {
        match self {
            Source::File(source) => format!("file {}", source.path().display()),
            Source::Ecs(source) => source.describe(),
        }
    }
}

/// Refreshes `source` every `interval` and publishes what it reports, until
/// the task is dropped. A refresh starts `interval` after the previous one
/// ended, so refreshes never overlap.
pub async fn run(mut source: Source, interval: Duration, publisher: Publisher) {
    let mut failing = false;
    loop {
        let started = std::time::Instant::now();
        let result = source.refresh().await;
        let outcome = match &result {
            Ok(Some(_)) => "updated",
            Ok(None) => "unchanged",
            Err(_) => "error",
        };
        metrics::histogram!("ecs_dns_refresh_duration_seconds").record(started.elapsed());
        metrics::counter!("ecs_dns_refreshes_total", "outcome" => outcome).increment(1);
        match result {
            Ok(Some(inventory)) => {
                if failing {
                    tracing::info!(source = %source.describe(), "source recovered");
                    failing = false;
                }
                // A snapshot build (a quarter of a second at 100 000
                // tasks): off the runtime's threads, which serve TCP and the
                // ops listener. Awaited, so that publications keep their order.
                let publisher = publisher.clone();
                if let Err(error) =
                    tokio::task::spawn_blocking(move || publisher.publish(inventory)).await
                {
                    tracing::error!(%error, "publication failed: serving the last good data");
                }
            }
            Ok(None) => {}
            Err(error) => {
                failing = true;
                crate::warn_throttled!(
                    "source refresh failed",
                    %error,
                    "source refresh failed: serving the last good data"
                );
            }
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = publisher.refresh_requested() => {}
        }
    }
}
