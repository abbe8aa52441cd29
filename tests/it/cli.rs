//! The command line: `records` output accepted by kzonecheck, config errors
//! with exit code 2 naming the key.

use std::process::Command;

use crate::harness::{demo_config, repo, require, run};

#[test]
fn records_prints_a_zone_that_kzonecheck_accepts() {
    require("kzonecheck");
    let out = run(&["records", "--config", demo_config().to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let zone = String::from_utf8(out.stdout).unwrap();
    assert!(zone.contains("web.local. 10 IN A 10.0.1.10"), "{zone}");
    assert!(
        zone.contains("_http._tcp.web.prod.local. 10 IN SRV 0 1 32768 "),
        "{zone}"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("local.zone");
    std::fs::write(&file, &zone).unwrap();
    let check = Command::new("kzonecheck")
        .args(["-o", "local."])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "kzonecheck: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
}

#[test]
fn version_flag() {
    let out = run(&["--version"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("ecs-dns {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn check_config_accepts_the_shipped_configs() {
    for file in ["conf/demo.toml", "conf/ecs-dns.toml"] {
        let path = repo().join(file);
        let out = run(&["check-config", "--config", path.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Each bad setting, from a file, a flag or the environment: exit 2 and an
/// error naming the key.
#[test]
fn bad_config_exits_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_owned()
    };
    let unknown = write(
        "unknown.toml",
        "source = \"file\"\ninventory = \"x\"\nrecrod_ttl = 3\n",
    );
    let bad_type = write(
        "type.toml",
        "source = \"file\"\ninventory = \"x\"\nrecord_ttl = \"ten\"\n",
    );
    let no_source = write("nosource.toml", "zone = \"local\"\n");
    let bad_zone = write(
        "zone.toml",
        "source = \"file\"\ninventory = \"x\"\nzone = \"a..b\"\n",
    );
    let good = write("good.toml", "source = \"file\"\ninventory = \"x\"\n");
    let missing = dir.path().join("missing.toml");
    let missing = missing.to_str().unwrap();

    /// (what, arguments, environment, what the error must name)
    type Case<'a> = (&'a str, Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            "unknown file key",
            vec!["--config", &unknown],
            vec![],
            "recrod_ttl",
        ),
        (
            "wrong type",
            vec!["--config", &bad_type],
            vec![],
            "record_ttl",
        ),
        ("no source", vec!["--config", &no_source], vec![], "source"),
        ("bad zone", vec!["--config", &bad_zone], vec![], "zone"),
        (
            "missing config file",
            vec!["--config", missing],
            vec![],
            "missing.toml",
        ),
        (
            "bad flag value",
            vec!["--config", &good, "--max-udp-payload", "100"],
            vec![],
            "max_udp_payload",
        ),
        (
            "bad listen flag",
            vec!["--config", &good, "--listen", "nowhere"],
            vec![],
            "--listen",
        ),
        (
            "poll interval too short",
            vec!["--config", &good, "--poll-interval", "10ms"],
            vec![],
            "poll_interval",
        ),
        (
            "bad env value",
            vec!["--config", &good],
            vec![("ECS_DNS_RECORD_TTL", "-1")],
            "record-ttl",
        ),
        (
            "unknown env var",
            vec!["--config", &good],
            vec![("ECS_DNS_RECORD_TLL", "5")],
            "ECS_DNS_RECORD_TLL",
        ),
        (
            "transfers with the hickory front",
            vec![
                "--config",
                &good,
                "--front",
                "hickory",
                "--transfer-allow",
                "127.0.0.1",
            ],
            vec![],
            "transfer_allow",
        ),
        (
            "rate limiting with the hickory front",
            vec!["--config", &good, "--front", "hickory"],
            vec![("ECS_DNS_RRL_RESPONSES_PER_SECOND", "50")],
            "rrl_responses_per_second",
        ),
    ];
    for (what, args, env, key) in cases {
        let out = Command::new(crate::harness::bin())
            .arg("check-config")
            .args(&args)
            .envs(env)
            .env_remove("ECS_DNS_CONFIG")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{what}: exit code; stderr: {stderr}"
        );
        assert!(
            stderr.contains(key),
            "{what}: error should name {key}: {stderr}"
        );
    }
}

#[test]
fn flags_and_environment_override_the_file() {
    let config = demo_config();
    let out = Command::new(crate::harness::bin())
        .args([
            "check-config",
            "--config",
            config.to_str().unwrap(),
            "--zone",
            "ecs.internal",
        ])
        .env("ECS_DNS_RECORD_TTL", "42")
        .env("ECS_DNS_ZONE", "ignored.example")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("ecs.internal"),
        "flag wins over env and file: {text}"
    );
    assert!(
        text.contains("record_ttl = 42  # env"),
        "env wins over file: {text}"
    );
    assert!(text.contains("zone = \"ecs.internal.\"  # flag"), "{text}");
    assert!(text.contains("poll_interval = \"1s\"  # file"), "{text}");
    assert!(text.contains("soa_ttl = 60  # default"), "{text}");
}

/// `check-config` prints TOML: fed back as a config file, it resolves to the
/// same configuration; secrets are never printed.
#[test]
fn check_config_output_is_a_config_that_resolves_the_same() {
    let secret = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ=";
    let check = |args: &[&str]| {
        let out = Command::new(crate::harness::bin())
            .arg("check-config")
            .args(args)
            .env("ECS_DNS_TSIG_KEYS", format!("xfr-key:hmac-sha256:{secret}"))
            .env_remove("ECS_DNS_CONFIG")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {stderr}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let first = check(&[
        "--config",
        demo_config().to_str().unwrap(),
        "--zone",
        "ecs.internal",
        "--listen",
        "127.0.0.1:5399,[::1]:5399",
        "--transfer-allow",
        "10.0.0.0/8",
        "--notify",
        "127.0.0.1:5301 xfr-key",
        "--http",
        "127.0.0.1:9999",
    ]);
    assert!(!first.contains(secret), "a secret was printed:\n{first}");
    assert!(
        first.contains("# tsig_keys = [\"xfr-key.:hmac-sha256:<redacted>\"]  # env"),
        "{first}"
    );
    let dir = tempfile::tempdir().unwrap();
    let fed_back = dir.path().join("resolved.toml");
    std::fs::write(&fed_back, &first).unwrap();
    let second = check(&["--config", fed_back.to_str().unwrap()]);
    // The values, without where they came from.
    let values = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split("  # ").next().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(values(&first), values(&second), "\n{first}\n---\n{second}");
    assert!(values(&first).len() > 30, "{first}");
}

#[test]
fn serve_without_a_source_exits_with_a_clear_error() {
    // No --config and (on test machines) no /etc/ecs-dns/ecs-dns.toml: the
    // built-in defaults have no source, and demo data is never served unasked.
    let out = run(&["serve", "--listen", "127.0.0.1:0"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("source"), "{stderr}");
}

/// A port that cannot be had is the first and only thing reported, with
/// what to do about it: a privileged port without the capability, or a port
/// another server already has (UDP included: SO_REUSEPORT would share it).
#[test]
fn ports_that_cannot_be_had_are_reported_with_a_hint() {
    crate::harness::require("setpriv");
    // Root without CAP_NET_BIND_SERVICE, as an unprivileged container runs.
    let out = Command::new("setpriv")
        .args(["--bounding-set", "-net_bind_service"])
        .arg(crate::harness::bin())
        .args(["serve", "--config", demo_config().to_str().unwrap()])
        .args(["--listen", "127.0.0.1:53"])
        .args([
            "--http",
            &format!("127.0.0.1:{}", crate::harness::free_port()),
        ])
        .env_remove("ECS_DNS_CONFIG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("CAP_NET_BIND_SERVICE"), "{stderr}");
    assert!(
        !stderr.contains("zone changed") && !stderr.contains("starting"),
        "something was logged before the bind failed: {stderr}"
    );

    let first = crate::harness::Server::start(&demo_config(), &[], "local");
    let out = Command::new(crate::harness::bin())
        .args(["serve", "--config", demo_config().to_str().unwrap()])
        .args(["--listen", &first.addr().to_string()])
        .args([
            "--http",
            &format!("127.0.0.1:{}", crate::harness::free_port()),
        ])
        .env_remove("ECS_DNS_CONFIG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("cannot listen on udp") && stderr.contains("another process"),
        "{stderr}"
    );
}
