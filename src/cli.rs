//! The command line.

use clap::{CommandFactory, Parser, Subcommand};

use crate::config::{Config, ConfigArgs, ConfigError};

#[derive(Debug, Parser)]
#[command(
    name = "ecs-dns",
    version,
    about = "Authoritative DNS for AWS ECS tasks",
    long_about = "Authoritative DNS for AWS ECS tasks.\n\nEvery setting can be given in the config file, as a flag, or as an ECS_DNS_* environment variable (flag over variable over file)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Answer DNS for the zone, from the configured source
    Serve(ConfigArgs),
    /// Read the source once and print the zone as an RFC 1035 master file
    Records(ConfigArgs),
    /// Check the configuration and print it resolved
    CheckConfig(ConfigArgs),
    /// Ask a running server's ops listener whether it is alive (or ready):
    /// exit 0 if so, 1 if not (for container health checks)
    Healthcheck(HealthcheckArgs),
}

#[derive(Debug, clap::Args)]
pub struct HealthcheckArgs {
    /// The server's ops listener (its `http` key); a wildcard address is
    /// reached on loopback
    #[arg(long, env = "ECS_DNS_HTTP", default_value = "127.0.0.1:9153")]
    pub http: std::net::SocketAddr,

    /// Check /readyz (zone loaded, data fresh) instead of /healthz
    #[arg(long)]
    pub ready: bool,

    /// How long to wait for the answer
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    pub timeout: std::time::Duration,
}

/// Loads the configuration for a command: the environment checked first
/// (see [`check_environment`]), then flags over environment over file.
pub fn load_config(args: &ConfigArgs) -> Result<Config, ConfigError> {
    check_environment()?;
    Config::load(args)
}

/// Rejects `ECS_DNS_*` variables that name no key: a typo in a task
/// definition's environment must not be ignored.
pub fn check_environment() -> Result<(), ConfigError> {
    let command = Cli::command();
    let mut known: Vec<String> = Vec::new();
    collect_env_names(&command, &mut known);
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        if name.starts_with("ECS_DNS_") && !known.iter().any(|k| k == name) {
            known.sort();
            known.dedup();
            return Err(ConfigError::UnknownEnv {
                name: name.to_owned(),
                known: known.join(", "),
            });
        }
    }
    Ok(())
}

fn collect_env_names(command: &clap::Command, out: &mut Vec<String>) {
    for arg in command.get_arguments() {
        if let Some(env) = arg.get_env().and_then(|e| e.to_str()) {
            out.push(env.to_owned());
        }
    }
    for sub in command.get_subcommands() {
        collect_env_names(sub, out);
    }
}
