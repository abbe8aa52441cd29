//! Reverse zones end to end: `dig -x` and `kdig -x` over UDP and TCP, IPv4
//! and IPv6; a shared host address; a task that is not served; the EC2
//! fallback on and off; a changed address moving its PTR; `records
//! --print`; a Knot secondary of a reverse zone; and one glibc lookup
//! (`getent hosts`) through a resolver configuration that points at
//! ecs-dns, in a private mount namespace.

use std::path::Path;
use std::process::Command;

use crate::harness::{DEADLINE, Server, dig_short, free_port, kdig, query, require, run, wait_for};
use crate::xfr::{KnotSecondary, normalise, write_config_with};

/// An awsvpc task (`api`, IPv4 and IPv6) at `api_ip`; two bridge tasks of
/// `web` on instance i-0abc (10.0.2.5); a stopped task at 10.0.1.11.
fn inventory(api_ip: &str) -> String {
    format!(
        r#"[[tasks]]
cluster = "prod"
service = "api"
task_id = "a1"
network_mode = "awsvpc"
ipv4 = ["{api_ip}"]
ipv6 = ["2001:db8::5"]

[[tasks]]
cluster = "prod"
service = "api"
task_id = "a2"
network_mode = "awsvpc"
desired_status = "STOPPED"
ipv4 = ["10.0.1.11"]

[[tasks]]
cluster = "prod"
service = "web"
task_id = "w1"
network_mode = "bridge"
ec2_instance_id = "i-0abc"
ipv4 = ["10.0.2.5"]
ports = [{{ container_name = "web", container_port = 80, host_port = 32768 }}]

[[tasks]]
cluster = "prod"
service = "web"
task_id = "w2"
network_mode = "bridge"
ec2_instance_id = "i-0abc"
ipv4 = ["10.0.2.5"]
ports = [{{ container_name = "web", container_port = 80, host_port = 32769 }}]
"#
    )
}

fn write(dir: &Path, api_ip: &str, extra: &str) -> std::path::PathBuf {
    std::fs::write(dir.join("inventory.toml"), inventory(api_ip)).unwrap();
    let config = dir.join("ecs-dns.toml");
    std::fs::write(
        &config,
        format!(
            "source = \"file\"\ninventory = \"inventory.toml\"\npoll_interval = \"1s\"\n\
             nameservers = [\"ns1.local=127.0.0.1\"]\n\
             reverse_zones = [\"10.0.0.0/16\", \"2001:db8::/32\"]\n{extra}"
        ),
    )
    .unwrap();
    config
}

