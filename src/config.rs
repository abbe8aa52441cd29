//! Configuration: one set of keys, read from a TOML file, `ECS_DNS_*`
//! environment variables and command-line flags.
//!
//! Every key is declared once, in [`Settings`], which is both the file's schema
//! (serde) and the flags' (clap, with the environment variable of each flag).
//! A key `record_ttl` is the flag `--record-ttl` and the variable
//! `ECS_DNS_RECORD_TTL`. Precedence: flag, then environment, then file, then
//! the built-in default. [`Config::resolve`] checks every value and names the
//! key in its error.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU16;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use base64::Engine;
use clap::Args;
use hickory_proto::rr::Name;
use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

mod reverse;
mod sources;

pub use reverse::{ReverseFallback, ReverseZone};
pub use sources::{AssumeRole, Redacted, SourceTable, SourceTables};

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
    #[error("unknown environment variable {name}{hint}: ecs-dns reads only {known}")]
    UnknownEnv {
        name: String,
        /// " (did you mean X?)", or empty.
        hint: String,
        known: String,
    },
}

impl ConfigError {
    /// `key = value` is wrong, for `reason`.
    pub fn invalid(key: &'static str, value: impl ToString, reason: impl ToString) -> ConfigError {
        ConfigError::Invalid {
            key,
            value: value.to_string(),
            reason: reason.to_string(),
        }
    }
}

fn invalid(key: &'static str, value: impl ToString, reason: impl ToString) -> ConfigError {
    ConfigError::invalid(key, value, reason)
}

/// Every key, each optional: unset keys fall through to the next layer.
#[derive(Args, Clone, Debug, Default, Deserialize, Serialize)]
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

    /// SQS queue URL that EventBridge fills with ECS events (`ecs` source): events mode [default: none, polling]
    #[arg(long, env = "ECS_DNS_EVENTS_QUEUE")]
    pub events_queue: Option<String>,

    /// Several accounts and regions (`ecs` source): `[[sources]]` tables in a file, the same list as JSON here (name, region, clusters, role_arn, external_id, events_queue, endpoint_url each) [default: one source of the flat keys]
    #[arg(long, env = "ECS_DNS_SOURCES")]
    pub sources: Option<SourceTables>,

    /// Events mode: how often the full read repairs what events missed, e.g. `10m` [default: 10m]
    #[arg(long, env = "ECS_DNS_RECONCILE_INTERVAL", value_parser = humantime::parse_duration)]
    #[serde(default, with = "humantime_serde")]
    pub reconcile_interval: Option<Duration>,

    /// Events mode: the least time between two publications of events, e.g. `200ms` [default: 200ms]
    #[arg(long, env = "ECS_DNS_PUBLISH_MIN_INTERVAL", value_parser = humantime::parse_duration)]
    #[serde(default, with = "humantime_serde")]
    pub publish_min_interval: Option<Duration>,

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

    /// Rotate A, AAAA and SRV answers of more than one record: each query starts at a random record, so clients that take the first address spread over the tasks [default: true]
    #[arg(long, env = "ECS_DNS_ROTATE_ANSWERS")]
    pub rotate_answers: Option<bool>,

    /// Most records in an A, AAAA or SRV answer (1-1000), taken from a random start when `rotate_answers` is on; large services then answer without truncation [default: all that fit]
    #[arg(long, env = "ECS_DNS_MAX_ANSWERS")]
    pub max_answers: Option<u16>,

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

    /// Most ops HTTP connections open at once; when all are taken, the one idle the longest is closed for a newcomer [default: 64]
    #[arg(long, env = "ECS_DNS_HTTP_MAX_CONNECTIONS")]
    pub http_max_connections: Option<usize>,

    /// An ops HTTP request's head must arrive within this long, and its response be sent within as long again, e.g. `5s` [default: 5s]
    #[arg(long, env = "ECS_DNS_HTTP_REQUEST_TIMEOUT", value_parser = humantime::parse_duration)]
    #[serde(default, with = "humantime_serde")]
    pub http_request_timeout: Option<Duration>,

    /// File where every new inventory is saved, to answer at once after a
    /// restart [default: none]
    #[arg(long, env = "ECS_DNS_STATE_FILE")]
    pub state_file: Option<PathBuf>,

    /// Age of the data past which /readyz fails (answers continue), e.g. `1h` [default: 1h]
    #[arg(long, env = "ECS_DNS_MAX_STALE", value_parser = humantime::parse_duration)]
    #[serde(default, with = "humantime_serde")]
    pub max_stale: Option<Duration>,

    /// Several sources: /readyz fails until every source has been read once (else any one is enough) [default: false]
    #[arg(long, env = "ECS_DNS_READY_NEEDS_ALL_SOURCES", action = clap::ArgAction::Set)]
    pub ready_needs_all_sources: Option<bool>,

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

    /// Address ranges whose reverse zones (`in-addr.arpa`, `ip6.arpa`) are served beside the zone, e.g. `10.0.0.0/16`: IPv4 /8, /16 or /24, IPv6 a multiple of 4 [default: none]
    #[arg(
        long = "reverse-zone",
        env = "ECS_DNS_REVERSE_ZONES",
        value_delimiter = ','
    )]
    pub reverse_zones: Option<Vec<String>>,

    /// What a reverse zone answers for an address no served task holds: `none` (NXDOMAIN), `ec2` (EC2's own name, `ip-10-0-1-5.ec2.internal`; the source's region) or `ec2:REGION` [default: none]
    #[arg(long, env = "ECS_DNS_REVERSE_FALLBACK")]
    pub reverse_fallback: Option<String>,

    /// Secondaries to send NOTIFY to on every new serial, as ADDRESS:PORT, or ADDRESS:PORT KEYNAME to sign it with that TSIG key
    #[arg(long = "notify", env = "ECS_DNS_NOTIFY", value_delimiter = ',')]
    pub notify: Option<Vec<String>>,

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

    /// Bytes of socket buffer asked for each UDP socket, receive and send (the kernel caps it at net.core.rmem_max/wmem_max; the value granted is logged at start) [default: 4194304]
    #[arg(long, env = "ECS_DNS_UDP_SOCKET_BUFFER")]
    pub udp_socket_buffer: Option<usize>,

    /// UDP I/O of the own front: `batched` (recvmmsg/sendmmsg, Linux only) or `plain` (recv_from/send_to, any Unix) [default: batched on Linux, else plain]
    #[arg(long, env = "ECS_DNS_UDP_IO")]
    pub udp_io: Option<UdpIo>,
}

/// For each key: the higher layer's value if set, else the lower one's. The
/// lower layer is taken apart field by field with no `..`, so a key added to
/// [`Settings`] and forgotten here does not compile.
macro_rules! merge_settings {
    ($high:ident, $low:ident, $($field:ident),* $(,)?) => {{
        let Settings { $($field),* } = $low;
        Settings { $($field: $high.$field.or($field)),* }
    }};
}

