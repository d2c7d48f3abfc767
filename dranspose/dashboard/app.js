// dranspose dashboard: polls the controller's REST API and renders every panel.
// Plain JavaScript, no build step, no external resources. All API paths are relative to the
// page, so the page also works behind a reverse proxy under a sub-path.
"use strict";

const API = "api/v1/";
const POLL_MS = 1000;             // components, scan, load
const PARAMETER_POLL_MS = 2000;   // parameter values changed by others
const LOG_POLL_MS = 2000;         // fallback when the log stream is not available
const REQUEST_TIMEOUT_MS = 5000;
const REGISTRY_TTL_S = 3;         // a component not renewed for this long has expired
const TOKEN_KEY = "dranspose-token";
const LOG_KEEP = 1000;
const LEVELS = { DEBUG: 10, INFO: 20, WARNING: 30, ERROR: 40, CRITICAL: 50 };

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------- helpers

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function formatSeconds(seconds) {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) return "–";
  if (seconds < 10) return `${seconds.toFixed(1)} s`;
  if (seconds < 60) return `${Math.round(seconds)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

function formatRate(rate) {
  if (rate === null || rate === undefined || !isFinite(rate)) return "–";
  return rate >= 100 ? rate.toFixed(0) : rate.toFixed(1);
}

function getToken() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

// The text a failed response carries: FastAPI's {"detail": ...} or the raw body.
function errorText(body) {
  if (body && typeof body === "object" && "detail" in body) {
    const detail = body.detail;
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail)) return detail.map((d) => d.msg || JSON.stringify(d)).join("; ");
    return JSON.stringify(detail);
  }
  return typeof body === "string" ? body : JSON.stringify(body);
}

// fetch with a timeout; every request carries the bearer token when one is set (reads need it
// too when the controller runs with --protect-reads).
// Resolves to {ok, status, body, error}; `error` is set when there was no HTTP answer.
async function request(path, options = {}) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
  const headers = Object.assign({}, options.headers || {});
  const method = options.method || "GET";
  const token = getToken();
  if (token) headers["Authorization"] = `Bearer ${token}`;
  try {
    const response = await fetch(API + path, {
      method, headers, body: options.body, signal: controller.signal, cache: "no-store",
    });
    const text = await response.text();
    let body = text;
    try { body = text ? JSON.parse(text) : null; } catch (_) { /* not JSON: keep the text */ }
    return { ok: response.ok, status: response.status, body, error: null };
  } catch (exc) {
    const reason = exc.name === "AbortError" ? "no answer within 5 s" : String(exc.message || exc);
    return { ok: false, status: 0, body: null, error: reason };
  } finally {
    clearTimeout(timer);
  }
}

// One message for any failed mutating request: 401 says what to do about it.
function describeFailure(result) {
  if (result.error) return `controller unreachable: ${result.error}`;
  const detail = errorText(result.body);
  if (result.status === 401) {
    const hint = getToken() ? "the access token was refused; check it above"
      : "this controller requires an access token; enter it above";
    return `401 Unauthorized: ${detail} (${hint})`;
  }
  if (result.status === 422) return `rejected by the server: ${detail}`;
  return `${result.status}: ${detail}`;
}

function setMessage(node, text, ok) {
  node.textContent = text;
  node.className = `message ${ok ? "ok" : "error"}`;
}

// ---------------------------------------------------------------- token

function initToken() {
  const input = $("token");
  const showState = () => {
    $("token-state").textContent = getToken() ? "token in use (this tab only)" : "no token";
  };
  input.value = getToken();
  $("token-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const value = input.value.trim();
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
    showState();
  });
  $("token-clear").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    input.value = "";
    showState();
  });
  showState();
}

// ---------------------------------------------------------------- components

// Every component ever seen while this page is open, so one that died stays visible as "gone".
const seenComponents = new Map();

function componentDetail(info) {
  if (info.kind === "ingester") return `streams: ${(info.streams || []).join(", ") || "–"}`;
  if (info.kind === "worker") return `tags: ${(info.tags || []).join(", ") || "–"}`;
  if (info.kind === "reducer" && info.api_url) return viewerLink(info);
  return "";
}

// The reducer's H5Web viewer of its results (served by the reducer itself, at /viewer/).
function viewerLink(info) {
  return el("a", { class: "viewer-link", href: new URL("viewer/", info.api_url).href,
                   target: "_blank", rel: "noopener", text: `results viewer (${info.name})` });
}

function renderResultLinks(config) {
  const links = config.filter((info) => info.kind === "reducer" && info.api_url).map(viewerLink);
  if (links.length) $("scan-results").replaceChildren(...links);
  else $("scan-results").textContent = "–";
}

function renderComponents(config, serverTime) {
  const present = new Set();
  for (const info of config) {
    const key = `${info.kind}:${info.name}`;
    present.add(key);
    seenComponents.set(key, info);
  }
  const order = { controller: 0, ingester: 1, worker: 2, reducer: 3 };
  const keys = [...seenComponents.keys()].sort((a, b) => {
    const ia = seenComponents.get(a), ib = seenComponents.get(b);
    return (order[ia.kind] ?? 9) - (order[ib.kind] ?? 9) || ia.name.localeCompare(ib.name);
  });
  const rows = keys.map((key) => {
    const info = seenComponents.get(key);
    const gone = !present.has(key);
    // clamped: the two reads are concurrent, and components may run on other hosts' clocks
    const age = Math.max(serverTime - info.last_seen, 0);
    let state = gone ? "gone" : info.state;
    if (!gone && age > REGISTRY_TTL_S) state = "stale";
    const version = info.dranspose_version +
      (info.mapreduce_version && info.mapreduce_version.commit_hash
        ? ` / payload ${String(info.mapreduce_version.commit_hash).slice(0, 8)}` : "");
    return el("tr", { class: gone ? "gone" : "", "data-key": key, "data-kind": info.kind,
                      "data-name": info.name, "data-state": state },
      el("td", { text: info.kind }),
      el("td", { class: "name", text: info.name }),
      el("td", { class: "state" }, el("span", { class: `badge ${state}`, text: state })),
      el("td", { class: "detail" }, componentDetail(info)),
      el("td", { text: info.scan_id ? info.scan_id.slice(0, 8) : "–" }),
      el("td", { text: info.url || "–" }),
      el("td", { class: "num", text: info.pid ?? "–" }),
      el("td", { text: version }),
      el("td", { class: "last-seen num", "data-age": age.toFixed(3),
                 text: `${formatSeconds(age)} ago` }));
  });
  $("components").tBodies[0].replaceChildren(...rows);
  renderResultLinks(config);
  updateComponentFilter();
}

// ---------------------------------------------------------------- scan

function renderScan(view) {
  const stateBadge = $("scan-state");
  stateBadge.textContent = view.state;
  stateBadge.className = `badge ${view.state}`;
  const bar = $("scan-progress");
  const progress = view.progress;
  const total = progress.total || 0;
  bar.max = Math.max(total, 1);
  bar.value = view.done;
  bar.dataset.done = String(view.done);
  bar.dataset.total = String(total);
  $("scan-percent").textContent = total ? `${(100 * view.done / total).toFixed(1)} %` : "–";
  const failed = progress.failed.length, lost = progress.lost.length;
  $("scan-counts").textContent = view.scan
    ? `${view.done} / ${total} accounted: ${progress.completed} completed, ${failed} failed, ${lost} lost`
    : "–";
  $("scan-rate").textContent = view.events_per_second === null ? "–"
    : `${formatRate(view.events_per_second)} events/s`;
  $("scan-eta").textContent = view.state === "running" ? formatSeconds(view.eta_seconds)
    : (view.state === "idle" ? "–" : view.state);
  $("scan-elapsed").textContent = formatSeconds(view.elapsed_seconds);
  $("scan-id").textContent = view.scan ? view.scan.scan_id : "–";
  // a successor controller took the running scan over (and lost nothing): how often, when last
  $("scan-resumed").textContent = progress.resumed
    ? `${progress.resumed} × by a new controller, last ${new Date(progress.resumed_at * 1000).toLocaleTimeString()}`
    : "never";
  $("scan-streams").textContent = view.scan ? view.scan.streams.join(", ") : "–";
  $("scan-workers").textContent = view.scan ? view.scan.workers.join(", ") : "–";
  $("stop-scan").disabled = !(view.state === "running");

  const problems = [];
  for (const f of progress.failed) problems.push(`event ${f.event_number} failed on ${f.worker}: ${f.reason}`);
  for (const e of progress.lost) problems.push(`event ${e} lost: ${progress.lost_reason[String(e)] || "unknown"}`);
  $("scan-problems").hidden = problems.length === 0;
  $("scan-problems-summary").textContent = `${failed} failed, ${lost} lost events`;
  $("scan-problem-list").replaceChildren(...problems.slice(0, 200).map((p) => el("li", { text: p })));
}

function initStop() {
  $("stop-scan").addEventListener("click", async () => {
    const scanId = $("scan-id").textContent;
    if (!window.confirm(`Stop scan ${scanId}? Events not yet processed will not be.`)) return;
    const result = await request("stop", { method: "POST" });
    if (result.ok) setMessage($("stop-message"), "stop requested", true);
    else setMessage($("stop-message"), describeFailure(result), false);
  });
}

// ---------------------------------------------------------------- load

function renderLoad(load) {
  const workers = Object.keys(load).sort();
  const totalCompleted = workers.reduce((sum, w) => sum + load[w].completed, 0);
  const most = Math.max(1, ...workers.map((w) => load[w].completed));
  const rows = workers.map((w) => {
    const entry = load[w];
    const share = totalCompleted ? (100 * entry.completed / totalCompleted).toFixed(1) + " %" : "–";
    const bar = el("div", { class: "bar" });
    bar.style.width = `${(100 * entry.completed / most).toFixed(1)}%`;
    return el("tr", { "data-worker": w },
      el("td", { text: w }),
      el("td", { class: "num completed", text: entry.completed }),
      el("td", { class: "num", text: share }),
      el("td", { class: "num", text: formatRate(entry.rate_1s) }),
      el("td", { class: "num", text: formatRate(entry.rate_10s) }),
      el("td", { class: "bar-cell" }, bar));
  });
  $("load").tBodies[0].replaceChildren(...rows);
  $("load-empty").hidden = workers.length > 0;
}

// ---------------------------------------------------------------- parameters

// Obvious mistakes are caught here; the server has the final word (its 422 text is shown).
const CLIENT_CHECKS = {
  int(text) {
    const value = Number(text.trim());
    return text.trim() !== "" && Number.isInteger(value) ? null : "not an integer (e.g. 3 or -12)";
  },
  float(text) {
    const t = text.trim();
    if (/^[+-]?(inf|infinity|nan)$/i.test(t)) return null;
    return t !== "" && !Number.isNaN(Number(t)) ? null : "not a number (e.g. 0.5 or 1e-3)";
  },
  str() { return null; },
};

const parameterRows = new Map();  // name -> {row, dtype, input, dirty, ...}

function currentText(param) {
  if (param.data !== null && param.data !== undefined) return { text: param.data, isDefault: false };
  const d = param.default;
  let text = d === null || d === undefined ? "" : String(d);
  if (param.dtype === "bool") text = d ? "true" : "false";
  return { text, isDefault: true };
}

function isBinary(dtype) {
  return dtype === "binary" || dtype === "file";
}

function makeEditor(param, entry) {
  const cell = el("td", { class: "param-input" });
  if (param.dtype === "bool") {
    const box = el("input", { type: "checkbox", name: param.name, "aria-label": param.name });
    box.addEventListener("change", () => { entry.dirty = true; });
    cell.append(box);
    entry.input = box;
  } else if (isBinary(param.dtype)) {
    const file = el("input", { type: "file", name: param.name, "aria-label": param.name });
    file.addEventListener("change", () => { entry.dirty = file.files.length > 0; });
    cell.append(file);
    entry.input = file;
  } else {
    const input = el("input", { type: "text", name: param.name, "aria-label": param.name,
                                spellcheck: "false",
                                inputmode: param.dtype === "str" ? "text" : "decimal" });
    input.addEventListener("input", () => {
      entry.dirty = true;
      const problem = (CLIENT_CHECKS[param.dtype] || CLIENT_CHECKS.str)(input.value);
      input.classList.toggle("invalid", problem !== null);
      input.title = problem || "";
    });
    input.addEventListener("keydown", (ev) => { if (ev.key === "Enter") applyParameter(entry); });
    cell.append(input);
    entry.input = input;
  }
  return cell;
}

function makeParameterRow(param) {
  const entry = { name: param.name, dtype: param.dtype, dirty: false, input: null };
  const apply = el("button", { type: "button", class: "apply",
                               text: isBinary(param.dtype) ? "Upload" : "Apply" });
  apply.addEventListener("click", () => applyParameter(entry));
  entry.current = el("code", { class: "value" });
  entry.result = el("span", { class: "message" });
  entry.row = el("tr", { "data-name": param.name, "data-dtype": param.dtype },
    el("td", { class: "name", text: param.name }),
    el("td", { text: param.dtype }),
    el("td", { text: param.description || "" }),
    el("td", { class: "param-current" }, entry.current),
    makeEditor(param, entry),
    el("td", {}, apply),
    el("td", { class: "param-result" }, entry.result));
  return entry;
}

function showParameterValue(entry, param) {
  const { text, isDefault } = currentText(param);
  if (isBinary(param.dtype)) {
    // `data` is the bytes decoded for display; `size` is the exact length of the raw value
    const size = typeof param.size === "number" ? param.size : new TextEncoder().encode(text).length;
    entry.current.textContent = `${size} bytes${isDefault ? " (default)" : ""}`;
  } else {
    entry.current.textContent = text + (isDefault ? "  (default)" : "");
  }
  entry.current.dataset.value = text;
  const editing = document.activeElement === entry.input;
  if (entry.dirty || editing) return;  // never overwrite what the user is typing
  if (param.dtype === "bool") entry.input.checked = text.trim().toLowerCase() === "true";
  else if (!isBinary(param.dtype)) {
    entry.input.value = text;
    entry.input.classList.remove("invalid");
  }
}

function renderParameters(params) {
  const body = $("parameters").tBodies[0];
  const names = params.map((p) => p.name).sort();
  for (const param of params) {
    let entry = parameterRows.get(param.name);
    if (!entry || entry.dtype !== param.dtype) {
      entry = makeParameterRow(param);
      parameterRows.set(param.name, entry);
    }
    showParameterValue(entry, param);
  }
  for (const name of [...parameterRows.keys()]) {
    if (!names.includes(name)) parameterRows.delete(name);
  }
  const rows = names.map((n) => parameterRows.get(n).row);
  // re-inserting a row would take the focus from an input being edited: only when changed
  const same = rows.length === body.rows.length && rows.every((r, i) => body.rows[i] === r);
  if (!same) body.replaceChildren(...rows);
  $("parameters-empty").hidden = names.length > 0;
}

async function parameterBody(entry) {
  if (entry.dtype === "bool") return { body: entry.input.checked ? "true" : "false" };
  if (isBinary(entry.dtype)) {
    const file = entry.input.files[0];
    if (!file) return { problem: "choose a file first" };
    return { body: await file.arrayBuffer() };
  }
  const text = entry.input.value;
  const problem = (CLIENT_CHECKS[entry.dtype] || CLIENT_CHECKS.str)(text);
  if (problem) return { problem };
  return { body: entry.dtype === "str" ? text : text.trim() };
}

async function applyParameter(entry) {
  const { body, problem } = await parameterBody(entry);
  if (problem) {
    setMessage(entry.result, `not sent: ${problem}`, false);
    entry.result.dataset.source = "client";
    return;
  }
  setMessage(entry.result, "sending…", true);
  const result = await request(`parameter/${encodeURIComponent(entry.name)}?full=true`, {
    method: "POST", body, headers: { "Content-Type": "application/octet-stream" },
  });
  entry.result.dataset.source = "server";
  entry.result.dataset.status = String(result.status);
  if (result.ok) {
    entry.dirty = false;
    setMessage(entry.result, `applied (version ${result.body.version})`, true);
    if (isBinary(entry.dtype)) entry.input.value = "";
    pollParameters();
  } else {
    setMessage(entry.result, describeFailure(result), false);
  }
}

async function pollParameters() {
  const result = await request("parameters");
  if (result.ok) renderParameters(result.body);
}

// ---------------------------------------------------------------- log tail

const logState = { records: [], keys: new Set(), lastTime: 0, mode: "none", components: new Set() };

function logKey(r) {
  return `${r.time}|${r.component}|${r.logger}|${r.message}`;
}

function logVisible(r) {
  const min = LEVELS[$("log-level").value] || 0;
  const component = $("log-component").value;
  return (LEVELS[r.level] ?? 0) >= min && (!component || r.component === component);
}

const LOG_LONG = 160;  // characters: a longer (or multi-line) record is shown cut to one line

function logLine(r) {
  const t = new Date(r.time * 1000);  // the viewer's local time, to the millisecond
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  const stamp = `${pad(t.getHours())}:${pad(t.getMinutes())}:${pad(t.getSeconds())}` +
    `.${pad(t.getMilliseconds(), 3)}`;
  const message = String(r.message);
  const long = message.length > LOG_LONG || message.includes("\n");
  const line = el("li", { class: `level-${r.level}${long ? " long" : ""}`, "data-level": r.level },
    el("span", { class: "time", text: stamp }), " ",
    el("span", { class: "level", text: r.level.padEnd(7) }), " ",
    el("span", { class: "component", text: r.component }), " ",
    el("span", { class: "message", text: message }));
  if (long) {
    // one line until asked: a 3,000-number list or a traceback must not fill the panel
    const toggle = el("button", { class: "expand", type: "button", text: "more",
      "aria-expanded": "false", title: `${message.length.toLocaleString()} characters` });
    toggle.addEventListener("click", () => {
      const open = line.classList.toggle("expanded");
      toggle.textContent = open ? "less" : "more";
      toggle.setAttribute("aria-expanded", String(open));
    });
    line.append(" ", toggle);
  }
  return line;
}

function byTime(a, b) {
  return a.time - b.time;
}

function addLogRecords(records) {
  const list = $("log");
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 30;
  // records of several components arrive over one stream or poll, not always in time order:
  // the panel keeps them in time order (appending while they come in order, else re-sorting)
  const fresh = [...records].sort(byTime);
  let ordered = true;
  for (const r of fresh) {
    const key = logKey(r);
    if (logState.keys.has(key)) continue;
    logState.keys.add(key);
    const last = logState.records[logState.records.length - 1];
    if (last && r.time < last.time) ordered = false;
    logState.records.push(r);
    logState.lastTime = Math.max(logState.lastTime, r.time);
    if (!logState.components.has(r.component)) {
      logState.components.add(r.component);
      updateComponentFilter();
    }
    if (ordered && logVisible(r)) list.append(logLine(r));
  }
  if (!ordered) logState.records.sort(byTime);
  while (logState.records.length > LOG_KEEP) {
    logState.keys.delete(logKey(logState.records.shift()));
  }
  if (!ordered) {
    list.replaceChildren(...logState.records.filter(logVisible).map(logLine));
  }
  while (list.childElementCount > LOG_KEEP) list.firstElementChild.remove();
  if ($("log-follow").checked && atBottom) list.scrollTop = list.scrollHeight;
}

function rerenderLog() {
  const list = $("log");
  list.replaceChildren(...logState.records.filter(logVisible).map(logLine));
  list.scrollTop = list.scrollHeight;
}

function updateComponentFilter() {
  const select = $("log-component");
  const names = new Set(logState.components);
  for (const info of seenComponents.values()) names.add(info.name);
  const have = [...select.options].map((o) => o.value).filter((v) => v);
  if (names.size === have.length) return;
  const chosen = select.value;
  select.replaceChildren(el("option", { value: "", text: "all" }),
    ...[...names].sort().map((name) => el("option", { value: name, text: name })));
  select.value = chosen;
}

function setLogStatus(text) {
  $("log-status").textContent = text;
}

async function fetchLogs() {
  return request("logs?limit=200");
}

async function initLog() {
  $("log-level").addEventListener("change", rerenderLog);
  $("log-component").addEventListener("change", rerenderLog);
  const first = await fetchLogs();
  if (first.status === 404) {
    logState.mode = "unavailable";
    setLogStatus("log tail unavailable: this controller has no /api/v1/logs");
    $("log-panel").dataset.mode = "unavailable";
    return;
  }
  if (first.ok) addLogRecords(first.body);
  startLogStream();
}

function startLogStream() {
  // EventSource cannot send a header: with a token the log is polled, which can
  if (typeof EventSource === "undefined" || getToken()) { startLogPolling(); return; }
  const source = new EventSource(API + "log_stream");
  logState.mode = "stream";
  source.onopen = async () => {
    setLogStatus("live (stream)");
    $("log-panel").dataset.mode = "stream";
    // records logged between the first fetch and the stream's start (duplicates are dropped)
    const since = logState.lastTime;
    const gap = await fetchLogs();
    if (gap.ok) addLogRecords(gap.body.filter((r) => r.time >= since));
  };
  source.onmessage = (ev) => {
    try { addLogRecords([JSON.parse(ev.data)]); } catch (_) { /* ignore a malformed record */ }
  };
  source.onerror = () => {
    // CLOSED: the stream endpoint refused (e.g. absent); otherwise the browser reconnects
    if (source.readyState === EventSource.CLOSED) {
      source.close();
      startLogPolling();
    } else {
      setLogStatus("stream interrupted, reconnecting…");
    }
  };
}

function startLogPolling() {
  logState.mode = "polling";
  $("log-panel").dataset.mode = "polling";
  setLogStatus(`polling every ${LOG_POLL_MS / 1000} s`);
  const poll = async () => {
    const result = await fetchLogs();
    if (result.ok) {
      addLogRecords(result.body.filter((r) => r.time >= logState.lastTime));
      setLogStatus(`polling every ${LOG_POLL_MS / 1000} s`);
    } else {
      setLogStatus(`log poll failed: ${result.error || result.status}`);
    }
    setTimeout(poll, LOG_POLL_MS);
  };
  poll();
}

// ---------------------------------------------------------------- main loop

function setConnection(ok, text) {
  const badge = $("connection");
  badge.textContent = text;
  badge.className = `badge ${ok ? "ok" : "bad"}`;
}

async function poll() {
  const [config, scan, load] = await Promise.all(
    [request("config"), request("scan"), request("load")]);
  const failed = [config, scan, load].find((r) => !r.ok);
  if (failed) {
    setConnection(false, failed.error ? `controller unreachable: ${failed.error}`
      : failed.status === 401 ? describeFailure(failed) : `controller error ${failed.status}`);
  } else {
    setConnection(true, `live · updated ${new Date().toLocaleTimeString()}`);
  }
  if (scan.ok) renderScan(scan.body);
  if (config.ok && scan.ok) renderComponents(config.body.components, scan.body.server_time);
  if (load.ok) renderLoad(load.body);
}

function every(ms, fn) {
  const run = async () => {
    try { await fn(); } catch (exc) { console.error(exc); }
    setTimeout(run, ms);
  };
  run();
}

document.addEventListener("DOMContentLoaded", () => {
  initToken();
  initStop();
  every(POLL_MS, poll);
  every(PARAMETER_POLL_MS, pollParameters);
  initLog();
});
