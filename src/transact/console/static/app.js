// Transact console: hash-routed pages over the JSON API under /api. No build step, no CDN.
"use strict";

const TOKEN_KEY = "transact-console-token";
const STATUSES = ["PENDING", "ENQUEUED", "DELAYED", "SUCCESS", "ERROR", "CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED"];
const FINAL = new Set(["SUCCESS", "ERROR", "CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED"]);
const PAGE = 50;
const LIVE_MS = 2000;

const state = { config: null, refresh: null, timer: null, generation: 0, keepFlash: false };

// -- DOM helpers (text only: nothing from the database is parsed as HTML) ------------------------
function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "text") el.textContent = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const kid of kids.flat()) {
    if (kid === null || kid === undefined || kid === false) continue;
    el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return el;
}

function when(ms) {
  if (ms === null || ms === undefined) return "";
  return new Date(ms).toISOString().replace("T", " ").replace("Z", "");
}

function duration(ms) {
  if (ms === null || ms === undefined) return "";
  if (ms < 1000) return ms + " ms";
  if (ms < 60000) return (ms / 1000).toFixed(2) + " s";
  return (ms / 60000).toFixed(1) + " min";
}

function badge(status) {
  return h("span", { class: "badge s-" + String(status).toLowerCase(), text: status });
}

function wfLink(id) {
  return h("a", { href: "#/workflow/" + encodeURIComponent(id), class: "wf-link", text: id });
}

function valueBox(v) {
  if (!v) return h("span", { class: "muted", text: "—" });
  const cls = "value" + (v.undecodable ? " undecodable" : "");
  return h("pre", { class: cls }, v.text, v.truncated ? h("span", { class: "muted", text: ` (truncated, ${v.bytes} bytes stored)` }) : null);
}

function table(headers, rows, attrs) {
  return h("table", attrs || {},
    h("thead", {}, h("tr", {}, headers.map((t) => h("th", { text: t })))),
    h("tbody", {}, rows));
}

function flash(message, kind) {
  const el = document.getElementById("flash");
  el.replaceChildren(...(Array.isArray(message) ? message : [message]));
  el.className = kind || "info";
  el.hidden = false;
}

function clearFlash() {
  document.getElementById("flash").hidden = true;
}

// -- API ------------------------------------------------------------------------------------------
class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(path, options) {
  const opts = options || {};
  const method = opts.method || "GET";
  const headers = { Accept: "application/json" };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = "Bearer " + token;
  if (method !== "GET") {
    headers["X-Transact-Console"] = "1";
    headers["Content-Type"] = "application/json";
  }
  const res = await fetch(path, {
    method, headers, credentials: "same-origin",
    body: method === "GET" ? undefined : JSON.stringify(opts.body || {}),
  });
  let data = null;
  try { data = await res.json(); } catch (e) { data = { error: res.statusText }; }
  if (!res.ok) throw new ApiError(res.status, (data && data.error) || res.statusText);
  return data;
}

function confirmDialog(text) {
  const dialog = document.getElementById("confirm-dialog");
  document.getElementById("confirm-text").textContent = text;
  return new Promise((resolve) => {
    const ok = document.getElementById("confirm-ok");
    const cancel = document.getElementById("confirm-cancel");
    const done = (answer) => {
      ok.removeEventListener("click", yes);
      cancel.removeEventListener("click", no);
      dialog.removeEventListener("cancel", no);
      dialog.close();
      resolve(answer);
    };
    const yes = () => done(true);
    const no = () => done(false);
    ok.addEventListener("click", yes);
    cancel.addEventListener("click", no);
    dialog.addEventListener("cancel", no);
    dialog.showModal();
  });
}

// -- pages ----------------------------------------------------------------------------------------
function loginPage(view, message) {
  const input = h("input", { type: "password", id: "token-input", autocomplete: "off", placeholder: "token" });
  const form = h("form", {
    class: "login", onsubmit: (e) => {
      e.preventDefault();
      sessionStorage.setItem(TOKEN_KEY, input.value.trim());
      start();
    },
  }, h("h2", { text: "Sign in" }), h("p", { class: "muted", text: message || "This console needs its token." }),
  input, h("button", { type: "submit", id: "token-submit", text: "Sign in" }));
  view.replaceChildren(form);
  input.focus();
}

function readFilters(params) {
  return {
    status: params.get("status") || "",
    name: params.get("name") || "",
    queue_name: params.get("queue_name") || "",
    workflow_id_prefix: params.get("workflow_id_prefix") || "",
    start_time: params.get("start_time") || "",
    end_time: params.get("end_time") || "",
    offset: Number(params.get("offset") || 0),
  };
}

