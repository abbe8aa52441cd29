//! Configuration: one set of keys, read from a TOML file, `ECS_DNS_*`
//! environment variables and command-line flags.
//!
//! Every key is declared once, in [`Settings`], which is both the file's schema
//! (serde) and the flags' (clap, with the environment variable of each flag).
//! A key `record_ttl` is the flag `--record-ttl` and the variable
//! `ECS_DNS_RECORD_TTL`. Precedence: flag, then environment, then file, then
//! the built-in default. [`Config::resolve`] checks every value and names the
//! key in its error.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use clap::{Args, CommandFactory};
use hickory_proto::rr::Name;
use serde::Deserialize;

/// Where the configuration is looked for when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/ecs-dns/ecs-dns.toml";

/// A configuration error: which key, which value, and why.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("config file {path}: {reason}")]
    Syntax { path: PathBuf, reason: String },
    #[error("{key} = {value:?}: {reason}")]
    Invalid {
        key: &'static str,
        value: String,
        reason: String,
    },
    #[error("{key} is not set: {reason}")]
    Missing { key: &'static str, reason: String },
    #[error("unknown environment variable {name}: ecs-dns reads only {known}")]
    UnknownEnv { name: String, known: String },
}

fn invalid(key: &'static str, value: impl ToString, reason: impl ToString) -> ConfigError {
    ConfigError::Invalid {
        key,
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

/// Every key, each optional: unset keys fall through to the next layer.
#[derive(Args, Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Zone served, e.g. `local` or `ecs.internal` [default: local]
    #[arg(long, env = "ECS_DNS_ZONE")]
    pub zone: Option<String>,

    /// Address to answer DNS on, UDP and TCP; repeat for more [default: 0.0.0.0:53]
    #[arg(long, env = "ECS_DNS_LISTEN", value_delimiter = ',')]
    pub listen: Option<Vec<SocketAddr>>,

    /// Where tasks come from: `file` (an inventory file) or `ecs` (the ECS and EC2 APIs)
    #[arg(long, env = "ECS_DNS_SOURCE")]
    pub source: Option<SourceKind>,

    /// Inventory file of the `file` source (TOML or JSON)
    #[arg(long, env = "ECS_DNS_INVENTORY")]
    pub inventory: Option<PathBuf>,

    /// ECS clusters to serve (`ecs` source); none means every cluster of the account
    #[arg(long = "cluster", env = "ECS_DNS_CLUSTERS", value_delimiter = ',')]
    pub clusters: Option<Vec<String>>,

    /// AWS region (`ecs` source) [default: from the environment]
    #[arg(long, env = "ECS_DNS_REGION")]
    pub region: Option<String>,

    /// How often the source is read, e.g. `5s` (minimum 1s) [default: 5s]
    #[arg(long, env = "ECS_DNS_POLL_INTERVAL", value_parser = humantime::parse_duration)]
    #[serde(default, with = "humantime_serde")]
    pub poll_interval: Option<Duration>,

    /// Timeout of one AWS request, e.g. `10s` [default: 10s]
    #[arg(long, env = "ECS_DNS_REQUEST_TIMEOUT", value_parser = humantime::parse_duration)]
    #[serde(default, with = "humantime_serde")]
    pub request_timeout: Option<Duration>,

    /// TTL of A, AAAA and SRV records, in seconds [default: 10]
    #[arg(long, env = "ECS_DNS_RECORD_TTL")]
    pub record_ttl: Option<u32>,

    /// TTL of the apex SOA and NS records, in seconds [default: 60]
    #[arg(long, env = "ECS_DNS_SOA_TTL")]
    pub soa_ttl: Option<u32>,

    /// SOA MINIMUM: how long resolvers cache a negative answer, in seconds [default: 5]
    #[arg(long, env = "ECS_DNS_NEGATIVE_TTL")]
    pub negative_ttl: Option<u32>,

    /// SOA MNAME, the primary name server [default: first of `nameservers`]
    #[arg(long, env = "ECS_DNS_SOA_MNAME")]
    pub soa_mname: Option<String>,

    /// SOA RNAME, the contact mailbox as a name [default: hostmaster.ZONE]
    #[arg(long, env = "ECS_DNS_SOA_RNAME")]
    pub soa_rname: Option<String>,

    /// SOA REFRESH, in seconds [default: 60]
    #[arg(long, env = "ECS_DNS_SOA_REFRESH")]
    pub soa_refresh: Option<u32>,

    /// SOA RETRY, in seconds [default: 10]
    #[arg(long, env = "ECS_DNS_SOA_RETRY")]
    pub soa_retry: Option<u32>,

    /// SOA EXPIRE, in seconds [default: 86400]
    #[arg(long, env = "ECS_DNS_SOA_EXPIRE")]
    pub soa_expire: Option<u32>,

    /// Apex name servers as NAME or NAME=ADDRESS; a name inside the zone gets
    /// its address records from here [default: ns1.ZONE]
    #[arg(
        long = "nameserver",
        env = "ECS_DNS_NAMESERVERS",
        value_delimiter = ','
    )]
    pub nameservers: Option<Vec<String>>,

    /// Largest UDP response, in bytes, and the EDNS buffer size advertised (512-4096) [default: 1232]
    #[arg(long, env = "ECS_DNS_MAX_UDP_PAYLOAD")]
    pub max_udp_payload: Option<u16>,

    /// Log format: `human` or `json` [default: human]
    #[arg(long, env = "ECS_DNS_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,

    /// DNS front: `own` (pre-rendered answers, a UDP socket per core) or `hickory` (hickory-server) [default: own]
    #[arg(long, env = "ECS_DNS_FRONT")]
    pub front: Option<FrontKind>,

    /// Most TCP connections open at once; when all are taken, the one idle the longest is closed for a newcomer [default: 512]
    #[arg(long, env = "ECS_DNS_TCP_MAX_CONNECTIONS")]
    pub tcp_max_connections: Option<usize>,

    /// A TCP connection that sends no whole query for this long is closed, e.g. `10s` [default: 10s]
    #[arg(long, env = "ECS_DNS_TCP_IDLE_TIMEOUT", value_parser = humantime::parse_duration)]
    #[serde(default, with = "humantime_serde")]
    pub tcp_idle_timeout: Option<Duration>,

    /// A TCP connection is closed after this many answers [default: 1000]
    #[arg(long, env = "ECS_DNS_TCP_MAX_QUERIES")]
    pub tcp_max_queries: Option<u32>,

    /// Address of the HTTP ops listener (/metrics, /healthz, /readyz,
    /// /records), e.g. `127.0.0.1:9153`; it shows the whole inventory, so keep
    /// it private [default: off]
    #[arg(long, env = "ECS_DNS_HTTP")]
    pub http: Option<SocketAddr>,

    /// File where every new inventory is saved, to answer at once after a
    /// restart [default: none]
    #[arg(long, env = "ECS_DNS_STATE_FILE")]
    pub state_file: Option<PathBuf>,

    /// Age of the data past which /readyz fails (answers continue), e.g. `1h` [default: 1h]
    #[arg(long, env = "ECS_DNS_MAX_STALE", value_parser = humantime::parse_duration)]
    #[serde(default, with = "humantime_serde")]
    pub max_stale: Option<Duration>,

    /// Serve a service's UNHEALTHY tasks when none of its tasks in the cluster is healthy [default: true]
    #[arg(long, env = "ECS_DNS_FAIL_OPEN")]
    pub fail_open: Option<bool>,

    /// Who may transfer the zone (AXFR/IXFR) without TSIG: addresses or prefixes [default: nobody]
    #[arg(
        long = "transfer-allow",
        env = "ECS_DNS_TRANSFER_ALLOW",
        value_delimiter = ','
    )]
    pub transfer_allow: Option<Vec<String>>,

    /// Secondaries to send NOTIFY to on every new serial, as ADDRESS:PORT
    #[arg(long = "notify", env = "ECS_DNS_NOTIFY", value_delimiter = ',')]
    pub notify: Option<Vec<SocketAddr>>,

    /// TSIG keys as NAME:ALGORITHM:BASE64-SECRET; prefer the environment or `tsig_key_file` to flags
    #[arg(
        long = "tsig-key",
        env = "ECS_DNS_TSIG_KEYS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub tsig_keys: Option<Vec<String>>,

    /// File of TSIG keys, one NAME:ALGORITHM:BASE64-SECRET a line (# comments)
    #[arg(long, env = "ECS_DNS_TSIG_KEY_FILE")]
    pub tsig_key_file: Option<PathBuf>,

    /// Response-rate limit per client /24 (IPv6 /56) over UDP, answers per second; 0 is off [default: 0]
    #[arg(long, env = "ECS_DNS_RRL_RESPONSES_PER_SECOND")]
    pub rrl_responses_per_second: Option<u32>,

    /// Every Nth rate-limited answer is sent truncated instead of dropped; 0 never [default: 2]
    #[arg(long, env = "ECS_DNS_RRL_SLIP")]
    pub rrl_slip: Option<u32>,
}

