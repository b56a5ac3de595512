// Perfect21 dashboard: plain JS, no dependencies, everything from this server.
"use strict";

const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem("p21-token") || "";
let plan = null;
let socket = null;
let currentRun = null;

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (token) headers["Authorization"] = "Bearer " + token;
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, Object.assign({}, options, { headers }));
  if (response.status === 401) {
    $("token-form").hidden = false;
    throw new Error("this server needs an API token");
  }
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.message || response.statusText);
  return data;
}

function showError(err) {
  const box = $("error");
  box.hidden = !err;
  box.textContent = err ? String(err.message || err) : "";
}

// ---------------------------------------------------------------- plan diagram

function drawPlan(p) {
  plan = p;
  const reasons = {};
  for (const choice of p.agents || []) reasons[choice.name] = choice.reasons || [];
  const a = p.analysis || {};
  $("analysis").textContent = `${p.id} · ${a.complexity} · ${(p.agents || []).length} agents · ~${p.estimated_hours} h · domains: ${(a.domains || []).join(", ") || "-"} · stack: ${(a.stack || []).join(", ") || "-"}`;
  const diagram = $("diagram");
  diagram.replaceChildren();
  for (const stage of p.stages || []) {
    const col = el("div", "stage");
    col.dataset.stage = stage.name;
    const head = el("div", "stage-head", stage.name);
    head.appendChild(el("small", "", `${stage.mode} · ${stage.goal || ""}`));
    col.appendChild(head);
    for (const task of stage.tasks || []) {
      const box = el("div", "agent pending");
      box.dataset.task = task.id;
      box.appendChild(el("div", "name", task.agent));
      const why = reasons[task.agent] || [];
      box.appendChild(el("div", "why", why.length ? why.slice(0, 3).join("; ") : task.brief || ""));
      box.title = why.join("\n");
      col.appendChild(box);
    }
    if (stage.sync_point) col.appendChild(el("div", "marker sync", "⇢ sync point"));
    if (stage.gate) {
      const checks = (stage.gate.checks || []).map((c) => c.name + (c.threshold != null ? ` ≥ ${c.threshold}` : ""));
      col.appendChild(el("div", "marker gate", `gate ${stage.gate.name}: ${checks.join(", ")}`));
    }
    diagram.appendChild(col);
  }
  $("run-bar").hidden = false;
}

async function submitPlan(ev) {
  ev.preventDefault();
  const request = $("request").value.trim();
  if (!request) return;
  showError(null);
  $("plan-btn").disabled = true;
  const started = performance.now();
  try {
    const options = {};
    const team = $("team-size").value.trim();
    if (team) options.team_size = team;
    const p = await api("/v1/plan", { method: "POST", body: JSON.stringify({ request, options }) });
    drawPlan(p);
    loadStatus();
    $("plan-info").textContent = `planned in ${(performance.now() - started).toFixed(1)} ms`;
  } catch (err) {
    showError(err);
  } finally {
    $("plan-btn").disabled = false;
  }
}

// ---------------------------------------------------------------- runs

function setRunStatus(status) {
  const pill = $("run-status");
  pill.textContent = status;
  pill.className = "pill " + status;
  pill.dataset.status = status;
  $("cancel-btn").hidden = status !== "running";
}

function logEvent(e) {
  const list = $("events");
  const parts = [e.event, e.task_id || e.stage || "", e.status || ""].filter(Boolean);
  list.appendChild(el("li", "", parts.join(" ")));
  while (list.children.length > 300) list.removeChild(list.firstChild);
  list.scrollTop = list.scrollHeight;
}

function onEvent(e) {
  logEvent(e);
  const box = e.task_id ? document.querySelector(`.agent[data-task="${CSS.escape(e.task_id)}"]`) : null;
  if (box && e.event === "task_started") box.className = "agent running";
  if (box && e.event === "task_finished") {
    box.className = "agent " + (e.status || "succeeded");
    if (e.error) box.title = `${e.status}: ${e.error}`;
  }
  if (e.event === "run_finished" || e.event === "run_status") {
    setRunStatus(e.status);
    loadRuns();
  }
}

function watch(runId) {
  if (socket) socket.close();
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const query = token ? "?token=" + encodeURIComponent(token) : "";
  socket = new WebSocket(`${proto}//${location.host}/v1/runs/${encodeURIComponent(runId)}/events${query}`);
  socket.onmessage = (msg) => onEvent(JSON.parse(msg.data));
  socket.onclose = () => { socket = null; };
}

async function startRun() {
  if (!plan) return;
  showError(null);
  $("events").replaceChildren();
  for (const box of document.querySelectorAll(".agent")) box.className = "agent pending";
  $("run-btn").disabled = true;
  try {
    const run = await api("/v1/runs", { method: "POST", body: JSON.stringify({ profile: $("profile").value, plan }) });
    currentRun = run.id;
    $("run-status").title = run.id;
    setRunStatus("running");
    watch(run.id);
    loadRuns().catch(() => {});
  } catch (err) {
    showError(err);
  } finally {
    $("run-btn").disabled = false;
  }
}

