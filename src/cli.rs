//! The command line.

use clap::{Parser, Subcommand};

use crate::config::ConfigArgs;

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