function localInput(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (isNaN(d)) return "";
  return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
}

function workflowsPage(view, params) {
  const f = readFilters(params);
  const field = (label, input) => h("label", {}, label, input);
  const status = h("select", { id: "f-status", name: "status" }, h("option", { value: "", text: "any status" }),
    STATUSES.map((s) => h("option", { value: s, text: s, selected: s === f.status })));
  const name = h("input", { id: "f-name", name: "name", value: f.name, placeholder: "workflow name" });
  const queue = h("input", { id: "f-queue", name: "queue_name", value: f.queue_name, placeholder: "queue" });
  const prefix = h("input", { id: "f-prefix", name: "workflow_id_prefix", value: f.workflow_id_prefix, placeholder: "id prefix" });
  const from = h("input", { id: "f-from", type: "datetime-local", value: localInput(f.start_time) });
  const to = h("input", { id: "f-to", type: "datetime-local", value: localInput(f.end_time) });
  const apply = (offset) => {
    const q = new URLSearchParams();
    if (status.value) q.set("status", status.value);
    for (const input of [name, queue, prefix]) if (input.value.trim()) q.set(input.name, input.value.trim());
    if (from.value) q.set("start_time", new Date(from.value).toISOString());
    if (to.value) q.set("end_time", new Date(to.value).toISOString());
    if (offset) q.set("offset", String(offset));
    location.hash = "#/workflows" + (q.toString() ? "?" + q : "");
  };
  const form = h("form", { class: "filters", id: "filters", onsubmit: (e) => { e.preventDefault(); apply(0); } },
    field("Status", status), field("Name", name), field("Queue", queue), field("ID prefix", prefix),
    field("Created from (local time)", from), field("to", to),
    h("button", { type: "submit", id: "f-apply", text: "Filter" }),
    h("button", { type: "button", text: "Clear", onclick: () => { location.hash = "#/workflows"; } }));
  const results = h("div", { id: "results" });
  view.replaceChildren(h("h2", { text: "Workflows" }), form, results);

  const query = new URLSearchParams({ limit: String(PAGE), offset: String(f.offset) });
  for (const key of ["status", "name", "queue_name", "workflow_id_prefix", "start_time", "end_time"]) {
    if (f[key]) query.set(key, f[key]);
  }
  return async () => {
    const data = await api("/api/workflows?" + query);
    const rows = data.workflows.map((w) => h("tr", { class: "wf-row", "data-id": w.workflow_id },
      h("td", {}, wfLink(w.workflow_id)), h("td", { text: w.name }), h("td", {}, badge(w.status)),
      h("td", { text: w.queue_name || "" }), h("td", { text: when(w.created_at) }),
      h("td", { text: when(w.updated_at) }), h("td", { class: "muted", text: w.executor_id || "" })));
    const pager = h("div", { class: "pager" },
      h("button", { id: "prev", disabled: f.offset === 0, text: "← Newer", onclick: () => apply(Math.max(0, f.offset - PAGE)) }),
      h("span", { class: "muted", text: rows.length ? `rows ${f.offset + 1}–${f.offset + rows.length}` : "no workflows" }),
      h("button", { id: "next", disabled: !data.has_more, text: "Older →", onclick: () => apply(f.offset + PAGE) }));
    results.replaceChildren(
      table(["Workflow ID", "Name", "Status", "Queue", "Created (UTC)", "Updated (UTC)", "Executor"], rows, { id: "workflows" }),
      pager);
  };
}

