use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};
use ecs_dns::app;
use ecs_dns::cli::{Cli, Command};
use ecs_dns::config::{Config, ConfigArgs};

/// jemalloc, which returns freed pages to the system at once (settings in
/// .cargo/config.toml; `_RJEM_MALLOC_CONF` overrides them at run time).
/// Each publication builds a whole new snapshot and frees the old one;
/// glibc's malloc kept most of what was freed, and the soak bench measured
/// 118 MiB at 10 000 tasks against 36 MiB with jemalloc so set.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Exit code of a configuration error (as clap's usage errors).
const EXIT_CONFIG: u8 = 2;

/// How long, after `serve` returns, remaining tasks get to finish.
const SHUTDOWN_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let args = match &cli.command {
        Command::Serve(args) | Command::CheckConfig(args) => args,
        Command::Records(args) => &args.config,
        Command::Healthcheck(args) => return app::healthcheck(args),
    };
    let config = match load(args) {
        Ok(config) => config,
        Err(code) => return code,
    };
    // An inventory file that cannot be read is a configuration error; for
    // `serve` a missing one is not (it may appear later).
    let must_exist = matches!(cli.command, Command::CheckConfig(_));
    if matches!(cli.command, Command::CheckConfig(_) | Command::Serve(_))
        && let Err(error) = ecs_dns::source::Source::check(&config, must_exist)
    {
        eprintln!("ecs-dns: configuration error: {error}");
        return ExitCode::from(EXIT_CONFIG);
    }
    let level = match cli.command {
        Command::Serve(_) => "info",
        _ => "warn",
    };
    app::init_logging(config.log_format, level);
    let result = match cli.command {
        Command::CheckConfig(_) => {
            // The subcommand's matches tell flags from the environment.
            let sub = matches.subcommand().map(|(_, m)| m).unwrap_or(&matches);
            print!("{}", ecs_dns::cli::show_config(&config, sub));
            Ok(())
        }
        Command::Serve(args) => runtime().and_then(|rt| {
            let result = rt.block_on(app::serve(config, args));
            // Blocking UDP loops never return: do not wait for them.
            rt.shutdown_timeout(SHUTDOWN_WAIT);
            if result.is_ok() {
                tracing::info!("stopped");
            }
            result
        }),
        Command::Records(args) => {
            match ecs_dns::cli::zones_to_print(&config, args.print.as_deref()) {
                Ok(zones) => runtime().and_then(|rt| rt.block_on(app::records(config, zones))),
                Err(error) => {
                    eprintln!("ecs-dns: configuration error: {error}");
                    return ExitCode::from(EXIT_CONFIG);
                }
            }
        }
        Command::Healthcheck(_) => Ok(()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ecs-dns: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn load(args: &ConfigArgs) -> Result<Config, ExitCode> {
    ecs_dns::cli::load_config(args).map_err(|error| {
        eprintln!("ecs-dns: configuration error: {error}");
        ExitCode::from(EXIT_CONFIG)
    })
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
