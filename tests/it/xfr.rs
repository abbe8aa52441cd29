//! Zone transfers with real Knot DNS as the secondary: AXFR of a zone that
//! needs several messages, NOTIFY then IXFR on change, a restarted primary
//! followed, TSIG on every message, and refusals.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::harness::{DEADLINE, Server, free_port, kdig, require, run, wait_for};

/// The TSIG key both sides use (base64 of 32 bytes).
const KEY_NAME: &str = "xfr-key";
const KEY_SECRET: &str = "8cR3bHqWxGzQkD3m9sLz0yQp6VhXc1uJrT5aN2eKf4o=";

/// An inventory of `n` tasks over a few services, plus one task named
/// `extra` when `with_extra`.
fn inventory(n: usize, with_extra: bool) -> String {
    let mut text = String::new();
    for i in 0..n {
        text.push_str(&format!(
            "[[tasks]]\ncluster = \"prod\"\nservice = \"svc{}\"\ntask_id = \"task{i:05}\"\nipv4 = [\"10.{}.{}.{}\"]\nports = [{{ container_name = \"c\", container_port = 80, host_port = {}, name = \"http\" }}]\n",
            i % 20,
            i / 65536,
            (i / 256) % 256,
            i % 256,
            30000 + i % 30000,
        ));
    }
    if with_extra {
        text.push_str("[[tasks]]\ncluster = \"prod\"\nservice = \"extra\"\ntask_id = \"x1\"\nipv4 = [\"10.200.0.1\"]\n");
    }
    text
}

fn write_config(dir: &Path, knot_port: u16) -> PathBuf {
    write_config_with(dir, &format!("127.0.0.1:{knot_port}"), "")
}

/// The test configuration with `notify` set to the one entry `notify`
/// (`ADDRESS:PORT`, or `ADDRESS:PORT KEYNAME`) and the `extra` lines.
pub fn write_config_with(dir: &Path, notify: &str, extra: &str) -> PathBuf {
    let keys = dir.join("tsig.keys");
    std::fs::write(
        &keys,
        format!("# test key\n{KEY_NAME}:hmac-sha256:{KEY_SECRET}\n"),
    )
    .unwrap();
    let config = dir.join("ecs-dns.toml");
    std::fs::write(
        &config,
        format!(
            "source = \"file\"\ninventory = \"inventory.toml\"\npoll_interval = \"1s\"\n\
             nameservers = [\"ns1.local=127.0.0.1\"]\n\
             notify = [\"{notify}\"]\n\
             transfer_allow = [\"127.0.0.3\"]\n\
             tsig_key_file = \"tsig.keys\"\n{extra}"
        ),
    )
    .unwrap();
    config
}

/// `knotd` as a secondary of the ecs-dns primary at `primary_port`, with the
/// TSIG key, accepting NOTIFY from 127.0.0.1 and allowing the test to read
/// its copy by AXFR.
pub struct KnotSecondary {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
    log: PathBuf,
}

impl KnotSecondary {
    fn start(port: u16, primary_port: u16) -> KnotSecondary {
        KnotSecondary::start_with(port, primary_port, false, "")
    }

    /// A secondary of each zone in `zones` (origins without the dot).
    pub fn start_for(port: u16, primary_port: u16, zones: &[&str]) -> KnotSecondary {
        KnotSecondary::start_zones(port, primary_port, false, "", zones)
    }

    /// A secondary that accepts NOTIFY only when signed with the key if
    /// `notify_needs_key`, with `template` lines added to its zone template
    /// (e.g. refresh intervals).
    fn start_with(
        port: u16,
        primary_port: u16,
        notify_needs_key: bool,
        template: &str,
    ) -> KnotSecondary {
        KnotSecondary::start_zones(port, primary_port, notify_needs_key, template, &["local"])
    }