function actionButtons(w, data) {
  if (state.config.read_only) return null;
  const id = w.workflow_id;
  const run = async (label, path, body, after) => {
    try {
      const out = await api(`/api/workflows/${encodeURIComponent(id)}/${path}`, { method: "POST", body });
      after(out);
    } catch (e) {
      flash(`${label} failed: ${e.message}`, "error");
    }
  };
  const buttons = [];
  if (data.actions.includes("cancel")) {
    buttons.push(h("button", { id: "act-cancel", class: "danger", text: "Cancel", onclick: async () => {
      if (!await confirmDialog(`Cancel workflow ${id}? Running steps stop at their next checkpoint.`)) return;
      await run("Cancel", "cancel", {}, (out) => { flash(`Cancelled ${id}: status ${out.status}`); refreshNow(); });
    } }));
  }
  if (data.actions.includes("resume")) {
    buttons.push(h("button", { id: "act-resume", text: "Resume", onclick: async () => {
      if (!await confirmDialog(`Resume workflow ${id} from its checkpoints?`)) return;
      await run("Resume", "resume", {}, (out) => { flash(`Resumed ${id}: status ${out.status}`); refreshNow(); });
    } }));
  }
  if (data.actions.includes("fork")) {
    const top = data.steps.reduce((m, s) => Math.max(m, s.function_id), 0);
    const select = h("select", { id: "fork-step" });
    for (let n = 1; n <= top + 1; n++) {
      const step = data.steps.find((s) => s.function_id === n);
      select.append(h("option", { value: String(n), text: step ? `step ${n}: ${step.function_name}` : `step ${n}` }));
    }
    buttons.push(h("span", { class: "fork" }, h("label", { text: "Fork from " }, select),
      h("button", { id: "act-fork", text: "Fork", onclick: async () => {
        const step = Number(select.value);
        if (!await confirmDialog(`Fork ${id} from step ${step}? Steps before it reuse their recorded outcomes.`)) return;
        await run("Fork", "fork", { start_step: step }, (out) => {
          flash(["Forked as ", wfLink(out.workflow_id)]);
          state.keepFlash = true;
          location.hash = "#/workflow/" + encodeURIComponent(out.workflow_id);
        });
      } })));
  }
  if (data.actions.includes("delete")) {
    buttons.push(h("button", { id: "act-delete", class: "danger", text: "Delete", onclick: async () => {
      if (!await confirmDialog(`Delete workflow ${id} and everything recorded for it? This cannot be undone.`)) return;
      await run("Delete", "delete", {}, () => { flash(`Deleted ${id}`); state.keepFlash = true; location.hash = "#/workflows"; });
    } }));
  }
  return h("div", { class: "actions", id: "actions" }, buttons);
}

function stepsTimeline(w, steps) {
  const timed = steps.filter((s) => s.started_at !== null);
  const t0 = Math.min(w.created_at, ...timed.map((s) => s.started_at));
  const t1 = Math.max(w.updated_at, ...timed.map((s) => s.completed_at || s.started_at));
  const span = Math.max(1, t1 - t0);
  const rows = steps.map((s) => {
    const bar = h("div", { class: "bar" + (s.error ? " failed" : "") });
    if (s.started_at !== null) {
      bar.style.marginLeft = (100 * (s.started_at - t0) / span).toFixed(2) + "%";
      bar.style.width = Math.max(0.5, 100 * ((s.completed_at || s.started_at) - s.started_at) / span).toFixed(2) + "%";
    }
    return h("tr", { class: "step-row", "data-step": s.function_id },
      h("td", { class: "num", text: s.function_id }), h("td", { text: s.function_name }),
      h("td", { class: "num", text: duration(s.duration_ms) }), h("td", { class: "timeline" }, bar),
      h("td", {}, s.error ? valueBox(s.error) : valueBox(s.output)),
      h("td", {}, s.child_workflow_id ? wfLink(s.child_workflow_id) : ""));
  });
  return table(["#", "Step", "Duration", "Timeline", "Output / error", "Child"], rows, { id: "steps" });
}

function tree(nodes) {
  if (!nodes.length) return h("p", { class: "muted", text: "No child workflows." });
  return h("ul", { class: "tree" }, nodes.map((n) =>
    h("li", {}, wfLink(n.workflow_id), " ", h("span", { text: n.name }), " ", badge(n.status), n.children.length ? tree(n.children) : null)));
}

function streamReader(id) {
  const key = h("input", { id: "stream-key", placeholder: "stream key" });
  const out = h("div", { id: "stream-values" });
  const read = async (e) => {
    e.preventDefault();
    if (!key.value) return;
    try {
      const data = await api(`/api/workflows/${encodeURIComponent(id)}/streams/${encodeURIComponent(key.value)}`);
      const rows = data.values.map((v) => h("tr", {}, h("td", { class: "num", text: v.offset }), h("td", {}, valueBox(v.value))));
      out.replaceChildren(table(["Offset", "Value"], rows), h("p", { class: "muted", text: data.closed ? "closed" : "open" }));
    } catch (err) {
      out.replaceChildren(h("p", { class: "error", text: err.message }));
    }
  };
  return h("form", { class: "filters", onsubmit: read }, key, h("button", { type: "submit", text: "Read stream" }), out);
}