#[test]
fn dig_and_kdig_get_pointers_over_udp_and_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "10.0.1.10", "");
    let server = Server::start(&config, &[], "local");
    let port = server.port;

    for tcp in [false, true] {
        let transport = if tcp { "+tcp" } else { "+notcp" };
        let ptr = query(port, &["-x", "10.0.1.10", transport]);
        assert_eq!(ptr.status, "NOERROR", "{}", ptr.raw);
        assert!(ptr.flag("aa"), "{}", ptr.raw);
        assert_eq!(ptr.answer_data(), ["a1.api.local."], "{}", ptr.raw);
        let six = kdig(
            port,
            &[
                "-x",
                "2001:db8::5",
                "+short",
                if tcp { "+tcp" } else { "+notcp" },
            ],
        );
        assert_eq!(six.trim(), "a1.api.local.", "{six}");
        // Tasks that share their instance's address: the host's name, and
        // the host's address at that name.
        let host = query(port, &["-x", "10.0.2.5", transport]);
        assert_eq!(host.answer_data(), ["i-0abc.hosts.local."], "{}", host.raw);
        assert_eq!(
            dig_short(port, &["i-0abc.hosts.local", "A", transport]),
            ["10.0.2.5"]
        );
        // A stopped task, an address nobody holds: NXDOMAIN with the SOA of
        // the reverse zone.
        for address in ["10.0.1.11", "10.0.9.9"] {
            let none = query(port, &["-x", address, transport]);
            assert_eq!(none.status, "NXDOMAIN", "{address}: {}", none.raw);
            assert!(
                none.authority
                    .iter()
                    .any(|l| l.starts_with("0.10.in-addr.arpa.") && l.contains("SOA")),
                "{}",
                none.raw
            );
        }
    }
    // Each reverse zone has its own SOA and the zone's NS.
    let soa = dig_short(port, &["0.10.in-addr.arpa", "SOA"]);
    assert_eq!(soa.len(), 1, "{soa:?}");
    assert_eq!(
        dig_short(port, &["8.b.d.0.1.0.0.2.ip6.arpa", "NS"]),
        ["ns1.local."]
    );
    // Outside the reverse zones: refused, as any name outside the zone.
    assert_eq!(query(port, &["-x", "192.168.0.1"]).status, "REFUSED");

    // The address changes: the PTR moves within a poll.
    let started = std::time::Instant::now();
    std::fs::write(dir.path().join("inventory.toml"), inventory("10.0.1.20")).unwrap();
    let (_, took) = wait_for("the PTR to move to 10.0.1.20", DEADLINE, || {
        (dig_short(port, &["-x", "10.0.1.20"]) == ["a1.api.local."]).then_some(())
    });
    eprintln!(
        "PTR moved {took:?} after the inventory changed ({:?} in all)",
        started.elapsed()
    );
    assert_eq!(query(port, &["-x", "10.0.1.10"]).status, "NXDOMAIN");

    // `records --print` exports each zone; a zone not served is exit 2.
    let config_arg = config.to_str().unwrap();
    let out = run(&["records", "--config", config_arg, "--print", "10.0.0.0/16"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("PTR") && text.contains("a1.api.local."),
        "{text}"
    );
    assert!(text.contains("5.2.0.10.in-addr.arpa."), "{text}");
    let all = run(&["records", "--config", config_arg, "--print", "all"]);
    let all = String::from_utf8_lossy(&all.stdout);
    assert_eq!(all.matches(" SOA ").count(), 3, "{all}");
    let bad = run(&["records", "--config", config_arg, "--print", "10.9.0.0/16"]);
    assert_eq!(bad.status.code(), Some(2));
    let why = String::from_utf8_lossy(&bad.stderr);
    assert!(
        why.contains("--print") && why.contains("0.10.in-addr.arpa."),
        "{why}"
    );
}

