#!/usr/bin/env python3
"""Draws the load bench's results as an SVG chart (no dependencies).

    chart.py target/bench/load.json target/bench/load.svg

Two panels: queries per second and average latency, each with one group of
bars per run set (run 1, run 2, ... as `bench.py` interleaves them) and one
bar per server, plus the medians the table prints. `bench.py` calls it
after each run; the README embeds a copy (docs/bench-load.svg).
"""

import json
import sys
from xml.sax.saxutils import escape

COLOURS = {"ecs-dns": "#2f6fdd", "knot": "#e07b39", "nsd": "#3a9e5c", "nsd-rr": "#7a4fb0", "ceiling": "#9a9a9a"}
OTHER = "#888888"
WIDTH = 720
PANEL_H = 220
MARGIN_L = 70
MARGIN_T = 56
GAP = 60


def nice_max(value):
    """A round axis maximum at or above `value`."""
    if value <= 0:
        return 1.0
    step = 10 ** (len(str(int(value))) - 1)
    for mult in (1, 2, 2.5, 5, 10):
        if value <= mult * step:
            return mult * step
    return 10 * step


def panel(out, top, title, unit, groups, servers, key, fmt):
    """One bar chart: `groups` is [(label, {server: run result})]."""
    values = [g[1][s][key] for g in groups for s in servers if s in g[1]]
    top_value = nice_max(max(values) if values else 1)
    plot_w = WIDTH - MARGIN_L - 20
    out.append(f'<text x="{MARGIN_L}" y="{top - 10}" class="title">{escape(title)}</text>')
    for i in range(5):
        v = top_value * i / 4
        y = top + PANEL_H - PANEL_H * i / 4
        out.append(f'<line x1="{MARGIN_L}" y1="{y:.1f}" x2="{WIDTH - 20}" y2="{y:.1f}" class="grid"/>')
        out.append(f'<text x="{MARGIN_L - 6}" y="{y + 4:.1f}" class="axis" text-anchor="end">'
                   f'{escape(fmt(v))}</text>')
    group_w = plot_w / max(len(groups), 1)
    bar_w = group_w * 0.7 / max(len(servers), 1)
    for gi, (label, results) in enumerate(groups):
        x0 = MARGIN_L + gi * group_w + group_w * 0.15
        for si, server in enumerate(servers):
            if server not in results:
                continue
            v = results[server][key]
            h = PANEL_H * v / top_value
            x = x0 + si * bar_w
            y = top + PANEL_H - h
            colour = COLOURS.get(server, OTHER)
            out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w * 0.92:.1f}" height="{h:.1f}" '
                       f'fill="{colour}" class="bar"><title>{escape(server)} {escape(label)}: '
                       f'{escape(fmt(v))} {escape(unit)}</title></rect>')
        out.append(f'<text x="{x0 + bar_w * len(servers) / 2:.1f}" y="{top + PANEL_H + 16}" '
                   f'class="axis" text-anchor="middle">{escape(label)}</text>')


def render(report):
    servers = [row["server"] for row in report["table"]]
    runs = report["runs_detail"]
    count = max(len(v) for v in runs.values())
    groups = [(f"run {i + 1}", {s: runs[s][i] for s in servers if i < len(runs[s])})
              for i in range(count)]
    medians = {row["server"]: row for row in report["table"]}
    groups.append(("median", medians))
    height = MARGIN_T + 2 * PANEL_H + GAP + 70
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
           f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="load bench results">',
           '<style>text{font:12px sans-serif;fill:#333}.title{font-weight:bold;font-size:13px}'
           '.grid{stroke:#ddd}.axis{fill:#555}</style>',
           '<rect width="100%" height="100%" fill="#fff"/>']
    head = (f"{report['tasks']} tasks, {report['records']} records; dnsperf -c {report['clients']} "
            f"-l {report['duration_s']}; {report['cpus']} cpus; {report.get('time', '')}")
    out.append(f'<text x="{MARGIN_L}" y="18" class="title">Load bench: ecs-dns, Knot, NSD</text>')
    out.append(f'<text x="{MARGIN_L}" y="34" class="axis">{escape(head)}</text>')
    legend_x = MARGIN_L
    for server in servers:
        out.append(f'<rect x="{legend_x}" y="{height - 22}" width="12" height="12" '
                   f'fill="{COLOURS.get(server, OTHER)}"/>')
        ratio = medians[server].get("ecs_dns_ratio")
        label = server + (f" (ecs-dns/{server} {ratio:.2f})" if ratio and server != "ecs-dns" else "")
        out.append(f'<text x="{legend_x + 16}" y="{height - 12}">{escape(label)}</text>')
        legend_x += 16 + 8 * len(label) + 20
    panel(out, MARGIN_T + 14, "queries per second (higher is better)", "qps",
          groups, servers, "qps", lambda v: f"{v:,.0f}")
    panel(out, MARGIN_T + 14 + PANEL_H + GAP, "average latency, ms (lower is better)", "ms",
          groups, servers, "avg_ms", lambda v: f"{v:.3f}")
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    source, target = sys.argv[1:3]
    with open(source) as f:
        report = json.load(f)
    with open(target, "w") as f:
        f.write(render(report))
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