function workflowPage(view, id) {
  view.replaceChildren(h("p", { class: "muted", text: "Loading…" }));
  return async () => {
    const data = await api("/api/workflows/" + encodeURIComponent(id));
    const w = data.workflow;
    const fields = [
      ["Name", w.name], ["Class", w.class_name], ["Queue", w.queue_name], ["Partition", w.queue_partition_key],
      ["Executor", w.executor_id], ["App version", w.app_version], ["Created", when(w.created_at)],
      ["Started", when(w.started_at)], ["Updated", when(w.updated_at)], ["Recovery attempts", w.recovery_attempts],
      ["Deadline", when(w.deadline_at)], ["User", w.authenticated_user],
    ].filter(([, v]) => v !== null && v !== undefined && v !== "");
    const rows = fields.map(([k, v]) => h("tr", {}, h("th", { text: k }), h("td", { text: v })));
    if (w.parent_workflow_id) rows.push(h("tr", {}, h("th", { text: "Parent" }), h("td", {}, wfLink(w.parent_workflow_id))));
    if (w.forked_from) rows.push(h("tr", {}, h("th", { text: "Forked from" }), h("td", {}, wfLink(w.forked_from))));
    if (w.attributes) rows.push(h("tr", {}, h("th", { text: "Attributes" }), h("td", {}, h("pre", { class: "value", text: JSON.stringify(w.attributes, null, 2) }))));
    const events = Object.entries(data.events).map(([k, v]) => h("tr", {}, h("td", { text: k }), h("td", {}, valueBox(v))));
    view.replaceChildren(
      h("h2", {}, "Workflow ", h("code", { id: "wf-id", text: w.workflow_id }), " ", h("span", { id: "wf-status" }, badge(w.status))),
      actionButtons(w, data),
      h("table", { class: "fields" }, h("tbody", {}, rows)),
      h("div", { class: "values" },
        h("section", {}, h("h3", { text: "Input" }), valueBox(w.input)),
        h("section", { id: "wf-output" }, h("h3", { text: "Output" }), valueBox(w.output)),
        h("section", { id: "wf-error" }, h("h3", { text: "Error" }), valueBox(w.error))),
      h("h3", { text: `Steps (${data.steps_total})` }),
      data.steps.length ? stepsTimeline(w, data.steps) : h("p", { class: "muted", text: "No steps recorded." }),
      h("h3", { text: "Children" }), tree(data.children),
      h("h3", { text: "Events" }), events.length ? table(["Key", "Value"], events, { id: "events" }) : h("p", { class: "muted", text: "No events." }),
      h("h3", { text: "Streams" }), streamReader(w.workflow_id));
  };
}

function simplePage(view, title, path, headers, toRow, key) {
  const box = h("div", {});
  view.replaceChildren(h("h2", { text: title }), box);
  return async () => {
    const data = await api(path);
    const items = data[key];
    box.replaceChildren(items.length ? table(headers, items.map(toRow), { id: key }) : h("p", { class: "muted", text: `No ${title.toLowerCase()}.` }));
  };
}

function limitText(n) {
  return n === null || n === undefined ? "—" : String(n);
}

function age(ms) {
  if (ms === null || ms === undefined) return "—";
  return duration(Math.max(0, Date.now() - ms));
}

function queuesPage(view) {
  return simplePage(view, "Queues", "/api/queues",
    ["Queue", "Enqueued", "Running", "Delayed", "Oldest waiting", "Concurrency", "Per worker", "Rate limit", "Priority", "Partitions"],
    (q) => h("tr", { class: "queue-row", "data-queue": q.queue_name },
      h("td", {}, h("a", { href: "#/workflows?queue_name=" + encodeURIComponent(q.queue_name), text: q.queue_name }),
        q.registered ? null : h("span", { class: "muted", text: " (not registered)" })),
      h("td", { class: "num", text: q.enqueued }), h("td", { class: "num", text: q.running }),
      h("td", { class: "num", text: q.delayed > q.capped_at ? q.capped_at + "+" : q.delayed }),
      h("td", { class: "num", text: age(q.oldest_enqueued_at) }),
      h("td", { class: "num", text: limitText(q.concurrency) }), h("td", { class: "num", text: limitText(q.worker_concurrency) }),
      h("td", { text: q.rate_limit ? `${q.rate_limit} / ${q.rate_period_ms / 1000} s` : "—" }),
      h("td", { text: q.priority_enabled ? "yes" : "no" }),
      h("td", { text: q.partitioned ? (q.partitions.join(", ") || "none ready") : "—" })),
    "queues");
}

