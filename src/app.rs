//! What each command does: wiring of source → zone → fronts.

use std::io::IsTerminal;
use std::sync::Arc;

use anyhow::Context;

use crate::config::{Config, ConfigArgs, FrontKind, LogFormat};
use crate::dns::SharedZone;
use crate::dns::answer::Limits;
use crate::front::{self, dispatch::Dispatch};
use crate::ops;
use crate::publish::Publisher;
use crate::source::{self, Source};
use crate::zone::master;

/// How long a stop (SIGTERM) may take to close the ops listener: it closes
/// idle connections at once and gives a request in progress
/// `ops::listener::STOP_GRACE` (250 ms); this only bounds it.
const HTTP_STOP_GRACE: std::time::Duration = std::time::Duration::from_millis(400);

/// `ecs-dns serve`: start the source and answer DNS until SIGTERM or
/// SIGINT; SIGHUP reloads. `args` are the flags, read again on reload.
pub async fn serve(config: Config, args: ConfigArgs) -> anyhow::Result<()> {
    // First: a port that cannot be had is the one thing reported.
    let udp_per_address = match config.front {
        FrontKind::Own => front::Sockets::per_core(),
        FrontKind::Hickory => 1,
    };
    let sockets = front::Sockets::bind(&config.listen, udp_per_address, config.udp_socket_buffer)?;
    let zone: SharedZone = Arc::default();
    let sources = Source::all_from_config(&config);
    // First, so that a signal during start-up is handled, not fatal.
    let mut signals = ops::signals::Signals::install().context("cannot handle signals")?;
    ops::metrics::install().context("cannot install the metrics recorder")?;
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        zone = %config.zone.origin,
        source = %Source::describe_all(&sources),
        config = %config
            .file
            .as_deref()
            .map_or_else(|| "none (defaults, flags, environment)".into(), |f| f.display().to_string()),
        "starting"
    );
    let transfers = Arc::new(crate::xfr::Transfers::new(config.transfer.clone()));
    let state_writer = config.state_file.clone().map(ops::state::Writer::start);
    let journal = transfers.clone();
    let publisher = Publisher::new(config.zone.clone(), zone.clone())
        .with_observer(Arc::new(move |served| {
            ops::metrics::observe_snapshot(served.snapshot());
            if let Some(writer) = &state_writer {
                writer.offer(served.snapshot());
            }
        }))
        .with_observer(Arc::new(move |served| {
            for zone in served.zones() {
                journal.observe(zone.snapshot());
            }
            journal.keep_only(served.zones().map(|zone| zone.snapshot().origin()));
        }));
    for warning in config.warnings() {
        tracing::warn!("{warning}");
    }
    if let Some(path) = &config.state_file {
        // A read of up to 512 MiB and a snapshot build: off the runtime.
        tokio::task::block_in_place(|| restore_state(&publisher, path, &config));
    }
    // Whatever the ops listener is asked, the DNS fronts keep descriptors.
    let http_limits = ops::limits::prepare(config.http_limits, config.tcp.max_connections);
    let (modes, mode_of_each) = source::Modes::of(&sources);
    let about = ops::status::About {
        source: Source::describe_all(&sources),
        mode: modes,
    };
    let ops_state = ops::http::OpsState::new(zone.clone(), config.max_stale)
        .with_needed_sources(config.ready_needs_sources.clone())
        .with_status(about, publisher.changes());
    let zone_for_dns = zone.clone();
    let (http_stop, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let http = match config.http {
        Some(address) => {
            let server = ops::http::bind(address, ops_state.clone(), http_limits, async {
                let _ = http_stopped.await;
            })
            .await?;
            Some(tokio::spawn(server))
        }
        None => None,
    };
    let refresher = tokio::spawn(source::run_all(
        sources,
        config.poll_interval,
        publisher.clone(),
        mode_of_each,
    ));
    let summaries = tokio::spawn(crate::throttled_log::summarise());
    let limits = Limits {
        max_udp_payload: config.max_udp_payload,
        spread: config.spread,
        pick: 0,
    };
    let running_config = config.clone();
    let mut dns = Box::pin(async move {
        let config = running_config;
        match config.front {
            FrontKind::Own => {
                let dispatch = Dispatch::new(zone_for_dns, limits, Some(transfers), config.rrl);
                front::serve(sockets, dispatch, config.tcp, config.udp_io).await
            }
            // Transfers, RRL and TCP limits are refused with this front by
            // the configuration.
            FrontKind::Hickory => {
                let dispatch = Dispatch::new(zone_for_dns, limits, None, config.rrl);
                front::hickory::serve(dispatch, sockets).await
            }
        }
    });
    let mut running = config.clone();
    let result = loop {
        tokio::select! {
            result = &mut dns => break result,
            request = signals.next() => match request {
                ops::signals::Request::Stop(signal) => {
                    tracing::info!(
                        signal,
                        state_file = config.state_file.is_some(),
                        "stopping: no new queries"
                    );
                    break Ok(());
                }
                ops::signals::Request::Reload => reload(&args, &mut running, &publisher, &ops_state),
            },
        }
    };
    // Stop accepting: the DNS sockets close with the front, the source stops.
    drop(dns);
    refresher.abort();
    summaries.abort();
    crate::throttled_log::summarise_now();
    let _ = http_stop.send(());
    if let Some(http) = http
        && tokio::time::timeout(HTTP_STOP_GRACE, http).await.is_err()
    {
        tracing::warn!("ops listener did not stop in time");
    }
    if let (Some(path), Some(served)) = (config.state_file.clone(), zone.load_full()) {
        let snapshot = served.snapshot().clone();
        let saved = tokio::task::spawn_blocking(move || ops::state::save(&path, &snapshot)).await;
        match saved {
            Ok(Ok(())) => tracing::info!("state file saved"),
            Ok(Err(error)) => tracing::warn!(%error, "state file not saved"),
            Err(error) => tracing::warn!(%error, "state file not saved"),
        }
    }
    result
}

