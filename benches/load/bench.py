#!/usr/bin/env python3
"""Load bench: ecs-dns, Knot and NSD serving the same zone, measured with
dnsperf on the same query file, interleaved, several runs, median.

Run through scripts/bench (which builds the release binary). Everything
listens on 127.0.0.1 high ports and is stopped at the end.
"""

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ZONE = "local"


def task_id(i):
    """32 hex digits, as benches/support/mod.rs makes them."""
    mask = (1 << 64) - 1
    x = ((i + 1) * 0x9E3779B97F4A7C15) & mask
    rot = ((x << 17) | (x >> 47)) & mask
    return f"{x:016x}{rot ^ 0x5BD1E995:016x}"


def inventory(tasks, services, clusters):
    """The synthetic inventory: the shape of benches/support/mod.rs."""
    out = []
    for i in range(tasks):
        service = i % services
        cluster = i % clusters
        awsvpc = service % 2 == 1
        ports = [{"container_name": "app", "container_port": 8080, "name": "http"}]
        if not awsvpc:
            ports[0]["host_port"] = 32768 + i % 20000
        if service % 5 == 0:
            extra = {"container_name": "app", "container_port": 9090}
            if not awsvpc:
                extra["host_port"] = 52768 + i % 10000
            ports.append(extra)
        if awsvpc:
            n = 0x0A800000 + i
            ipv4 = [socket.inet_ntoa(n.to_bytes(4, "big"))]
            ipv6 = [f"2001:db8::{i >> 16:x}:{i & 0xffff:x}"] if i % 2 == 0 else []
        else:
            n = 0x0A000000 + i // 10 + 1
            ipv4 = [socket.inet_ntoa(n.to_bytes(4, "big"))]
            ipv6 = []
        tid = task_id(i)
        out.append({
            "cluster": f"cluster-{cluster}",
            "service": f"svc-{service}",
            "family": f"svc-{service}",
            "task_arn": f"arn:aws:ecs:us-east-1:123456789012:task/cluster-{cluster}/{tid}",
            "task_id": tid,
            "task_definition_arn": f"arn:aws:ecs:us-east-1:123456789012:task-definition/svc-{service}:1",
            "launch_type": "FARGATE" if awsvpc else "EC2",
            "network_mode": "awsvpc" if awsvpc else "bridge",
            "ipv4": ipv4,
            "ipv6": ipv6,
            "ports": ports,
        })
    return {"tasks": out}


def mixed_case(name, rng):
    return "".join(c.upper() if rng.random() < 0.5 else c for c in name)


def queries(tasks, services, clusters, count, mixed, rng):
    """The query mix: mostly service A, then per-cluster and per-task A,
    AAAA, SRV, NXDOMAIN; `mixed` of them with names in mixed case."""
    lines = []
    for _ in range(count):
        r = rng.random()
        s = rng.randrange(services)
        if r < 0.55:
            q = (f"svc-{s}.{ZONE}", "A")
        elif r < 0.65:
            q = (f"svc-{s}.cluster-{rng.randrange(clusters)}.{ZONE}", "A")
        elif r < 0.75:
            i = rng.randrange(tasks)
            q = (f"{task_id(i)}.svc-{i % services}.{ZONE}", "A")
        elif r < 0.80:
            q = (f"svc-{2 * rng.randrange(services // 2) + 1}.{ZONE}", "AAAA")
        elif r < 0.90:
            q = (f"_http._tcp.svc-{s}.{ZONE}", "SRV")
        else:
            q = (f"nope-{rng.randrange(1 << 30)}.{ZONE}", "A")
        name, qtype = q
        if rng.random() < mixed:
            name = mixed_case(name, rng)
        lines.append(f"{name} {qtype}")
    return lines


def free_port():
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            t.bind(("127.0.0.1", 0))
            port = t.getsockname()[1]
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                    u.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise RuntimeError("no free port")


QTYPES = {"A": 1, "NS": 2, "SOA": 6, "PTR": 12, "TXT": 16, "AAAA": 28, "SRV": 33}