    fn start_zones(
        port: u16,
        primary_port: u16,
        notify_needs_key: bool,
        template: &str,
        zones: &[&str],
    ) -> KnotSecondary {
        require("knotd");
        let zones: String = zones
            .iter()
            .map(|zone| {
                format!(
                    "  - domain: {zone}\n    master: primary\n    acl: [from_primary, readers]\n"
                )
            })
            .collect();
        let notify_key = if notify_needs_key {
            format!("\n    key: {KEY_NAME}")
        } else {
            String::new()
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().display().to_string();
        let config = format!(
            "server:
    rundir: {path}
    listen: 127.0.0.1@{port}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: {path}
log:
  - target: stderr
    any: info
key:
  - id: {KEY_NAME}
    algorithm: hmac-sha256
    secret: {KEY_SECRET}
remote:
  - id: primary
    address: 127.0.0.1@{primary_port}
    key: {KEY_NAME}
acl:
  - id: from_primary
    address: 127.0.0.1{notify_key}
    action: notify
  - id: readers
    address: 127.0.0.1
    action: transfer
template:
  - id: default
    storage: {path}
    zonefile-sync: -1
    zonefile-load: none
    journal-content: changes
{template}zone:
{zones}"
        );
        let config_path = dir.path().join("knot.conf");
        std::fs::write(&config_path, config).unwrap();
        let log = dir.path().join("knotd.log");
        let child = Command::new("knotd")
            .arg("--config")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start knotd");
        KnotSecondary {
            child,
            port,
            _dir: dir,
            log,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Knot's copy of the zone, as sorted "name ttl class type data" lines
    /// (the closing SOA dropped).
    fn zone(&self) -> Vec<String> {
        self.zone_of("local")
    }

    /// Knot's copy of the zone `origin`.
    pub fn zone_of(&self, origin: &str) -> Vec<String> {
        normalise(&kdig(
            self.port,
            &[origin, "AXFR", "+nocomments", "+nostats"],
        ))
    }

    fn serial(&self) -> Option<u32> {
        self.serial_of("local")
    }

    pub fn serial_of(&self, origin: &str) -> Option<u32> {
        let out = kdig(
            self.port,
            &[origin, "SOA", "+short", "+timeout=1", "+retry=0"],
        );
        out.split_whitespace().nth(2).and_then(|s| s.parse().ok())
    }
}

impl Drop for KnotSecondary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Zone text as sorted, deduplicated records with single spaces, the SOA
/// serial masked: it is the time of each build, so `ecs-dns records` run
/// later has a newer one.
pub fn normalise(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with(';') && !l.starts_with('$'))
        .map(|l| {
            let mut fields: Vec<&str> = l.split_whitespace().collect();
            if fields.get(3) == Some(&"SOA") && fields.len() > 6 {
                fields[6] = "SERIAL";
            }
            fields.join(" ").to_lowercase()
        })
        .collect();
    lines.sort();
    lines.dedup();
    lines
}

fn records(config: &Path) -> Vec<String> {
    let out = run(&["records", "--config", config.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    normalise(&String::from_utf8_lossy(&out.stdout))
}

#[test]
fn knot_follows_by_axfr_notify_ixfr_and_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let inventory_path = dir.path().join("inventory.toml");
    // Large enough for several 64 KiB messages.
    std::fs::write(&inventory_path, inventory(6000, false)).unwrap();
    let knot_port = free_port();
    let primary_port = free_port();
    let config = write_config(dir.path(), knot_port);
    let primary = Server::start_on(primary_port, &config, &[], "local");
    let knot = KnotSecondary::start(knot_port, primary_port);

    // 1. The first transfer (AXFR, TSIG-signed, several messages) is whole.
    let (_, took) = wait_for("Knot's first transfer", DEADLINE, || {
        knot.serial().map(|_| ())
    });
    eprintln!("Knot loaded the zone {took:?} after it started");
    let want = records(&config);
    assert!(want.len() > 20_000, "a zone of {} records", want.len());
    let got = knot.zone();
    assert_eq!(
        got.len(),
        want.len(),
        "Knot's copy has as many records as `ecs-dns records`"
    );
    assert!(got == want, "Knot's copy differs from `ecs-dns records`");
    assert!(primary.log().contains("zone transfer"), "{}", primary.log());
    let messages: usize = primary
        .log()
        .lines()
        .filter(|l| l.contains("zone transfer"))
        .filter_map(|l| {
            l.split("messages=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .max()
        .unwrap_or(0);
    assert!(messages > 1, "the AXFR took {messages} message(s)");

    // 2. A change: NOTIFY, then Knot transfers the difference by IXFR.
    let before = knot.serial().unwrap();
    std::fs::write(&inventory_path, inventory(6000, true)).unwrap();
    let (_, took) = wait_for("Knot to serve the new task", DEADLINE, || {
        let out = kdig(knot.port, &["extra.local", "A", "+short"]);
        out.contains("10.200.0.1").then_some(())
    });
    eprintln!("inventory change served by the secondary after {took:?}");
    assert!(knot.serial().unwrap() > before);
    wait_for("Knot to log the IXFR", DEADLINE, || {
        knot.log().contains("IXFR, incoming").then_some(())
    });
    assert!(
        primary.log().contains("NOTIFY acknowledged"),
        "{}",
        primary.log()
    );
    assert_eq!(knot.zone(), records(&config), "same zone after IXFR");
    let sizes: Vec<String> = primary
        .log()
        .lines()
        .filter(|l| l.contains("zone transfer") && l.contains("bytes="))
        .map(|l| {
            let field = |k: &str| {
                l.split(k)
                    .nth(1)
                    .and_then(|v| v.split_whitespace().next())
                    .unwrap_or("?")
                    .to_owned()
            };
            format!(
                "{} {} bytes in {} messages",
                field("qtype="),
                field("bytes="),
                field("messages=")
            )
        })
        .collect();
    eprintln!("transfers served: {sizes:?}");

    // 3. The primary restarts with a changed inventory: the serial still
    // rises, and Knot follows.
    let serial_before_restart = knot.serial().unwrap();
    drop(primary);
    std::fs::write(&inventory_path, inventory(6000, false)).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let _primary = Server::start_on(primary_port, &config, &[], "local");
    let (_, took) = wait_for("Knot to drop the removed task", DEADLINE, || {
        let out = kdig(
            knot.port,
            &["extra.local", "A", "+short", "+timeout=1", "+retry=0"],
        );
        (!out.contains("10.200.0.1") && knot.serial().is_some_and(|s| s > serial_before_restart))
            .then_some(())
    });
    eprintln!("restarted primary followed after {took:?}");
    assert_eq!(knot.zone(), records(&config));
}

#[test]
fn transfers_need_an_allowed_address_or_a_valid_key() {
    require("dig");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("inventory.toml"), inventory(3, false)).unwrap();
    let config = write_config(dir.path(), free_port());
    let s = Server::start(&config, &[], "local");
    let port = s.port.to_string();
    let axfr = |args: &[&str]| {
        let out = Command::new("dig")
            .args(["@127.0.0.1", "-p", &port, "local", "AXFR"])
            .args(args)
            .output()
            .unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };

    // From an address not in transfer_allow, unsigned: REFUSED.
    let refused = axfr(&["-b", "127.0.0.1"]);
    assert!(
        refused.contains("REFUSED") || refused.contains("Transfer failed"),
        "{refused}"
    );
    assert!(!refused.contains("\tSOA\t"), "no records: {refused}");
    // From the allowed address: the zone.
    let allowed = axfr(&["-b", "127.0.0.3"]);
    assert_eq!(
        allowed.matches("\tSOA\t").count(),
        2,
        "SOA first and last: {allowed}"
    );
    // IXFR over UDP from a secondary that is current: the SOA alone.
    let soa = axfr(&["-b", "127.0.0.3"]);
    let serial = soa
        .lines()
        .find(|l| l.contains("\tSOA\t"))
        .and_then(|l| l.split_whitespace().nth(6))
        .unwrap_or_default()
        .to_owned();
    let out = Command::new("dig")
        .args([
            "@127.0.0.1",
            "-p",
            &port,
            "-b",
            "127.0.0.3",
            "+notcp",
            "+noall",
            "+answer",
        ])
        .arg("local")
        .arg(format!("IXFR={serial}"))
        .output()
        .unwrap();
    let ixfr = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        ixfr.lines().filter(|l| l.contains("\tSOA\t")).count(),
        1,
        "{ixfr}"
    );
    assert!(ixfr.contains(&serial), "{ixfr}");
    // Signed with the right key, from anywhere: the zone.
    let key = format!("hmac-sha256:{KEY_NAME}:{KEY_SECRET}");
    let signed = axfr(&["-b", "127.0.0.1", "-y", &key]);
    assert_eq!(signed.matches("\tSOA\t").count(), 2, "{signed}");
    assert!(
        !signed.contains("tsig verify failure") && !signed.contains("failed"),
        "{signed}"
    );
    // Signed with a wrong secret: NOTAUTH (BADSIG); unknown key: NOTAUTH (BADKEY).
    let wrong = axfr(&[
        "-b",
        "127.0.0.3",
        "-y",
        "hmac-sha256:xfr-key:d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldC13cm9uZw==",
    ]);
    assert!(
        wrong.contains("NOTAUTH") || wrong.contains("Transfer failed"),
        "{wrong}"
    );
    assert!(!wrong.contains("\tSOA\t"), "{wrong}");
    // kdig reports the TSIG error on stderr.
    let out = Command::new("kdig")
        .args([
            "@127.0.0.1",
            "-p",
            &port,
            "local",
            "AXFR",
            "-y",
            "hmac-sha256:nobody:d3Jvbmctc2VjcmV0",
        ])
        .output()
        .unwrap();
    let unknown = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(unknown.contains("BADKEY"), "{unknown}");

    let log = s.log();
    assert!(
        log.contains("zone transfer refused: address not in transfer_allow"),
        "{log}"
    );
    assert!(log.contains("zone transfer refused: bad TSIG"), "{log}");
    assert!(
        !log.contains(KEY_SECRET),
        "the secret never reaches the log"
    );

    // check-config shows keys without their secret.
    let out = run(&["check-config", "--config", config.to_str().unwrap()]);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains("xfr-key") && shown.contains("<redacted>") && !shown.contains(KEY_SECRET),
        "{shown}"
    );
}

/// `dig -y` (and `kdig -y`) with `args`, over UDP or TCP: stdout and
/// stderr together.
fn dig_signed(port: u16, key: &str, args: &[&str]) -> String {
    require("dig");
    let out = Command::new("dig")
        .args(["@127.0.0.1", "-p", &port.to_string(), "-y", key])
        .args(args)
        .output()
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The TSIG record dig prints (in its TSIG pseudosection, or among the
/// records of a transfer).
fn tsig_line(out: &str) -> String {
    out.lines()
        .find(|l| l.contains("\tANY\tTSIG\t"))
        .unwrap_or_default()
        .to_owned()
}

/// RFC 8945 §5.3: every answer to a signed request is signed, ordinary
/// queries included (the SOA query of a secondary's refresh, a NOTIFY, an
/// error), so that `dig -y` verifies it; a request whose TSIG does not
/// verify gets NOTAUTH with the TSIG error of §5.2 (BADKEY for an unknown
/// key or algorithm, BADSIG, BADTIME signed).
#[test]
fn signed_queries_get_signed_answers() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("inventory.toml"), inventory(3, false)).unwrap();
    let config = write_config(dir.path(), free_port());
    let s = Server::start(&config, &[], "local");
    let key = format!("hmac-sha256:{KEY_NAME}:{KEY_SECRET}");
    let serial = dig_signed(s.port, &key, &["local", "SOA", "+short"])
        .split_whitespace()
        .nth(2)
        .unwrap_or_default()
        .to_owned();
    let ixfr = format!("IXFR={serial}");
    // (what, arguments, status)
    // (what, arguments, what the output shows)
    let cases: &[(&str, &[&str], &str)] = &[
        ("SOA", &["local", "SOA"], "status: NOERROR"),
        (
            "SOA with RD, no EDNS",
            &["local", "SOA", "+rec", "+noedns"],
            "status: NOERROR",
        ),
        (
            "an address",
            &["task00001.svc1.local", "A"],
            "status: NOERROR",
        ),
        (
            "SRV, with addresses",
            &["_http._tcp.svc1.local", "SRV"],
            "status: NOERROR",
        ),
        ("NXDOMAIN", &["nope.local", "A"], "status: NXDOMAIN"),
        ("outside the zone", &["example.com", "A"], "status: REFUSED"),
        (
            "NOTIFY",
            &["local", "SOA", "+opcode=notify"],
            "status: NOTIMP",
        ),
        // dig prints a transfer as records, without the header.
        ("IXFR from a current serial", &["local", &ixfr], "\tSOA\t"),
        (
            "AXFR of another zone (NOTAUTH)",
            &["example.com", "AXFR"],
            "Transfer failed",
        ),
    ];
    let mut checked = 0;
    for (what, args, shows) in cases {
        for transport in ["+notcp", "+tcp"] {
            let out = dig_signed(s.port, &key, &[args, &[transport][..]].concat());
            assert!(out.contains(shows), "{what} ({transport}): {out}");
            for failure in [
                "Couldn't verify signature",
                "Some TSIG could not be validated",
                "tsig verify failure",
            ] {
                assert!(!out.contains(failure), "{what} ({transport}): {out}");
            }
            let tsig = tsig_line(&out);
            assert!(
                tsig.contains(KEY_NAME) && tsig.contains(" NOERROR "),
                "{what} ({transport}): signed, no TSIG error: {tsig:?}"
            );
            checked += 1;
        }
    }
    // kdig verifies too (it warns on a reply it cannot verify).
    for transport in ["+notcp", "+tcp"] {
        let out = kdig(s.port, &["local", "SOA", "-y", &key, transport]);
        assert!(out.contains("status: NOERROR"), "{out}");
        assert!(!out.contains("WARNING"), "{out}");
        checked += 1;
    }
    eprintln!("{checked} signed answers verified by dig and kdig");

    // Errors (RFC 8945 §5.2): NOTAUTH, unsigned, with the TSIG error.
    let wrong_secret =
        format!("hmac-sha256:{KEY_NAME}:d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldC13cm9uZw==");
    let other_algorithm = format!("hmac-sha512:{KEY_NAME}:{KEY_SECRET}");
    let unknown = format!("hmac-sha256:nobody:{KEY_SECRET}");
    for (what, key, error) in [
        ("wrong secret", &wrong_secret, "BADSIG"),
        (
            "the key's name with another algorithm",
            &other_algorithm,
            "BADKEY",
        ),
        ("unknown key", &unknown, "BADKEY"),
    ] {
        for args in [&["local", "SOA"][..], &["local", "AXFR"][..]] {
            let out = dig_signed(s.port, key, args);
            let tsig = tsig_line(&out);
            assert!(
                (out.contains("status: NOTAUTH") || out.contains("Transfer failed"))
                    && tsig.contains(error),
                "{what} {args:?}: {out}"
            );
        }
    }

    // BADTIME (RFC 8945 §5.2.3): NOTAUTH, signed with the key, the request's
    // time in Time Signed and ours in Other Data.
    bad_time(s.port);
    let log = s.log();
    assert!(
        !log.contains(KEY_SECRET),
        "the secret never reaches the log"
    );
}

/// A query signed 1 000 s in the past, over UDP: the BADTIME answer.
fn bad_time(port: u16) {
    use hickory_proto::op::{Message, Query, ResponseCode};
    use hickory_proto::rr::rdata::tsig::{TsigAlgorithm, TsigError};
    use hickory_proto::rr::{Name, RecordType, TSigner};
    use std::time::{SystemTime, UNIX_EPOCH};

    let secret = base64_decode(KEY_SECRET);
    let signer = TSigner::new(
        secret,
        TsigAlgorithm::HmacSha256,
        Name::from_ascii(KEY_NAME).unwrap(),
        300,
    )
    .unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut query = Message::query();
    query.metadata.id = 4711;
    query.add_query(Query::query(
        Name::from_ascii("local.").unwrap(),
        RecordType::SOA,
    ));
    let (tsig, _) = signer.sign_message(&query, now - 1000).unwrap();
    let request_mac = tsig.data.mac.clone();
    query.set_signature(tsig);
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    socket
        .send_to(&query.to_vec().unwrap(), ("127.0.0.1", port))
        .unwrap();
    let mut buf = [0u8; 4096];
    let len = socket.recv(&mut buf).expect("an answer to a stale request");
    let reply = Message::from_vec(&buf[..len]).unwrap();
    assert_eq!(reply.metadata.response_code, ResponseCode::NotAuth);
    let tsig = reply.signature().expect("a TSIG record").data.clone();
    assert_eq!(tsig.error, Some(TsigError::BadTime));
    assert_eq!(tsig.time, now - 1000, "Time Signed: the request's");
    assert_eq!(tsig.other.len(), 6, "Other Data: our time");
    let ours = tsig.other.iter().fold(0u64, |t, b| t << 8 | u64::from(*b));
    assert!(ours.abs_diff(now) < 60, "our time {ours}, now {now}");
    signer
        .verify_message_byte(&buf[..len], Some(&request_mac), true)
        .expect("the BADTIME answer is signed with the key");
    eprintln!(
        "BADTIME answer signed, our clock {}s from the test's",
        ours.abs_diff(now)
    );
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

/// A secondary using the key refreshes by SOA queries signed with it (its
/// refresh timer shortened to a second or two): each answer must verify,
/// or Knot logs "failed to verify TSIG" and "no usable master" on every
/// refresh while it is current.
#[test]
fn a_keyed_secondary_refreshes_without_tsig_failures() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("inventory.toml"), inventory(20, false)).unwrap();
    let knot_port = free_port();
    let primary_port = free_port();
    let config = write_config_with(
        dir.path(),
        &format!("127.0.0.1:{knot_port}"),
        "soa_refresh = 1\nsoa_retry = 1\n",
    );
    let _primary = Server::start_on(primary_port, &config, &[], "local");
    let knot = KnotSecondary::start_with(
        knot_port,
        primary_port,
        false,
        "    refresh-min-interval: 2\n    refresh-max-interval: 2\n    retry-min-interval: 2\n    retry-max-interval: 2\n",
    );
    let first = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_for("Knot's first transfer", DEADLINE, || knot.serial())
    }));
    assert!(first.is_ok(), "Knot's log:\n{}", knot.log());
    let refreshes = |log: &str| {
        log.lines()
            .filter(|l| l.contains("refresh, remote") && l.contains("up-to-date"))
            .count()
    };
    let failures = |log: &str| -> Vec<String> {
        log.lines()
            .filter(|l| {
                l.contains("TSIG") || l.contains("no usable master") || l.contains("failed")
            })
            .map(str::to_owned)
            .collect()
    };
    let start = std::time::Instant::now();
    let before = refreshes(&knot.log());
    let cycles = 5;
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_for(
            "five refresh cycles",
            std::time::Duration::from_secs(30),
            || {
                let log = knot.log();
                assert!(
                    failures(&log).is_empty(),
                    "Knot's refresh failed: {:?}",
                    failures(&log)
                );
                (refreshes(&log) >= before + cycles).then_some(())
            },
        )
    }));
    let log = knot.log();
    assert!(result.is_ok(), "Knot's log:\n{log}");
    eprintln!(
        "{} signed SOA refreshes in {:?}, none failed",
        refreshes(&log) - before,
        start.elapsed()
    );
}