/// Publishes the zone saved by the previous run, if any, so that queries are
/// answered before the source is first read. A bad file is never fatal.
fn restore_state(publisher: &Publisher, path: &std::path::Path, config: &Config) {
    match ops::state::load(path, &config.zone.origin.to_string()) {
        Ok(None) => tracing::info!(path = %path.display(), "no state file yet"),
        Ok(Some(restored)) => {
            let tasks = restored.inventory.tasks.len();
            let change = publisher.restore(restored.inventory, restored.serial);
            tracing::info!(
                path = %path.display(),
                tasks,
                saved_at = %humantime::format_rfc3339_seconds(restored.saved_at),
                saved_serial = restored.serial,
                serial = change.serial,
                "zone restored from the state file until the source is read"
            );
        }
        Err(error) => tracing::warn!(%error, "state file ignored"),
    }
}

/// SIGHUP: re-reads the configuration (file, environment and the original
/// flags) and the source; applies what can change at runtime and names the
/// rest in the log.
fn reload(
    args: &ConfigArgs,
    running: &mut Config,
    publisher: &Publisher,
    ops_state: &ops::http::OpsState,
) {
    let new = match crate::cli::load_config(args) {
        Ok(new) => new,
        Err(error) => {
            tracing::error!(%error, "reload failed: keeping the running configuration");
            return;
        }
    };
    for (key, old, wanted) in ops::reload::needs_restart(running, &new) {
        tracing::warn!(
            key,
            running = %old,
            new = %wanted,
            "reload: this key changes only on restart; keeping the running value"
        );
    }
    let next = ops::reload::applied(running, &new);
    if next.zone != running.zone {
        // A snapshot build (a quarter of a second at 100 000 tasks): off
        // the runtime's threads, which serve TCP and the ops listener.
        let publisher = publisher.clone();
        let zone = next.zone.clone();
        tokio::task::spawn_blocking(move || publisher.set_config(zone));
    }
    ops_state.set_max_stale(next.max_stale);
    *running = next;
    publisher.request_refresh();
    tracing::info!(
        record_ttl = running.zone.record_ttl,
        max_stale = %humantime::format_duration(running.max_stale),
        "configuration reloaded"
    );
}

/// `ecs-dns records`: one read of the source, the zones `print` names
/// (their origins) on stdout, one master file after another.
pub async fn records(config: Config, print: Vec<hickory_proto::rr::Name>) -> anyhow::Result<()> {
    let zone: SharedZone = Arc::default();
    let publisher = Publisher::new(config.zone.clone(), zone.clone());
    let sources = Source::all_from_config(&config);
    // Every source must be read: a zone missing one is not the zone.
    for mut source in sources {
        let inventory = source
            .refresh()
            .await
            .with_context(|| format!("cannot read the source ({})", source.describe()))?
            .context("the source returned no inventory")?;
        source.publisher(&publisher).publish(inventory);
    }
    let served = zone.load_full().context("no zone was built")?;
    for origin in print {
        let origin = hickory_proto::rr::LowerName::new(&origin);
        if let Some(zone) = served.zones().find(|z| *z.snapshot().origin() == origin) {
            print!("{}", master::render(zone.snapshot()));
        }
    }
    Ok(())
}

/// `ecs-dns healthcheck`: exit 0 when the ops listener says alive (or
/// ready), 1 otherwise, with the reason on stderr.
pub fn healthcheck(args: &crate::cli::HealthcheckArgs) -> std::process::ExitCode {
    let path = if args.ready { "/readyz" } else { "/healthz" };
    match ops::healthcheck::check(args.http, path, args.timeout) {
        Ok(message) => {
            println!("{message}");
            std::process::ExitCode::SUCCESS
        }
        Err(reason) => {
            eprintln!("ecs-dns healthcheck: {reason}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr (stdout carries `records` output), human or JSON.
/// `level` is the default level (`info` for the server, `warn` for one-off
/// commands, whose output is on stdout); `RUST_LOG` overrides it.
pub fn init_logging(format: LogFormat, level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        // hickory logs a warning per malformed packet: a client could flood
        // the log with them. Our own lines a client can trigger are
        // throttled (`throttled_log`); hickory's are kept to errors.
        .unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new(format!(
                "{level},hickory_server=error,hickory_proto=error"
            ))
        });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
