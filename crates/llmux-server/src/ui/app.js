// The llmux dashboard. Plain DOM, no framework; every value from the server is put into the
// page as text (never as HTML): request log fields come from clients and are hostile.
"use strict";

const KEY = "llmux.master";
const $ = (id) => document.getElementById(id);
let refreshTimer = null;
let nextCursor = null;

// ---------- API ----------

async function api(path, options = {}) {
  const response = await fetch(path, {
    ...options,
    headers: { ...(options.headers || {}), Authorization: "Bearer " + sessionStorage.getItem(KEY) },
  });
  if (response.status === 401 || response.status === 403) {
    logout("the master key was refused");
    throw new Error("unauthorized");
  }
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (_) { body = text; }
  if (!response.ok) {
    const message = (body && body.error && (body.error.message || body.error)) || response.statusText;
    throw new Error(path + ": " + message);
  }
  return body;
}

function showError(error) {
  if (error && error.message !== "unauthorized") $("app-error").textContent = String(error.message || error);
}

// ---------- DOM helpers ----------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child instanceof Node ? child : String(child ?? ""));
  return node;
}

function table(node, columns, rows, onClick) {
  node.replaceChildren(el("tr", {}, ...columns.map((c) => el("th", {}, c.title))));
  for (const row of rows) {
    const tr = el("tr", onClick ? { class: "clickable" } : {});
    for (const c of columns) {
      const value = c.value(row);
      tr.append(el("td", c.num ? { class: "num" } : {}, value instanceof Node ? value : value ?? "–"));
    }
    if (onClick) tr.addEventListener("click", () => onClick(row));
    node.append(tr);
  }
}

const fmt = {
  int: (n) => (n == null ? "–" : Math.round(n).toLocaleString("en-US")),
  ms: (n) => (n == null ? "–" : n < 10 ? n.toFixed(1) + " ms" : Math.round(n) + " ms"),
  usd: (n) => (n == null ? "–" : "$" + (n < 0.01 && n > 0 ? n.toPrecision(2) : n.toFixed(2))),
  pct: (n) => (n == null || isNaN(n) ? "–" : (n * 100).toFixed(1) + " %"),
  time: (ms) => new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z"),
};

// ---------- charts (inline SVG) ----------

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text != null) node.textContent = text;
  return node;
}

// Lines (one per series) over the minutes; nulls leave gaps.
function lineChart(node, minutes, series, format) {
  const width = 400, height = 140, left = 44, bottom = 16, top = 6;
  node.setAttribute("viewBox", `0 0 ${width} ${height}`);
  node.replaceChildren();
  const values = series.flatMap((s) => minutes.map(s)).filter((v) => v != null);
  const max = Math.max(1e-9, ...values);
  const x = (i) => left + (i * (width - left - 4)) / Math.max(1, minutes.length - 1);
  const y = (v) => top + (height - top - bottom) * (1 - v / max);
  node.append(svg("line", { class: "axis", x1: left, y1: y(0), x2: width, y2: y(0) }));
  node.append(svg("text", { x: 2, y: top + 8 }, format(max)));
  node.append(svg("text", { x: 2, y: y(0) }, format(0)));
  node.append(svg("text", { x: left, y: height - 2 }, "−60 min"));
  node.append(svg("text", { x: width - 30, y: height - 2 }, "now"));
  series.forEach((s, index) => {
    let d = "";
    let pen = false;
    minutes.forEach((m, i) => {
      const v = s(m);
      if (v == null) { pen = false; return; }
      d += (pen ? "L" : "M") + x(i).toFixed(1) + " " + y(v).toFixed(1);
      pen = true;
      // A dot per minute with data, so a lone minute still shows.
      if (v > 0) node.append(svg("circle", { class: "s" + index, cx: x(i).toFixed(1), cy: y(v).toFixed(1), r: 1.5 }));
    });
    if (d) node.append(svg("path", { class: "s" + index, d }));
  });
  node.dataset.points = String(values.length);
}

// ---------- tabs ----------

const loaders = { traffic: loadTraffic, vendors: loadVendors, keys: loadKeys, requests: () => loadRequests(false), config: loadConfig };

function showTab(name) {
  for (const button of document.querySelectorAll("nav button")) button.classList.toggle("active", button.dataset.tab === name);
  for (const section of document.querySelectorAll(".tab")) section.hidden = section.id !== "tab-" + name;
  $("app-error").textContent = "";
  clearInterval(refreshTimer);
  loaders[name]().catch(showError);
  if (name === "traffic" || name === "vendors") {
    refreshTimer = setInterval(() => loaders[name]().catch(showError), 5000);
  }
}

