// CORTEX dashboard: reads GET /v1/dashboard every few seconds with the API key kept in this
// tab's sessionStorage, and runs GET /v1/ledger/verify on request. Text goes in through
// textContent only; charts are SVG built here.
"use strict";

const KEY = "cortex.dashboard.apiKey";
// Seconds between reads: 5, or `?poll=N` (at least 1).
const POLL_MS = 1000 * Math.max(1, Number(new URLSearchParams(location.search).get("poll")) || 5);
const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);
let timer = null;
let previous = null; // the last request metrics, for the latency series
const latency = []; // {t, mean, p95} in ms, one per poll

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children) e.append(c);
  return e;
}
function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}
const fmt = (n) => Number(n).toLocaleString("en-US");
const count = (n, one, many = one + "s") => fmt(n) + " " + (n === 1 ? one : many);
function when(ts) {
  if (!ts) return "";
  const t = Date.parse(ts.slice(0, 23) + "Z");
  const s = Math.round((Date.now() - t) / 1000);
  if (!Number.isFinite(s)) return ts;
  if (s < 5) return "just now";
  if (s < 90) return s + " s ago";
  if (s < 5400) return Math.round(s / 60) + " min ago";
  if (s < 129600) return Math.round(s / 3600) + " h ago";
  return ts.slice(0, 10);
}
function badge(text, kind) { return el("span", { class: "badge " + kind }, text); }
const statusKind = (s) => ({ ok: "ok", anchored: "ok", violation: "bad", error: "bad",
  failing: "bad", pending: "warn", missing: "warn" })[s] || "none";
function fill(id, rows, empty, cols) {
  const body = $(id);
  body.replaceChildren(...(rows.length ? rows
    : [el("tr", {}, el("td", { class: "empty", colspan: String(cols) }, empty))]));
}

function showMessage(text) {
  $("message").textContent = text;
  $("message").hidden = !text;
}
function signedIn(yes) {
  $("key-form").hidden = yes;
  $("key-session").hidden = !yes;
  $("board").hidden = !yes;
}

async function api(path) {
  const key = sessionStorage.getItem(KEY);
  const r = await fetch(path, { headers: { Authorization: "Bearer " + key }, cache: "no-store" });
  let body = null;
  try { body = await r.json(); } catch (_) { /* not JSON */ }
  if (r.ok) return body;
  const why = (body && body.error && body.error.message) || r.status + " " + r.statusText;
  if (r.status === 401) {
    forget();
    showMessage("The key was refused: " + why);
  }
  const err = new Error(why);
  err.status = r.status;
  throw err;
}

