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
             notify = [\"127.0.0.1:{knot_port}\"]\n\
             transfer_allow = [\"127.0.0.3\"]\n\
             tsig_key_file = \"tsig.keys\"\n"
        ),
    )
    .unwrap();
    config
}

/// `knotd` as a secondary of the ecs-dns primary at `primary_port`, with the
/// TSIG key, accepting NOTIFY from 127.0.0.1 and allowing the test to read
/// its copy by AXFR.
struct KnotSecondary {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
    log: PathBuf,
}

impl KnotSecondary {
    fn start(port: u16, primary_port: u16) -> KnotSecondary {
        require("knotd");
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
    address: 127.0.0.1
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
zone:
  - domain: local
    master: primary
    acl: [from_primary, readers]
"
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

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Knot's copy of the zone, as sorted "name ttl class type data" lines
    /// (the closing SOA dropped).
    fn zone(&self) -> Vec<String> {
        normalise(&kdig(
            self.port,
            &["local", "AXFR", "+nocomments", "+nostats"],
        ))
    }

    fn serial(&self) -> Option<u32> {
        let out = kdig(
            self.port,
            &["local", "SOA", "+short", "+timeout=1", "+retry=0"],
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
fn normalise(text: &str) -> Vec<String> {
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
