//! The process's own memory, read at scrape time for
//! `process_resident_memory_bytes` (the name Prometheus clients export), so
//! that operators can alert before the task's memory limit is reached.

/// The resident set of this process in bytes (`VmRSS` of
/// `/proc/self/status`); `None` where there is no such file (not Linux).
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    vm_rss(&status)
}

/// The `VmRSS:  1234 kB` line of a `/proc/PID/status` text, in bytes.
fn vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let mut fields = line.split_whitespace();
    let value: u64 = fields.next()?.parse().ok()?;
    // The kernel always writes kB (KiB); anything else is not what we know.
    match fields.next() {
        Some("kB") => value.checked_mul(1024),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vm_rss_in_bytes() {
        let status = "Name:\tecs-dns\nVmHWM:\t  20480 kB\nVmRSS:\t   12345 kB\nThreads:\t4\n";
        assert_eq!(vm_rss(status), Some(12345 * 1024));
        assert_eq!(vm_rss("Name:\tx\n"), None);
        assert_eq!(vm_rss("VmRSS:\tmany kB\n"), None);
        assert_eq!(vm_rss("VmRSS:\t12 MB\n"), None);
        assert_eq!(vm_rss("VmRSS:\t18446744073709551615 kB\n"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_has_a_resident_set() {
        let bytes = resident_bytes().expect("Linux has /proc/self/status");
        // A test binary is more than 1 MiB and far less than 64 GiB.
        assert!((1 << 20..64 << 30).contains(&bytes), "{bytes}");
    }
}
