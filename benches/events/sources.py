#!/usr/bin/env python3
"""Several sources at scale: ecs-dns (release build) reading SOURCES
accounts and regions, each its own moto server with TASKS tasks, all their
events through one central queue (on the first source's moto, the ecs-dns
account): the first source is that account itself, the others are reached
through an assumed role (moto keeps a role's resources in the role's
account) in other regions. CHANGES task starts and stops a minute, spread
over the sources, for MINUTES minutes; each change's event goes into the
central queue (the central account's own through its bus rule, a member's
as the central bus would forward it). Prints, per source: ECS+EC2(+STS)
calls a second during the churn (each moto's own call counter) and at the
start-up read, event-to-answer p50/p99/max; SQS calls; ecs-dns's resident
set (steady and peak) and CPU. Writes target/bench/sources.json.

    scripts/bench-sources                               # 3 x 10 000 tasks, 100 changes a minute, 3 min
    SOURCES_TASKS=500 SOURCES_MINUTES=1 scripts/bench-sources

Everything listens on 127.0.0.1 high ports and is stopped at the end.
"""

import datetime
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

import boto3

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "it"))
sys.path.insert(0, os.path.join(REPO, "benches", "load"))
sys.path.insert(0, os.path.join(REPO, "benches", "soak"))
import bench  # noqa: E402  (free_port, start, stop: benches/load/bench.py)
import soak  # noqa: E402  (status: the resident set)
import ecs_fixture as fixture  # noqa: E402
import importlib.util  # noqa: E402

free_port = bench.free_port

_spec = importlib.util.spec_from_file_location("events_bench", os.path.join(HERE, "bench.py"))
events_bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(events_bench)
query, wait_until, cpu_seconds, set_task = (
    events_bench.query, events_bench.wait_until, events_bench.cpu_seconds, events_bench.set_task)

ZONE = "ecs.internal"
CLUSTER = "bench"
CENTRAL_ACCOUNT = fixture.ACCOUNT
# (name, account through a role or None for the central account, region)
SOURCES = [
    ("central", None, "us-east-1"),
    ("prod", "111111111111", "us-west-2"),
    ("staging", "222222222222", "eu-west-1"),
    ("dev", "333333333333", "ap-southeast-2"),
]


class Account:
    """One source's moto server and the fixture's clients for it."""

    def __init__(self, name, account, region, work):
        self.name, self.account, self.region = name, account or CENTRAL_ACCOUNT, region
        self.role = f"arn:aws:iam::{account}:role/ecs-dns-read" if account else None
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.proc = bench.start([sys.executable, os.path.join(REPO, "tests/it/moto_server.py"), str(self.port)],
                                open(os.path.join(work, f"moto-{name}.log"), "w"))
        wait_until(f"moto {name}", lambda: _answers(self.endpoint + "/_ecsdns/calls"), deadline=60, step=0.2)

    def use(self):
        """Points the fixture at this account: (ecs, ec2)."""
        fixture.ENDPOINT, fixture.REGION = self.endpoint, self.region
        fixture.CREDENTIALS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
        if self.role:
            fixture.assume_role(self.role)
        return fixture.client("ecs"), fixture.client("ec2")

    def calls(self):
        return json.loads(urllib.request.urlopen(self.endpoint + "/_ecsdns/calls", timeout=10).read())

    def reset_calls(self):
        request = urllib.request.Request(self.endpoint + "/_ecsdns/calls/reset", data=b"", method="POST")
        urllib.request.urlopen(request, timeout=10).read()


def member_event(ecs, account, task, version, queue_url, central):
    """The event of `task` as the central bus delivers a member's: its
    envelope names the member's account and region."""
    entry = fixture.task_event(ecs, CLUSTER, task, version)
    detail = json.loads(entry["Detail"])
    body = {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": entry["DetailType"],
        "source": "aws.ecs", "account": account.account, "region": account.region,
        "time": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "resources": [detail["taskArn"]], "detail": detail,
    }
    sqs = boto3.client("sqs", endpoint_url=central.endpoint, region_name=central.region,
                       aws_access_key_id="test", aws_secret_access_key="test")
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(body))