#[test]
fn the_ec2_fallback_answers_every_other_address_of_the_range() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "10.0.1.10",
        "reverse_fallback = \"ec2:eu-west-1\"\n",
    );
    let server = Server::start(&config, &[], "local");
    let port = server.port;
    for transport in ["+notcp", "+tcp"] {
        assert_eq!(
            dig_short(port, &["-x", "10.0.9.9", transport]),
            ["ip-10-0-9-9.eu-west-1.compute.internal."]
        );
        assert_eq!(
            dig_short(port, &["-x", "10.0.1.10", transport]),
            ["a1.api.local."]
        );
    }
    // A name above the addresses exists (NODATA), one below them does not.
    let above = query(port, &["9.0.10.in-addr.arpa", "PTR"]);
    assert_eq!(
        (above.status.as_str(), above.answer.len()),
        ("NOERROR", 0),
        "{}",
        above.raw
    );
    assert_eq!(
        query(port, &["x.9.9.0.10.in-addr.arpa", "PTR"]).status,
        "NXDOMAIN"
    );
    // IPv6 has no EC2 name.
    assert_eq!(query(port, &["-x", "2001:db8::6"]).status, "NXDOMAIN");
    // A bad fallback is a configuration error naming the key.
    let bad = write(dir.path(), "10.0.1.10", "reverse_fallback = \"ec2:mars\"\n");
    let out = run(&["check-config", "--config", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let why = String::from_utf8_lossy(&out.stderr);
    assert!(
        why.contains("reverse_fallback") && why.contains("not an AWS region"),
        "{why}"
    );
    let bad = write(dir.path(), "10.0.1.10", "").with_file_name("x.toml");
    std::fs::write(
        &bad,
        "source = \"file\"\ninventory = \"inventory.toml\"\nreverse_zones = [\"10.0.0.0/12\"]\n",
    )
    .unwrap();
    let out = run(&["check-config", "--config", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let why = String::from_utf8_lossy(&out.stderr);
    assert!(
        why.contains("reverse_zones") && why.contains("/8 or /16"),
        "{why}"
    );
}

#[test]
fn knot_follows_a_reverse_zone() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("inventory.toml"), inventory("10.0.1.10")).unwrap();
    let knot_port = free_port();
    let primary_port = free_port();
    let config = write_config_with(
        dir.path(),
        &format!("127.0.0.1:{knot_port}"),
        "reverse_zones = [\"10.0.0.0/16\"]\n",
    );
    let _primary = Server::start_on(primary_port, &config, &[], "local");
    let knot = KnotSecondary::start_for(knot_port, primary_port, &["local", "0.10.in-addr.arpa"]);
    let (_, took) = wait_for("Knot's copy of the reverse zone", DEADLINE, || {
        knot.serial_of("0.10.in-addr.arpa").map(|_| ())
    });
    eprintln!("Knot loaded the reverse zone {took:?} after it started");
    let out = run(&[
        "records",
        "--config",
        config.to_str().unwrap(),
        "--print",
        "0.10.in-addr.arpa",
    ]);
    let want = normalise(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(
        knot.zone_of("0.10.in-addr.arpa"),
        want,
        "Knot's copy is `records --print`"
    );
    assert!(
        want.iter().any(|l| l.contains("ptr a1.api.local.")),
        "{want:?}"
    );

    // The address changes: NOTIFY, IXFR, and Knot answers the new PTR.
    let before = knot.serial_of("0.10.in-addr.arpa").unwrap_or(0);
    std::fs::write(dir.path().join("inventory.toml"), inventory("10.0.1.20")).unwrap();
    let (_, took) = wait_for("Knot to serve the moved PTR", DEADLINE, || {
        let out = kdig(knot.port, &["-x", "10.0.1.20", "+short"]);
        out.contains("a1.api.local.").then_some(())
    });
    eprintln!("a moved PTR served by the secondary {took:?} after the inventory changed");
    assert!(knot.serial_of("0.10.in-addr.arpa").unwrap_or(0) > before);
    let out = kdig(knot.port, &["-x", "10.0.1.10"]);
    assert!(out.contains("NXDOMAIN"), "{out}\n{}", knot.log());
}

/// glibc's resolver (`getent hosts ADDRESS`: gethostbyaddr, then DNS)
/// asks ecs-dns, listening on port 53 of a loopback address of its own,
/// through a resolv.conf bind-mounted over /etc/resolv.conf in a private
/// mount namespace: the machine's own resolver settings are never touched.
#[test]
fn getent_turns_a_task_address_into_its_name() {
    require("unshare");
    require("getent");
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "10.0.1.10", "");
    // A loopback address no other test listens on.
    let resolver = format!(
        "127.53.{}.{}",
        std::process::id() % 250 + 1,
        free_port() % 250 + 1
    );
    let listen = format!("{resolver}:53");
    let _server = Server::start(&config, &["--listen", &listen], "local");
    let resolv = dir.path().join("resolv.conf");
    std::fs::write(
        &resolv,
        format!("nameserver {resolver}\noptions timeout:2 attempts:3\n"),
    )
    .unwrap();
    let script = format!(
        "mount --bind {} /etc/resolv.conf && getent hosts 10.0.1.10 && getent hosts 2001:db8::5",
        resolv.display()
    );
    let started = std::time::Instant::now();
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .output()
        .expect("run unshare");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "getent failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Vec<&str>> = stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines,
        [
            ["10.0.1.10", "a1.api.local"],
            ["2001:db8::5", "a1.api.local"]
        ],
        "{stdout}"
    );
    eprintln!("getent answered in {:?}", started.elapsed());
}