impl Settings {
    /// Keys set here win; unset keys come from `file`.
    pub fn over(self, file: Settings) -> Settings {
        merge_settings!(
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
            events_queue,
            sources,
            reconcile_interval,
            publish_min_interval,
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
            rotate_answers,
            max_answers,
            log_format,
            front,
            tcp_max_connections,
            tcp_idle_timeout,
            tcp_max_queries,
            http,
            http_max_connections,
            http_request_timeout,
            state_file,
            max_stale,
            ready_needs_all_sources,
            fail_open,
            transfer_allow,
            reverse_zones,
            reverse_fallback,
            notify,
            tsig_keys,
            tsig_key_file,
            rrl_responses_per_second,
            rrl_slip,
            udp_socket_buffer,
            udp_io,
        )
    }

    /// Reads a TOML file; relative paths in it are taken from its folder.
    pub fn from_file(path: &Path) -> Result<Settings, ConfigError> {
        let text = crate::files::read_text(path, crate::files::CONFIG_CAP).map_err(|e| {
            ConfigError::Unreadable {
                path: path.to_owned(),
                reason: e.to_string(),
            }
        })?;
        let mut settings: Settings = toml::from_str(&text).map_err(|e| ConfigError::Syntax {
            path: path.to_owned(),
            reason: syntax_error(&text, &e),
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

/// A TOML error as the operator needs it: where, what, and for an unknown
/// key the known key it most resembles. It never quotes the file's text: a
/// line of the file may hold a TSIG secret.
fn syntax_error(text: &str, error: &toml::de::Error) -> String {
    let place = error.span().map(|span| {
        let start = span.start.min(text.len());
        let before = &text[..start];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = start - line_start + 1;
        // The key of that line, if it has one: a key is never secret, its
        // value may be.
        let key = text[line_start..]
            .split(['=', '\n'])
            .next()
            .map(str::trim)
            .filter(|k| !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
            .map(|k| format!("key `{k}`, "))
            .unwrap_or_default();
        format!("{key}line {line}, column {column}: ")
    });
    let message = error.message().trim_end();
    let hint = unknown_key(message)
        .and_then(|key| {
            did_you_mean(key, &setting_keys()).map(|near| format!(" (did you mean `{near}`?)"))
        })
        .unwrap_or_default();
    format!("{}{message}{hint}", place.unwrap_or_default())
}

/// The key named by serde's "unknown field `KEY`, expected …" message.
fn unknown_key(message: &str) -> Option<&str> {
    message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split('`').next())
}

/// Every key of [`Settings`], as the file spells it.
pub fn setting_keys() -> Vec<String> {
    use clap::CommandFactory as _;
    #[derive(clap::Parser)]
    struct Keys {
        #[command(flatten)]
        settings: Settings,
    }
    Keys::command()
        .get_arguments()
        .map(|arg| arg.get_id().as_str().to_owned())
        .collect()
}

/// The known key closest to `typo`, if one is close enough to be a likely
/// slip (a Jaro-Winkler similarity of at least 0.8, as clap suggests).
pub fn did_you_mean(typo: &str, known: &[String]) -> Option<String> {
    known
        .iter()
        .map(|k| (strsim::jaro_winkler(typo, k), k))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k.clone())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    File,
    Ecs,
}

/// Which code carries DNS to the network.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum FrontKind {
    /// Our own UDP and TCP loops with pre-rendered answers.
    #[default]
    Own,
    /// hickory-server's.
    Hickory,
}

/// How the own front's UDP loops read and write datagrams.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum UdpIo {
    /// `recvmmsg`/`sendmmsg`: a batch of datagrams per system call (Linux).
    Batched,
    /// `recv_from`/`send_to`: one datagram per call (every Unix).
    Plain,
}

impl Default for UdpIo {
    fn default() -> Self {
        if cfg!(target_os = "linux") {
            UdpIo::Batched
        } else {
            UdpIo::Plain
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
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
    /// How A, AAAA and SRV answers spread load over tasks.
    pub spread: Spread,
    pub log_format: LogFormat,
    pub front: FrontKind,
    pub tcp: TcpLimits,
    /// The HTTP ops listener, if any.
    pub http: Option<SocketAddr>,
    /// Its limits.
    pub http_limits: HttpLimits,
    /// Where snapshots are saved for a warm restart, if anywhere.
    pub state_file: Option<PathBuf>,
    /// Data older than this makes /readyz fail.
    pub max_stale: Duration,
    /// The sources /readyz waits for, each to have been read once: every
    /// named source with `ready_needs_all_sources`, else none.
    pub ready_needs_sources: Vec<String>,
    /// Zone transfers and NOTIFY.
    pub transfer: TransferConfig,
    /// Where some of `transfer`'s keys were read from, if anywhere.
    pub tsig_key_file: Option<PathBuf>,
    /// Response-rate limiting (UDP).
    pub rrl: RrlConfig,
    /// UDP I/O of the own front.
    pub udp_io: UdpIo,
    /// Socket buffer asked for each UDP socket, in bytes.
    pub udp_socket_buffer: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub enum SourceConfig {
    File {
        path: PathBuf,
    },
    /// One unnamed source (the flat keys), or the `[[sources]]`, each
    /// named: every one read on its own and served in the one zone.
    Ecs(Vec<EcsConfig>),
}

/// One account and region the ECS source reads.
#[derive(Clone, Debug, PartialEq)]
pub struct EcsConfig {
    /// `[[sources]]` `name`: a label in the names of its clusters; `None`
    /// for the one source of the flat keys.
    pub name: Option<String>,
    /// Empty: every cluster (ListClusters).
    pub clusters: Vec<String>,
    pub region: Option<String>,
    pub request_timeout: Duration,
    /// The role assumed for its calls; `None`: the default chain's
    /// identity itself.
    pub role: Option<AssumeRole>,
    /// Another endpoint for its AWS calls.
    pub endpoint_url: Option<String>,
    /// `None`: polling only.
    pub events: Option<EventsConfig>,
}

impl EcsConfig {
    /// The `[[sources]]` table that gives this source, its external ID
    /// shown as `<redacted>` (see `check-config`).
    fn table(&self) -> SourceTable {
        SourceTable {
            name: self.name.clone(),
            region: self.region.clone(),
            clusters: (!self.clusters.is_empty()).then(|| self.clusters.clone()),
            role_arn: self.role.as_ref().map(|r| r.role_arn.clone()),
            external_id: (self.role.as_ref())
                .and_then(|r| r.external_id.as_ref())
                .map(|_| Redacted::shown()),
            events_queue: self.events.as_ref().map(|e| e.queue_url.clone()),
            endpoint_url: self.endpoint_url.clone(),
        }
    }
}

/// Events mode of the ECS source: ECS events from an SQS queue, and a slow
/// full read (reconcile) that repairs what they missed.
#[derive(Clone, Debug, PartialEq)]
pub struct EventsConfig {
    pub queue_url: String,
    pub reconcile_interval: Duration,
    /// The least time between two publications of events: a burst is a
    /// few snapshots, not one per event.
    pub publish_min_interval: Duration,
}

/// How an answer of several A, AAAA or SRV records spreads load (keys
/// `rotate_answers`, `max_answers`). Zone transfers and `records` keep the
/// canonical order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spread {
    /// Each answer starts at a random record of the set (cyclically).
    pub rotate: bool,
    /// Most records in one answer; `None` for all of them.
    pub max_answers: Option<NonZeroU16>,
}

impl Default for Spread {
    fn default() -> Self {
        Spread {
            rotate: true,
            max_answers: None,
        }
    }
}

impl Spread {
    /// The records an answer of a set of `len` records carries, as (first,
    /// count): `count` records from `first` on, wrapping around. `pick` is
    /// a random number drawn per query.
    pub fn window(&self, len: usize, pick: u32) -> (usize, usize) {
        let count = match self.max_answers {
            Some(max) => len.min(usize::from(max.get())),
            None => len,
        };
        let first = match self.rotate && len > 1 {
            true => pick as usize % len,
            false => 0,
        };
        (first, count)
    }

    /// Whether an answer of `len` records may differ from the canonical one.
    pub fn changes(&self, len: usize) -> bool {
        len > 1 && (self.rotate || self.max_answers.is_some_and(|m| usize::from(m.get()) < len))
    }
}

/// Serving rules that are settings rather than fixed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rules {
    /// Serve a service's UNHEALTHY tasks when it has no healthy one.
    pub fail_open: bool,
}

impl Default for Rules {
    fn default() -> Self {
        Rules { fail_open: true }
    }
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
    pub rules: Rules,
    /// The reverse zones served beside this one (key `reverse_zones`).
    pub reverse: Vec<ReverseZone>,
    pub reverse_fallback: ReverseFallback,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Nameserver {
    pub name: Name,
    pub addresses: Vec<IpAddr>,
}

/// The TCP limits (keys `tcp_max_connections`, `tcp_idle_timeout`,
/// `tcp_max_queries`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpLimits {
    pub max_connections: usize,
    pub idle_timeout: Duration,
    pub max_queries: u32,
}

impl Default for TcpLimits {
    fn default() -> Self {
        TcpLimits {
            max_connections: 512,
            idle_timeout: Duration::from_secs(10),
            max_queries: 1000,
        }
    }
}

/// The ops listener's limits (keys `http_max_connections`,
/// `http_request_timeout`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpLimits {
    pub max_connections: usize,
    /// For a request's head to arrive, and again for its response to go out.
    pub request_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_connections: 64,
            request_timeout: Duration::from_secs(5),
        }
    }
}