// ---------- traffic ----------

async function loadTraffic() {
  const report = await api("/admin/traffic");
  const minutes = report.minutes;
  const hour = report.hour;
  const cards = [
    ["requests", fmt.int(hour.requests), "requests"],
    ["rps", (hour.requests / 3600).toFixed(3), "requests/s (hour)"],
    ["errors", fmt.pct(hour.requests ? hour.errors / hour.requests : null), "error rate"],
    ["p50", fmt.ms(hour.latency_p50_ms), "latency p50"],
    ["p95", fmt.ms(hour.latency_p95_ms), "latency p95"],
    ["ttfb", fmt.ms(hour.ttfb_p50_ms), "TTFB p50"],
    ["tokens", fmt.int(hour.input_tokens + hour.output_tokens), "tokens"],
    ["cost", fmt.usd(hour.cost_usd), "cost"],
  ];
  $("traffic-summary").replaceChildren(
    ...cards.map(([id, value, label]) => el("div", { class: "card", "data-card": id }, el("b", {}, value), el("span", {}, label))),
  );
  lineChart($("chart-rps"), minutes, [(m) => m.requests / 60], (v) => v.toFixed(2));
  lineChart($("chart-errors"), minutes, [(m) => (m.requests ? m.errors / m.requests : null)], fmt.pct);
  lineChart($("chart-latency"), minutes, [(m) => m.latency_p50_ms, (m) => m.latency_p95_ms], (v) => Math.round(v) + "");
  lineChart($("chart-ttfb"), minutes, [(m) => m.ttfb_p50_ms, (m) => m.ttfb_p95_ms], (v) => Math.round(v) + "");
  lineChart($("chart-tokens"), minutes, [(m) => m.input_tokens, (m) => m.output_tokens], fmt.int);
  lineChart($("chart-cost"), minutes, [(m) => m.cost_usd], (v) => v.toPrecision(2));
  const columns = [
    { title: "name", value: (r) => r.name },
    { title: "requests", value: (r) => fmt.int(r.requests), num: true },
    { title: "errors", value: (r) => fmt.pct(r.requests ? r.errors / r.requests : null), num: true },
    { title: "avg latency", value: (r) => fmt.ms(r.requests ? r.latency_ms_sum / r.requests : null), num: true },
    { title: "tokens", value: (r) => fmt.int(r.input_tokens + r.output_tokens), num: true },
    { title: "cost", value: (r) => fmt.usd(r.cost_usd), num: true },
  ];
  table($("by-vendor"), columns, report.by.vendor);
  table($("by-model"), columns, report.by.model);
  table($("by-key"), columns, report.by.key);
}

// ---------- vendors ----------

async function loadVendors() {
  const [health, config] = await Promise.all([api("/health/vendors"), api("/admin/config")]);
  const limits = new Map(config.credentials.map((c) => [c.name, c.limits || {}]));
  const state = (r) => el("span", { class: "state-" + r.state }, r.state);
  const common = [
    { title: "state", value: state },
    { title: "cooldown", value: (r) => (r.cooldown_remaining_ms ? fmt.ms(r.cooldown_remaining_ms) : "–"), num: true },
    { title: "error rate", value: (r) => fmt.pct(r.error_rate), num: true },
    { title: "recent", value: (r) => fmt.int(r.recent_requests), num: true },
    { title: "last error", value: (r) => r.last_error },
    { title: "p50", value: (r) => fmt.ms(r.p50_latency_ms), num: true },
  ];
  table($("vendor-combinations"), [
    { title: "vendor", value: (r) => r.vendor },
    { title: "credential", value: (r) => r.credential },
    { title: "model", value: (r) => r.model },
    { title: "name", value: (r) => r.name },
    ...common,
  ], health.combinations);
  table($("vendor-credentials"), [
    { title: "vendor", value: (r) => r.vendor },
    { title: "credential", value: (r) => r.credential },
    ...common,
    { title: "quota rpm", value: (r) => limits.get(r.credential)?.rpm, num: true },
    { title: "quota tpm", value: (r) => limits.get(r.credential)?.tpm, num: true },
  ], health.credentials);
}

// ---------- keys ----------