def mean_answer_bytes(port, lines):
    """The mean size of the answers a server gives to `lines` (as in the
    query file), asked one at a time as dnsperf asks them (no EDNS)."""
    total = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        for i, line in enumerate(lines):
            name, qtype = line.split()
            wire = (i & 0xFFFF).to_bytes(2, "big") + bytes([0, 0, 0, 1, 0, 0, 0, 0, 0, 0])
            for label in name.rstrip(".").split("."):
                wire += bytes([len(label)]) + label.encode()
            wire += bytes([0]) + QTYPES[qtype].to_bytes(2, "big") + bytes([0, 1])
            s.sendto(wire, ("127.0.0.1", port))
            total += len(s.recv(4096))
    return round(total / max(len(lines), 1))


def dig(port, name, qtype, tcp=False):
    args = ["dig", "@127.0.0.1", "-p", str(port), "+norec", "+time=2", "+tries=2", name, qtype]
    if tcp:
        args.append("+tcp")
    out = subprocess.run(args, capture_output=True, text=True, timeout=30).stdout
    status = re.search(r"status: (\w+)", out)
    answer = []
    section = None
    for line in out.splitlines():
        if line.startswith(";; ANSWER SECTION"):
            section = "an"
        elif line.strip() == "" or line.startswith(";;"):
            section = None if line.strip() == "" else section
        elif section == "an":
            f = line.split()
            answer.append(" ".join([f[0].lower(), f[1], f[3]] + [x.lower() for x in f[4:]]))
    return (status.group(1) if status else "NO ANSWER", sorted(answer))


def wait_soa(port, what, deadline=60):
    start = time.time()
    while time.time() - start < deadline:
        status, answer = dig(port, ZONE, "SOA")
        if status == "NOERROR" and answer:
            return time.time() - start
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not answer SOA {ZONE} within {deadline}s")


def start(args, log, cwd=None):
    return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=cwd,
                            start_new_session=True)


def stop(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def dnsperf(port, query_file, clients, duration, rate=0):
    args = ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", query_file,
            "-c", str(clients), "-l", str(duration), "-t", "2"]
    if rate:
        args += ["-Q", str(rate)]
    out = subprocess.run(args, capture_output=True, text=True, timeout=duration + 60).stdout

    def num(pattern):
        m = re.search(pattern, out)
        if not m:
            raise RuntimeError(f"dnsperf output without {pattern!r}:\n{out}")
        return float(m.group(1))

    return {
        "qps": num(r"Queries per second:\s+([\d.]+)"),
        "sent": num(r"Queries sent:\s+(\d+)"),
        "lost": num(r"Queries lost:\s+(\d+)"),
        "avg_ms": num(r"Average Latency \(s\):\s+([\d.]+)") * 1000,
        "max_ms": num(r"Average Latency \(s\):\s+[\d.]+ \(min [\d.]+, max ([\d.]+)\)") * 1000,
        "stddev_ms": num(r"Latency StdDev \(s\):\s+([\d.]+)") * 1000,
    }


TICKS = os.sysconf("SC_CLK_TCK")


def group_cpu(pgid):
    """CPU seconds (user, system) used so far by the live processes of one
    process group: a server and, for NSD, the servers it forked."""
    user = system = 0.0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[2]) == pgid:
            user += int(fields[11]) / TICKS
            system += int(fields[12]) / TICKS
    return user, system


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


REVERSE_ZONE = "10.in-addr.arpa"


def address(i, services):
    """Task i's IPv4 address, as inventory() gives it."""
    awsvpc = (i % services) % 2 == 1
    n = 0x0A800000 + i if awsvpc else 0x0A000000 + i // 10 + 1
    return socket.inet_ntoa(n.to_bytes(4, "big"))