function render(d) {
  const l = d.ledger;
  $("ledger-size").textContent = fmt(l.size);
  $("ledger-hasher").textContent = "hasher " + l.hasher;
  $("last-hash").textContent = l.last_hash;
  $("ledger-origin").textContent = l.origin ? "origin " + l.origin : "no origin yet";
  const cp = l.latest_checkpoint;
  $("checkpoint-size").textContent = cp ? fmt(cp.size) : "none";
  $("checkpoint-age").textContent = cp
    ? "signed " + when(cp.created_at) + (l.size > cp.size ? ", " + fmt(l.size - cp.size)
      + " entries since" : ", covers every entry") : "no checkpoint yet";
  const v = l.last_verify;
  $("last-verify").textContent = v ? (v.status === "ok" ? "valid" : v.status) : "never";
  $("last-verify").className = "big " + (v ? statusKind(v.status) : "warn");
  $("last-verify-age").textContent = v ? when(v.completed_at) : "run one below";
  $("memory-facts").textContent = fmt(d.memory.facts);
  $("memory-projects").textContent = "in " + count(d.memory.project_count, "project");

  $("checkpoint-count").textContent = d.checkpoint_count > d.checkpoints.length
    ? "newest " + d.checkpoints.length + " of " + fmt(d.checkpoint_count) : "";
  $("anchors").replaceChildren(...l.anchors.map((a) =>
    badge(a.kind + " " + a.status + (a.lag_entries ? " (" + fmt(a.lag_entries) + " behind)" : ""),
      statusKind(a.status))));
  fill("checkpoints", d.checkpoints.map((c) => el("tr", {},
    el("td", { class: "num" }, fmt(c.size)),
    el("td", { class: "num" }, "+" + fmt(c.range_count)),
    el("td", { title: c.created_at }, when(c.created_at)),
    el("td", { class: "num", title: c.note_signers
      .concat(c.detached.map((s) => s.scheme + " " + s.key_name)).join(", ") }, String(c.signatures)),
    el("td", {}, ...(c.receipts.length
      ? c.receipts.map((r) => badge(r.anchor, "ok")) : [badge("none", "none")])))),
  "No checkpoint yet.", 5);
  fill("verifications", d.verifications.map((r) => {
    const took = Date.parse(r.completed_at.slice(0, 23) + "Z")
      - Date.parse(r.started_at.slice(0, 23) + "Z");
    const det = r.details || {};
    const counts = det.violation_counts || {};
    const n = Object.values(counts).reduce((a, b) => a + b, 0);
    return el("tr", { title: det.error || Object.keys(counts).join(", ") },
      el("td", {}, when(r.completed_at)),
      el("td", {}, badge(r.status === "ok" ? "valid" : r.status + (n ? " ×" + n : ""),
        statusKind(r.status))),
      el("td", { class: "num" }, det.entries_checked === undefined ? "" : fmt(det.entries_checked)),
      el("td", { class: "num" }, Number.isFinite(took) ? took + " ms" : ""));
  }), "No verification yet.", 4);
  const top = Math.max(1, ...d.memory.projects.map((p) => p.facts));
  $("project-count").textContent = d.memory.project_count > d.memory.projects.length
    ? "largest " + d.memory.projects.length + " of " + fmt(d.memory.project_count) : "";
  fill("projects", d.memory.projects.map((p) => {
    const meter = svg("svg", { class: "meter", viewBox: "0 0 100 8", preserveAspectRatio: "none" });
    meter.append(svg("rect", { width: String(100 * p.facts / top), height: "8", rx: "2",
      class: "bar" }));
    return el("tr", {}, el("td", {}, p.project), el("td", { class: "num" }, fmt(p.facts)),
      el("td", {}, meter));
  }), "No fact yet.", 3);

  appendsChart(d.appends);
  latencyPoint(d.requests);
  latencyChart();
  $("updated").textContent = "updated " + new Date().toLocaleTimeString();
}

// Chart frame: 600×170 user units, plot area inside the margins.
const W = 600, H = 170, L = 40, R = 8, T = 10, B = 20;
function frame(max, unit, whole) {
  const s = svg("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none" });
  for (const f of [0, 0.5, 1]) {
    const y = T + (H - T - B) * (1 - f);
    s.append(svg("line", { x1: L, x2: W - R, y1: y, y2: y, class: "axis" }));
    const v = Math.round(max * f * 10) / 10;
    if (whole && !Number.isInteger(v)) continue;
    s.append(svg("text", { x: L - 4, y: y + 3, "text-anchor": "end" },
      fmt(v) + (f === 1 ? unit : "")));
  }
  return s;
}
function appendsChart(a) {
  const max = Math.max(1, ...a.counts);
  const s = frame(max, "", true);
  const n = a.counts.length, w = (W - L - R) / n;
  a.counts.forEach((c, i) => {
    const h = (H - T - B) * c / max;
    const bar = svg("rect", { x: L + i * w + 0.5, y: H - B - h, width: Math.max(1, w - 1),
      height: h, class: "bar" });
    bar.append(svg("title", {}, `${fmt(c)} appends, ${n - 1 - i} min ago`));
    s.append(bar);
  });
  for (const [i, label] of [[0, "-60 min"], [n / 2, "-30 min"], [n - 1, "now"]]) {
    s.append(svg("text", { x: L + i * w + w / 2, y: H - 6,
      "text-anchor": i === 0 ? "start" : i === n - 1 ? "end" : "middle" }, label));
  }
  if (!a.complete) {
    s.append(svg("text", { x: W - R, y: T + 10, "text-anchor": "end" },
      `counted from the newest ${fmt(a.scanned)} entries only`));
  }
  $("appends-chart").replaceChildren(s);
}