/// Fills every key left unset in `$high` from `$low`.
macro_rules! merge_fields {
    ($high:expr, $low:expr, $($field:ident),* $(,)?) => {
        $( if $high.$field.is_none() { $high.$field = $low.$field; } )*
    };
}

impl Settings {
    /// Keys set here win; unset keys come from `file`.
    pub fn over(mut self, file: Settings) -> Settings {
        merge_fields!(
            self,
            file,
            zone,
            listen,
            source,
            inventory,
            clusters,
            region,
            poll_interval,
            request_timeout,
            record_ttl,
            soa_ttl,
            negative_ttl,
            soa_mname,
            soa_rname,
            soa_refresh,
            soa_retry,
            soa_expire,
            nameservers,
            max_udp_payload,
            log_format,
            front,
            tcp_max_connections,
            tcp_idle_timeout,
            tcp_max_queries,
            http,
            state_file,
            max_stale,
            fail_open,
            transfer_allow,
            notify,
            tsig_keys,
            tsig_key_file,
            rrl_responses_per_second,
            rrl_slip,
        );
        self
    }

    /// Reads a TOML file; relative paths in it are taken from its folder.
    pub fn from_file(path: &Path) -> Result<Settings, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Unreadable {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        let mut settings: Settings = toml::from_str(&text).map_err(|e| ConfigError::Syntax {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        if let (Some(inventory), Some(dir)) = (&settings.inventory, path.parent()) {
            settings.inventory = Some(dir.join(inventory));
        }
        if let (Some(state_file), Some(dir)) = (&settings.state_file, path.parent()) {
            settings.state_file = Some(dir.join(state_file));
        }
        if let (Some(key_file), Some(dir)) = (&settings.tsig_key_file, path.parent()) {
            settings.tsig_key_file = Some(dir.join(key_file));
        }
        Ok(settings)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    File,
    Ecs,
}

/// Which code carries DNS to the network.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum FrontKind {
    /// Our own UDP and TCP loops with pre-rendered answers.
    #[default]
    Own,
    /// hickory-server's.
    Hickory,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

/// Where the configuration came from: `--config`, or the default path.
#[derive(Clone, Debug, Default, Args)]
pub struct ConfigArgs {
    /// Configuration file (TOML) [default: /etc/ecs-dns/ecs-dns.toml if it exists]
    #[arg(long, env = "ECS_DNS_CONFIG")]
    pub config: Option<PathBuf>,

    #[command(flatten)]
    pub settings: Settings,
}

/// The checked configuration the server runs with.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// The file read, if any.
    pub file: Option<PathBuf>,
    pub listen: Vec<SocketAddr>,
    pub source: SourceConfig,
    pub poll_interval: Duration,
    pub zone: ZoneConfig,
    pub max_udp_payload: u16,
    pub log_format: LogFormat,
    pub front: FrontKind,
    pub tcp: crate::dns::front::tcp::TcpLimits,
    /// The HTTP ops listener, if any.
    pub http: Option<SocketAddr>,
    /// Where snapshots are saved for a warm restart, if anywhere.
    pub state_file: Option<PathBuf>,
    /// Data older than this makes /readyz fail.
    pub max_stale: Duration,
    /// Zone transfers and NOTIFY.
    pub transfer: crate::xfr::TransferConfig,
    /// Response-rate limiting (UDP).
    pub rrl: crate::dns::rrl::RrlConfig,
}

#[derive(Clone, Debug, PartialEq)]
pub enum SourceConfig {
    File {
        path: PathBuf,
    },
    Ecs {
        /// Empty: every cluster (ListClusters).
        clusters: Vec<String>,
        region: Option<String>,
        request_timeout: Duration,
    },
}

/// What the records and the zone apex are made from.
#[derive(Clone, Debug, PartialEq)]
pub struct ZoneConfig {
    /// The zone's origin, lower-case and fully qualified.
    pub origin: Name,
    pub record_ttl: u32,
    pub soa_ttl: u32,
    pub negative_ttl: u32,
    pub soa_mname: Name,
    pub soa_rname: Name,
    pub soa_refresh: u32,
    pub soa_retry: u32,
    pub soa_expire: u32,
    pub nameservers: Vec<Nameserver>,
    /// Serving rules that are settings.
    pub rules: crate::records::Rules,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Nameserver {
    pub name: Name,
    pub addresses: Vec<IpAddr>,
}

/// The largest TTL RFC 2181 §8 allows.
const MAX_TTL: u32 = (1 << 31) - 1;

impl Config {
    /// Loads the configuration the way `serve`, `records` and `check-config`
    /// do: flags and environment over the file over the defaults.
    pub fn load(args: &ConfigArgs) -> Result<Config, ConfigError> {
        check_environment()?;
        let (file, from_file) = match &args.config {
            Some(path) => (Some(path.clone()), Settings::from_file(path)?),
            None if Path::new(DEFAULT_CONFIG_PATH).exists() => {
                let path = PathBuf::from(DEFAULT_CONFIG_PATH);
                let settings = Settings::from_file(&path)?;
                (Some(path), settings)
            }
            None => (None, Settings::default()),
        };
        let mut config = Config::resolve(args.settings.clone().over(from_file))?;
        config.file = file;
        Ok(config)
    }

    /// Checks merged settings and fills in the defaults.
    pub fn resolve(s: Settings) -> Result<Config, ConfigError> {
        let zone_text = s.zone.as_deref().unwrap_or("local");
        let origin = parse_name("zone", zone_text)?;
        if origin.is_root() {
            return Err(invalid("zone", zone_text, "the root zone cannot be served"));
        }

        let listen = s
            .listen
            .unwrap_or_else(|| vec![SocketAddr::from(([0, 0, 0, 0], 53))]);
        if listen.is_empty() {
            return Err(invalid("listen", "[]", "at least one address is needed"));
        }

        let poll_interval = s.poll_interval.unwrap_or(Duration::from_secs(5));
        if poll_interval < Duration::from_secs(1) {
            return Err(invalid(
                "poll_interval",
                humantime::format_duration(poll_interval),
                "must be at least 1s",
            ));
        }

        let tcp = tcp_limits(s.tcp_max_connections, s.tcp_idle_timeout, s.tcp_max_queries)?;

        let source = match s.source {
            None => {
                return Err(ConfigError::Missing {
                    key: "source",
                    reason:
                        "set source = \"file\" or \"ecs\" (for the demo: --config conf/demo.toml)"
                            .into(),
                });
            }
            Some(SourceKind::File) => SourceConfig::File {
                path: s.inventory.ok_or_else(|| ConfigError::Missing {
                    key: "inventory",
                    reason: "the file source needs an inventory file".into(),
                })?,
            },
            Some(SourceKind::Ecs) => {
                let request_timeout = s.request_timeout.unwrap_or(Duration::from_secs(10));
                if request_timeout.is_zero() {
                    return Err(invalid("request_timeout", "0s", "must be more than zero"));
                }
                let clusters = s.clusters.unwrap_or_default();
                if let Some(bad) = clusters.iter().find(|c| c.trim().is_empty()) {
                    return Err(invalid("clusters", bad, "a cluster name cannot be empty"));
                }
                SourceConfig::Ecs {
                    clusters,
                    region: s.region,
                    request_timeout,
                }
            }
        };

        let nameservers = match s.nameservers {
            Some(list) => parse_nameservers(&list)?,
            None => vec![Nameserver {
                name: child(&origin, "ns1"),
                addresses: vec![],
            }],
        };
        if nameservers.is_empty() {
            return Err(invalid(
                "nameservers",
                "[]",
                "the apex needs at least one NS",
            ));
        }
        let soa_mname = match &s.soa_mname {
            Some(text) => parse_name("soa_mname", text)?,
            None => nameservers[0].name.clone(),
        };
        let soa_rname = match &s.soa_rname {
            Some(text) => parse_name("soa_rname", text)?,
            None => child(&origin, "hostmaster"),
        };

        let zone = ZoneConfig {
            record_ttl: ttl("record_ttl", s.record_ttl, 10)?,
            soa_ttl: ttl("soa_ttl", s.soa_ttl, 60)?,
            negative_ttl: ttl("negative_ttl", s.negative_ttl, 5)?,
            soa_refresh: ttl("soa_refresh", s.soa_refresh, 60)?,
            soa_retry: ttl("soa_retry", s.soa_retry, 10)?,
            soa_expire: ttl("soa_expire", s.soa_expire, 86_400)?,
            origin,
            soa_mname,
            soa_rname,
            nameservers,
            rules: crate::records::Rules {
                fail_open: s.fail_open.unwrap_or(true),
            },
        };

        let max_udp_payload = s.max_udp_payload.unwrap_or(1232);
        if !(512..=4096).contains(&max_udp_payload) {
            return Err(invalid(
                "max_udp_payload",
                max_udp_payload,
                "must be between 512 and 4096 bytes",
            ));
        }

        let max_stale = s.max_stale.unwrap_or(Duration::from_secs(3600));
        if max_stale.is_zero() {
            return Err(invalid("max_stale", "0s", "must be more than zero"));
        }
        if let Some(path) = &s.state_file
            && (path.as_os_str().is_empty() || path.file_name().is_none())
        {
            return Err(invalid("state_file", path.display(), "must name a file"));
        }

        Ok(Config {
            front: s.front.unwrap_or_default(),
            tcp,
            file: None,
            listen,
            source,
            poll_interval,
            zone,
            max_udp_payload,
            log_format: s.log_format.unwrap_or_default(),
            http: s.http,
            transfer: transfer_config(
                s.transfer_allow.as_deref().unwrap_or_default(),
                s.notify.unwrap_or_default(),
                s.tsig_keys.as_deref().unwrap_or_default(),
                s.tsig_key_file.as_deref(),
            )?,
            rrl: crate::dns::rrl::RrlConfig {
                responses_per_second: s.rrl_responses_per_second.unwrap_or(0),
                slip: s.rrl_slip.unwrap_or(2),
            },
            state_file: s.state_file,
            max_stale,
        })
    }
}

/// Transfer access, NOTIFY targets and TSIG keys. Errors never show a
/// secret, only where it came from.
fn transfer_config(
    allow: &[String],
    notify: Vec<SocketAddr>,
    keys: &[String],
    key_file: Option<&Path>,
) -> Result<crate::xfr::TransferConfig, ConfigError> {
    use crate::xfr::access::{TsigKey, parse_prefix};
    let allow = allow
        .iter()
        .map(|p| parse_prefix(p).map_err(|reason| invalid("transfer_allow", p, reason)))
        .collect::<Result<Vec<_>, _>>()?;
    let mut tsig = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        tsig.push(
            TsigKey::parse(key)
                .map_err(|reason| invalid("tsig_keys", format!("entry {}", i + 1), reason))?,
        );
    }
    if let Some(path) = key_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| invalid("tsig_key_file", path.display(), e))?;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            tsig.push(TsigKey::parse(line).map_err(|reason| {
                invalid(
                    "tsig_key_file",
                    format!("{} line {}", path.display(), n + 1),
                    reason,
                )
            })?);
        }
    }
    Ok(crate::xfr::TransferConfig {
        access: crate::xfr::access::Access { allow, keys: tsig },
        notify,
        journal: crate::xfr::journal::JournalLimits::default(),
    })
}