async function loadKeys() {
  const list = await api("/admin/keys");
  const keys = list.data;
  const usage = await Promise.all(keys.map((k) => api("/admin/keys/" + encodeURIComponent(k.id) + "/usage").catch(() => null)));
  const spend = new Map(keys.map((k, i) => [k.id, usage[i] && usage[i].spend_usd]));
  table($("keys"), [
    { title: "id", value: (k) => k.id },
    { title: "name", value: (k) => k.name },
    { title: "status", value: (k) => (k.revoked_at ? "revoked" : "active") },
    { title: "budget day", value: (k) => (k.budget_daily_usd == null ? "–" : fmt.usd(k.budget_daily_usd)), num: true },
    { title: "budget month", value: (k) => (k.budget_monthly_usd == null ? "–" : fmt.usd(k.budget_monthly_usd)), num: true },
    { title: "spend today", value: (k) => fmt.usd(spend.get(k.id)?.day), num: true },
    { title: "spend month", value: (k) => fmt.usd(spend.get(k.id)?.month), num: true },
    { title: "rpm", value: (k) => k.rpm, num: true },
    { title: "", value: (k) => keyActions(k) },
  ], keys);
}

function keyActions(key) {
  const box = el("span", { "data-key": key.id });
  if (key.revoked_at) return box;
  const budget = el("input", { type: "number", min: "0", step: "any", placeholder: "daily USD", class: "key-budget", size: "8" });
  box.append(
    budget,
    el("button", { class: "key-save", onclick: () => updateKey(key.id, budget.value).catch(showError) }, "Set budget"),
    " ",
    el("button", { class: "danger key-revoke", onclick: (event) => revokeKey(key.id, event.target).catch(showError) }, "Revoke"),
  );
  return box;
}

async function updateKey(id, daily) {
  const value = daily === "" ? null : Number(daily);
  await api("/admin/keys/" + encodeURIComponent(id), {
    method: "PATCH",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ budget_daily_usd: value }),
  });
  await loadKeys();
}

// Two clicks: the first arms the button, the second revokes (no modal dialog).
async function revokeKey(id, button) {
  if (button.dataset.armed !== "yes") {
    button.dataset.armed = "yes";
    button.textContent = "Confirm revoke";
    return;
  }
  await api("/admin/keys/" + encodeURIComponent(id), { method: "DELETE" });
  await loadKeys();
}

async function createKey(event) {
  event.preventDefault();
  const body = { name: $("key-name").value };
  const number = (id) => ($(id).value === "" ? undefined : Number($(id).value));
  if (number("key-budget-daily") !== undefined) body.budget_daily_usd = number("key-budget-daily");
  if (number("key-budget-monthly") !== undefined) body.budget_monthly_usd = number("key-budget-monthly");
  if (number("key-rpm") !== undefined) body.rpm = number("key-rpm");
  const created = await api("/admin/keys", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  $("key-plaintext").textContent = created.key;
  $("key-created").hidden = false;
  $("key-form").reset();
  await loadKeys();
}

// ---------- request log ----------

function filterQuery() {
  const params = new URLSearchParams();
  for (const name of ["model", "vendor", "key", "status"]) {
    const value = $("filter-" + name).value.trim();
    if (value) params.set(name, value);
  }
  params.set("limit", "50");
  return params;
}

async function loadRequests(more) {
  const params = filterQuery();
  if (more && nextCursor) params.set("cursor", nextCursor);
  const page = await api("/admin/requests?" + params.toString());
  nextCursor = page.next_cursor;
  $("requests-more").hidden = !nextCursor;
  const columns = [
    { title: "time", value: (r) => fmt.time(r.time_ms) },
    { title: "request id", value: (r) => r.request_id },
    { title: "status", value: (r) => r.status, num: true },
    { title: "ingress", value: (r) => r.ingress },
    { title: "model", value: (r) => r.requested_model },
    { title: "vendor", value: (r) => r.vendor },
    { title: "key", value: (r) => r.key_name || r.key_id },
    { title: "attempts", value: (r) => r.attempts.length, num: true },
    { title: "ttfb", value: (r) => fmt.ms(r.ttfb_ms), num: true },
    { title: "total", value: (r) => fmt.ms(r.total_ms), num: true },
    { title: "tokens", value: (r) => (r.input_tokens == null ? "–" : r.input_tokens + " / " + r.output_tokens), num: true },
    { title: "cost", value: (r) => fmt.usd(r.cost_usd) + (r.cost_estimated ? " (est.)" : ""), num: true },
  ];
  const node = $("requests");
  if (more) {
    const scratch = el("table");
    table(scratch, columns, page.records, showRequest);
    node.append(...[...scratch.children].slice(1));
  } else {
    table(node, columns, page.records, showRequest);
  }
}

async function showRequest(row) {
  const record = await api("/admin/requests/" + encodeURIComponent(row.request_id));
  $("request-detail").hidden = false;
  $("detail-id").textContent = record.request_id;
  const fields = [
    ["time", fmt.time(record.time_ms)], ["status", record.status], ["error", record.error_kind],
    ["ingress", record.ingress], ["requested model", record.requested_model], ["vendor", record.vendor],
    ["credential", record.credential], ["upstream model", record.upstream_model],
    ["key", record.key_name ? record.key_name + " (" + record.key_id + ")" : record.key_id],
    ["stream", record.stream ? "yes" : "no"], ["ttfb", fmt.ms(record.ttfb_ms)], ["total", fmt.ms(record.total_ms)],
    ["input tokens", record.input_tokens], ["output tokens", record.output_tokens],
    ["cached tokens", record.cached_tokens], ["reasoning tokens", record.reasoning_tokens],
    ["cost", fmt.usd(record.cost_usd) + (record.cost_estimated ? " (estimated)" : "")],
    ["client", record.client_addr], ["user agent", record.user_agent],
  ];
  $("detail-fields").replaceChildren(...fields.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v ?? "–")]));
  timeline($("detail-timeline"), record.attempts, record.total_ms);
  table($("detail-attempts"), [
    { title: "#", value: (a) => record.attempts.indexOf(a) + 1, num: true },
    { title: "vendor", value: (a) => a.vendor },
    { title: "credential", value: (a) => a.credential },
    { title: "model", value: (a) => a.model },
    { title: "status", value: (a) => a.status || "–", num: true },
    { title: "duration", value: (a) => fmt.ms(a.duration_ms), num: true },
    { title: "error", value: (a) => a.error },
  ], record.attempts);
  const body = record.request_body;
  $("detail-body").hidden = !body;
  $("detail-body").textContent = body || "";
  $("request-detail").scrollIntoView();
}

