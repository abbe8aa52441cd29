//! SIGHUP: re-read the configuration. What can change while running (the
//! zone's records, TTLs and SOA; `max_stale`) is applied; what cannot
//! (sockets, the source, the state file) is named in the log and left as it
//! was, never half-applied.

use crate::config::Config;

/// Each listed field of two configurations that differs, as (key, old, new)
/// in their `Debug` form (secrets print redacted).
macro_rules! changed_fields {
    ($running:expr, $new:expr, $($field:ident),* $(,)?) => {{
        let mut out: Vec<(&'static str, String, String)> = Vec::new();
        $(
            let (old, new) = (format!("{:?}", $running.$field), format!("{:?}", $new.$field));
            if old != new {
                out.push((stringify!($field), old, new));
            }
        )*
        out
    }};
}

/// The keys whose change needs a restart, with their old and new values.
pub fn needs_restart(running: &Config, new: &Config) -> Vec<(&'static str, String, String)> {
    let mut out = changed_fields!(
        running,
        new,
        listen,
        http,
        http_limits,
        source,
        poll_interval,
        max_udp_payload,
        spread,
        log_format,
        state_file,
        front,
        tcp,
        transfer,
        rrl,
        udp_io,
        udp_socket_buffer,
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

    #[test]
    fn every_restart_only_change_is_named_even_alongside_others() {
        let running = config(10, "127.0.0.1:53");
        let mut new = config(10, "127.0.0.1:54");
        new.rrl.responses_per_second = 50;
        let keys: Vec<_> = needs_restart(&running, &new)
            .into_iter()
            .map(|(k, _, _)| k)
            .collect();
        assert_eq!(keys, ["listen", "rrl"]);
        assert_eq!(applied(&running, &new).rrl, running.rrl);
    }
}
