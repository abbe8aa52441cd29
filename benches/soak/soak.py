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
import signal
import statistics
import subprocess
import sys
import tempfile
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


def write_atomically(path, document):
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
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


def sample_for(proc, duration, churn_step, every):
    """Samples the resident set of `proc` each second for `duration`
    seconds, calling `churn_step()` every `every` seconds."""
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
    return samples


def soak(binary, tasks, duration, churn, workdir):
    """Runs one server at `tasks` tasks for `duration` seconds with `churn`
    tasks replaced each second; returns the samples of the resident set."""
    inventory_path = os.path.join(workdir, f"inventory-{tasks}.json")
    document = bench.inventory(tasks, max(1, tasks // 10), 3) if tasks else {"tasks": []}
    write_atomically(inventory_path, document)
    port = bench.free_port()
    config = os.path.join(workdir, f"ecs-dns-{tasks}.toml")
    with open(config, "w") as f:
        f.write(
            f'zone = "local"\nlisten = ["127.0.0.1:{port}"]\nsource = "file"\n'
            f'inventory = "{inventory_path}"\npoll_interval = "1s"\n'
            'nameservers = ["ns1=127.0.0.1"]\n'
        )
    log_path = os.path.join(workdir, f"ecs-dns-{tasks}.log")
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

    try:
        wait_ready(proc, port, f"ecs-dns with {tasks} tasks", 300, log_path)
        return sample_for(proc, duration, replace_some if tasks and churn else None, 1)
    finally:
        stop(proc, log)


def moto_available():
    return subprocess.run(
        [sys.executable, "-c", "import moto.server, boto3"], capture_output=True
    ).returncode == 0


def soak_ecs(binary, tasks, duration, churn, workdir):
    """The ECS source against moto: `tasks` bridge tasks in 50 services on
    instances of 100 tasks, `churn` tasks stopped and as many started every
    5 seconds (a poll of 10 000 tasks in moto takes about 15 s, so each poll
    sees some). Returns the samples of the resident set and the polls done."""
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
        print(f"  (moto: {len(arns)} tasks set up in {time.time() - setup:.0f} s)", flush=True)

        port = bench.free_port()
        config = os.path.join(workdir, f"ecs-dns-ecs-{tasks}.toml")
        with open(config, "w") as f:
            f.write(
                f'zone = "local"\nlisten = ["127.0.0.1:{port}"]\nsource = "ecs"\n'
                'clusters = ["soak"]\npoll_interval = "1s"\nrequest_timeout = "60s"\n'
                'nameservers = ["ns1=127.0.0.1"]\n'
            )
        # Debug for the ECS source: its "ecs poll done" lines count the polls.
        env = dict(os.environ, RUST_LOG="info,ecs_dns::source::ecs=debug", **aws_env(moto_port))
        log_path = os.path.join(workdir, f"ecs-dns-ecs-{tasks}.log")
        proc, log = serve(binary, config, log_path, env)
        wait_ready(proc, port, f"ecs-dns (ecs source) with {tasks} tasks", 600, log_path)
        generation = 0

        def replace_some():
            # Stop the oldest `churn` tasks; start as many in their services.
            nonlocal generation
            generation += 1
            for _ in range(min(churn, len(arns))):
                ecs.stop_task(cluster="soak", task=arns.pop(0), reason="soak")
            service = generation % 50
            started = ecs_fixture.run_step(ecs, ec2, {
                "op": "run", "cluster": "soak", "count": churn,
                "taskdef": definitions[service % len(definitions)],
                "group": f"service:svc{service}",
            })
            arns.extend(t["arn"] for t in started["tasks"])

        samples = sample_for(proc, duration, replace_some if churn else None, 5)
        with open(log_path) as f:
            polls = f.read().count("ecs poll done")
        return samples, polls
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


def row_of(source, size, samples, baseline, churn, duration):
    # Steady: the median of the last two thirds (after the first load).
    tail = [s[1] for s in samples[len(samples) // 3:]] or [samples[-1][1]]
    steady = statistics.median(tail)
    peak = max(s[2] for s in samples)
    row = {
        "source": source,
        "tasks": size,
        "churn": churn,
        "seconds": duration,
        "baseline_bytes": baseline,
        "steady_bytes": steady,
        "peak_bytes": peak,
        "steady_per_task": (steady - baseline) / size,
        "peak_over_steady": peak / steady,
        "target_bytes": 30 * MIB + 3 * 1024 * size,
    }
    print(
        f"{source:>4} {size:>7} tasks: steady {steady / MIB:7.1f} MiB "
        f"({row['steady_per_task'] / 1024:5.1f} KiB/task), "
        f"peak {peak / MIB:7.1f} MiB ({row['peak_over_steady']:.2f}x steady); "
        f"target {row['target_bytes'] / MIB:.0f} MiB",
        flush=True,
    )
    return row


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bin", required=True)
    p.add_argument("--sizes", default=os.environ.get("SOAK_SIZES", "10000,100000"))
    p.add_argument("--duration", type=int, default=int(os.environ.get("SOAK_SECONDS", 180)))
    p.add_argument("--churn", type=int, default=int(os.environ.get("SOAK_CHURN", 50)))
    p.add_argument("--ecs-tasks", type=int, default=int(os.environ.get("SOAK_ECS_TASKS", 10000)))
    p.add_argument("--ecs-churn", type=int, default=int(os.environ.get("SOAK_ECS_CHURN", 20)))
    p.add_argument("--out", default="target/soak")
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        base = soak(a.bin, 0, 10, 0, workdir)
        baseline = statistics.median(s[1] for s in base)
        print(f"baseline (tasks = []): {baseline / MIB:.1f} MiB", flush=True)
        for size in [int(s) for s in a.sizes.split(",") if s]:
            samples = soak(a.bin, size, a.duration, a.churn, workdir)
            rows.append(row_of("file", size, samples, baseline, a.churn, a.duration))
        if a.ecs_tasks and not moto_available():
            print("ecs: skipped, moto is not installed (scripts/install-test-deps)", flush=True)
        elif a.ecs_tasks:
            samples, polls = soak_ecs(a.bin, a.ecs_tasks, a.duration, a.ecs_churn, workdir)
            row = row_of("ecs", a.ecs_tasks, samples, baseline, a.ecs_churn, a.duration)
            row["polls"] = polls
            print(f"      ({polls} polls, {a.ecs_churn} tasks replaced every 5 s)", flush=True)
            rows.append(row)
    with open(os.path.join(a.out, "soak.json"), "w") as f:
        json.dump({"baseline_bytes": baseline, "rows": rows}, f, indent=2)
    print(f"written {os.path.join(a.out, 'soak.json')}")


if __name__ == "__main__":
    main()