/// Response-rate limiting (keys `rrl_responses_per_second`, `rrl_slip`);
/// `responses_per_second == 0` turns it off.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RrlConfig {
    pub responses_per_second: u32,
    /// Every `slip`-th limited response goes out truncated; 0: never.
    pub slip: u32,
}

/// Zone transfers and NOTIFY (keys `transfer_allow`, `tsig_keys`,
/// `tsig_key_file`, `notify`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TransferConfig {
    /// Who may transfer without TSIG.
    pub allow: Vec<IpNet>,
    /// Keys a transfer may be signed with.
    pub keys: Vec<TsigKey>,
    /// Secondaries to NOTIFY on every new serial.
    pub notify: Vec<NotifyTarget>,
}

/// A secondary to NOTIFY (key `notify`): `ADDRESS:PORT`, or
/// `ADDRESS:PORT KEYNAME` to sign the NOTIFY with that key of `tsig_keys`
/// or `tsig_key_file`.
#[derive(Clone, Debug, PartialEq)]
pub struct NotifyTarget {
    pub address: SocketAddr,
    pub key: Option<TsigKey>,
}

impl NotifyTarget {
    /// Parses one `notify` entry; the key must be one of `keys`.
    pub fn parse(text: &str, keys: &[TsigKey]) -> Result<NotifyTarget, String> {
        let mut parts = text.split_whitespace();
        let (Some(address), key, None) = (parts.next(), parts.next(), parts.next()) else {
            return Err("expected ADDRESS:PORT or ADDRESS:PORT KEYNAME".into());
        };
        let address = address
            .parse()
            .map_err(|_| format!("{address} is not an ADDRESS:PORT"))?;
        let key = match key {
            None => None,
            Some(name) => {
                let wanted = Name::from_ascii(name)
                    .map(|mut n| {
                        n.set_fqdn(true);
                        n.to_lowercase()
                    })
                    .map_err(|e| format!("bad key name {name}: {e}"))?;
                let key = keys
                    .iter()
                    .find(|k| k.name == wanted)
                    .ok_or_else(|| format!("no TSIG key {name} in tsig_keys or tsig_key_file"))?;
                Some(key.clone())
            }
        };
        Ok(NotifyTarget { address, key })
    }
}

/// A TSIG key. Its secret never appears in logs or `check-config`.
#[derive(Clone, PartialEq)]
pub struct TsigKey {
    pub name: Name,
    pub algorithm: TsigAlgorithm,
    secret: Vec<u8>,
}

impl fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TsigKey")
            .field("name", &self.name.to_string())
            .field("algorithm", &self.algorithm.to_name().to_string())
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// The shortest TSIG secret accepted, in bytes.
const MIN_SECRET: usize = 16;

/// The output size of the algorithm's hash, in bytes: the secret length
/// RFC 2104 §3 recommends.
fn hash_len(algorithm: &TsigAlgorithm) -> usize {
    match algorithm {
        TsigAlgorithm::HmacSha384 => 48,
        TsigAlgorithm::HmacSha512 => 64,
        _ => 32,
    }
}

impl TsigKey {
    /// Parses `NAME:ALGORITHM:BASE64-SECRET` (as in `dig -y`), e.g.
    /// `xfr-key:hmac-sha256:c2VjcmV0`.
    pub fn parse(text: &str) -> Result<TsigKey, String> {
        let mut parts = text.trim().splitn(3, ':');
        let (Some(name), Some(algorithm), Some(secret)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err("expected NAME:ALGORITHM:BASE64-SECRET".into());
        };
        if name.trim().is_empty() || name.trim() == "." {
            return Err("the key name is empty".into());
        }
        let mut name = Name::from_ascii(name.trim()).map_err(|e| format!("bad key name: {e}"))?;
        name.set_fqdn(true);
        let algorithm = match algorithm.to_ascii_lowercase().as_str() {
            "hmac-sha256" => TsigAlgorithm::HmacSha256,
            "hmac-sha384" => TsigAlgorithm::HmacSha384,
            "hmac-sha512" => TsigAlgorithm::HmacSha512,
            other => {
                return Err(format!(
                    "unsupported algorithm {other} (use hmac-sha256, -sha384 or -sha512)"
                ));
            }
        };
        let secret = base64::engine::general_purpose::STANDARD
            .decode(secret.trim())
            .map_err(|e| format!("secret is not base64: {e}"))?;
        if secret.len() < MIN_SECRET {
            return Err(format!(
                "the secret is {} bytes: at least {MIN_SECRET} are needed ({} for this algorithm, its hash size, RFC 2104 §3)",
                secret.len(),
                hash_len(&algorithm)
            ));
        }
        Ok(TsigKey {
            name: name.to_lowercase(),
            algorithm,
            secret,
        })
    }

