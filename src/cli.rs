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
}
