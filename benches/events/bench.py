#!/usr/bin/env python3
"""Events-mode benchmark: ecs-dns (release build) reading ECS events from an
SQS queue that EventBridge fills, against moto on loopback, with TASKS
tasks in one cluster and CHANGES task starts and stops a minute for MINUTES
minutes. Prints, for the churn only: ECS+EC2 calls a minute and SQS calls
apart, event-to-answer latency (p50, p99: from PutEvents returning to the
first DNS answer that shows the change), publications, and the server's
CPU time; and the calls of the full read at start (what one poll costs).

    scripts/bench-events                     # 10 000 tasks, 100 a minute, 5 min
    EVENTS_TASKS=1000 EVENTS_MINUTES=1 scripts/bench-events

Everything listens on 127.0.0.1 high ports and is stopped at the end.
"""

import json
import os
import random
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "it"))
sys.path.insert(0, os.path.join(REPO, "benches", "load"))
import bench  # noqa: E402  (free_port, start, stop)
import ecs_fixture as fixture  # noqa: E402

ZONE = "ecs.internal"
CLUSTER = "bench"


def query(port, name):
    """(rcode, answer count) of an A query for `name`, over UDP."""
    qname = b"".join(bytes([len(l)]) + l.encode() for l in name.rstrip(".").split(".")) + b"\0"
    packet = struct.pack(">HHHHHH", random.randrange(65536), 0x0100, 1, 0, 0, 0) + qname + struct.pack(">HH", 1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(1)
        s.sendto(packet, ("127.0.0.1", port))
        reply = s.recv(4096)
    _, flags, _, ancount, _, _ = struct.unpack(">HHHHHH", reply[:12])
    return flags & 0xF, ancount


def wait_until(what, check, deadline=10.0, step=0.005):
    start = time.monotonic()
    while time.monotonic() - start < deadline:
        if check():
            return time.monotonic() - start
        time.sleep(step)
    raise SystemExit(f"{what}: not within {deadline}s")


def metrics(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("ecs_dns_aws_calls_total{") or line.startswith("ecs_dns_events_total{"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def set_task(moto_port, task, state):
    body = json.dumps(dict(state, task=task)).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{moto_port}/_ecsdns/task", data=body, method="POST")
    urllib.request.urlopen(request, timeout=10).read()


def put_event(ecs, task, version):
    entry = fixture.task_event(ecs, CLUSTER, task, version)
    result = fixture.client("events").put_events(Entries=[entry])
    if result.get("FailedEntryCount"):
        raise SystemExit(f"put_events failed: {result}")


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, "target/release/ecs-dns")
    tasks = int(os.environ.get("EVENTS_TASKS", 10000))
    minutes = float(os.environ.get("EVENTS_MINUTES", 5))
    per_minute = int(os.environ.get("EVENTS_CHANGES", 100))
    work = tempfile.mkdtemp(prefix="ecs-dns-events-")
    moto_port, dns, http = bench.free_port(), bench.free_port(), bench.free_port()
    moto = bench.start([sys.executable, os.path.join(REPO, "tests/it/moto_server.py"), str(moto_port)],
                       open(os.path.join(work, "moto.log"), "w"))
    server = None
    try:
        endpoint = f"http://127.0.0.1:{moto_port}"
        wait_until("moto", lambda: _answers(endpoint + "/_ecsdns/calls"), deadline=60, step=0.2)
        ecs, ec2 = fixture.clients(endpoint)
        started = time.monotonic()
        net = fixture.run_step(ecs, ec2, {"op": "network"})
        fixture.run_step(ecs, ec2, {"op": "bulk", "cluster": CLUSTER, "subnet": net["subnet"], "tasks": tasks})
        queue = fixture.run_step(ecs, ec2, {"op": "queue", "name": "ecs-dns-events"})
        churn_def = fixture.run_step(ecs, ec2, {"op": "taskdef", "family": "churn", "mode": "awsvpc",
                                                "ports": [{"container": 8080}]})["arn"]
        print(f"moto: {tasks} tasks set up in {time.monotonic() - started:.0f}s", flush=True)

        env = dict(os.environ, AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="test",
                   AWS_SECRET_ACCESS_KEY="test", AWS_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true",
                   RUST_LOG="info")
        log_path = os.path.join(work, "ecs-dns.log")
        server = subprocess.Popen(
            [binary, "serve", "--source", "ecs", "--cluster", CLUSTER, "--zone", ZONE,
             "--listen", f"127.0.0.1:{dns}", "--http", f"127.0.0.1:{http}",
             "--events-queue", queue["url"], "--reconcile-interval", "10m", "--poll-interval", "5s"],
            env=env, stdout=subprocess.DEVNULL, stderr=open(log_path, "w"), start_new_session=True)
        took = wait_until("the first full read", lambda: _zone_has_tasks(log_path), deadline=600, step=0.2)
        start_calls = metrics(http)
        print(f"ecs-dns: first full read done after {took:.1f}s; its calls: {_ops(start_calls)}", flush=True)

        before, cpu_before = metrics(http), cpu_seconds(server.pid)
        publications_before = open(log_path).read().count("zone changed")
        latencies = {"start": [], "stop": []}
        running = []
        interval = 60.0 / per_minute
        end = time.monotonic() + minutes * 60
        version = 0
        changes = 0
        next_change = time.monotonic()
        while time.monotonic() < end:
            time.sleep(max(0.0, next_change - time.monotonic()))
            next_change += interval
            version += 1
            if changes % 2 == 0 or not running:
                task = fixture.run_step(ecs, ec2, {
                    "op": "run", "cluster": CLUSTER, "taskdef": churn_def, "group": "service:churn",
                    "subnet": net["subnet"], "sg": net["sg"], "launch_type": "FARGATE"})["tasks"][0]
                name = f"{task['id']}.churn.{ZONE}"
                put_event(ecs, task["arn"], version)
                sent = time.monotonic()
                wait_until(f"{name} served", lambda: query(dns, name) == (0, 1))
                latencies["start"].append(time.monotonic() - sent)
                running.append(task)
            else:
                task = running.pop(0)
                name = f"{task['id']}.churn.{ZONE}"
                ecs.stop_task(cluster=CLUSTER, task=task["arn"], reason="bench")
                set_task(moto_port, task["arn"], {"lastStatus": "STOPPED", "desiredStatus": "STOPPED"})
                put_event(ecs, task["arn"], version)
                sent = time.monotonic()
                wait_until(f"{name} withdrawn", lambda: query(dns, name)[0] == 3)
                latencies["stop"].append(time.monotonic() - sent)
            changes += 1
        after, cpu_after = metrics(http), cpu_seconds(server.pid)
        publications = open(log_path).read().count("zone changed") - publications_before

        def delta(prefix):
            return {k: after.get(k, 0) - before.get(k, 0) for k in after if k.startswith(prefix)}

        calls = delta("ecs_dns_aws_calls_total")
        sqs = sum(v for k, v in calls.items() if "ReceiveMessage" in k or "DeleteMessageBatch" in k)
        aws = sum(calls.values()) - sqs
        all_latencies = sorted(latencies["start"] + latencies["stop"])

        def pct(values, p):
            return values[min(len(values) - 1, int(len(values) * p))] * 1000

        print()
        print(f"{tasks} tasks, {changes} changes in {minutes:g} min ({per_minute}/min), events mode")
        print(f"ECS+EC2 calls: {aws:.0f} ({aws / minutes:.1f}/min, {aws / minutes / 60:.2f}/s): {_ops(calls, exclude_sqs=True)}")
        print(f"SQS calls: {sqs:.0f} ({sqs / minutes:.1f}/min)")
        print(f"event to answer: p50 {pct(all_latencies, 0.5):.0f} ms, p99 {pct(all_latencies, 0.99):.0f} ms, "
              f"max {all_latencies[-1] * 1000:.0f} ms (starts p50 {statistics.median(latencies['start']) * 1000:.0f} ms, "
              f"stops p50 {statistics.median(latencies['stop']) * 1000:.0f} ms)")
        print(f"publications: {publications}; events: {_ops(delta('ecs_dns_events_total'))}")
        print(f"ecs-dns CPU: {cpu_after - cpu_before:.1f} s over {minutes * 60:.0f} s")
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            server.wait(10)
        bench.stop(moto)


def _answers(url):
    try:
        urllib.request.urlopen(url, timeout=2).read()
        return True
    except OSError:
        return False


def _zone_has_tasks(log_path):
    with open(log_path) as f:
        return "zone changed" in f.read()


def _ops(values, exclude_sqs=False):
    parts = []
    for key, value in sorted(values.items()):
        # Every label value: "DescribeTasks", or "task/applied" for the events.
        label = "/".join(key.split('"')[1::2]) if '"' in key else key
        if exclude_sqs and label in ("ReceiveMessage", "DeleteMessageBatch"):
            continue
        if value:
            parts.append(f"{label}={value:.0f}")
    return " ".join(parts) or "none"


if __name__ == "__main__":
    main()