    /// Why this key is weak, if it is: a secret shorter than the hash
    /// output (RFC 2104 §3). Allowed, with a warning.
    pub fn weakness(&self) -> Option<String> {
        let want = hash_len(&self.algorithm);
        (self.secret.len() < want).then(|| {
            format!(
                "TSIG key {}: the secret is {} bytes, shorter than the {want} bytes of {} output (RFC 2104 §3)",
                self.name,
                self.secret.len(),
                self.algorithm.to_name()
            )
        })
    }

    /// The name as the secondary's configuration has it, for messages.
    pub fn describe(&self) -> String {
        self.name.to_string()
    }

    /// The secret, for signing and verifying only: never to be shown.
    pub fn secret(&self) -> &[u8] {
        &self.secret
    }
}

/// Parses `transfer_allow` entries: a prefix (`10.0.0.0/16`) or a single
/// address.
pub fn parse_prefix(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| "expected an address or a prefix such as 10.0.0.0/16".to_string())
}

/// The largest TTL RFC 2181 §8 allows.
const MAX_TTL: u32 = (1 << 31) - 1;

impl Config {
    /// What is allowed but unwise (weak TSIG secrets), for the log at start
    /// and `check-config`.
    pub fn warnings(&self) -> Vec<String> {
        self.transfer
            .keys
            .iter()
            .filter_map(TsigKey::weakness)
            .collect()
    }

    /// The configuration as settings, every key that has a value set to
    /// it (defaults included, paths absolute): fed back as a file, it
    /// resolves to this configuration. TSIG secrets are left out
    /// (`tsig_keys` is `None`): see `check-config`.
    pub fn effective_settings(&self) -> Settings {
        let absolute = |path: &Path| std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
        let zone = &self.zone;
        let (inventory, clusters, region) = match &self.source {
            SourceConfig::File { path } => (Some(absolute(path)), None, None),
            SourceConfig::Ecs(list) => match list.as_slice() {
                [one] if one.name.is_none() => {
                    (None, Some(one.clusters.clone()), one.region.clone())
                }
                _ => (None, None, None),
            },
        };
        let events = |one: &EcsConfig| one.events.clone();
        let first_events = match &self.source {
            SourceConfig::Ecs(list) => list.iter().find_map(events),
            SourceConfig::File { .. } => None,
        };
        let (reconcile_interval, publish_min_interval) = match &first_events {
            Some(events) => (
                Some(events.reconcile_interval),
                Some(events.publish_min_interval),
            ),
            None => (None, None),
        };
        let (events_queue, sources) = match &self.source {
            SourceConfig::Ecs(list) if list.iter().any(|s| s.name.is_some()) => {
                let tables = list.iter().map(EcsConfig::table).collect();
                (None, Some(SourceTables::Tables(tables)))
            }
            SourceConfig::Ecs(list) => (
                list.iter()
                    .find_map(|s| s.events.as_ref().map(|e| e.queue_url.clone())),
                None,
            ),
            SourceConfig::File { .. } => (None, None),
        };
        // Only the ECS source has requests to time out.
        let request_timeout = match &self.source {
            SourceConfig::Ecs(list) => list.first().map(|s| s.request_timeout),
            SourceConfig::File { .. } => None,
        };
        let mut nameservers = Vec::new();
        for ns in &zone.nameservers {
            if ns.addresses.is_empty() {
                nameservers.push(ns.name.to_string());
            }
            for address in &ns.addresses {
                nameservers.push(format!("{}={address}", ns.name));
            }
        }
        Settings {
            zone: Some(zone.origin.to_string()),
            listen: Some(self.listen.clone()),
            source: Some(match self.source {
                SourceConfig::File { .. } => SourceKind::File,
                SourceConfig::Ecs(_) => SourceKind::Ecs,
            }),
            inventory,
            clusters,
            region,
            poll_interval: Some(self.poll_interval),
            request_timeout,
            events_queue,
            sources,
            reconcile_interval,
            publish_min_interval,
            record_ttl: Some(zone.record_ttl),
            soa_ttl: Some(zone.soa_ttl),
            negative_ttl: Some(zone.negative_ttl),
            soa_mname: Some(zone.soa_mname.to_string()),
            soa_rname: Some(zone.soa_rname.to_string()),
            soa_refresh: Some(zone.soa_refresh),
            soa_retry: Some(zone.soa_retry),
            soa_expire: Some(zone.soa_expire),
            nameservers: Some(nameservers),
            max_udp_payload: Some(self.max_udp_payload),
            rotate_answers: Some(self.spread.rotate),
            max_answers: self.spread.max_answers.map(NonZeroU16::get),
            log_format: Some(self.log_format),
            front: Some(self.front),
            tcp_max_connections: Some(self.tcp.max_connections),
            tcp_idle_timeout: Some(self.tcp.idle_timeout),
            tcp_max_queries: Some(self.tcp.max_queries),
            http: self.http,
            http_max_connections: Some(self.http_limits.max_connections),
            http_request_timeout: Some(self.http_limits.request_timeout),
            state_file: self.state_file.as_deref().map(absolute),
            max_stale: Some(self.max_stale),
            ready_needs_all_sources: Some(!self.ready_needs_sources.is_empty()),
            fail_open: Some(zone.rules.fail_open),
            transfer_allow: Some(self.transfer.allow.iter().map(|n| n.to_string()).collect()),
            reverse_zones: Some(zone.reverse.iter().map(|z| z.prefix.to_string()).collect()),
            reverse_fallback: Some(zone.reverse_fallback.describe()),
            notify: Some(
                self.transfer
                    .notify
                    .iter()
                    .map(|n| match &n.key {
                        Some(key) => format!("{} {}", n.address, key.describe()),
                        None => n.address.to_string(),
                    })
                    .collect(),
            ),
            tsig_keys: None,
            tsig_key_file: self.tsig_key_file.as_deref().map(absolute),
            rrl_responses_per_second: Some(self.rrl.responses_per_second),
            rrl_slip: Some(self.rrl.slip),
            udp_socket_buffer: Some(self.udp_socket_buffer),
            udp_io: Some(self.udp_io),
        }
    }