def memory(pid):
    """(VmRSS, VmHWM) in MiB."""
    rss, hwm = soak.status(pid)
    return rss / soak.MIB, hwm / soak.MIB


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))] * 1000 if values else float("nan")


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, "target/release/ecs-dns")
    tasks = int(os.environ.get("SOURCES_TASKS", 10000))
    count = int(os.environ.get("SOURCES_COUNT", 3))
    minutes = float(os.environ.get("SOURCES_MINUTES", 3))
    per_minute = int(os.environ.get("SOURCES_CHANGES", 100))
    out_dir = os.path.join(REPO, "target", "bench")
    os.makedirs(out_dir, exist_ok=True)
    work = tempfile.mkdtemp(prefix="ecs-dns-sources-")
    accounts, server = [], None
    try:
        accounts = [Account(name, acct, region, work) for name, acct, region in SOURCES[:count]]
        central = accounts[0]
        setup = {}
        for account in accounts:
            started = time.monotonic()
            ecs, ec2 = account.use()
            net = fixture.run_step(ecs, ec2, {"op": "network"})
            fixture.run_step(ecs, ec2, {"op": "bulk", "cluster": CLUSTER, "subnet": net["subnet"], "tasks": tasks})
            churn_def = fixture.run_step(ecs, ec2, {"op": "taskdef", "family": "churn", "mode": "awsvpc",
                                                    "ports": [{"container": 8080}]})["arn"]
            setup[account.name] = {"net": net, "churn_def": churn_def}
            print(f"moto {account.name}: {tasks} tasks set up in {time.monotonic() - started:.0f}s", flush=True)
        ecs, ec2 = central.use()
        queue = fixture.run_step(ecs, ec2, {"op": "queue", "name": "ecs-dns-central"})

        sources = [{"name": a.name, "region": a.region, "clusters": [CLUSTER], "endpoint_url": a.endpoint}
                   for a in accounts]
        for source, account in zip(sources, accounts):
            if account.role:
                source.update(role_arn=account.role, external_id="bench-external-id")
        dns, http = free_port(), free_port()
        env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
                   AWS_EC2_METADATA_DISABLED="true", RUST_LOG="info", ECS_DNS_SOURCES=json.dumps(sources))
        for key in ("AWS_ENDPOINT_URL", "AWS_REGION"):
            env.pop(key, None)
        for account in accounts:
            account.reset_calls()
        log_path = os.path.join(work, "ecs-dns.log")
        started = time.monotonic()
        server = subprocess.Popen(
            [binary, "serve", "--zone", ZONE, "--listen", f"127.0.0.1:{dns}", "--http", f"127.0.0.1:{http}",
             "--events-queue", queue["url"], "--reconcile-interval", "10m", "--poll-interval", "5s",
             "--ready-needs-all-sources", "true"],
            env=env, stdout=subprocess.DEVNULL, stderr=open(log_path, "w"), start_new_session=True)
        took = wait_until("every source read", lambda: _ready(http), deadline=900, step=0.5)
        start_calls = {a.name: a.calls() for a in accounts}
        print(f"ecs-dns: every source read {took:.1f}s after start; calls: "
              + "; ".join(f"{n}: {sum(c.values())}" for n, c in start_calls.items()), flush=True)
        time.sleep(5)
        for account in accounts:
            account.reset_calls()
        cpu_before = cpu_seconds(server.pid)
        latencies = {a.name: [] for a in accounts}
        # The bench's own calls on each moto (its counter counts every
        # client), taken off ecs-dns's: the role assumed to act as the
        # member, RunTask or StopTask, the DescribeTasks that builds the
        # event, PutEvents and the queue's SendMessage.
        own = {a.name: {} for a in accounts}

        def mine_too(account, op, n=1):
            own[account.name][op] = own[account.name].get(op, 0) + n
        running = {a.name: [] for a in accounts}
        rss = []
        interval = 60.0 / per_minute
        end = time.monotonic() + minutes * 60
        version, changes = 0, 0
        next_change = time.monotonic()
        while time.monotonic() < end:
            time.sleep(max(0.0, next_change - time.monotonic()))
            next_change += interval
            version += 1
            account = accounts[changes % len(accounts)]
            ecs, ec2 = account.use()
            if account.role:
                mine_too(account, "AssumeRole")
            parts = setup[account.name]
            mine = running[account.name]
            starting = (changes // len(accounts)) % 2 == 0 or not mine
            if starting:
                task = fixture.run_step(ecs, ec2, {
                    "op": "run", "cluster": CLUSTER, "taskdef": parts["churn_def"], "group": "service:churn",
                    "subnet": parts["net"]["subnet"], "sg": parts["net"]["sg"], "launch_type": "FARGATE"})["tasks"][0]
                mine_too(account, "RunTask")
            else:
                task = mine.pop(0)
                ecs.stop_task(cluster=CLUSTER, task=task["arn"], reason="bench")
                set_task(account.port, task["arn"], {"lastStatus": "STOPPED", "desiredStatus": "STOPPED"})
                mine_too(account, "StopTask")
            mine_too(account, "DescribeTasks")
            if account is central:
                events_bench.put_event(ecs, task["arn"], version)
                mine_too(central, "PutEvents")
            else:
                member_event(ecs, account, task["arn"], version, queue["url"], central)
                mine_too(central, "SendMessage")
            sent = time.monotonic()
            name = f"{task['id']}.churn.{ZONE}"
            if starting:
                wait_until(f"{name} served", lambda: query(dns, name) == (0, 1))
                mine.append(task)
            else:
                wait_until(f"{name} withdrawn", lambda: query(dns, name)[0] == 3)
            latencies[account.name].append(time.monotonic() - sent)
            rss.append(memory(server.pid)[0])
            changes += 1
        seconds = minutes * 60
        cpu = cpu_seconds(server.pid) - cpu_before
        steady, peak = sorted(rss)[len(rss) // 2], memory(server.pid)[1]
        rows = []
        print()
        print(f"{len(accounts)} sources x {tasks} tasks, {changes} changes in {minutes:g} min "
              f"({per_minute}/min over the sources), one central queue")
        for account in accounts:
            calls = {k: v - own[account.name].get(k, 0) for k, v in account.calls().items()}
            calls = {k: v for k, v in calls.items() if v}
            sqs = sum(v for k, v in calls.items() if k in ("ReceiveMessage", "DeleteMessageBatch", "DeleteMessage"))
            aws = sum(calls.values()) - sqs
            lat = latencies[account.name]
            row = {"source": account.name, "account": account.account, "region": account.region,
                   "start_calls": sum(start_calls[account.name].values()),
                   "churn_calls": aws, "calls_per_second": aws / seconds, "sqs_calls": sqs, "changes": len(lat),
                   "p50_ms": pct(lat, 0.5), "p99_ms": pct(lat, 0.99),
                   "max_ms": max(lat) * 1000 if lat else float("nan"), "calls": calls}
            rows.append(row)
            ops = " ".join(f"{k}={v}" for k, v in sorted(calls.items()) if v)
            print(f"{account.name:>8} ({account.account}, {account.region}): start-up read {row['start_calls']} calls; "
                  f"churn {aws} ECS+EC2+STS calls ({row['calls_per_second']:.2f}/s; SQS {sqs}) [{ops}]; "
                  f"event to answer p50 {row['p50_ms']:.0f} ms, p99 {row['p99_ms']:.0f} ms, max {row['max_ms']:.0f} ms "
                  f"({len(lat)} changes)")
        print(f"ecs-dns: resident {steady:.1f} MiB steady, peak {peak:.1f} MiB (VmHWM from start); "
              f"CPU {cpu:.1f} s over {seconds:.0f} s")
        with open(os.path.join(out_dir, "sources.json"), "w") as f:
            json.dump({"tasks_per_source": tasks, "minutes": minutes, "changes_per_minute": per_minute,
                       "startup_seconds": took, "rss_steady_mib": steady, "rss_peak_mib": peak,
                       "cpu_seconds": cpu, "sources": rows}, f, indent=2)
        print(f"written {os.path.join(out_dir, 'sources.json')}")
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            server.wait(10)
        for account in accounts:
            bench.stop(account.proc)


def _answers(url):
    try:
        urllib.request.urlopen(url, timeout=2).read()
        return True
    except OSError:
        return False


def _ready(http):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{http}/readyz", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


if __name__ == "__main__":
    main()
