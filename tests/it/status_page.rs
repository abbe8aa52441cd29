//! The status page in a real browser: headless Chromium driven by Selenium
//! (`status_page.py`), against the real binary serving a copy of the demo
//! inventory plus one task whose service name and tag are HTML. The
//! browser, its driver and Selenium come from `scripts/install-test-deps`;
//! without them this test fails.

use std::path::Path;
use std::process::Command;

use crate::harness::{free_port, repo, require, wait_while_running};
use crate::ops::{http_get, spawn_serve};

/// A task anyone able to start one could make: HTML in its service name
/// and a tag, and a script in its alias tag.
const HOSTILE_TASK: &str = r#"
# --- test only: markup in the names and tags (rendered as text, never run)
[[tasks]]
cluster = "prod"
service = "<img src=x onerror=alert(1)>"
family = "evil"
task_arn = "arn:aws:ecs:us-east-1:123456789012:task/prod/ee00000000000000000000000000beef"
network_mode = "awsvpc"
launch_type = "FARGATE"
ipv4 = ["10.0.9.9"]
tags = { note = "<img src=x onerror=alert(1)>", "ecs-dns:name" = "<script>alert(2)</script>" }
"#;

/// ecs-dns serving the demo inventory plus [`HOSTILE_TASK`], with its ops
/// listener on; stopped when dropped.
struct StatusServer {
    dir: tempfile::TempDir,
    http: u16,
    log: std::path::PathBuf,
    child: std::process::Child,
}

impl StatusServer {
    fn start() -> StatusServer {
        let dir = tempfile::tempdir().unwrap();
        let (dns, http) = (free_port(), free_port());
        let config = write_setup(dir.path(), http);
        let log = dir.path().join("log");
        let mut child = spawn_serve(
            Command::new(crate::harness::bin()),
            &config,
            dns,
            http,
            &log,
        );
        let (_, took) = wait_while_running("the zone loaded", &mut child, &log, || {
            http_get(http, "/readyz").filter(|(code, _)| *code == 200)
        });
        eprintln!("/readyz answered 200 after {took:?}");
        StatusServer {
            dir,
            http,
            log,
            child,
        }
    }
}

impl Drop for StatusServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The response head of `GET path`, lower case.
fn head(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    raw.split("\r\n\r\n")
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
}

fn write_setup(dir: &Path, http: u16) -> std::path::PathBuf {
    let demo = std::fs::read_to_string(repo().join("conf/demo-inventory.toml")).unwrap();
    std::fs::write(dir.join("inventory.toml"), demo + HOSTILE_TASK).unwrap();
    let config = dir.join("ecs-dns.toml");
    std::fs::write(
        &config,
        format!(
            "zone = \"local\"\nsource = \"file\"\ninventory = \"inventory.toml\"\n\
             poll_interval = \"1s\"\nnameservers = [\"ns1=127.0.0.1\"]\nhttp = \"127.0.0.1:{http}\"\n\
             reverse_zones = [\"10.0.0.0/8\"]\n"
        ),
    )
    .unwrap();
    config
}

#[test]
fn status_page_in_a_real_browser() {
    require("chromium");
    require("chromedriver");
    let selenium = Command::new("python3")
        .args(["-c", "import selenium"])
        .status()
        .expect("python3");
    assert!(
        selenium.success(),
        "Selenium is missing: run scripts/install-test-deps"
    );

    let server = StatusServer::start();
    // Under target/ wherever it is (CARGO_TARGET_DIR may move it).
    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page.png");
    let output = Command::new("python3")
        .arg(repo().join("tests/it/status_page.py"))
        .arg(format!("http://127.0.0.1:{}", server.http))
        .arg(server.dir.path().join("inventory.toml"))
        .arg(&screenshot)
        .output()
        .expect("run status_page.py");
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!("{stdout}");
    assert!(
        output.status.success(),
        "the browser test failed:\n{stdout}\n{}\n--- server log ---\n{}",
        String::from_utf8_lossy(&output.stderr),
        std::fs::read_to_string(&server.log).unwrap_or_default()
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
    assert!(
        screenshot.exists(),
        "no screenshot at {}",
        screenshot.display()
    );
}

/// The API a person would use with `curl`: a bad parameter is a 400 that
/// names it, a page never holds more than the limit, JSON is marked
/// `nosniff`, and the page allows no inline script.
#[test]
fn status_api_pages_and_rejects_bad_parameters() {
    let server = StatusServer::start();
    let http = server.http;
    let get = |path: &str| http_get(http, path).unwrap_or_else(|| panic!("GET {path}"));
    let json = |path: &str| -> serde_json::Value {
        let (code, body) = get(path);
        assert_eq!(code, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
    };

    let summary = json("/api/summary");
    assert_eq!(summary["zone"], "local.");
    assert_eq!(summary["tasks"], 9, "8 demo tasks and the hostile one");
    let served = summary["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["verdict"] == "served")
        .unwrap()["tasks"]
        .clone();
    let page = json("/api/tasks?verdict=served&limit=1000");
    assert_eq!(page["tasks_matched"], served);

    // Two at a time: the cursor walks every task once.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = json(&format!("/api/tasks?limit=2&cursor={cursor}"));
        let tasks = page["tasks"].as_array().unwrap();
        assert!(tasks.len() <= 2);
        seen.extend(
            tasks
                .iter()
                .map(|t| t["task_arn"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    let total = seen.len();
    seen.sort();
    seen.dedup();
    assert_eq!((total, seen.len()), (9, 9), "each task once");

    let lookup = json("/api/lookup?name=_grpc._tcp.api.local&type=SRV");
    assert_eq!(lookup["answer"]["rcode"], "NOERROR");
    assert_eq!(
        lookup["answer"]["answer"].as_array().unwrap().len(),
        1,
        "one served api task: {lookup}"
    );
    assert_eq!(
        lookup["tasks_matched"], 3,
        "all three api tasks, served or not"
    );
    let relative = json("/api/lookup?name=web.staging");
    assert_eq!(relative["name"], "web.staging.local.");
    assert_eq!(relative["completed"], true);
    let by_task = json("/api/lookup?name=ee00000000000000000000000000beef");
    assert_eq!(by_task["kind"], "task");
    assert_eq!(
        by_task["tasks"][0]["raw"]["tags"]["note"],
        "<img src=x onerror=alert(1)>"
    );

    for (path, parameter) in [
        ("/api/tasks?limit=1001", "limit"),
        ("/api/tasks?verdict=fine", "verdict"),
        ("/api/tasks?colour=red", "colour"),
        ("/api/lookup?name=web.local&type=BOGUS", "type"),
        ("/api/lookup?name=", "name"),
        ("/api/lookup?name=a&name=b", "name"),
    ] {
        let (code, body) = get(path);
        assert_eq!(code, 400, "{path}: {body}");
        let error: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert!(
            error["error"].as_str().unwrap().starts_with(parameter),
            "{path}: {body}"
        );
    }
    let page = head(http, "/");
    assert!(
        page.contains("content-security-policy: default-src 'none'; script-src 'self';"),
        "{page}"
    );
    let api = head(http, "/api/summary");
    assert!(api.contains("x-content-type-options: nosniff"), "{api}");
    assert!(api.contains("content-type: application/json"), "{api}");
}
