//! SIGHUP: re-read the configuration. What can change while running (the
//! zone's records, TTLs and SOA; `max_stale`) is applied; what cannot
//! (sockets, the source, the state file) is named in the log and left as it
//! was, never half-applied.

use crate::config::Config;

/// The keys whose change needs a restart, with their old and new values.
pub fn needs_restart(running: &Config, new: &Config) -> Vec<(&'static str, String, String)> {
    let mut out = Vec::new();
    let mut check = |key: &'static str, old: String, new: String| {
        if old != new {
            out.push((key, old, new));
        }
    };
    check(
        "listen",
        format!("{:?}", running.listen),
        format!("{:?}", new.listen),
    );
    check(
        "http",
        format!("{:?}", running.http),
        format!("{:?}", new.http),
    );
    check(
        "source",
        format!("{:?}", running.source),
        format!("{:?}", new.source),
    );
    check(
        "poll_interval",
        format!("{:?}", running.poll_interval),
        format!("{:?}", new.poll_interval),
    );
    check(
        "max_udp_payload",
        running.max_udp_payload.to_string(),
        new.max_udp_payload.to_string(),
    );
    check(
        "log_format",
        format!("{:?}", running.log_format),
        format!("{:?}", new.log_format),
    );
    check(
        "state_file",
        format!("{:?}", running.state_file),
        format!("{:?}", new.state_file),
    );
    check(
        "front",
        format!("{:?}", running.front),
        format!("{:?}", new.front),
    );
    check(
        "tcp",
        format!("{:?}", running.tcp),
        format!("{:?}", new.tcp),
    );
    check(
        "transfer",
        format!("{:?}", running.transfer),
        format!("{:?}", new.transfer),
    );
    // Keys added later and not listed above: still never silently ignored.
    if out.is_empty() && applied(running, new) != *new {
        out.push(("(other keys)", format!("{running:?}"), format!("{new:?}")));
    }
    out
}

/// The configuration that runs after a reload: `running` with the keys that
/// can change at runtime taken from `new`.
pub fn applied(running: &Config, new: &Config) -> Config {
    Config {
        zone: new.zone.clone(),
        max_stale: new.max_stale,
        ..running.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Settings, SourceKind};

    fn config(ttl: u32, listen: &str) -> Config {
        Config::resolve(Settings {
            source: Some(SourceKind::File),
            inventory: Some("x".into()),
            record_ttl: Some(ttl),
            listen: Some(vec![listen.parse().unwrap()]),
            ..Settings::default()
        })
        .unwrap()
    }

    #[test]
    fn ttl_applies_listen_does_not() {
        let running = config(10, "127.0.0.1:53");
        let new = config(30, "127.0.0.1:54");
        let keys: Vec<_> = needs_restart(&running, &new)
            .into_iter()
            .map(|(k, _, _)| k)
            .collect();
        assert_eq!(keys, ["listen"]);
        let after = applied(&running, &new);
        assert_eq!(after.zone.record_ttl, 30);
        assert_eq!(after.listen, running.listen);
    }
}
