//! The command line.

use clap::{CommandFactory, Parser, Subcommand};

use hickory_proto::rr::Name;

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
    Records(RecordsArgs),
    /// Check the configuration and print it resolved
    CheckConfig(ConfigArgs),
    /// Ask a running server's ops listener whether it is alive (or ready):
    /// exit 0 if so, 1 if not (for container health checks)
    Healthcheck(HealthcheckArgs),
}

#[derive(Debug, clap::Args)]
pub struct RecordsArgs {
    #[command(flatten)]
    pub config: ConfigArgs,

    /// The zone to print: a reverse zone by its origin or range
    /// (`0.10.in-addr.arpa`, `10.0.0.0/16`), or `all` for every zone, the
    /// forward one first [default: the forward zone]
    #[arg(long = "print", value_name = "ZONE")]
    pub print: Option<String>,
}

/// The origins of the zones `records --print` names, in the order they
/// are served; a zone that is not served is an error naming the flag and
/// the zones that are.
pub fn zones_to_print(config: &Config, print: Option<&str>) -> Result<Vec<Name>, ConfigError> {
    let forward = config.zone.origin.clone();
    let reverse = config.zone.reverse.iter();
    let Some(text) = print.map(str::trim) else {
        return Ok(vec![forward]);
    };
    if text == "all" {
        return Ok(std::iter::once(forward)
            .chain(reverse.map(|z| z.origin.clone()))
            .collect());
    }
    let by_prefix = |z: &&crate::config::ReverseZone| text.parse() == Ok(z.prefix);
    let wanted = format!("{}.", text.trim_end_matches('.')).to_ascii_lowercase();
    let by_name = |origin: &Name| origin.to_string().to_ascii_lowercase() == wanted;
    if let Some(zone) = reverse.clone().find(|z| by_prefix(z) || by_name(&z.origin)) {
        return Ok(vec![zone.origin.clone()]);
    }
    if by_name(&forward) {
        return Ok(vec![forward]);
    }
    let served: Vec<String> = std::iter::once(forward.to_string())
        .chain(
            config
                .zone
                .reverse
                .iter()
                .map(|z| format!("{} ({})", z.origin, z.prefix)),
        )
        .collect();
    Err(ConfigError::invalid(
        "--print",
        text,
        format!(
            "no such zone is served; the zones are {} (or `all`)",
            served.join(", ")
        ),
    ))
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
            let hint = crate::config::did_you_mean(name, &known)
                .map(|near| format!(" (did you mean {near}?)"))
                .unwrap_or_default();
            return Err(ConfigError::UnknownEnv {
                name: name.to_owned(),
                hint,
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

/// Where a key's value came from, for `check-config`.
fn provenance(key: &str, matches: &clap::ArgMatches, file_keys: &toml::Table) -> &'static str {
    use clap::parser::ValueSource;
    match matches
        .try_get_raw(key)
        .ok()
        .flatten()
        .and(matches.value_source(key))
    {
        Some(ValueSource::CommandLine) => "flag",
        Some(ValueSource::EnvVariable) => "env",
        _ if file_keys.contains_key(key) => "file",
        _ => "default",
    }
}

/// `ecs-dns check-config`: the configuration in effect as TOML, every key
/// with where its value came from; fed back with `--config`, it resolves to
/// the same configuration (TSIG secrets aside: they are never printed).
/// `matches` are the subcommand's, to tell flags and environment apart.
pub fn show_config(config: &Config, matches: &clap::ArgMatches) -> String {
    use std::fmt::Write as _;
    let file_keys = config
        .file
        .as_deref()
        .and_then(|path| crate::config::Settings::from_file(path).ok())
        .and_then(|settings| toml::Table::try_from(settings).ok())
        .unwrap_or_default();
    let effective = toml::Table::try_from(config.effective_settings()).unwrap_or_default();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# ecs-dns {}: the configuration in effect, each key with where it came\n# from (default, file, env, flag). Fed back with --config it gives the same\n# configuration; TSIG secrets and external IDs are never printed.\n# config file: {}",
        env!("CARGO_PKG_VERSION"),
        config.file.as_deref().map_or_else(
            || "none".into(),
            |f| std::path::absolute(f)
                .unwrap_or_else(|_| f.to_owned())
                .display()
                .to_string()
        )
    );
    for key in crate::config::setting_keys() {
        let from = provenance(&key, matches, &file_keys);
        if key == "tsig_keys" {
            // Names and algorithms are no secret; the secrets never leave.
            let keys: Vec<String> = config
                .transfer
                .keys
                .iter()
                .map(|k| format!("\"{}:{}:<redacted>\"", k.describe(), k.algorithm.to_name()))
                .collect();
            let _ = writeln!(
                out,
                "# tsig_keys = [{}]  # {from}; with tsig_key_file's, secrets never printed",
                keys.join(", ")
            );
            continue;
        }
        match effective.get(&key) {
            // Inline, so that the keys after it stay top-level when the
            // output is fed back.
            Some(value) if key == "sources" => {
                let _ = writeln!(out, "sources = {value}  # {from}");
            }
            Some(value) => {
                let mut one = toml::Table::new();
                one.insert(key.clone(), value.clone());
                let line = toml::to_string(&one).unwrap_or_default();
                let _ = writeln!(out, "{}  # {from}", line.trim_end());
            }
            None => {
                let _ = writeln!(out, "# {key} is not set  # {from}");
            }
        }
        if key == "reverse_zones" && !config.zone.reverse.is_empty() {
            // What a Resolver forwarding rule names.
            let origins: Vec<String> = (config.zone.reverse.iter())
                .map(|z| format!("{} = {}", z.prefix, z.origin))
                .collect();
            let _ = writeln!(out, "#   reverse zones: {}", origins.join(", "));
        }
    }
    for warning in config.warnings() {
        let _ = writeln!(out, "# warning: {warning}");
    }
    out
}