function schedulesPage(view) {
  return simplePage(view, "Schedules", "/api/schedules",
    ["Schedule", "Workflow", "Cron", "Timezone", "Status", "Queue", "Last tick (UTC)"],
    (s) => h("tr", {}, h("td", { text: s.schedule_name }), h("td", { text: s.workflow_name }),
      h("td", {}, h("code", { text: s.schedule })), h("td", { text: s.timezone || "UTC" }), h("td", {}, badge(s.status)),
      h("td", { text: s.queue_name || "" }), h("td", { text: when(s.last_tick_at) })),
    "schedules");
}

function executorsPage(view) {
  return simplePage(view, "Executors", "/api/executors",
    ["Executor", "Host", "PID", "Version", "State", "Last seen (UTC)", "Lease until (UTC)", "Workflows"],
    (e) => h("tr", { class: "executor-row" }, h("td", { text: e.executor_id }), h("td", { text: e.hostname }),
      h("td", { class: "num", text: e.pid }), h("td", { text: e.app_version || "" }),
      h("td", {}, h("span", { class: "badge " + (e.alive ? "s-success" : "s-error"), text: e.alive ? "alive" : "dead" })),
      h("td", { text: when(e.last_seen_at) }), h("td", { text: when(e.lease_expires_at) }),
      h("td", { class: "muted", text: e.workflow_names.join(", ") })),
    "executors");
}

function strandedPage(view) {
  return simplePage(view, "Stranded workflows", "/api/stranded",
    ["Workflow ID", "Name", "Status", "Queue", "Created (UTC)", "Executor (gone)"],
    (w) => h("tr", { class: "wf-row" }, h("td", {}, wfLink(w.workflow_id)), h("td", { text: w.name }),
      h("td", {}, badge(w.status)), h("td", { text: w.queue_name || "" }), h("td", { text: when(w.created_at) }),
      h("td", { class: "muted", text: w.executor_id || "" })),
    "workflows");
}

// -- routing --------------------------------------------------------------------------------------
async function refreshNow() {
  if (!state.refresh) return;
  const generation = state.generation;
  try {
    await state.refresh();
  } catch (e) {
    if (generation !== state.generation) return;
    if (e.status === 401) { stopLive(); loginPage(document.getElementById("view"), e.message); return; }
    document.getElementById("view").replaceChildren(h("p", { class: "error", id: "page-error", text: e.message }));
    state.refresh = null;
  }
}

function stopLive() {
  if (state.timer) clearInterval(state.timer);
  state.timer = null;
}

function setLive(on) {
  stopLive();
  if (on) state.timer = setInterval(refreshNow, LIVE_MS);
}

function route() {
  const view = document.getElementById("view");
  const hash = location.hash.replace(/^#/, "") || "/workflows";
  const [path, query] = hash.split("?");
  const params = new URLSearchParams(query || "");
  const parts = path.split("/").filter(Boolean);
  const page = parts[0] || "workflows";
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.page === page || (page === "workflow" && a.dataset.page === "workflows"));
  state.generation += 1;
  if (page === "workflow" && parts[1]) state.refresh = workflowPage(view, decodeURIComponent(parts.slice(1).join("/")));
  else if (page === "queues") state.refresh = queuesPage(view);
  else if (page === "schedules") state.refresh = schedulesPage(view);
  else if (page === "executors") state.refresh = executorsPage(view);
  else if (page === "stranded") state.refresh = strandedPage(view);
  else state.refresh = workflowsPage(view, params);
  refreshNow();
}

async function start() {
  const view = document.getElementById("view");
  try {
    state.config = await api("/api/config");
  } catch (e) {
    if (e.status === 401) { loginPage(view, sessionStorage.getItem(TOKEN_KEY) ? "That token was refused." : null); return; }
    view.replaceChildren(h("p", { class: "error", text: e.message }));
    return;
  }
  document.getElementById("mode").textContent = state.config.read_only ? "read-only" : "";
  document.body.classList.toggle("read-only", state.config.read_only);
  route();
}

window.addEventListener("hashchange", () => {
  if (state.keepFlash) state.keepFlash = false;
  else clearFlash();
  if (state.config) route();
});
document.addEventListener("DOMContentLoaded", () => {
  const url = new URL(location.href);
  if (url.searchParams.has("token")) {
    sessionStorage.setItem(TOKEN_KEY, url.searchParams.get("token"));
    url.searchParams.delete("token");
    history.replaceState(null, "", url.pathname + url.search + url.hash);
  }
  const live = document.getElementById("live");
  live.addEventListener("change", () => setLive(live.checked));
  start();
});
