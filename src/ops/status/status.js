// The status page: fetches /api/* and puts what it gets in the page as
// text only (textContent, never innerHTML): task tags and ECS names are
// chosen by whoever starts a task.
"use strict";

const REFRESH_MS = 5000;
const PAGE_SIZE = 50;

const $ = (id) => document.getElementById(id);

function text(id, value) {
  $(id).textContent = value === null || value === undefined ? "—" : String(value);
}

// A table cell holding `value` as text.
function cell(value, className) {
  const td = document.createElement("td");
  td.textContent = value === null || value === undefined ? "" : String(value);
  if (className) td.className = className;
  return td;
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const c of cells) tr.appendChild(c);
  return tr;
}

function fill(id, rows) {
  $(id).replaceChildren(...rows);
}

async function getJson(url) {
  const response = await fetch(url, { cache: "no-store" });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function age(seconds) {
  if (seconds < 120) return seconds + " s";
  if (seconds < 7200) return Math.round(seconds / 60) + " min";
  return Math.round(seconds / 3600) + " h";
}

async function refreshSummary() {
  const s = await getJson("/api/summary");
  text("zone", s.zone);
  text("serial", s.serial);
  text("records", s.records);
  text("names", s.names);
  text("tasks-total", s.tasks);
  text("source", s.source);
  text("mode", s.mode);
  text("version", s.version);
  text("updated", s.now);
  text("readiness", s.readiness);
  const badge = $("ready");
  badge.textContent = s.ready ? "ready" : "not ready";
  badge.className = "badge " + (s.ready ? "ready" : "not-ready");
  fill("verdicts", s.verdicts.map((v) => {
    const tr = row([cell(v.verdict), cell(v.tasks)]);
    tr.id = "verdict-" + v.verdict;
    return tr;
  }));
  fill("clusters", s.clusters.map((c) =>
    row([cell(c.name), cell(age(c.age_seconds)), cell(c.refreshed_at), cell(c.error || "", c.error ? "withdrawn" : "")])));
  const select = $("filter-verdict");
  if (select.options.length === 1) {
    for (const v of s.verdicts) {
      const option = document.createElement("option");
      option.value = v.verdict;
      option.textContent = v.verdict;
      select.appendChild(option);
    }
  }
}

function verdictCell(task) {
  return cell(task.verdict, task.served ? "served" : "withdrawn");
}

function rawDetails(task) {
  const td = document.createElement("td");
  const details = document.createElement("details");
  const summary = document.createElement("summary");
  summary.textContent = "raw";
  const pre = document.createElement("pre");
  pre.textContent = JSON.stringify(task.raw, null, 2);
  details.append(summary, pre);
  td.appendChild(details);
  return td;
}

function names(list) {
  if (!list.count) return "";
  const more = list.count > list.sample.length ? " (+" + (list.count - list.sample.length) + " more)" : "";
  return list.sample.join(" ") + more;
}

async function refreshChanges() {
  const c = await getJson("/api/changes");
  fill("changes-body", c.changes.map((ch) => row([
    cell(ch.at), cell(ch.serial), cell(ch.cause),
    cell("+" + ch.records_added + " / −" + ch.records_removed),
    cell(names(ch.names_added)), cell(names(ch.names_removed)), cell(names(ch.names_changed)),
  ])));
}

async function lookup(event) {
  event.preventDefault();
  const params = new URLSearchParams({ name: $("lookup-input").value, type: $("lookup-type").value });
  const error = $("lookup-error");
  try {
    const l = await getJson("/api/lookup?" + params);
    error.hidden = true;
    $("lookup-result").hidden = false;
    const asked = l.kind === "name" ? l.name + " " + l.type + (l.completed ? " (zone appended)" : "")
      : l.kind === "address" ? l.name + " " + l.type : l.kind;
    text("lookup-asked", asked);
    text("lookup-rcode", l.answer ? l.answer.rcode : l.kind + " lookup");
    $("lookup-why").hidden = !l.why;
    text("lookup-why", l.why || "");
    const records = [];
    if (l.answer) {
      for (const [section, list] of [["answer", l.answer.answer], ["authority", l.answer.authority], ["additional", l.answer.additional]]) {
        for (const r of list) records.push(row([cell(section), cell(r.name), cell(r.ttl), cell(r.type), cell(r.data)]));
      }
    }
    fill("lookup-records", records);
    text("lookup-matched", l.tasks_matched);
    fill("lookup-tasks", l.tasks.map((t) => row([
      cell(t.task_id), cell(t.cluster), cell(t.service || t.family), verdictCell(t),
      cell(t.reason, "reason"), cell(t.addresses.join(" ")), rawDetails(t),
    ])));
  } catch (e) {
    $("lookup-result").hidden = true;
    error.hidden = false;
    error.textContent = e.message;
  }
}

// The cursor of the page shown ("" for the first).
let cursor = "";

function tasksQuery() {
  const params = new URLSearchParams({
    cluster: $("filter-cluster").value,
    service: $("filter-service").value,
    verdict: $("filter-verdict").value,
    limit: PAGE_SIZE,
  });
  if (cursor) params.set("cursor", cursor);
  return "/api/tasks?" + params;
}

let nextCursor = null;

async function refreshTasks() {
  const page = await getJson(tasksQuery());
  text("tasks-matched", page.tasks_matched);
  nextCursor = page.next_cursor;
  $("tasks-next").disabled = !nextCursor;
  fill("tasks-body", page.tasks.map((t) => row([
    cell(t.task_id), cell(t.cluster), cell(t.service || t.family), verdictCell(t),
    cell(t.reason, "reason"), cell(t.addresses.join(" ")),
    cell(t.tags.map(([k, v]) => k + "=" + v).join(", "), "tags"),
  ])));
}

function report(where) {
  return (e) => { text("readiness", where + ": " + e.message); };
}

function refreshAll() {
  refreshSummary().catch(report("summary"));
  refreshChanges().catch(report("changes"));
  refreshTasks().catch(report("tasks"));
}

document.addEventListener("DOMContentLoaded", () => {
  $("lookup-form").addEventListener("submit", lookup);
  $("tasks-form").addEventListener("submit", (event) => {
    event.preventDefault();
    cursor = "";
    refreshTasks().catch(report("tasks"));
  });
  $("tasks-first").addEventListener("click", () => { cursor = ""; refreshTasks().catch(report("tasks")); });
  $("tasks-next").addEventListener("click", () => {
    if (nextCursor) { cursor = nextCursor; refreshTasks().catch(report("tasks")); }
  });
  refreshAll();
  setInterval(refreshAll, REFRESH_MS);
});