/// A `notify` entry naming a key sends NOTIFY signed with it: a secondary
/// that accepts NOTIFY only with that key follows a change at once (its own
/// refresh timer is an hour away). A key name that is not configured is a
/// configuration error naming `notify`.
#[test]
fn notify_is_signed_with_the_key_of_its_entry() {
    let dir = tempfile::tempdir().unwrap();
    let inventory_path = dir.path().join("inventory.toml");
    std::fs::write(&inventory_path, inventory(20, false)).unwrap();
    let knot_port = free_port();
    let primary_port = free_port();

    let wrong = write_config_with(
        dir.path(),
        &format!("127.0.0.1:{knot_port} no-such-key"),
        "",
    );
    let out = run(&["check-config", "--config", wrong.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("notify") && stderr.contains("no-such-key"),
        "{stderr}"
    );

    let config = write_config_with(
        dir.path(),
        &format!("127.0.0.1:{knot_port} {KEY_NAME}"),
        "soa_refresh = 3600\nsoa_retry = 3600\n",
    );
    let primary = Server::start_on(primary_port, &config, &[], "local");
    let knot = KnotSecondary::start_with(knot_port, primary_port, true, "");
    let (first, _) = wait_for("Knot's first transfer", DEADLINE, || knot.serial());
    std::fs::write(&inventory_path, inventory(20, true)).unwrap();
    let (_, took) = wait_for("Knot to serve the new task", DEADLINE, || {
        let out = kdig(knot.port, &["extra.local", "A", "+short"]);
        out.contains("10.200.0.1").then_some(())
    });
    eprintln!("change followed {took:?} after it was written, by a signed NOTIFY");
    assert!(knot.serial().unwrap() > first);
    let log = knot.log();
    assert!(log.lines().any(|l| l.contains("notify, incoming")), "{log}");
    assert!(!log.contains("denied") && !log.contains("TSIG"), "{log}");
    wait_for("the primary to log the acknowledgement", DEADLINE, || {
        primary.log().contains("NOTIFY acknowledged").then_some(())
    });
    assert!(
        !primary.log().contains("not acknowledged"),
        "{}",
        primary.log()
    );
    assert!(!primary.log().contains(KEY_SECRET));
}