/// The TCP limits: each at least 1, the timeout at least 100ms (a client
/// needs a round trip or two to send its query).
fn tcp_limits(
    max_connections: Option<usize>,
    idle_timeout: Option<Duration>,
    max_queries: Option<u32>,
) -> Result<crate::dns::front::tcp::TcpLimits, ConfigError> {
    let defaults = crate::dns::front::tcp::TcpLimits::default();
    let max_connections = max_connections.unwrap_or(defaults.max_connections);
    if !(1..=65_535).contains(&max_connections) {
        return Err(invalid(
            "tcp_max_connections",
            max_connections,
            "must be between 1 and 65535",
        ));
    }
    let idle_timeout = idle_timeout.unwrap_or(defaults.idle_timeout);
    if idle_timeout < Duration::from_millis(100) {
        return Err(invalid(
            "tcp_idle_timeout",
            humantime::format_duration(idle_timeout),
            "must be at least 100ms",
        ));
    }
    let max_queries = max_queries.unwrap_or(defaults.max_queries);
    if max_queries == 0 {
        return Err(invalid("tcp_max_queries", 0, "must be at least 1"));
    }
    Ok(crate::dns::front::tcp::TcpLimits {
        max_connections,
        idle_timeout,
        max_queries,
    })
}

impl Config {
    /// Checks that the file source's inventory can be read: a folder or an
    /// unreadable file is a configuration error. With `must_exist` (for
    /// `check-config`) a missing file is one too, and the file must parse;
    /// without (for `serve`) a missing file is allowed, since another tool may
    /// write it later (the server answers from the state file, or SERVFAIL,
    /// until then) and the caller logs it.
    pub fn check_inventory(&self, must_exist: bool) -> Result<(), ConfigError> {
        let SourceConfig::File { path } = &self.source else {
            return Ok(());
        };
        let bad = |reason: String| invalid("inventory", path.display(), reason);
        let metadata = match std::fs::metadata(path) {
            Ok(metadata) => metadata,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_exist => return Ok(()),
            Err(e) => return Err(bad(e.to_string())),
        };
        if !metadata.is_file() {
            return Err(bad("not a regular file".into()));
        }
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        if must_exist {
            let modified = metadata
                .modified()
                .unwrap_or(std::time::SystemTime::UNIX_EPOCH);
            crate::source::file::parse(path, &text, modified).map_err(bad)?;
        }
        Ok(())
    }
}

