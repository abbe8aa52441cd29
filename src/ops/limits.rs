//! File descriptors. Many systems start a process with a soft open-files
//! limit of 1024 and a far higher hard one: at start the soft limit is
//! raised to the hard one, and the ops listener is given only what the DNS
//! fronts cannot need, so that no number of ops clients can take the
//! descriptors a DNS query over TCP needs.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

use crate::config::HttpLimits;

/// Descriptors kept for what is neither a DNS TCP nor an ops connection:
/// listening sockets, a UDP socket per core and address, the source's AWS
/// connections, the state file, standard streams, the runtime's own.
pub const RESERVE: u64 = 128;

/// The open-files limit before and after [`raise_open_files`]; `None`:
/// unlimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenFiles {
    pub before: Option<u64>,
    pub now: Option<u64>,
}

/// Raises the soft open-files limit to the hard one. A failure leaves the
/// limit as it was (and says why).
pub fn raise_open_files() -> (OpenFiles, Option<std::io::Error>) {
    let limit = getrlimit(Resource::Nofile);
    let mut files = OpenFiles {
        before: limit.current,
        now: limit.current,
    };
    if limit.current == limit.maximum {
        return (files, None);
    }
    // Linux refuses "unlimited" (above fs.nr_open): a hard limit of
    // unlimited is asked for as 2^20, the usual nr_open.
    let wanted = limit.maximum.unwrap_or(1 << 20);
    let raised = Rlimit {
        current: Some(wanted),
        maximum: limit.maximum,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => {
            files.now = getrlimit(Resource::Nofile).current;
            (files, None)
        }
        Err(error) => (files, Some(error.into())),
    }
}

/// How many ops connections may be open: `wanted`, unless the open-files
/// limit cannot hold them beside `dns_tcp` DNS TCP connections and the
/// [`RESERVE`]; then what is left, but at least 1.
pub fn ops_connections(wanted: usize, open_files: Option<u64>, dns_tcp: usize) -> usize {
    let Some(limit) = open_files else {
        return wanted;
    };
    let left = limit
        .saturating_sub(RESERVE)
        .saturating_sub(u64::try_from(dns_tcp).unwrap_or(u64::MAX));
    wanted
        .min(usize::try_from(left).unwrap_or(usize::MAX))
        .max(1)
}

/// At start: raises the limit, logs it, and returns the ops listener's
/// limits with its connection cap fitted to the descriptors.
pub fn prepare(http: HttpLimits, dns_tcp: usize) -> HttpLimits {
    let (files, error) = raise_open_files();
    let show = |limit: Option<u64>| limit.map_or("unlimited".to_owned(), |n| n.to_string());
    match error {
        None if files.before != files.now => tracing::info!(
            from = %show(files.before),
            to = %show(files.now),
            "open-files limit raised to its hard limit"
        ),
        None => tracing::info!(limit = %show(files.now), "open-files limit"),
        Some(error) => tracing::warn!(
            limit = %show(files.now),
            %error,
            "open-files limit could not be raised"
        ),
    }
    let allowed = ops_connections(http.max_connections, files.now, dns_tcp);
    if allowed < http.max_connections {
        tracing::warn!(
            key = "http_max_connections",
            wanted = http.max_connections,
            allowed,
            open_files = %show(files.now),
            tcp_max_connections = dns_tcp,
            reserve = RESERVE,
            "the open-files limit cannot hold this many ops connections beside the DNS ones: fewer allowed"
        );
    }
    HttpLimits {
        max_connections: allowed,
        ..http
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ops_listener_gets_what_dns_cannot_need() {
        assert_eq!(ops_connections(64, None, 512), 64);
        assert_eq!(ops_connections(64, Some(1 << 20), 512), 64);
        assert_eq!(ops_connections(64, Some(1024), 512), 64);
        assert_eq!(ops_connections(64, Some(512 + RESERVE + 10), 512), 10);
        assert_eq!(ops_connections(64, Some(100), 512), 1);
    }

    #[test]
    fn raising_twice_changes_nothing_more() {
        let (first, error) = raise_open_files();
        assert!(error.is_none(), "{error:?}");
        let (second, _) = raise_open_files();
        assert_eq!(second.before, first.now);
        assert_eq!(second.now, first.now);
        assert_eq!(first.now, getrlimit(Resource::Nofile).maximum.or(first.now));
    }
}