// One point per poll: the mean and the 95th percentile (bucket bound) of the requests the
// server timed since the previous poll.
function latencyPoint(m) {
  if (previous && m.count > previous.count) {
    const n = m.count - previous.count;
    const mean = 1000 * (m.latency_sum_seconds - previous.latency_sum_seconds) / n;
    let p95 = null;
    for (let i = 0; i < m.latency_buckets.length; i++) {
      if (m.latency_buckets[i].count - previous.latency_buckets[i].count >= 0.95 * n) {
        p95 = 1000 * m.latency_buckets[i].le;
        break;
      }
    }
    latency.push({ t: Date.now(), mean, p95: p95 === null ? Math.max(mean, 1000) : p95 });
    if (latency.length > 120) latency.shift();
  }
  previous = m;
}
function latencyChart() {
  const box = $("latency-chart");
  if (latency.length < 2) {
    box.replaceChildren(el("p", { class: "muted" },
      `Collecting: a point every ${POLL_MS / 1000} s from the server's request metrics.`));
    return;
  }
  const max = Math.max(0.1, ...latency.map((p) => Math.max(p.mean, p.p95)));
  const s = frame(max, " ms", false);
  const x = (i) => L + (W - L - R) * i / (latency.length - 1);
  const y = (v) => T + (H - T - B) * (1 - v / max);
  for (const k of ["p95", "mean"]) {
    s.append(svg("polyline", { class: k,
      points: latency.map((p, i) => `${x(i)},${y(p[k])}`).join(" ") }));
  }
  s.append(svg("rect", { x: L + 8, y: H - 14, width: 10, height: 4, class: "key-mean" }));
  s.append(svg("text", { x: L + 22, y: H - 9 }, "mean"));
  s.append(svg("rect", { x: L + 62, y: H - 14, width: 10, height: 4, class: "key-p95" }));
  s.append(svg("text", { x: L + 76, y: H - 9 }, "p95 (bucket bound)"));
  const span = Math.round((latency[latency.length - 1].t - latency[0].t) / 1000);
  s.append(svg("text", { x: W - R, y: H - 6, "text-anchor": "end" }, `last ${span} s`));
  box.replaceChildren(s);
}

async function refresh() {
  clearTimeout(timer);
  try {
    render(await api("/v1/dashboard"));
    showMessage("");
  } catch (e) {
    if (e.status !== 401) showMessage("Cannot read the dashboard: " + e.message);
  }
  if (sessionStorage.getItem(KEY)) timer = setTimeout(refresh, POLL_MS);
}

async function verify() {
  const out = $("verify-result");
  $("verify-button").disabled = true;
  out.className = "result";
  out.textContent = "Verifying…";
  try {
    const r = await api("/v1/ledger/verify");
    if (r.valid) {
      out.className = "result ok";
      out.textContent = `Valid: ${count(r.entries_checked, "entry", "entries")}`
        + ` and ${count(r.checkpoints_checked, "checkpoint")} checked in`
        + ` ${Math.round(r.elapsed_ms)} ms.`;
    } else {
      out.className = "result bad";
      const n = Object.values(r.violation_counts).reduce((a, b) => a + b, 0);
      out.replaceChildren(`Not valid: ${count(n, "violation")}.`,
        el("ul", {}, ...r.violations.map((v) => el("li", {},
          v.kind + (v.index === undefined ? "" : " at entry " + v.index) + ": " + v.message))));
    }
  } catch (e) {
    out.className = "result bad";
    out.textContent = "The verification could not run: " + e.message;
  }
  $("verify-button").disabled = false;
  refresh();
}

function forget() {
  sessionStorage.removeItem(KEY);
  clearTimeout(timer);
  previous = null;
  latency.length = 0;
  signedIn(false);
}

document.addEventListener("DOMContentLoaded", () => {
  $("key-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const key = $("api-key").value.trim();
    if (!key) return;
    sessionStorage.setItem(KEY, key);
    $("api-key").value = "";
    signedIn(true);
    refresh();
  });
  $("key-forget").addEventListener("click", () => { forget(); showMessage(""); });
  $("verify-button").addEventListener("click", verify);
  $("latency-period").textContent = `ms per ${POLL_MS / 1000} s`;
  if (sessionStorage.getItem(KEY)) {
    signedIn(true);
    refresh();
  }
});
