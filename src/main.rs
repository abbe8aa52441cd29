use std::process::ExitCode;

use clap::Parser;
use ecs_dns::app;
use ecs_dns::cli::{Cli, Command};
use ecs_dns::config::{Config, ConfigArgs};

/// Exit code of a configuration error (as clap's usage errors).
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (Command::Serve(args) | Command::Records(args) | Command::CheckConfig(args)) = &cli.command;
    let config = match load(args) {
        Ok(config) => config,
        Err(code) => return code,
    };
    app::init_logging(config.log_format);
    let result = match cli.command {
        Command::CheckConfig(_) => {
            app::check_config(&config);
            Ok(())
        }
        Command::Serve(_) => runtime().and_then(|rt| rt.block_on(app::serve(config))),
        Command::Records(_) => runtime().and_then(|rt| rt.block_on(app::records(config))),
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
    Config::load(args).map_err(|error| {
        eprintln!("ecs-dns: configuration error: {error}");
        ExitCode::from(EXIT_CONFIG)
    })
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