async function recordPlan() {
  if (!plan) return;
  showError(null);
  try {
    await api("/v1/plan", { method: "POST", body: JSON.stringify({ request: plan.request, options: { record: true } }) });
    $("decision-q").value = "";
    await loadDecisions();
  } catch (err) {
    showError(err);
  }
}

async function cancelRun() {
  if (currentRun) await api(`/v1/runs/${encodeURIComponent(currentRun)}/cancel`, { method: "POST" }).catch(showError);
}

async function loadProfiles() {
  const data = await api("/v1/runners");
  const select = $("profile");
  select.replaceChildren();
  for (const p of data.profiles) {
    const option = el("option", "", `${p.name} (${p.runner})`);
    option.value = p.name;
    select.appendChild(option);
  }
  $("run-btn").disabled = data.profiles.length === 0;
  if (!data.profiles.length) $("run-btn").title = "no runner profile is configured on the server";
}

async function loadRuns() {
  const data = await api("/v1/runs?limit=10");
  const list = $("runs");
  list.replaceChildren();
  for (const r of data.runs) {
    const item = el("li", "", `${r.id} `);
    item.appendChild(el("span", "pill " + r.status, r.status));
    item.onclick = () => { currentRun = r.id; setRunStatus(r.status); watch(r.id); };
    list.appendChild(item);
  }
  if (!data.runs.length) list.appendChild(el("li", "muted", "no runs yet"));
}

// ---------------------------------------------------------------- decisions

function showDecisions(items) {
  const list = $("decisions");
  list.replaceChildren();
  for (const d of items) {
    const item = el("li", "", `${d.title || d.id}`);
    if (d.status) item.appendChild(el("span", "pill", d.status));
    item.onclick = async () => {
      const full = await api(`/v1/decisions/${encodeURIComponent(d.id)}`).catch(showError);
      const pre = $("decision-detail");
      pre.hidden = !full;
      pre.textContent = JSON.stringify(full, null, 2);
    };
    list.appendChild(item);
  }
  if (!items.length) list.appendChild(el("li", "muted", "no decisions"));
}

async function loadDecisions(ev) {
  if (ev) ev.preventDefault();
  const q = $("decision-q").value.trim();
  try {
    const data = await api(q ? `/v1/decisions/search?q=${encodeURIComponent(q)}` : "/v1/decisions?limit=20");
    showDecisions(data.decisions || []);
  } catch (err) {
    $("decisions").replaceChildren(el("li", "muted", err.message));
  }
}

// ---------------------------------------------------------------- KPIs and alerts

function metricValue(kpis, name) {
  const m = kpis[name];
  if (!m || !m.samples || !m.samples.length) return null;
  return m.samples.reduce((sum, s) => sum + (s.value || 0), 0);
}

async function loadStatus() {
  try {
    const s = await api("/v1/status");
    const health = $("health");
    const accepting = !s.monitor || s.monitor.memory.accepting;
    health.textContent = accepting ? "healthy" : "shedding load";
    health.className = "pill " + (accepting ? "ok" : "bad");
    const rows = [["agents", s.agents], ["cached plans", s.plan_cache], ["active runs", s.active_runs]];
    if (s.monitor) {
      const k = s.monitor.kpis || {};
      rows.push(["memory MiB", s.monitor.memory.current_mb]);
      for (const name of ["plans_generated_total", "decisions_recorded_total", "executor_tasks_total", "cache_hit_ratio", "error_ratio"]) {
        const v = metricValue(k, name);
        if (v !== null) rows.push([name.replace(/_/g, " "), Math.round(v * 1000) / 1000]);
      }
      const alerts = $("alerts");
      alerts.replaceChildren();
      for (const name of s.monitor.firing || []) alerts.appendChild(el("li", "error", "firing: " + name));
      for (const a of (s.monitor.recent_alerts || []).slice(-5)) alerts.appendChild(el("li", "", `${a.name || a.alert || "alert"}: ${a.message || ""}`));
      if (!alerts.children.length) alerts.appendChild(el("li", "", "none"));
    }
    const table = $("kpis");
    table.replaceChildren();
    for (const [name, value] of rows) {
      const tr = el("tr");
      tr.appendChild(el("td", "", name));
      tr.appendChild(el("td", "", value));
      table.appendChild(tr);
    }
  } catch (err) {
    $("health").textContent = "unreachable";
    $("health").className = "pill bad";
  }
}

// ---------------------------------------------------------------- start

function refreshAll() {
  loadStatus();
  loadProfiles().catch(showError);
  loadRuns().catch(() => {});
  loadDecisions();
}

$("plan-form").addEventListener("submit", submitPlan);
$("run-btn").addEventListener("click", startRun);
$("cancel-btn").addEventListener("click", cancelRun);
$("record-btn").addEventListener("click", recordPlan);
$("decision-form").addEventListener("submit", loadDecisions);
$("token-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  token = $("token").value;
  sessionStorage.setItem("p21-token", token);
  $("token-form").hidden = true;
  refreshAll();
});
refreshAll();
setInterval(loadStatus, 5000);