    /// Loads the configuration the way `serve`, `records` and `check-config`
    /// do: flags and environment over the file over the defaults. (The
    /// command line checks first that every `ECS_DNS_*` variable names a key:
    /// `cli::check_environment`.)
    pub fn load(args: &ConfigArgs) -> Result<Config, ConfigError> {
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
        let front = s.front.unwrap_or_default();
        if front == FrontKind::Hickory {
            hickory_can_serve(&s)?;
        }
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

        let poll_interval = within(
            "poll_interval",
            s.poll_interval.unwrap_or(Duration::from_secs(5)),
            Duration::from_secs(1),
            Duration::from_secs(3600),
        )?;
        // Checked whatever the source, so a mistake is found before the
        // source is switched.
        let request_timeout = within(
            "request_timeout",
            s.request_timeout.unwrap_or(Duration::from_secs(10)),
            Duration::from_millis(100),
            Duration::from_secs(300),
        )?;

        let tcp = tcp_limits(s.tcp_max_connections, s.tcp_idle_timeout, s.tcp_max_queries)?;

        if s.source == Some(SourceKind::File) && s.events_queue.is_some() {
            return Err(invalid(
                "events_queue",
                "(set)",
                "only the ecs source reads ECS events; the file source reads its file",
            ));
        }

        if s.source == Some(SourceKind::File) && s.sources.is_some() {
            return Err(invalid(
                "sources",
                "(set)",
                "only the ecs source reads several accounts; the file source reads its file",
            ));
        }
        // `[[sources]]` alone means the ECS source.
        let kind = match (s.source, &s.sources) {
            (None, Some(_)) => Some(SourceKind::Ecs),
            (kind, _) => kind,
        };
        let source = match kind {
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
            Some(SourceKind::Ecs) => match &s.sources {
                None => {
                    let clusters = s.clusters.unwrap_or_default();
                    if let Some(bad) = clusters.iter().find(|c| c.trim().is_empty()) {
                        return Err(invalid("clusters", bad, "a cluster name cannot be empty"));
                    }
                    SourceConfig::Ecs(vec![EcsConfig {
                        name: None,
                        clusters,
                        region: s.region.clone(),
                        request_timeout,
                        role: None,
                        endpoint_url: None,
                        events: events_config(
                            s.events_queue,
                            s.reconcile_interval,
                            s.publish_min_interval,
                        )?,
                    }])
                }
                Some(tables) => {
                    for (key, set) in [
                        ("clusters", s.clusters.is_some()),
                        ("region", s.region.is_some()),
                    ] {
                        if set {
                            return Err(invalid(
                                key,
                                "(set)",
                                "with `sources`, set it in each [[sources]] table",
                            ));
                        }
                    }
                    let mut checked = sources::resolve(tables)?;
                    // With `sources`, a flat `events_queue` is the central
                    // queue of every source that names none (each replica
                    // of a stack reads its own).
                    if let Some(queue) = &s.events_queue {
                        for source in checked.iter_mut().filter(|c| c.events_queue.is_none()) {
                            source.events_queue = Some(queue.clone());
                        }
                    }
                    if checked.iter().all(|c| c.events_queue.is_none()) {
                        // Reconcile timing without any queue is a mistake.
                        events_config(None, s.reconcile_interval, s.publish_min_interval)?;
                    }
                    let mut list = Vec::with_capacity(checked.len());
                    for c in checked {
                        // The events timing is for the sources with a queue.
                        let events = match c.events_queue {
                            Some(queue) => events_config(
                                Some(queue),
                                s.reconcile_interval,
                                s.publish_min_interval,
                            )?,
                            None => None,
                        };
                        list.push(EcsConfig {
                            name: Some(c.name),
                            clusters: c.clusters,
                            region: c.region,
                            request_timeout,
                            role: c.role,
                            endpoint_url: c.endpoint_url,
                            events,
                        });
                    }
                    SourceConfig::Ecs(list)
                }
            },
        };

        let nameservers = match s.nameservers {
            Some(list) => parse_nameservers(&list, &origin)?,
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

        let reverse =
            reverse::parse_zones(s.reverse_zones.as_deref().unwrap_or_default(), &origin)?;
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
            rules: Rules {
                fail_open: s.fail_open.unwrap_or(true),
            },
            reverse_fallback: reverse::parse_fallback(
                s.reverse_fallback.as_deref(),
                source_region(&source, s.region.as_deref()),
                &reverse,
            )?,
            reverse,
        };

        let max_udp_payload = s.max_udp_payload.unwrap_or(1232);
        if !(512..=4096).contains(&max_udp_payload) {
            return Err(invalid(
                "max_udp_payload",
                max_udp_payload,
                "must be between 512 and 4096 bytes",
            ));
        }

        let spread = Spread {
            rotate: s.rotate_answers.unwrap_or(true),
            max_answers: match s.max_answers {
                None => None,
                Some(n @ 1..=1000) => NonZeroU16::new(n),
                Some(n) => {
                    return Err(invalid(
                        "max_answers",
                        n,
                        "must be between 1 and 1000 records (leave it out for all that fit)",
                    ));
                }
            },
        };

        let max_stale = s.max_stale.unwrap_or(Duration::from_secs(3600));
        if max_stale.is_zero() {
            return Err(invalid("max_stale", "0s", "must be more than zero"));
        }
        if let Some(path) = &s.state_file
            && (path.as_os_str().is_empty() || path.file_name().is_none())
        {
            return Err(invalid("state_file", path.display(), "must name a file"));
        }
        if let Some(path) = &s.state_file
            && std::fs::metadata(path).is_ok_and(|m| !m.is_file())
        {
            // It is replaced by rename on every save: never a device or FIFO.
            return Err(invalid(
                "state_file",
                path.display(),
                "exists and is not a regular file",
            ));
        }

        let http_limits = http_limits(s.http_max_connections, s.http_request_timeout)?;

        let udp_io = s.udp_io.unwrap_or_default();
        if udp_io == UdpIo::Batched && !cfg!(target_os = "linux") {
            return Err(invalid(
                "udp_io",
                "batched",
                "recvmmsg/sendmmsg need Linux: use udp_io = \"plain\"",
            ));
        }
        let udp_socket_buffer = s.udp_socket_buffer.unwrap_or(4 << 20);
        if !(4096..=(256 << 20)).contains(&udp_socket_buffer) {
            return Err(invalid(
                "udp_socket_buffer",
                udp_socket_buffer,
                "must be between 4096 and 268435456 bytes",
            ));
        }

        let tsig_key_file = s.tsig_key_file.clone();
        let ready_needs_sources = match (s.ready_needs_all_sources, &source) {
            (Some(true), SourceConfig::Ecs(list)) if list.iter().all(|e| e.name.is_some()) => {
                list.iter().filter_map(|e| e.name.clone()).collect()
            }
            (Some(true), _) => {
                return Err(invalid(
                    "ready_needs_all_sources",
                    "true",
                    "only several sources (`sources`) can be waited for each",
                ));
            }
            _ => Vec::new(),
        };

        Ok(Config {
            tsig_key_file,
            udp_socket_buffer,
            front,
            udp_io,
            tcp,
            file: None,
            listen,
            source,
            poll_interval,
            zone,
            max_udp_payload,
            spread,
            log_format: s.log_format.unwrap_or_default(),
            http: s.http,
            http_limits,
            transfer: transfer_config(
                s.transfer_allow.as_deref().unwrap_or_default(),
                s.notify.as_deref().unwrap_or_default(),
                s.tsig_keys.as_deref().unwrap_or_default(),
                s.tsig_key_file.as_deref(),
            )?,
            rrl: RrlConfig {
                responses_per_second: s.rrl_responses_per_second.unwrap_or(0),
                slip: s.rrl_slip.unwrap_or(2),
            },
            state_file: s.state_file,
            max_stale,
            ready_needs_sources,
        })
    }
}

/// The one region every source reads, for `reverse_fallback = "ec2"`:
/// the sources' own, or else the `region` key.
fn source_region<'a>(source: &'a SourceConfig, region: Option<&'a str>) -> Option<&'a str> {
    let SourceConfig::Ecs(list) = source else {
        return region;
    };
    let mut regions = list.iter().map(|s| s.region.as_deref().or(region));
    let first = regions.next()??;
    regions.all(|r| r == Some(first)).then_some(first)
}

