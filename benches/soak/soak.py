#!/usr/bin/env python3
"""Soak bench: the resident set of the running `ecs-dns serve`, not of
in-process structures. Runs the release binary with the file source at each
size, replaces some tasks every poll (churn) for a while, samples the
resident set from /proc/PID/status every second, and prints steady and peak
resident set per task against a server with no tasks.

Run through scripts/soak (which builds the release binary). Everything
listens on 127.0.0.1 high ports and is stopped at the end.

Not yet covered: the ECS source against moto at 10 000 tasks (issue
"Memory you can size a task by").
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

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "load"))
import bench  # noqa: E402  (the load bench's inventory and helpers)


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
    log = open(os.path.join(workdir, f"ecs-dns-{tasks}.log"), "w")
    proc = subprocess.Popen([binary, "serve", "--config", config], stdout=subprocess.DEVNULL, stderr=log)
    try:
        bench.wait_soa(port, f"ecs-dns with {tasks} tasks", deadline=300)
        started = time.time()
        samples = []
        generation = 0
        while time.time() - started < duration:
            rss, hwm = status(proc.pid)
            samples.append((time.time() - started, rss, hwm))
            if tasks and churn:
                generation += 1
                # Replace `churn` tasks by new ones: new ids, same shape.
                for k in range(churn):
                    i = (generation * churn + k) % tasks
                    task = document["tasks"][i]
                    task["task_id"] = f"{generation:08x}{i:024x}"
                    task["task_arn"] = task["task_arn"].rsplit("/", 1)[0] + "/" + task["task_id"]
                write_atomically(inventory_path, document)
            time.sleep(max(0.0, 1.0 - (time.time() - started) % 1.0))
        return samples
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bin", required=True)
    p.add_argument("--sizes", default=os.environ.get("SOAK_SIZES", "10000,100000"))
    p.add_argument("--duration", type=int, default=int(os.environ.get("SOAK_SECONDS", 180)))
    p.add_argument("--churn", type=int, default=int(os.environ.get("SOAK_CHURN", 50)))
    p.add_argument("--out", default="target/soak")
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    mib = 1024 * 1024
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        base = soak(a.bin, 0, 10, 0, workdir)
        baseline = statistics.median(s[1] for s in base)
        print(f"baseline (tasks = []): {baseline / mib:.1f} MiB", flush=True)
        for size in [int(s) for s in a.sizes.split(",") if s]:
            samples = soak(a.bin, size, a.duration, a.churn, workdir)
            # Steady: the median of the last two thirds (after the first load).
            tail = [s[1] for s in samples[len(samples) // 3:]] or [samples[-1][1]]
            steady = statistics.median(tail)
            peak = max(s[2] for s in samples)
            row = {
                "tasks": size,
                "churn_per_second": a.churn,
                "seconds": a.duration,
                "baseline_bytes": baseline,
                "steady_bytes": steady,
                "peak_bytes": peak,
                "steady_per_task": (steady - baseline) / size,
                "peak_over_steady": peak / steady,
                "target_bytes": 30 * mib + 3 * 1024 * size,
            }
            rows.append(row)
            print(
                f"{size:>7} tasks: steady {steady / mib:7.1f} MiB ({row['steady_per_task'] / 1024:5.1f} KiB/task), "
                f"peak {peak / mib:7.1f} MiB ({row['peak_over_steady']:.2f}x steady); "
                f"target {row['target_bytes'] / mib:.0f} MiB",
                flush=True,
            )
    with open(os.path.join(a.out, "soak.json"), "w") as f:
        json.dump({"baseline_bytes": baseline, "rows": rows}, f, indent=2)
    print(f"written {os.path.join(a.out, 'soak.json')}")


if __name__ == "__main__":
    main()