def reverse_queries(tasks, services, count, mixed, rng):
    """The PTR mix: 90 % addresses of tasks (awsvpc: the task's name;
    bridge: its host's), 10 % addresses no task holds (NXDOMAIN)."""
    lines = []
    for _ in range(count):
        if rng.random() < 0.9:
            ip = address(rng.randrange(tasks), services)
        else:
            ip = f"10.200.{rng.randrange(256)}.{rng.randrange(256)}"
        name = ".".join(reversed(ip.split("."))) + f".{REVERSE_ZONE}"
        if rng.random() < mixed:
            name = mixed_case(name, rng)
        lines.append(f"{name} PTR")
    return lines


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--bin", required=True)
    p.add_argument("--out", default="target/bench")
    p.add_argument("--tasks", type=int, default=int(os.environ.get("TASKS", 5000)))
    p.add_argument("--services", type=int, default=int(os.environ.get("SERVICES", 500)))
    p.add_argument("--clusters", type=int, default=int(os.environ.get("CLUSTERS", 3)))
    p.add_argument("--duration", type=int, default=int(os.environ.get("DURATION", 10)))
    p.add_argument("--runs", type=int, default=int(os.environ.get("RUNS", 3)))
    # 16 client sockets, not 4: each server's SO_REUSEPORT sockets take
    # clients by a hash of their address and port, so 4 flows over 2 sockets
    # split 4-0 in one run of 8 and 3-1 in half of them, and a ratio moved
    # by ±10 % with the split; 16 flows split close to even in every run.
    p.add_argument("--clients", type=int, default=int(os.environ.get("CLIENTS", 16)))
    p.add_argument("--mixed-case", type=float, default=float(os.environ.get("MIXED_CASE", 0.05)),
                   help="share of queries with names in mixed case")
    p.add_argument("--servers",
                   default=os.environ.get("SERVERS", "ecs-dns,knot,nsd,nsd-rr,ceiling"),
                   help="nsd-rr is NSD with round-robin: yes, rotating answers as ecs-dns does; "
                        "ceiling is ecs-dns's UDP loop doing no DNS work (see --ceiling)")
    # What this machine allows a server with ecs-dns's UDP loop: canned
    # answers of the size of ecs-dns's, no lookup (benches/load/ceiling.rs).
    # With dnsperf on the same cores the kernel's part of each query sets
    # the pace; ecs-dns's share of the ceiling is what its own work costs.
    p.add_argument("--ceiling", default="target/release/examples/udp_ceiling")
    p.add_argument("--mix", choices=["forward", "reverse"], default=os.environ.get("MIX", "forward"),
                   help="reverse: PTR queries of the tasks' addresses, the reverse zone served by all")
    # A steady rate rather than as fast as the server goes: what a server
    # costs at the loads it usually runs at, for sizing. Queries then come
    # one at a time, each a sleep and a wakeup, so CPU per query is higher
    # than at saturation; the ratio column compares CPU, not qps.
    p.add_argument("--rate", type=int, default=int(os.environ.get("RATE", 0)),
                   help="queries per second (dnsperf -Q); 0: as fast as each server answers")
    a = p.parse_args()
    reverse = a.mix == "reverse"

    os.makedirs(a.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="ecs-dns-bench-")
    rng = random.Random(1)
    procs = []
    try:
        inv = os.path.join(work, "inventory.json")
        with open(inv, "w") as f:
            json.dump(inventory(a.tasks, a.services, a.clusters), f)
        config = os.path.join(work, "ecs-dns.toml")
        ports = {name: free_port() for name in ("ecs-dns", "knot", "nsd", "nsd-rr", "ceiling")}
        with open(config, "w") as f:
            f.write(f'zone = "{ZONE}"\nsource = "file"\ninventory = "{inv}"\n'
                    f'poll_interval = "60s"\nnameservers = ["ns1.{ZONE}=127.0.0.1"]\n'
                    f'listen = ["127.0.0.1:{ports["ecs-dns"]}"]\n')
            if reverse:
                f.write('reverse_zones = ["10.0.0.0/8"]\n')
        zone_file = os.path.join(work, f"{ZONE}.zone")
        with open(zone_file, "w") as f:
            subprocess.run([a.bin, "records", "--config", config], stdout=f, check=True,
                           stderr=subprocess.DEVNULL)
        with open(zone_file) as f:
            records = sum(1 for line in f if line.strip() and not line.startswith(";"))
        zones = [(ZONE, zone_file)]
        if reverse:
            reverse_file = os.path.join(work, f"{REVERSE_ZONE}.zone")
            with open(reverse_file, "w") as f:
                subprocess.run([a.bin, "records", "--config", config, "--print", REVERSE_ZONE],
                               stdout=f, check=True, stderr=subprocess.DEVNULL)
            with open(reverse_file) as f:
                records += sum(1 for line in f if line.strip() and not line.startswith(";"))
            zones.append((REVERSE_ZONE, reverse_file))
        query_file = os.path.join(work, "queries.txt")
        with open(query_file, "w") as f:
            mix = (reverse_queries(a.tasks, a.services, 100_000, a.mixed_case, rng) if reverse
                   else queries(a.tasks, a.services, a.clusters, 100_000, a.mixed_case, rng))
            f.write("\n".join(mix) + "\n")

        knot_dir = os.path.join(work, "knot")
        os.makedirs(knot_dir)
        with open(os.path.join(knot_dir, "knot.conf"), "w") as f:
            f.write(f"""server:
    rundir: "{knot_dir}"
    listen: 127.0.0.1@{ports["knot"]}
    udp-workers: 2
    tcp-workers: 1
    background-workers: 1
database:
    storage: "{knot_dir}"
log:
  - target: stderr
    any: warning
zone:
""" + "".join(f"""  - domain: {name}
    file: "{path}"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
""" for name, path in zones))
        def nsd_conf(name, round_robin):
            nsd_dir = os.path.join(work, name)
            os.makedirs(nsd_dir)
            conf = os.path.join(nsd_dir, "nsd.conf")
            with open(conf, "w") as f:
                f.write(f"""server:
    ip-address: 127.0.0.1@{ports[name]}
    server-count: 2
    username: ""
    chroot: ""
    database: ""
    zonesdir: "{nsd_dir}"
    pidfile: "{nsd_dir}/nsd.pid"
    xfrdfile: "{nsd_dir}/xfrd.state"
    zonelistfile: "{nsd_dir}/zone.list"
    logfile: "{nsd_dir}/nsd.log"
    rrl-ratelimit: 0
    rrl-whitelist-ratelimit: 0
    minimal-responses: yes
    round-robin: {"yes" if round_robin else "no"}
    verbosity: 0
remote-control:
    control-enable: no
""" + "".join(f"""zone:
    name: {name}
    zonefile: "{path}"
""" for name, path in zones))
            return conf
        logs = {name: open(os.path.join(work, f"{name}.log"), "w") for name in ports}
        wanted = a.servers.split(",")
        if "ceiling" in wanted and wanted[0] != "ecs-dns":
            raise SystemExit("the ceiling answers as many bytes as ecs-dns: list ecs-dns first")
        groups = {}
        commands = {
            "ecs-dns": [a.bin, "serve", "--config", config],
            "knot": ["knotd", "-c", os.path.join(knot_dir, "knot.conf")],
            "nsd": ["nsd", "-d", "-c", nsd_conf("nsd", False)],
            "nsd-rr": ["nsd", "-d", "-c", nsd_conf("nsd-rr", True)],
        }
        for name in wanted:
            if name == "ceiling":
                size = mean_answer_bytes(ports["ecs-dns"], rng.sample(mix, 2000))
                commands[name] = [a.ceiling, "--listen", f"127.0.0.1:{ports[name]}",
                                  "--answer-bytes", str(size)]
                print(f"ceiling: canned answers of {size} bytes, the mean of ecs-dns's")
            started = time.time()
            procs.append(start(commands[name], logs[name]))
            groups[name] = procs[-1].pid
            took = wait_soa(ports[name], name)
            print(f"{name}: answering on 127.0.0.1:{ports[name]} after {took:.2f}s "
                  f"(started {time.time() - started:.2f}s ago)")

        # Correctness: the same answers from every server (but the
        # ceiling, which answers no question right) for a sample.
        dns_servers = [s for s in wanted if s != "ceiling"]
        sample = rng.sample(open(query_file).read().split("\n")[:-1], 60)
        mismatches = []
        for line in sample + [f"{ZONE} NS", f"svc-1.{ZONE} TXT"]:
            name, qtype = line.split()
            got = {s: dig(ports[s], name, qtype) for s in dns_servers}
            first = got[dns_servers[0]]
            if any(v != first for v in got.values()):
                mismatches.append((line, got))
            if first[0] not in ("NOERROR", "NXDOMAIN"):
                mismatches.append((line, got))
        for line, got in mismatches[:5]:
            print(f"MISMATCH {line}: {got}", file=sys.stderr)
        if mismatches:
            raise SystemExit(f"{len(mismatches)} of {len(sample) + 2} sample queries differ")
        print(f"answers agree on {len(sample) + 2} sample queries")

        results = {s: [] for s in wanted}
        loads = []
        for run in range(a.runs):
            order = wanted[run % len(wanted):] + wanted[:run % len(wanted)]
            for name in order:
                before = loadavg()
                cpu_before = group_cpu(groups[name])
                r = dnsperf(ports[name], query_file, a.clients, a.duration, a.rate)
                user, system = (y - x for x, y in zip(cpu_before, group_cpu(groups[name])))
                # The server's CPU per answered query, the user and kernel
                # parts apart: on a machine that dnsperf shares, it is what
                # the qps ratio comes from.
                answered = max(r["sent"] - r["lost"], 1)
                r["cpu_user_us"] = user * 1e6 / answered
                r["cpu_sys_us"] = system * 1e6 / answered
                r["loadavg_before"] = before
                results[name].append(r)
                loads.append(before)
                print(f"run {run + 1} {name:8} {r['qps']:>10.0f} qps  avg {r['avg_ms']:.3f} ms  "
                      f"lost {r['lost']:.0f}  cpu {r['cpu_user_us']:.2f}+{r['cpu_sys_us']:.2f} us/query  "
                      f"(load {before})", flush=True)

        def median(name, key):
            return statistics.median(r[key] for r in results[name])

        table = []
        ours = median("ecs-dns", "qps") if "ecs-dns" in results else None
        for name in wanted:
            row = {
                "server": name,
                "qps": median(name, "qps"),
                "avg_ms": median(name, "avg_ms"),
                "stddev_ms": median(name, "stddev_ms"),
                "max_ms": median(name, "max_ms"),
                "cpu_user_us": median(name, "cpu_user_us"),
                "cpu_sys_us": median(name, "cpu_sys_us"),
                "lost": sum(r["lost"] for r in results[name]),
                "sent": sum(r["sent"] for r in results[name]),
            }
            row["ecs_dns_ratio"] = ours / row["qps"] if ours else None
            table.append(row)
        if a.rate and "ecs-dns" in results:
            # At a fixed rate every server answers the same qps: compare
            # what each query costs instead (above 1: ecs-dns costs less).
            def cpu(row):
                return row["cpu_user_us"] + row["cpu_sys_us"]
            for row in table:
                row["ecs_dns_ratio"] = cpu(row) / cpu(table[wanted.index("ecs-dns")])

        print()
        print(f"{a.mix} mix: "
              f"{a.tasks} tasks, {a.services} services, {a.clusters} clusters, {records} records; "
              f"dnsperf -c {a.clients} -l {a.duration}{f' -Q {a.rate}' if a.rate else ''}, "
              f"{a.runs} runs interleaved, medians; "
              f"{a.mixed_case:.0%} mixed-case names")
        print(f"{'server':10} {'qps':>10} {'avg ms':>8} {'stddev ms':>10} {'max ms':>8} "
              f"{'lost':>6} {'x cpu/ours' if a.rate else 'ecs-dns/x':>10} {'cpu us/q usr+sys':>17}")
        for row in table:
            ratio = f"{row['ecs_dns_ratio']:.2f}" if row["ecs_dns_ratio"] else "-"
            print(f"{row['server']:10} {row['qps']:>10.0f} {row['avg_ms']:>8.3f} "
                  f"{row['stddev_ms']:>10.3f} {row['max_ms']:>8.2f} {row['lost']:>6.0f} {ratio:>10} "
                  f"{row['cpu_user_us']:>8.2f}+{row['cpu_sys_us']:.2f}")
        cpu = subprocess.run(["sh", "-c", "lscpu | grep 'Model name' | cut -d: -f2"],
                             capture_output=True, text=True).stdout.strip()
        print(f"machine: {os.cpu_count()} cpus, {cpu}; load average before runs: {', '.join(loads)}")
        report = {
            "tasks": a.tasks, "services": a.services, "clusters": a.clusters,
            "records": records, "duration_s": a.duration, "runs": a.runs,
            "clients": a.clients, "mixed_case": a.mixed_case, "mix": a.mix, "rate": a.rate,
            "cpus": os.cpu_count(), "cpu": cpu, "loadavg_before": loads,
            "table": table, "runs_detail": results,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        stem = ("load" if not reverse else "load-reverse") + (f"-rate{a.rate}" if a.rate else "")
        path = os.path.join(a.out, f"{stem}.json")
        with open(path, "w") as f:
            json.dump(report, f, indent=2)
        print(f"wrote {path}")
        subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__), "chart.py"),
                        path, os.path.join(a.out, f"{stem}.svg")], check=True)
    finally:
        for proc in procs:
            stop(proc)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
