#!/usr/bin/env python3
"""Status page timings: how long the status page and each /api/* endpoint
take on the running release binary at 1 000 and 100 000 tasks (file source,
the load bench's inventory shape). Printed, not asserted.

Run through scripts/bench-status (which builds the release binary). The
server listens on 127.0.0.1 high ports and is stopped at the end.

Each request is made REPEAT times on a kept-alive connection after one
warm-up (the first request after a publication builds the task order once
per snapshot: shown apart as "first").
"""

import argparse
import http.client
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "load"))
import bench  # noqa: E402  (the load bench's inventory and helpers)

REPEAT = 20


def timed(conn, path):
    start = time.perf_counter()
    conn.request("GET", path)
    response = conn.getresponse()
    body = response.read()
    took = time.perf_counter() - start
    if response.status != 200:
        raise SystemExit(f"GET {path}: {response.status} {body[:200]!r}")
    return took, len(body)


def measure(binary, tasks, workdir):
    inventory_path = os.path.join(workdir, f"inventory-{tasks}.json")
    document = bench.inventory(tasks, max(1, tasks // 10), 3)
    with open(inventory_path, "w") as f:
        json.dump(document, f)
    dns, http_port = bench.free_port(), bench.free_port()
    config = os.path.join(workdir, f"ecs-dns-{tasks}.toml")
    with open(config, "w") as f:
        f.write(
            f'zone = "local"\nlisten = ["127.0.0.1:{dns}"]\nsource = "file"\n'
            f'inventory = "{inventory_path}"\npoll_interval = "1h"\n'
            f'nameservers = ["ns1=127.0.0.1"]\nhttp = "127.0.0.1:{http_port}"\n'
        )
    log = open(os.path.join(workdir, f"ecs-dns-{tasks}.log"), "w")
    proc = bench.start([binary, "serve", "--config", config], log)
    try:
        bench.wait_soa(dns, f"ecs-dns with {tasks} tasks", deadline=300)
        task = document["tasks"][tasks // 2]
        service = task["service"]
        name = f"{service}.{task['cluster']}.local"
        address = task["ipv4"][0]
        paths = [
            ("page", "/"),
            ("summary", "/api/summary"),
            ("tasks, first page", "/api/tasks"),
            ("tasks, one service", f"/api/tasks?service={service}"),
            ("tasks, unhealthy", "/api/tasks?verdict=unhealthy"),
            ("lookup, a name", f"/api/lookup?name={name}"),
            ("lookup, an address", f"/api/lookup?name={address}"),
            ("lookup, a task id", f"/api/lookup?name={task['task_id']}"),
            ("changes", "/api/changes"),
        ]
        conn = http.client.HTTPConnection("127.0.0.1", http_port, timeout=30)
        first, _ = timed(conn, "/api/tasks")
        rows = []
        for label, path in paths:
            times, size = [], 0
            for _ in range(REPEAT):
                took, size = timed(conn, path)
                times.append(took)
            rows.append({"request": label, "path": path, "bytes": size,
                         "median_ms": statistics.median(times) * 1000,
                         "max_ms": max(times) * 1000})
        return {"tasks": tasks, "first_tasks_ms": first * 1000, "rows": rows}
    finally:
        bench.stop(proc)
        log.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bin", required=True)
    p.add_argument("--sizes", default=os.environ.get("STATUS_SIZES", "1000,100000"))
    p.add_argument("--out", default="target/bench")
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    results = []
    with tempfile.TemporaryDirectory() as workdir:
        for tasks in (int(s) for s in a.sizes.split(",")):
            result = measure(a.bin, tasks, workdir)
            results.append(result)
            print(f"\n{tasks} tasks (first /api/tasks after the publication: "
                  f"{result['first_tasks_ms']:.1f} ms)")
            print(f"{'request':22} {'median ms':>10} {'max ms':>8} {'bytes':>9}")
            for row in result["rows"]:
                print(f"{row['request']:22} {row['median_ms']:>10.2f} {row['max_ms']:>8.2f} "
                      f"{row['bytes']:>9}")
    path = os.path.join(a.out, "status.json")
    with open(path, "w") as f:
        json.dump(results, f, indent=2)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