/// `front = "hickory"` has hickory-server's sockets and request loop: it
/// cannot send a zone transfer (several messages for one request), rate-limit
/// responses, or apply our TCP limits. Asking for one of those with it is a
/// configuration error naming the key, never a silent no-op.
fn hickory_can_serve(s: &Settings) -> Result<(), ConfigError> {
    let why = "front = \"hickory\" cannot do this: use front = \"own\" (the default)";
    let set = |list: &Option<Vec<String>>| list.as_ref().is_some_and(|l| !l.is_empty());
    let checks: [(&'static str, bool); 9] = [
        ("transfer_allow", set(&s.transfer_allow)),
        ("tsig_keys", set(&s.tsig_keys)),
        ("tsig_key_file", s.tsig_key_file.is_some()),
        ("notify", s.notify.as_ref().is_some_and(|l| !l.is_empty())),
        (
            "rrl_responses_per_second",
            s.rrl_responses_per_second.is_some_and(|r| r > 0),
        ),
        ("tcp_max_connections", s.tcp_max_connections.is_some()),
        ("tcp_idle_timeout", s.tcp_idle_timeout.is_some()),
        ("tcp_max_queries", s.tcp_max_queries.is_some()),
        ("udp_io", s.udp_io.is_some()),
    ];
    match checks.into_iter().find(|(_, is_set)| *is_set) {
        Some((key, _)) => Err(ConfigError::invalid(key, "set", why)),
        None => Ok(()),
    }
}

/// Transfer access, NOTIFY targets and TSIG keys. Errors never show a
/// secret, only where it came from.
fn transfer_config(
    allow: &[String],
    notify: &[String],
    keys: &[String],
    key_file: Option<&Path>,
) -> Result<TransferConfig, ConfigError> {
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
        let text = crate::files::read_text(path, crate::files::KEY_FILE_CAP)
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
    let notify = notify
        .iter()
        .map(|entry| {
            NotifyTarget::parse(entry, &tsig).map_err(|reason| invalid("notify", entry, reason))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(TransferConfig {
        allow,
        keys: tsig,
        notify,
    })
}

/// The TCP limits: each at least 1, the timeout at least 100ms (a client
/// needs a round trip or two to send its query).
fn tcp_limits(
    max_connections: Option<usize>,
    idle_timeout: Option<Duration>,
    max_queries: Option<u32>,
) -> Result<TcpLimits, ConfigError> {
    let defaults = TcpLimits::default();
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
    Ok(TcpLimits {
        max_connections,
        idle_timeout,
        max_queries,
    })
}

/// `value` if it lies in `min..=max`, else an error naming `key` and the
/// bounds.
fn within(
    key: &'static str,
    value: Duration,
    min: Duration,
    max: Duration,
) -> Result<Duration, ConfigError> {
    if value < min || value > max {
        return Err(invalid(
            key,
            humantime::format_duration(value),
            format!(
                "must be between {} and {}",
                humantime::format_duration(min),
                humantime::format_duration(max)
            ),
        ));
    }
    Ok(value)
}

/// Events mode: a queue URL (https, or http for an emulator on loopback)
/// and a reconcile interval of 30 s to 24 h; the interval alone is an error,
/// since without a queue there is nothing to reconcile.
fn events_config(
    queue: Option<String>,
    reconcile: Option<Duration>,
    publish_min: Option<Duration>,
) -> Result<Option<EventsConfig>, ConfigError> {
    let Some(queue_url) = queue else {
        if let Some(reconcile) = reconcile {
            return Err(invalid(
                "reconcile_interval",
                humantime::format_duration(reconcile),
                "only events mode reconciles: set events_queue too, or poll_interval for polling",
            ));
        }
        if let Some(publish_min) = publish_min {
            return Err(invalid(
                "publish_min_interval",
                humantime::format_duration(publish_min),
                "only events mode publishes events: set events_queue too",
            ));
        }
        return Ok(None);
    };
    let queue_url = queue_url.trim().to_owned();
    if !(queue_url.starts_with("https://") || queue_url.starts_with("http://")) {
        return Err(invalid(
            "events_queue",
            &queue_url,
            "an SQS queue URL, https://sqs.REGION.amazonaws.com/ACCOUNT/NAME",
        ));
    }
    let reconcile_interval = within(
        "reconcile_interval",
        reconcile.unwrap_or(Duration::from_secs(600)),
        Duration::from_secs(30),
        Duration::from_secs(24 * 3600),
    )?;
    let publish_min_interval = within(
        "publish_min_interval",
        publish_min.unwrap_or(Duration::from_millis(200)),
        Duration::ZERO,
        Duration::from_secs(60),
    )?;
    Ok(Some(EventsConfig {
        queue_url,
        reconcile_interval,
        publish_min_interval,
    }))
}

/// The ops listener's limits: 1 to 4096 connections (each holds a file
/// descriptor the DNS fronts may need), a timeout of 100ms to 5min.
fn http_limits(
    max_connections: Option<usize>,
    request_timeout: Option<Duration>,
) -> Result<HttpLimits, ConfigError> {
    let defaults = HttpLimits::default();
    let max_connections = max_connections.unwrap_or(defaults.max_connections);
    if !(1..=4096).contains(&max_connections) {
        return Err(invalid(
            "http_max_connections",
            max_connections,
            "must be between 1 and 4096",
        ));
    }
    let request_timeout = request_timeout.unwrap_or(defaults.request_timeout);
    if !(Duration::from_millis(100)..=Duration::from_secs(300)).contains(&request_timeout) {
        return Err(invalid(
            "http_request_timeout",
            humantime::format_duration(request_timeout),
            "must be between 100ms and 5min",
        ));
    }
    Ok(HttpLimits {
        max_connections,
        request_timeout,
    })
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
    // Letters, digits, `-` and `_` in every label: no wildcard, no
    // characters a resolver would send in another form (a Unicode zone is
    // stored raw and never matches a query; IDNs go in as `xn--`).
    let labels = trimmed.strip_suffix('.').unwrap_or(trimmed);
    if let Some(bad) = labels.split('.').find(|l| {
        l.is_empty()
            || !l
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }) {
        let why = if bad.is_empty() {
            "empty label".to_string()
        } else {
            format!("label {bad:?}: only letters, digits, '-' and '_' (IDNs as xn--)")
        };
        return Err(invalid(key, text, why));
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

/// `nameservers` entries: `NAME` or `NAME=ADDRESS`. A name without a dot
/// is relative to the zone (`ns1` is `ns1.<zone>`), so a config works for
/// any zone; a name with a dot is taken as written (`ns1.local`).
fn parse_nameservers(list: &[String], origin: &Name) -> Result<Vec<Nameserver>, ConfigError> {
    let mut out: Vec<Nameserver> = Vec::new();
    for entry in list {
        let (name_text, address) = match entry.split_once('=') {
            Some((n, a)) => (n, Some(a)),
            None => (entry.as_str(), None),
        };
        let name = match name_text.trim() {
            relative if !relative.contains('.') && !relative.is_empty() => {
                let label = parse_name("nameservers", relative)?;
                let label = label.to_string();
                child(origin, label.trim_end_matches('.'))
            }
            absolute => parse_name("nameservers", absolute)?,
        };
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
        let ecs = || Settings {
            source: Some(SourceKind::Ecs),
            ..Settings::default()
        };
        let cases: Vec<(&str, Settings)> = vec![
            ("source", Settings::default()),
            (
                "events_queue",
                Settings {
                    events_queue: Some("https://sqs.us-east-1.amazonaws.com/1/q".into()),
                    ..base()
                },
            ),
            (
                "events_queue",
                Settings {
                    events_queue: Some("ecs-dns-events".into()),
                    ..ecs()
                },
            ),
            (
                "reconcile_interval",
                Settings {
                    reconcile_interval: Some(Duration::from_secs(600)),
                    ..ecs()
                },
            ),
            (
                "reconcile_interval",
                Settings {
                    events_queue: Some("https://sqs.us-east-1.amazonaws.com/1/q".into()),
                    reconcile_interval: Some(Duration::from_secs(1)),
                    ..ecs()
                },
            ),
            (
                "inventory",
                Settings {
                    inventory: None,
                    ..base()
                },
            ),
            (
                "max_answers",
                Settings {
                    max_answers: Some(0),
                    ..base()
                },
            ),
            (
                "max_answers",
                Settings {
                    max_answers: Some(1001),
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
            (
                "http_max_connections",
                Settings {
                    http_max_connections: Some(0),
                    ..base()
                },
            ),
            (
                "http_request_timeout",
                Settings {
                    http_request_timeout: Some(Duration::from_millis(10)),
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
    fn keys_parse_and_hide_their_secret() {
        let key =
            TsigKey::parse("xfr-key:hmac-sha256:c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ=")
                .unwrap();
        assert_eq!(key.name.to_string(), "xfr-key.");
        let shown = format!("{key:?}");
        assert!(
            shown.contains("<redacted>") && !shown.contains("c2VjcmV0"),
            "{shown}"
        );
        for bad in [
            "nocolons",
            "k:hmac-md5:c2VjcmV0",
            "k:hmac-sha256:not base64!",
            "k:hmac-sha256:",
        ] {
            assert!(TsigKey::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn prefixes() {
        let table = [
            ("127.0.0.0/8", "127.0.0.1", true),
            ("127.0.0.0/8", "128.0.0.1", false),
            ("10.1.2.3", "10.1.2.3", true),
            ("10.1.2.3", "10.1.2.4", false),
            ("::1", "::1", true),
            ("2001:db8::/32", "2001:db8::5", true),
        ];
        for (prefix, address, want) in table {
            let net = parse_prefix(prefix).unwrap();
            assert_eq!(
                net.contains(&address.parse::<IpAddr>().unwrap()),
                want,
                "{prefix} {address}"
            );
        }
        assert!(parse_prefix("10.0.0.0/33").is_err());
        assert!(parse_prefix("nope").is_err());
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

    /// A file that sets every key: merged under flags that set none, every
    /// value survives (the merge takes `Settings` apart with no `..`, so a
    /// key it forgets does not compile; this shows the values get through).
    #[test]
    fn the_merge_keeps_every_key_of_the_file() {
        let every_key = r#"
            zone = "ecs.internal"
            listen = ["127.0.0.1:5300"]
            source = "ecs"
            inventory = "/tmp/inv.toml"
            clusters = ["prod"]
            region = "eu-west-1"
            poll_interval = "7s"
            request_timeout = "3s"
            events_queue = "https://sqs.eu-west-1.amazonaws.com/123456789012/ecs-events"
            reconcile_interval = "11m"
            publish_min_interval = "300ms"
            record_ttl = 11
            soa_ttl = 61
            negative_ttl = 6
            soa_mname = "ns1.ecs.internal"
            soa_rname = "admin.ecs.internal"
            soa_refresh = 62
            soa_retry = 12
            soa_expire = 86401
            nameservers = ["ns1.ecs.internal=127.0.0.1"]
            max_udp_payload = 1400
            rotate_answers = false
            max_answers = 8
            reverse_zones = ["10.0.0.0/16"]
            reverse_fallback = "ec2"
            log_format = "json"
            front = "own"
            tcp_max_connections = 9
            tcp_idle_timeout = "9s"
            tcp_max_queries = 99
            http = "127.0.0.1:9153"
            http_max_connections = 8
            http_request_timeout = "2s"
            state_file = "/tmp/state.json"
            max_stale = "2h"
            ready_needs_all_sources = true
            fail_open = false
            transfer_allow = ["127.0.0.1"]
            notify = ["127.0.0.1:5301"]
            tsig_keys = ["k:hmac-sha256:c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ="]
            tsig_key_file = "/tmp/keys"
            rrl_responses_per_second = 5
            rrl_slip = 3
            udp_socket_buffer = 65536
            udp_io = "plain"

            [[sources]]
            name = "prod"
            region = "eu-west-1"
            clusters = ["web"]
            role_arn = "arn:aws:iam::111111111111:role/ecs-dns-read"
            external_id = "an-external-id"
            events_queue = "https://sqs.eu-west-1.amazonaws.com/123456789012/prod"
            endpoint_url = "https://ecs.eu-west-1.amazonaws.com"
        "#;
        let file = file_settings(every_key).unwrap();
        let shown = format!("{file:?}");
        assert!(
            !shown.contains("None"),
            "the test file misses a key: {shown}"
        );
        let merged = Settings::default().over(file);
        assert_eq!(format!("{merged:?}"), shown);
    }

    /// `[[sources]]`: each table one named ECS source, with what all share
    /// (request timeout, events timing); bad combinations name the key.
    #[test]
    fn several_sources_resolve_and_bad_combinations_name_the_key() {
        let text = r#"
            request_timeout = "3s"
            reconcile_interval = "11m"
            [[sources]]
            name = "prod"
            region = "us-east-1"
            role_arn = "arn:aws:iam::111111111111:role/ecs-dns-read"
            external_id = "the-external-id"
            events_queue = "https://sqs.us-east-1.amazonaws.com/222222222222/q"
            [[sources]]
            name = "staging"
            region = "eu-west-2"
            clusters = ["web"]
        "#;
        let config = Config::resolve(file_settings(text).unwrap()).unwrap();
        let SourceConfig::Ecs(list) = &config.source else {
            panic!("not ecs: {:?}", config.source);
        };
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].name.as_deref(), Some("prod"));
        assert_eq!(list[0].request_timeout, Duration::from_secs(3));
        let events = list[0].events.as_ref().unwrap();
        assert_eq!(events.reconcile_interval, Duration::from_secs(660));
        assert!(list[1].events.is_none());
        assert_eq!(list[1].clusters, ["web"]);
        assert_eq!(list[0].role.as_ref().unwrap().account, "111111111111");
        // The effective settings (check-config) never carry the external ID.
        let shown = toml::to_string(&config.effective_settings()).unwrap();
        assert!(
            shown.contains("role_arn") && shown.contains("<redacted>"),
            "{shown}"
        );
        assert!(!shown.contains("the-external-id"), "{shown}");
        assert!(!format!("{config:?}").contains("the-external-id"));

        let sources = "[[sources]]\nname = \"prod\"\n";
        for (head, key) in [
            (
                "clusters = [\"web\"]\n",
                "clusters = \"(set)\": with `sources`",
            ),
            ("region = \"us-east-1\"\n", "region = \"(set)\""),
            (
                "events_queue = \"sqs://x\"\n",
                "events_queue = \"sqs://x\": an SQS queue URL",
            ),
            (
                "source = \"file\"\ninventory = \"x\"\n",
                "sources = \"(set)\": only the ecs source",
            ),
            ("reconcile_interval = \"5m\"\n", "reconcile_interval"),
        ] {
            let settings = file_settings(&format!("{head}{sources}")).unwrap();
            let error = Config::resolve(settings).unwrap_err().to_string();
            assert!(error.contains(key), "{head}: {error}");
        }
        // A flat events_queue is the queue of the sources that name none.
        let central = "events_queue = \"https://sqs.us-east-1.amazonaws.com/1/central\"\n";
        let text = format!(
            "{central}{sources}[[sources]]\nname = \"b\"\nevents_queue = \"https://sqs.us-east-1.amazonaws.com/1/own\"\n"
        );
        let config = Config::resolve(file_settings(&text).unwrap()).unwrap();
        let SourceConfig::Ecs(list) = &config.source else {
            panic!("not ecs");
        };
        let queues: Vec<&str> = (list.iter())
            .map(|s| s.events.as_ref().map_or("", |e| e.queue_url.as_str()))
            .collect();
        assert_eq!(
            queues,
            [
                "https://sqs.us-east-1.amazonaws.com/1/central",
                "https://sqs.us-east-1.amazonaws.com/1/own"
            ]
        );
        // The environment's JSON form, parsed by resolve, not by clap.
        let settings = Settings {
            sources: Some(SourceTables::Json(
                r#"[{"name": "a"}, {"name": "a"}]"#.into(),
            )),
            ..Settings::default()
        };
        let error = Config::resolve(settings).unwrap_err().to_string();
        assert!(error.contains("sources = \"a\": two sources"), "{error}");
    }

    /// `front = "hickory"` cannot send transfers, rate-limit or apply the TCP
    /// limits: asking for any of them with it names the key.
    #[test]
    fn the_hickory_front_refuses_what_it_cannot_do() {
        let hickory = || Settings {
            front: Some(FrontKind::Hickory),
            ..base()
        };
        assert!(Config::resolve(hickory()).is_ok());
        let cases: Vec<(&str, Settings)> = vec![
            (
                "transfer_allow",
                Settings {
                    transfer_allow: Some(vec!["127.0.0.1".into()]),
                    ..hickory()
                },
            ),
            (
                "tsig_keys",
                Settings {
                    tsig_keys: Some(vec![
                        "k:hmac-sha256:c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ=".into(),
                    ]),
                    ..hickory()
                },
            ),
            (
                "notify",
                Settings {
                    notify: Some(vec!["127.0.0.1:53".parse().unwrap()]),
                    ..hickory()
                },
            ),
            (
                "rrl_responses_per_second",
                Settings {
                    rrl_responses_per_second: Some(10),
                    ..hickory()
                },
            ),
            (
                "tcp_max_connections",
                Settings {
                    tcp_max_connections: Some(10),
                    ..hickory()
                },
            ),
            (
                "udp_io",
                Settings {
                    udp_io: Some(UdpIo::Plain),
                    ..hickory()
                },
            ),
        ];
        for (key, settings) in cases {
            let err = Config::resolve(settings).expect_err(key).to_string();
            assert!(
                err.starts_with(key) && err.contains("front = \"own\""),
                "{key}: {err}"
            );
        }
        // Off is not asking for it.
        let off = Settings {
            rrl_responses_per_second: Some(0),
            transfer_allow: Some(vec![]),
            ..hickory()
        };
        assert!(Config::resolve(off).is_ok());
    }

    /// A name server without a dot is relative to the zone; with a dot it
    /// stays as written, so existing configs keep their meaning.
    #[test]
    fn name_server_names_without_a_dot_are_relative_to_the_zone() {
        let resolve = |zone: &str, ns: &str| {
            Config::resolve(Settings {
                zone: Some(zone.into()),
                nameservers: Some(vec![ns.into()]),
                ..base()
            })
            .unwrap()
            .zone
        };
        let z = resolve("ecs.internal", "ns1=127.0.0.1");
        assert_eq!(z.nameservers[0].name.to_string(), "ns1.ecs.internal.");
        assert_eq!(z.soa_mname.to_string(), "ns1.ecs.internal.");
        let z = resolve("ecs.internal", "ns1.local=127.0.0.1");
        assert_eq!(z.nameservers[0].name.to_string(), "ns1.local.");
        let z = resolve("ecs.internal", "NS2.Example.");
        assert_eq!(z.nameservers[0].name.to_string(), "ns2.example.");
        assert!(
            Config::resolve(Settings {
                nameservers: Some(vec!["n*s=127.0.0.1".into()]),
                ..base()
            })
            .is_err()
        );
    }

    /// Names are host names: no wildcard, no raw Unicode; durations within
    /// bounds; TSIG secrets long enough.
    #[test]
    fn names_durations_and_secrets_are_checked() {
        let bad: Vec<(&str, Settings)> = vec![
            (
                "zone",
                Settings {
                    zone: Some("ünïcødé🔥".into()),
                    ..base()
                },
            ),
            (
                "zone",
                Settings {
                    zone: Some("*.local".into()),
                    ..base()
                },
            ),
            (
                "soa_rname",
                Settings {
                    soa_rname: Some("host master.local".into()),
                    ..base()
                },
            ),
            (
                "request_timeout",
                Settings {
                    request_timeout: Some(Duration::from_nanos(1)),
                    ..base()
                },
            ),
            (
                "poll_interval",
                Settings {
                    poll_interval: Some(Duration::from_secs(7200)),
                    ..base()
                },
            ),
            (
                "tsig_keys",
                Settings {
                    tsig_keys: Some(vec!["k:hmac-sha256:QQ==".into()]),
                    ..base()
                },
            ),
            (
                "tsig_keys",
                Settings {
                    tsig_keys: Some(vec![
                        ":hmac-sha256:c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ=".into(),
                    ]),
                    ..base()
                },
            ),
        ];
        for (key, settings) in bad {
            let err = Config::resolve(settings).expect_err(key).to_string();
            assert!(err.starts_with(key), "{key}: {err}");
        }
        // 20 bytes: accepted for HMAC-SHA256, with a warning (32 wanted).
        let weak = Config::resolve(Settings {
            tsig_keys: Some(vec!["k:hmac-sha256:c2VjcmV0LXNlY3JldC0xMjM0NTY=".into()]),
            ..base()
        })
        .unwrap();
        let warnings = weak.warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("20 bytes"), "{warnings:?}");
        assert!(!warnings[0].contains("c2VjcmV0"), "{warnings:?}");
    }
}
