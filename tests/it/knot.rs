//! Knot DNS (`knotd`) as a reference peer: one zone file served from a temp
//! directory on a free loopback port, in the foreground, killed on drop.
//!
//! Settings that make it a fair reference (see shared pitfalls):
//! - rundir and storage in the temp dir (the defaults, `/run/knot` and
//!   `/var/lib/knot`, need the packaged service layout);
//! - `zonefile-sync: -1` and no journal: it never rewrites the zone file;
//! - `identity` and `version` empty: CH queries for `version.bind` and
//!   friends are REFUSED as ours are, instead of answered;
//! - `udp-max-payload` set to ecs-dns's default (1232), so both cap UDP
//!   answers and advertise the same EDNS buffer size;
//! - one worker of each kind: the machine is small and shared.
//!
//! Knot loads the zone just after "server started", so [`Knot::start`]
//! returns only once an SOA query for the zone is answered.

// Shared by tests that use different parts of it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::harness::{DEADLINE, free_port, kdig, require, wait_for};

/// A running `knotd`, killed on drop.
pub struct Knot {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
    log: PathBuf,
}

impl Knot {
    /// Serves `zone` (e.g. `local`) from the master-file text `zone_file`,
    /// and waits until it answers SOA queries for it.
    pub fn start(zone: &str, zone_file: &str) -> Knot {
        require("knotd");
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let path = dir.path();
        std::fs::write(path.join("zone.db"), zone_file).expect("write zone file");
        let config = format!(
            "server:
    rundir: {dir}
    listen: 127.0.0.1@{port}
    identity: \"\"
    version: \"\"
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
    udp-max-payload: 1232
database:
    storage: {dir}
log:
  - target: stderr
    any: info
template:
  - id: default
    storage: {dir}
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
zone:
  - domain: {zone}
    file: zone.db
",
            dir = path.display()
        );
        let config_path = path.join("knot.conf");
        std::fs::write(&config_path, config).expect("write knot.conf");
        let log = path.join("knotd.log");
        let log_file = std::fs::File::create(&log).expect("knotd log file");
        let child = Command::new("knotd")
            .arg("--config")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("start knotd");
        let mut knot = Knot {
            child,
            port,
            dir,
            log,
        };
        knot.wait_answering(zone);
        knot
    }

    fn wait_answering(&mut self, zone: &str) {
        let port = self.port;
        let (_, took) = wait_for(&format!("knotd to answer SOA {zone}"), DEADLINE, || {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("knotd exited ({status}):\n{}", self.log());
            }
            let out = kdig(port, &[zone, "SOA", "+retry=0", "+timeout=1"]);
            out.contains("status: NOERROR").then_some(())
        });
        eprintln!("knotd answered after {took:?}");
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Knot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