// Attempts ran one after the other: lay their bars end to end over the request's duration.
function timeline(node, attempts, total) {
  const width = 400, height = 20;
  node.setAttribute("viewBox", `0 0 ${width} ${height}`);
  node.replaceChildren();
  const span = Math.max(1, total, attempts.reduce((s, a) => s + a.duration_ms, 0));
  let at = 0;
  attempts.forEach((a, i) => {
    const w = Math.max(2, (a.duration_ms / span) * width);
    const ok = a.status >= 200 && a.status < 300 && !a.error;
    const bar = svg("rect", { class: ok ? "ok attempt" : "failed attempt", x: (at / span) * width, y: 3, width: w, height: height - 6 });
    bar.append(svg("title", {}, `#${i + 1} ${a.vendor}/${a.credential} ${a.model}: ${a.status || "no answer"} in ${a.duration_ms} ms`));
    node.append(bar);
    at += a.duration_ms;
  });
}

// ---------- configuration ----------

async function loadConfig() {
  const config = await api("/admin/config");
  $("config-source").textContent = config.source;
  table($("config-credentials"), [
    { title: "name", value: (c) => c.name },
    { title: "vendor", value: (c) => c.vendor },
    { title: "api", value: (c) => c.api },
    { title: "base url", value: (c) => c.base_url },
    { title: "value", value: (c) => c.value },
  ], config.credentials);
  table($("config-models"), [
    { title: "vendor", value: (m) => m.vendor },
    { title: "model", value: (m) => m.model },
    { title: "name", value: (m) => m.name },
  ], config.models);
  $("config-text").textContent = config.text;
}

// ---------- login ----------

async function login(event) {
  event.preventDefault();
  sessionStorage.setItem(KEY, $("master-key").value);
  $("master-key").value = "";
  try {
    await api("/admin/traffic");
  } catch (error) {
    if (error.message !== "unauthorized") {
      sessionStorage.removeItem(KEY);
      $("login-error").textContent = String(error.message);
    }
    return;
  }
  start();
}

function logout(reason) {
  sessionStorage.removeItem(KEY);
  clearInterval(refreshTimer);
  $("app").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = reason || "";
}

function start() {
  $("login").hidden = true;
  $("app").hidden = false;
  showTab("traffic");
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", () => logout(""));
  for (const button of document.querySelectorAll("nav button")) button.addEventListener("click", () => showTab(button.dataset.tab));
  $("key-form").addEventListener("submit", (e) => createKey(e).catch(showError));
  $("request-filter").addEventListener("submit", (e) => {
    e.preventDefault();
    // Empty the table first: what shows next is the filtered answer, never the old page.
    $("requests").replaceChildren();
    $("request-detail").hidden = true;
    loadRequests(false).catch(showError);
  });
  $("requests-more").addEventListener("click", () => loadRequests(true).catch(showError));
  if (sessionStorage.getItem(KEY)) start();
  else logout("");
});