fn ttl(key: &'static str, value: Option<u32>, default: u32) -> Result<u32, ConfigError> {
    let value = value.unwrap_or(default);
    if value > MAX_TTL {
        return Err(invalid(
            key,
            value,
            format!("must be at most {MAX_TTL} (RFC 2181 §8)"),
        ));
    }
    Ok(value)
}

/// Parses a domain name as given in the configuration: always absolute,
/// lower-cased.
fn parse_name(key: &'static str, text: &str) -> Result<Name, ConfigError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(invalid(key, text, "a name cannot be empty"));
    }
    let mut name = Name::from_str(trimmed).map_err(|e| invalid(key, text, e))?;
    name.set_fqdn(true);
    Ok(name.to_lowercase())
}

fn child(origin: &Name, label: &str) -> Name {
    // A fixed, valid label under a checked origin: this cannot fail unless the
    // origin is already at the 255-byte limit, in which case the origin alone is used.
    Name::from_ascii(label)
        .and_then(|l| l.append_domain(origin))
        .unwrap_or_else(|_| origin.clone())
}

fn parse_nameservers(list: &[String]) -> Result<Vec<Nameserver>, ConfigError> {
    let mut out: Vec<Nameserver> = Vec::new();
    for entry in list {
        let (name_text, address) = match entry.split_once('=') {
            Some((n, a)) => (n, Some(a)),
            None => (entry.as_str(), None),
        };
        let name = parse_name("nameservers", name_text)?;
        let address = address
            .map(|a| {
                a.trim()
                    .parse::<IpAddr>()
                    .map_err(|e| invalid("nameservers", entry, format!("bad address: {e}")))
            })
            .transpose()?;
        match out.iter_mut().find(|ns| ns.name == name) {
            Some(ns) => ns.addresses.extend(address),
            None => out.push(Nameserver {
                name,
                addresses: address.into_iter().collect(),
            }),
        }
    }
    Ok(out)
}

