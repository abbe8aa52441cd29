//! What each command does: wiring of source → zone → fronts.

use std::io::IsTerminal;
use std::sync::Arc;

use anyhow::Context;

use crate::config::{Config, LogFormat};
use crate::dns::answer::Limits;
use crate::dns::front;
use crate::source::{self, Source};
use crate::zone::publish::Publisher;
use crate::zone::{SharedZone, master};

/// `ecs-dns serve`: start the source and answer DNS until killed.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let zone: SharedZone = Arc::default();
    let source = Source::from_config(&config)?;
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        zone = %config.zone.origin,
        source = %source.describe(),
        config = ?config.file,
        "starting"
    );
    let publisher = Publisher::new(config.zone.clone(), zone.clone());
    let refresher = tokio::spawn(source::run(source, config.poll_interval, publisher));
    let limits = Limits {
        max_udp_payload: config.max_udp_payload,
    };
    let result = front::hickory::serve(zone, &config.listen, limits).await;
    refresher.abort();
    result
}

/// `ecs-dns records`: one read of the source, the zone on stdout.
pub async fn records(config: Config) -> anyhow::Result<()> {
    let mut source = Source::from_config(&config)?;
    let inventory = source
        .refresh()
        .await
        .with_context(|| format!("cannot read the source ({})", source.describe()))?
        .context("the source returned no inventory")?;
    let zone: SharedZone = Arc::default();
    Publisher::new(config.zone.clone(), zone.clone()).publish(inventory);
    let snapshot = zone.load_full().context("no zone was built")?;
    print!("{}", master::render(&snapshot));
    Ok(())
}

/// `ecs-dns check-config`: the resolved configuration on stdout.
pub fn check_config(config: &Config) {
    println!("{config:#?}");
}

/// Logs go to stderr (stdout carries `records` output), human or JSON.
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,hickory_server=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
