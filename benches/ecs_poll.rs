//! One ECS poll at 10, 100, 1 000 and 10 000 tasks, against the patched moto
//! server on loopback (tests/it/moto_server.py): AWS calls per operation and
//! wall time of the first (cold caches) and of later (warm) polls.
//!
//!   cargo bench --bench ecs_poll                 # all sizes
//!   ECS_POLL_SIZES=10,100 cargo bench --bench ecs_poll
//!
//! Needs python3 with moto 5.2.5 (scripts/install-test-deps). The times are
//! moto's (single Python process), not AWS's: read the call counts as the
//! portable result. `cargo test --benches` runs only the 10-task size.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ecs_dns::source::ecs::EcsSource;
use ecs_dns::source::ecs::calls::CallSnapshot;

struct MotoProcess(Child);

impl Drop for MotoProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it")
        .join(name)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn start_moto(port: u16) -> MotoProcess {
    let child = Command::new("python3")
        .arg(script("moto_server.py"))
        .arg(port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start moto: run scripts/install-test-deps");
    let moto = MotoProcess(child);
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "moto did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    moto
}

fn fixture(endpoint: &str, steps: &str) -> String {
    let mut child = Command::new("python3")
        .arg(script("ecs_fixture.py"))
        .arg(endpoint)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run ecs_fixture.py");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(steps.as_bytes())
        .expect("write steps");
    let out = child.wait_with_output().expect("fixture");
    assert!(out.status.success(), "fixture failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn subnet_of(network: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(network).expect("fixture JSON");
    value[0]["subnet"].as_str().expect("subnet").to_owned()
}

async fn poll(source: &mut EcsSource) -> (Duration, CallSnapshot, usize) {
    let before = source.calls();
    let start = Instant::now();
    let inventory = source.refresh().await.expect("poll").expect("an inventory");
    (
        start.elapsed(),
        source.calls().since(&before),
        inventory.tasks.len(),
    )
}

fn measure(tasks: usize, port: u16) {
    let _moto = start_moto(port);
    let endpoint = format!("http://127.0.0.1:{port}");
    let setup = Instant::now();
    let subnet = subnet_of(&fixture(&endpoint, r#"[{"op": "network"}]"#));
    fixture(
        &endpoint,
        &format!(
            r#"[{{"op": "bulk", "cluster": "bench", "subnet": "{subnet}", "tasks": {tasks}}}]"#
        ),
    );
    eprintln!("{tasks} tasks set up in {:?}", setup.elapsed());

    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(async {
        let mut source = EcsSource::new(vec![], None, Duration::from_secs(60), None);
        let (cold, cold_calls, seen) = poll(&mut source).await;
        assert_eq!(seen, tasks, "every task in the inventory");
        let mut warm = Vec::new();
        let mut warm_calls = CallSnapshot::default();
        for _ in 0..3 {
            let (took, calls, _) = poll(&mut source).await;
            warm.push(took);
            warm_calls = calls;
        }
        warm.sort();
        println!(
            "tasks={tasks:>6} cold: {cold:>10.3?} calls={:>4} [{cold_calls}]",
            cold_calls.total_calls()
        );
        println!(
            "tasks={tasks:>6} warm: {:>10.3?} calls={:>4} [{warm_calls}] (median of 3)",
            warm[1],
            warm_calls.total_calls()
        );
    });
}

fn main() {
    // The SDK reads these; set before any thread exists.
    for (key, value) in [
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ] {
        // SAFETY: single-threaded here: no other thread reads the environment.
        unsafe { std::env::set_var(key, value) };
    }
    let bench = std::env::args().any(|a| a == "--bench");
    let sizes: Vec<usize> = match std::env::var("ECS_POLL_SIZES") {
        Ok(list) => list
            .split(',')
            .filter_map(|n| n.trim().parse().ok())
            .collect(),
        Err(_) if bench => vec![10, 100, 1_000, 10_000],
        // `cargo test --benches`: keep it quick.
        Err(_) => vec![10],
    };
    for tasks in sizes {
        // Each size gets its own moto. SAFETY: no other thread runs here: the
        // runtime of the previous size is gone.
        let port = free_port();
        unsafe { std::env::set_var("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}")) };
        measure(tasks, port);
    }
}
