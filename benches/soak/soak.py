#!/usr/bin/env python3
"""Soak bench: the resident set of the running `ecs-dns serve`, not of
in-process structures. Runs the release binary with the file source at each
size, replaces some tasks every poll (churn) for a while, samples the
resident set from /proc/PID/status every second, and prints steady and peak
resident set per task against a server with no tasks.

Then the same with the ECS source against the patched moto server
(tests/it/moto_server.py: ListTasks paged as real ECS pages) at
--ecs-tasks tasks in 50 services, some tasks stopped and new ones started
between polls. Skipped, with a line saying so, when moto is not installed
(scripts/install-test-deps) or with --ecs-tasks 0.

Run through scripts/soak (which builds the release binary). Everything
listens on 127.0.0.1 high ports and is stopped at the end.
"""

import argparse
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
import threading
import time
import urllib.request

# No __pycache__ left in the tree by the imports below.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "load"))
import bench  # noqa: E402  (the load bench's inventory and helpers)

TESTS_IT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "it")
MIB = 1024 * 1024


def status(pid):
    """(VmRSS, VmHWM) of `pid`, in bytes."""
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) * 1024
    return values["VmRSS"], values["VmHWM"]


def toml_value(value):
    """One value of an inventory task in TOML (strings as JSON writes them:
    TOML's basic strings take the same escapes)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        pairs = ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items())
        return "{ " + pairs + " }" if pairs else "{}"
    raise TypeError(f"no TOML for {value!r}")


def toml_inventory(document):
    """The inventory as `[[tasks]]` blocks, the shape people write by hand."""
    if not document["tasks"]:
        return "tasks = []\n"
    blocks = []
    for task in document["tasks"]:
        lines = ["[[tasks]]"]
        lines += [f"{k} = {toml_value(v)}" for k, v in task.items() if v is not None]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def write_atomically(path, document):
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        if path.endswith(".toml"):
            f.write(toml_inventory(document))
        else:
            json.dump(document, f)
    os.replace(tmp, path)


def serve(binary, config, log_path, env=None):
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [binary, "serve", "--config", config], stdout=subprocess.DEVNULL, stderr=log, env=env
    )
    return proc, log


def wait_ready(proc, port, what, deadline, log_path):
    """Waits for an SOA answer; fails at once, with the server's last log
    lines, if the server exits first."""
    start = time.time()
    while time.time() - start < deadline:
        if proc.poll() is not None:
            with open(log_path) as f:
                tail = f.read()[-2000:]
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{tail}")
        status, answer = bench.dig(port, bench.ZONE, "SOA")
        if status == "NOERROR" and answer:
            return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not answer SOA within {deadline}s")


def stop(proc, log):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


class Queries:
    """A modest, bounded query load on loopback while the resident set is
    sampled, so that answers rendered on demand (the fast path's table) are
    in the measurement: `rate` UDP queries a second from one socket, each
    for a (name, type) drawn from `names`, replies read as they come.
    Counts sent queries and replies by rcode."""

    TYPES = {"A": 1, "AAAA": 28, "SRV": 33}

    def __init__(self, port, names, rate):
        self.port, self.names, self.rate = port, names, rate
        self.sent = 0
        self.noerror = 0
        self.nxdomain = 0
        self.other = 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def __enter__(self):
        if self.rate > 0 and self.names:
            self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        if self.thread.is_alive():
            self.thread.join(timeout=5)

    def packet(self, qid, name, qtype):
        labels = b"".join(bytes([len(l)]) + l.encode() for l in name.rstrip(".").split("."))
        return (struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 0) + labels + b"\0"
                + struct.pack(">HH", self.TYPES[qtype], 1))

    def run(self):
        rng = random.Random(1)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        tick = 0.02
        per_tick = self.rate * tick
        owed = 0.0
        next_tick = time.monotonic()
        try:
            while not self.done.is_set():
                owed += per_tick
                while owed >= 1:
                    owed -= 1
                    name, qtype = rng.choice(self.names)
                    try:
                        sock.sendto(self.packet(self.sent & 0xFFFF, name, qtype),
                                    ("127.0.0.1", self.port))
                        self.sent += 1
                    except OSError:
                        pass
                self.drain(sock)
                next_tick += tick
                time.sleep(max(0.0, next_tick - time.monotonic()))
            time.sleep(0.2)
            self.drain(sock)
        finally:
            sock.close()

    def drain(self, sock):
        while True:
            try:
                reply = sock.recv(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            rcode = reply[3] & 0xF if len(reply) >= 12 else -1
            if rcode == 0:
                self.noerror += 1
            elif rcode == 3:
                self.nxdomain += 1
            else:
                self.other += 1

    def summary(self, seconds):
        return {
            "queries": self.sent,
            "qps": self.sent / seconds if seconds else 0,
            "noerror": self.noerror,
            "nxdomain": self.nxdomain,
            "other_or_lost": self.sent - self.noerror - self.nxdomain,
        }


def file_names(tasks, services, clusters):
    """Names the file-source zone has: the load bench's query mix less its
    NXDOMAIN part (tasks replaced by the churn answer NXDOMAIN)."""
    rng = random.Random(7)
    lines = bench.queries(tasks, services, clusters, 20000, 0, rng)
    pairs = [tuple(line.split()) for line in lines]
    return [(n, t) for n, t in pairs if not n.startswith("nope-")]


def sample_for(proc, duration, churn_step, every):
    """Samples the resident set of `proc` each second for `duration`
    seconds, calling `churn_step()` every `every` seconds. Returns the
    peak before the samples (the start) and the samples."""
    # The peak of the start (first read, first build), then the peak
    # counter reset (Linux: 5 > clear_refs) so that the samples' VmHWM is
    # the peak under churn alone.
    start_peak = status(proc.pid)[1]
    with open(f"/proc/{proc.pid}/clear_refs", "w") as f:
        f.write("5")
    started = time.time()
    samples = []
    next_churn = started + every
    while time.time() - started < duration:
        rss, hwm = status(proc.pid)
        samples.append((time.time() - started, rss, hwm))
        if churn_step and time.time() >= next_churn:
            churn_step()
            next_churn = time.time() + every
        time.sleep(max(0.0, 1.0 - (time.time() - started) % 1.0))
    return start_peak, samples


def soak(binary, tasks, duration, churn, workdir, qps=0, fmt="json"):
    """Runs one server at `tasks` tasks for `duration` seconds with `churn`
    tasks replaced each second and `qps` queries a second, its inventory
    file in `fmt` (json or toml); returns the samples of the resident set
    and the query load's summary."""
    inventory_path = os.path.join(workdir, f"inventory-{tasks}.{fmt}")
    services = max(1, tasks // 10)
    document = bench.inventory(tasks, services, 3) if tasks else {"tasks": []}
    write_atomically(inventory_path, document)
    port = bench.free_port()
    config = os.path.join(workdir, f"ecs-dns-{tasks}-{fmt}.toml")
    with open(config, "w") as f:
        f.write(
            f'zone = "local"\nlisten = ["127.0.0.1:{port}"]\nsource = "file"\n'
            f'inventory = "{inventory_path}"\npoll_interval = "1s"\n'
            'nameservers = ["ns1=127.0.0.1"]\n'
        )
    log_path = os.path.join(workdir, f"ecs-dns-{tasks}-{fmt}.log")
    proc, log = serve(binary, config, log_path)
    generation = 0

    def replace_some():
        # Replace `churn` tasks by new ones: new ids, same shape.
        nonlocal generation
        generation += 1
        for k in range(churn):
            i = (generation * churn + k) % tasks
            task = document["tasks"][i]
            task["task_id"] = f"{generation:08x}{i:024x}"
            task["task_arn"] = task["task_arn"].rsplit("/", 1)[0] + "/" + task["task_id"]
        write_atomically(inventory_path, document)

    names = file_names(tasks, services, 3) if tasks else []
    try:
        wait_ready(proc, port, f"ecs-dns with {tasks} tasks", 300, log_path)
        with Queries(port, names, qps) as load:
            samples = sample_for(proc, duration, replace_some if tasks and churn else None, 1)
        return samples, load.summary(duration)
    finally:
        stop(proc, log)


def moto_available():
    return subprocess.run(
        [sys.executable, "-c", "import moto.server, boto3"], capture_output=True
    ).returncode == 0


def soak_ecs(binary, tasks, duration, churn, workdir, qps=0, events=False):
    """The ECS source against moto: `tasks` bridge tasks in 50 services on
    instances of 100 tasks, `churn` tasks stopped and as many started every
    5 seconds (a poll of 10 000 tasks in moto takes about 15 s, so each poll
    sees some), `qps` queries a second for the services' names. Then, with
    `events`, the same in events mode on the same moto (a queue that an
    EventBridge rule fills, as benches/events/bench.py sets up): each stop
    and start is also put as an ECS event. Returns one (mode, samples,
    polls, query summary) per mode run."""
    sys.path.insert(0, TESTS_IT)
    import ecs_fixture  # noqa: E402  (the tests' moto scenarios)

    moto_port = bench.free_port()
    endpoint = f"http://127.0.0.1:{moto_port}"
    moto_log = open(os.path.join(workdir, "moto.log"), "w")
    moto = subprocess.Popen(
        [sys.executable, os.path.join(TESTS_IT, "moto_server.py"), str(moto_port)],
        stdout=moto_log, stderr=subprocess.STDOUT,
    )
    proc = log = None
    results = []
    try:
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/_ecsdns/calls", timeout=2).read()
                break
            except OSError:
                if time.time() > deadline:
                    raise RuntimeError("moto did not answer within 60 s")
                time.sleep(0.2)
        for key, value in aws_env(moto_port).items():
            os.environ.setdefault(key, value)
        ecs, ec2 = ecs_fixture.clients(endpoint)
        setup = time.time()
        network = ecs_fixture.run_step(ecs, ec2, {"op": "network"})
        per_service = max(1, tasks // 50)
        ecs_fixture.run_step(ecs, ec2, {
            "op": "bulk", "cluster": "soak", "subnet": network["subnet"], "tasks": tasks,
            "per_service": per_service, "families": 5,
        })
        arns = []
        for page in ecs.get_paginator("list_tasks").paginate(cluster="soak"):
            arns.extend(page["taskArns"])
        definitions = ecs.list_task_definitions()["taskDefinitionArns"]
        queue = ecs_fixture.run_step(ecs, ec2, {"op": "queue", "name": "ecs-dns-soak"}) if events else None
        print(f"  (moto: {len(arns)} tasks set up in {time.time() - setup:.0f} s)", flush=True)
        services = min(50, tasks)
        names = [(f"svc{s}.{bench.ZONE}", "A") for s in range(services)]
        names += [(f"_http._tcp.svc{s}.{bench.ZONE}", "SRV") for s in range(services)]
        generation = 0
        version = 0

        def replace_some(put_events):
            # Stop the oldest `churn` tasks; start as many in their services.
            nonlocal generation, version
            generation += 1
            stopped = [arns.pop(0) for _ in range(min(churn, len(arns)))]
            for arn in stopped:
                ecs.stop_task(cluster="soak", task=arn, reason="soak")
            service = generation % 50
            started = ecs_fixture.run_step(ecs, ec2, {
                "op": "run", "cluster": "soak", "count": churn,
                "taskdef": definitions[service % len(definitions)],
                "group": f"service:svc{service}",
            })
            new = [t["arn"] for t in started["tasks"]]
            arns.extend(new)
            if put_events:
                version += 1
                ecs_fixture.run_step(ecs, ec2, {
                    "op": "events", "cluster": "soak", "tasks": stopped + new, "version": version,
                })

        for mode in ["poll", "events"] if events else ["poll"]:
            port = bench.free_port()
            config = os.path.join(workdir, f"ecs-dns-ecs-{mode}-{tasks}.toml")
            with open(config, "w") as f:
                f.write(
                    f'zone = "local"\nlisten = ["127.0.0.1:{port}"]\nsource = "ecs"\n'
                    'clusters = ["soak"]\npoll_interval = "1s"\nrequest_timeout = "60s"\n'
                    'nameservers = ["ns1=127.0.0.1"]\n'
                )
                if mode == "events":
                    # The full read at start and not again within the run:
                    # what events mode holds between full reads.
                    f.write(f'events_queue = "{queue["url"]}"\nreconcile_interval = "10m"\n')
            # Debug for the ECS source: its "ecs poll done" lines count the polls.
            env = dict(os.environ, RUST_LOG="info,ecs_dns::source::ecs=debug", **aws_env(moto_port))
            log_path = os.path.join(workdir, f"ecs-dns-ecs-{mode}-{tasks}.log")
            proc, log = serve(binary, config, log_path, env)
            wait_ready(proc, port, f"ecs-dns (ecs source, {mode}) with {tasks} tasks", 600, log_path)
            step = (lambda: replace_some(mode == "events")) if churn else None
            with Queries(port, names, qps) as load:
                samples = sample_for(proc, duration, step, 5)
            stop(proc, log)
            proc = None
            with open(log_path) as f:
                text = f.read()
            polls = text.count("ecs poll done")
            results.append((mode, samples, polls, load.summary(duration)))
        return results
    finally:
        if proc:
            stop(proc, log)
        moto.terminate()
        try:
            moto.wait(timeout=10)
        except subprocess.TimeoutExpired:
            moto.kill()
        moto_log.close()


def aws_env(port):
    """Points the AWS SDK (and boto3) at moto, as tests/it/moto.rs does."""
    return {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def row_of(source, size, measured, baseline, churn, duration, load):
    # Steady: the median of the last two thirds (after the first load).
    start_peak, samples = measured
    tail = [s[1] for s in samples[len(samples) // 3:]] or [samples[-1][1]]
    steady = statistics.median(tail)
    churn_peak = max(s[2] for s in samples)
    peak = max(start_peak, churn_peak)
    row = {
        "source": source,
        "tasks": size,
        "churn": churn,
        "seconds": duration,
        "baseline_bytes": baseline,
        "steady_bytes": steady,
        "peak_bytes": peak,
        "start_peak_bytes": start_peak,
        "churn_peak_bytes": churn_peak,
        "steady_per_task": (steady - baseline) / size,
        "peak_over_steady": peak / steady,
        "target_bytes": 30 * MIB + 3 * 1024 * size,
        "load": load,
    }
    print(
        f"{source:>11} {size:>7} tasks: steady {steady / MIB:7.1f} MiB "
        f"({row['steady_per_task'] / 1024:5.2f} KiB/task), "
        f"peak {peak / MIB:7.1f} MiB ({row['peak_over_steady']:.2f}x steady; "
        f"start {start_peak / MIB:.1f}, churn {churn_peak / MIB:.1f}); "
        f"target {row['target_bytes'] / MIB:.0f} MiB",
        flush=True,
    )
    print(
        f"{'':>22}({load['qps']:.0f} queries/s: {load['noerror']} NOERROR, "
        f"{load['nxdomain']} NXDOMAIN, {load['other_or_lost']} other or lost)",
        flush=True,
    )
    return row


def table(rows, baseline):
    """The table the README takes: steady, per task, peak, peak/steady."""
    lines = [
        "| source, tasks | steady | per task | peak (start, churn) | peak / steady |",
        "|---|---|---|---|---|",
        f"| none (`tasks = []`) | {baseline / MIB:.1f} MiB | – | – | – |",
    ]
    for r in rows:
        tasks = f"{r['tasks']:,}".replace(",", " ")
        lines.append(
            f"| {r['source']}, {tasks} | {r['steady_bytes'] / MIB:.1f} MiB | "
            f"{r['steady_per_task'] / 1024:.2f} KiB | {r['peak_bytes'] / MIB:.1f} MiB "
            f"({r['start_peak_bytes'] / MIB:.1f}, {r['churn_peak_bytes'] / MIB:.1f}) | "
            f"{r['peak_over_steady']:.2f} |"
        )
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bin", required=True)
    p.add_argument("--sizes", default=os.environ.get("SOAK_SIZES", "10000,100000"))
    p.add_argument("--duration", type=int, default=int(os.environ.get("SOAK_SECONDS", 150)))
    p.add_argument("--formats", default=os.environ.get("SOAK_FORMATS", "json,toml"),
                   help="inventory file formats for the file source rows")
    p.add_argument("--churn", type=int, default=int(os.environ.get("SOAK_CHURN", 50)))
    p.add_argument("--ecs-tasks", type=int, default=int(os.environ.get("SOAK_ECS_TASKS", 10000)))
    p.add_argument("--ecs-churn", type=int, default=int(os.environ.get("SOAK_ECS_CHURN", 20)))
    p.add_argument("--events", type=int, default=int(os.environ.get("SOAK_EVENTS", 1)),
                   help="1: also the ECS source in events mode (0: not)")
    p.add_argument("--qps", type=int, default=int(os.environ.get("SOAK_QPS", 300)),
                   help="queries a second while sampling (0: none)")
    p.add_argument("--out", default="target/soak")
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        base, _ = soak(a.bin, 0, 10, 0, workdir)
        baseline = statistics.median(s[1] for s in base[1])
        print(f"baseline (tasks = []): {baseline / MIB:.1f} MiB", flush=True)
        for size in [int(s) for s in a.sizes.split(",") if s]:
            for fmt in [f for f in a.formats.split(",") if f]:
                measured, load = soak(a.bin, size, a.duration, a.churn, workdir, a.qps, fmt)
                source = f"file ({fmt.upper()})"
                rows.append(row_of(source, size, measured, baseline, a.churn, a.duration, load))
        if a.ecs_tasks and not moto_available():
            print("ecs: skipped, moto is not installed (scripts/install-test-deps)", flush=True)
        elif a.ecs_tasks:
            runs = soak_ecs(a.bin, a.ecs_tasks, a.duration, a.ecs_churn, workdir, a.qps, bool(a.events))
            for mode, measured, polls, load in runs:
                source = "ecs" if mode == "poll" else "events"
                row = row_of(source, a.ecs_tasks, measured, baseline, a.ecs_churn, a.duration, load)
                row["polls"] = polls
                print(f"{'':>22}({polls} full reads, {a.ecs_churn} tasks replaced every 5 s)", flush=True)
                rows.append(row)
    print()
    print(table(rows, baseline))
    with open(os.path.join(a.out, "soak.json"), "w") as f:
        json.dump({"baseline_bytes": baseline, "rows": rows}, f, indent=2)
    print(f"written {os.path.join(a.out, 'soak.json')}")


if __name__ == "__main__":
    main()