/// Rejects `ECS_DNS_*` variables that name no key: a typo in a task
/// definition's environment must not be ignored.
fn check_environment() -> Result<(), ConfigError> {
    let command = crate::cli::Cli::command();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn file_settings(toml_text: &str) -> Result<Settings, toml::de::Error> {
        toml::from_str(toml_text)
    }

    fn base() -> Settings {
        Settings {
            source: Some(SourceKind::File),
            inventory: Some("inv.toml".into()),
            ..Settings::default()
        }
    }

    #[test]
    fn defaults() {
        let c = Config::resolve(base()).unwrap();
        assert_eq!(c.zone.origin, Name::from_ascii("local.").unwrap());
        assert_eq!(c.zone.record_ttl, 10);
        assert_eq!(c.zone.negative_ttl, 5);
        assert_eq!(c.poll_interval, Duration::from_secs(5));
        assert_eq!(c.max_udp_payload, 1232);
        assert_eq!(c.zone.soa_mname, Name::from_ascii("ns1.local.").unwrap());
        assert_eq!(
            c.zone.soa_rname,
            Name::from_ascii("hostmaster.local.").unwrap()
        );
    }

    #[test]
    fn flags_win_over_file() {
        let file = Settings {
            zone: Some("file.example".into()),
            record_ttl: Some(30),
            ..base()
        };
        let flags = Settings {
            zone: Some("Flag.Example".into()),
            ..Settings::default()
        };
        let c = Config::resolve(flags.over(file)).unwrap();
        assert_eq!(c.zone.origin, Name::from_ascii("flag.example.").unwrap());
        assert_eq!(c.zone.record_ttl, 30);
    }

    /// Each bad value is rejected with the key it came from.
    #[test]
    fn bad_values_name_their_key() {
        let cases: Vec<(&str, Settings)> = vec![
            ("source", Settings::default()),
            (
                "inventory",
                Settings {
                    inventory: None,
                    ..base()
                },
            ),
            (
                "zone",
                Settings {
                    zone: Some(".".into()),
                    ..base()
                },
            ),
            (
                "zone",
                Settings {
                    zone: Some("a..b".into()),
                    ..base()
                },
            ),
            (
                "poll_interval",
                Settings {
                    poll_interval: Some(Duration::from_millis(200)),
                    ..base()
                },
            ),
            (
                "record_ttl",
                Settings {
                    record_ttl: Some(u32::MAX),
                    ..base()
                },
            ),
            (
                "max_udp_payload",
                Settings {
                    max_udp_payload: Some(100),
                    ..base()
                },
            ),
            (
                "nameservers",
                Settings {
                    nameservers: Some(vec!["ns1.local=not-an-ip".into()]),
                    ..base()
                },
            ),
            (
                "listen",
                Settings {
                    listen: Some(vec![]),
                    ..base()
                },
            ),
            (
                "tcp_max_connections",
                Settings {
                    tcp_max_connections: Some(0),
                    ..base()
                },
            ),
            (
                "tcp_idle_timeout",
                Settings {
                    tcp_idle_timeout: Some(Duration::from_millis(10)),
                    ..base()
                },
            ),
            (
                "tcp_max_queries",
                Settings {
                    tcp_max_queries: Some(0),
                    ..base()
                },
            ),
        ];
        for (key, settings) in cases {
            let err = Config::resolve(settings).expect_err(key).to_string();
            assert!(err.contains(key), "error for {key} does not name it: {err}");
        }
    }

    #[test]
    fn unknown_file_key_is_named() {
        let err = file_settings("zone = \"local\"\nrecrod_ttl = 5\n").unwrap_err();
        assert!(err.to_string().contains("recrod_ttl"), "{err}");
    }

    #[test]
    fn file_durations_and_lists() {
        let s = file_settings(
            "poll_interval = \"2s\"\nlisten = [\"127.0.0.1:5300\", \"[::1]:5300\"]\nnameservers = [\"ns1.local=127.0.0.1\", \"ns1.local=::1\", \"ns2.example.\"]\n",
        )
        .unwrap();
        let c = Config::resolve(s.over(base())).unwrap();
        assert_eq!(c.poll_interval, Duration::from_secs(2));
        assert_eq!(c.listen.len(), 2);
        assert_eq!(c.zone.nameservers.len(), 2);
        assert_eq!(c.zone.nameservers[0].addresses.len(), 2);
    }
}
