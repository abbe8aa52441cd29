use std::process::ExitCode;

use clap::Parser;
use ecs_dns::app;
use ecs_dns::cli::{Cli, Command};
use ecs_dns::config::{Config, ConfigArgs};

/// Exit code of a configuration error (as clap's usage errors).
const EXIT_CONFIG: u8 = 2;

/// How long, after `serve` returns, remaining tasks get to finish.
const SHUTDOWN_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

fn main() -> ExitCode {
    let cli = Cli::parse();
    let args = match &cli.command {
        Command::Serve(args) | Command::Records(args) | Command::CheckConfig(args) => args,
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
    app::init_logging(config.log_format);
    let result = match cli.command {
        Command::CheckConfig(_) => {
            app::check_config(&config);
            Ok(())
        }
        Command::Serve(args) => runtime().and_then(|rt| {
            let result = rt.block_on(app::serve(config, args));
            // Blocking UDP loops never return: do not wait for them.
            rt.shutdown_timeout(SHUTDOWN_WAIT);
            result
        }),
        Command::Records(_) => runtime().and_then(|rt| rt.block_on(app::records(config))),
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
