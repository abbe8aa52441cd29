//! moto server on loopback, as the ECS and EC2 APIs, and `ecs-dns serve
//! --source ecs` pointed at it.
//!
//! `moto_server.py` starts moto 5.2.5 with its gaps patched the way real ECS
//! behaves (each patch is documented there: frozen task lifecycle,
//! networkBindings for bridge tasks, dynamic host ports, ListTasks paging,
//! DescribeTasks' 100-task limit) and adds two test hooks: a per-operation
//! request counter and a switch that makes chosen operations fail with
//! ThrottlingException. `ecs_fixture.py` sets up scenarios with boto3.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{self, DEADLINE, bin, dig, free_port, repo, wait_for};

/// The environment that points the AWS SDK (and boto3) at moto.
pub fn aws_env(port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}")),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
    ]
}

/// A running patched moto server, killed on drop.
pub struct Moto {
    child: Option<Child>,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl Moto {
    pub fn start() -> Moto {
        harness::require("python3");
        let importable = Command::new("python3")
            .args(["-c", "import moto.server, boto3"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(importable, "moto is missing: run scripts/install-test-deps");
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("moto.log")).unwrap();
        let child = Command::new("python3")
            .arg(script("moto_server.py"))
            .arg(port.to_string())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start moto");
        let moto = Moto {
            child: Some(child),
            port,
            dir,
        };
        let (_, took) = wait_for("moto to answer", DEADLINE, || {
            moto.try_http("GET", "/_ecsdns/calls", "").ok()
        });
        eprintln!("moto answered after {took:?}");
        moto
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Runs fixture steps (see `ecs_fixture.py`), one result per step.
    pub fn steps(&self, steps: Value) -> Vec<Value> {
        self.steps_with(&[], steps)
    }

    /// [`Moto::steps`] with the fixture's environment (`ECS_FIXTURE_REGION`,
    /// `ECS_FIXTURE_ROLE`: another region or account).
    pub fn steps_with(&self, env: &[(&str, &str)], steps: Value) -> Vec<Value> {
        let mut child = Command::new("python3")
            .arg(script("ecs_fixture.py"))
            .arg(self.endpoint())
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run ecs_fixture.py");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(steps.to_string().as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "fixture failed: {}\nsteps: {steps}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Requests moto received, per operation, since the last reset.
    pub fn calls(&self) -> BTreeMap<String, u64> {
        serde_json::from_str(&self.http("GET", "/_ecsdns/calls", "")).unwrap()
    }

    pub fn reset_calls(&self) {
        self.http("POST", "/_ecsdns/calls/reset", "");
    }

    /// Makes `operations` (all, when `None`) fail with ThrottlingException.
    pub fn fail(&self, operations: Option<&[&str]>) {
        self.http(
            "POST",
            "/_ecsdns/fault",
            &json!({ "operations": operations }).to_string(),
        );
    }

    pub fn heal(&self) {
        self.http("POST", "/_ecsdns/fault", r#"{"operations": []}"#);
    }

    /// Kills moto: every later AWS call fails to connect.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("moto.log")).unwrap_or_default()
    }

    fn http(&self, method: &str, path: &str, body: &str) -> String {
        self.try_http(method, path, body)
            .unwrap_or_else(|e| panic!("{method} {path} to moto: {e}"))
    }

    /// A tiny HTTP/1.0 client: the hooks answer small JSON bodies.
    fn try_http(&self, method: &str, path: &str, body: &str) -> std::io::Result<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(
            stream,
            "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        let (head, body) = response
            .split_once("\r\n\r\n")
            .ok_or_else(|| std::io::Error::other("no HTTP body"))?;
        if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
            return Err(std::io::Error::other(head.to_owned()));
        }
        Ok(body.to_owned())
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.stop();
    }
}

fn script(name: &str) -> PathBuf {
    repo().join("tests/it").join(name)
}

/// `ecs-dns serve --source ecs` (no config file) against moto, polling every
/// second, zone `ecs.internal`; killed on drop.
pub struct EcsServer {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

pub const ZONE: &str = "ecs.internal";

impl EcsServer {
    pub fn start(moto: &Moto, extra: &[&str]) -> EcsServer {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("ecs-dns.log")).unwrap();
        let child = Command::new(bin())
            .args(["serve", "--source", "ecs", "--poll-interval", "1s"])
            .args(["--zone", ZONE, "--listen", &format!("127.0.0.1:{port}")])
            .args(extra)
            .envs(aws_env(moto.port))
            .env(
                "RUST_LOG",
                "info,ecs_dns::source::ecs=debug,hickory_server=warn",
            )
            .env_remove("ECS_DNS_CONFIG")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start ecs-dns");
        let server = EcsServer { child, port, dir };
        let (_, took) = wait_for("ecs-dns to answer SOA", DEADLINE, || {
            dig(port, &[ZONE, "SOA", "+tries=1", "+time=1"])
                .contains("status: NOERROR")
                .then_some(())
        });
        eprintln!("ecs-dns (ecs source) answered after {took:?}");
        server
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("ecs-dns.log")).unwrap_or_default()
    }

    /// Sends the signal `name` (`HUP`, ...) to the server.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name}");
    }

    /// Polls completed so far (each logs "ecs poll done" at debug level).
    pub fn polls(&self) -> usize {
        self.log().matches("ecs poll done").count()
    }
}

impl Drop for EcsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The task-state hook of `moto_server.py`: what real ECS changes on a task
/// and moto does not (health from the containers' health checks, the desired
/// status alone at a stop decision).
impl Moto {
    /// Sets `state` (`healthStatus`, `desiredStatus`, `lastStatus`) on the
    /// task `task` (ARN or id); returns the task's state after the change.
    pub fn set_task(&self, task: &str, state: Value) -> Value {
        let mut body = state;
        body["task"] = json!(task);
        serde_json::from_str(&self.http("POST", "/_ecsdns/task", &body.to_string())).unwrap()
    }
}
