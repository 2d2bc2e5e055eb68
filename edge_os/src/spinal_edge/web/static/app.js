// spinal setup page: small vanilla script, served by the device itself (no CDN, no build step).
// Every state-changing request carries the session's CSRF token in the X-CSRF-Token header.
"use strict";

const CSRF = document.querySelector('meta[name="csrf-token"]')?.content || "";
const PAGE = document.body.dataset.page;

function $(sel, root = document) { return root.querySelector(sel); }
function $$(sel, root = document) { return Array.from(root.querySelectorAll(sel)); }
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v; else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

let flashTimer = null;
function flash(message, kind = "notice") {
  const box = $("#flash");
  if (!box) return;
  box.textContent = message;
  box.className = "flash " + kind;
  box.hidden = false;
  clearTimeout(flashTimer);
  flashTimer = setTimeout(() => { box.hidden = true; }, kind === "error" ? 10000 : 4000);
}

async function api(method, url, body) {
  const opts = { method, headers: { "X-CSRF-Token": CSRF, "Accept": "application/json" }, credentials: "same-origin" };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const response = await fetch(url, opts);
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = text; }
  if (!response.ok) {
    let detail = data && (data.detail || data.error) || response.statusText;
    if (Array.isArray(detail)) detail = detail.map((d) => d.msg || JSON.stringify(d)).join("; ");
    if (response.status === 401) detail = "Your session ended; log in again.";
    const error = new Error(String(detail));
    error.status = response.status;
    throw error;
  }
  return data;
}

function lookup(obj, path) {
  return path.split(".").reduce((o, k) => (o === null || o === undefined ? undefined : o[k]), obj);
}

function show(node, value) {
  if (value === undefined || value === null) { node.textContent = "–"; return; }
  if (node.dataset.bool) {
    const [yes, no] = node.dataset.bool.split("|");
    node.textContent = value ? yes : no;
  } else if (node.dataset.fixed !== undefined && typeof value === "number") {
    node.textContent = value.toFixed(Number(node.dataset.fixed));
  } else if (typeof value === "object") {
    node.textContent = JSON.stringify(value);
  } else {
    node.textContent = String(value);
  }
}

// -- live status (server-sent events) ---------------------------------------------------------------
let lastStatus = null;
const statusListeners = [];

function applyStatus(status) {
  lastStatus = status;
  for (const node of $$("[data-live]")) show(node, lookup(status, node.dataset.live));
  const warnings = $("#warnings");
  if (warnings) {
    warnings.replaceChildren();
    for (const w of status.warnings || []) {
      warnings.append(el("li", {}, el("code", { text: w.code }), " " + w.message));
    }
    if (!warnings.children.length) warnings.append(el("li", { class: "muted", text: "None." }));
  }
  for (const fn of statusListeners) fn(status);
}

function startEvents() {
  if (!CSRF || !$("#estop")) return; // not logged in
  const source = new EventSource("/events");
  const dot = $("#live-dot");
  source.addEventListener("status", (event) => {
    applyStatus(JSON.parse(event.data));
    if (dot) dot.classList.add("on");
  });
  source.onerror = () => { if (dot) dot.classList.remove("on"); };
}

function refreshSnapshots() {
  for (const img of $$("img[data-snapshot]")) {
    const url = `/api/cameras/${encodeURIComponent(img.dataset.snapshot)}/snapshot?t=${Date.now()}`;
    const next = new Image();
    next.onload = () => { img.src = next.src; };
    next.src = url;
  }
}

// -- buttons with data-api="METHOD /path" -----------------------------------------------------------
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-api]");
  if (!button) return;
  event.preventDefault();
  if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
  const [method, url] = button.dataset.api.split(" ");
  const body = button.dataset.body ? JSON.parse(button.dataset.body) : undefined;
  button.disabled = true;
  try {
    await api(method, url, body);
    flash(`${button.textContent.trim()}: done`);
    if (button.dataset.then === "episodes") loadEpisodes();
  } catch (error) {
    flash(error.message, "error");
  } finally {
    button.disabled = false;
  }
});

// -- settings forms: named inputs "section.key" become a PATCH of the settings --------------------
function settingsPatch(form) {
  const patch = {};
  for (const input of $$("input[name], select[name]", form)) {
    let value = input.type === "checkbox" ? input.checked : input.value;
    if (input.type === "number") value = value === "" ? null : Number(value);
    if (input.dataset.list !== undefined) value = value.split(",").map((v) => v.trim()).filter(Boolean);
    if (value === "" && input.dataset.list === undefined && input.type !== "checkbox") value = null;
    const keys = input.name.split(".");
    let node = patch;
    for (const k of keys.slice(0, -1)) node = node[k] = node[k] || {};
    node[keys[keys.length - 1]] = value;
  }
  return patch;
}

for (const form of $$("form[data-settings-form]")) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api("PATCH", "/api/settings", settingsPatch(form));
      flash("Saved. The previous settings stay in force if a value is refused.");
    } catch (error) {
      flash(`Not saved: ${error.message}`, "error");
    }
  });
}

// -- recording --------------------------------------------------------------------------------------
function human(bytes) {
  const units = ["B", "KB", "MB", "GB"];
  let i = 0;
  while (bytes >= 1000 && i < units.length - 1) { bytes /= 1000; i += 1; }
  return `${bytes.toFixed(i ? 1 : 0)} ${units[i]}`;
}

async function loadEpisodes() {
  const table = $("#episodes tbody");
  if (!table) return;
  let data;
  try {
    data = await api("GET", "/api/episodes");
  } catch (error) {
    table.replaceChildren(el("tr", {}, el("td", { colspan: "6", class: "error", text: error.message })));
    return;
  }
  const episodes = (data && data.episodes) || [];
  table.replaceChildren();
  if (!episodes.length) table.append(el("tr", {}, el("td", { colspan: "6", class: "muted", text: "No episode recorded yet." })));
  for (const ep of episodes) {
    const links = el("td", { class: "files" });
    for (const f of ep.files || []) {
      const a = el("a", { href: `/api/episodes/${encodeURIComponent(ep.id)}/files/${encodeURIComponent(f.name)}`, download: `${ep.id}-${f.name}`, text: f.name });
      links.append(a, " ");
    }
    if (ep.offered) {
      links.append(el("a", { class: "archive", href: `/api/episodes/${encodeURIComponent(ep.id)}/archive`, download: `${ep.id}.tar`, text: "Download all (.tar)" }), " ");
    }
    const del = el("button", { class: "small", "data-delete": ep.id, text: "Delete" });
    links.append(del);
    table.append(el("tr", { "data-episode": ep.id },
      el("td", {}, el("code", { text: ep.id })),
      el("td", { text: ep.task || "" }),
      el("td", { text: `${(ep.duration_s || 0).toFixed(1)} s` }),
      el("td", { text: human(ep.size_bytes || 0) }),
      el("td", { text: ep.status }),
      links));
  }
}

function setupRecording() {
  loadEpisodes();
  $("#rec-start").addEventListener("click", async () => {
    try {
      const ep = await api("POST", "/api/episode/start", { task: $("#task").value });
      flash(`Recording ${ep.episode_id}`);
    } catch (error) { flash(error.message, "error"); }
  });
  $("#episodes").addEventListener("click", async (event) => {
    const button = event.target.closest("[data-delete]");
    if (!button) return;
    if (!window.confirm(`Delete episode ${button.dataset.delete} from the device?`)) return;
    try {
      await api("DELETE", `/api/episodes/${encodeURIComponent(button.dataset.delete)}`);
      flash("Episode deleted");
      loadEpisodes();
    } catch (error) { flash(error.message, "error"); }
  });
  let wasRecording = null;
  statusListeners.push((status) => {
    const recording = Boolean(status.recorder && status.recorder.recording);
    if (wasRecording !== null && recording !== wasRecording) loadEpisodes();
    wasRecording = recording;
  });
}

// -- cameras ----------------------------------------------------------------------------------------
function setupCameras() {
  for (const form of $$("form[data-camera-form]")) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const body = {};
      for (const input of $$("input[name]", form)) {
        const value = input.value.trim();
        if (value !== "") body[input.name] = input.type === "number" ? Number(value) : value;
      }
      const out = $(".camera-result", form);
      const button = $("button[type=submit]", form);
      button.disabled = true;
      try {
        const result = await api("PUT", `/api/cameras/${encodeURIComponent(form.dataset.camera)}`, body);
        const message = result.renamed_from
          ? `Camera ${result.renamed_from} is now ${result.name} (${result.feature}); check the policy expects this name.`
          : `Camera ${result.name}: ${result.settings.width}×${result.settings.height} at ${result.settings.fps} fps${result.restarted ? ", restarted" : ", unchanged"}.`;
        if (result.renamed_from) {
          sessionStorage.setItem("flash", message);
          window.location.reload();
          return;
        }
        out.className = "camera-result notice";
        out.textContent = message;
        out.hidden = false;
        flash(message);
      } catch (error) {
        out.className = "camera-result error";
        out.textContent = `Not applied: ${error.message}`;
        out.hidden = false;
        flash(`Not applied: ${error.message}`, "error");
      } finally {
        button.disabled = false;
      }
    });
  }
}

// -- robot ------------------------------------------------------------------------------------------
function renderWizard(view) {
  const active = Boolean(view.active);
  $("#cal-record").disabled = !active || !view.current;
  $("#cal-save").disabled = !active || !view.complete;
  $("#cal-cancel").disabled = !active;
  const step = $("#cal-step");
  step.hidden = !active;
  step.textContent = view.current ? `Move ${view.current} slowly to both ends, then press Record joint.` : "Every joint is recorded: press Save.";
  for (const j of view.joints || []) {
    const row = $(`#cal-table tr[data-joint="${CSS.escape(j.name)}"]`);
    if (!row) continue;
    row.classList.toggle("current", j.name === view.current);
    $(".low", row).textContent = j.low === null ? "–" : j.low.toFixed(1);
    $(".high", row).textContent = j.high === null ? "–" : j.high.toFixed(1);
    $(".done", row).textContent = j.recorded ? "✓" : "";
  }
  (view.positions || []).forEach((p, i) => {
    const row = $$("#cal-table tbody tr")[i];
    if (row) $(".now", row).textContent = p.toFixed(1);
  });
  return view;
}

let wizardTimer = null;
async function pollWizard() {
  try {
    const view = renderWizard(await api("GET", "/api/robot/calibration"));
    if (!view.active) { clearInterval(wizardTimer); wizardTimer = null; }
  } catch (error) { flash(error.message, "error"); }
}

async function wizardStep(action, extra = {}) {
  try {
    const view = renderWizard(await api("POST", "/api/robot/calibration", { action, ...extra }));
    if (view.saved_to) flash(`Calibration saved to ${view.saved_to}`);
    if (view.active && !wizardTimer) wizardTimer = setInterval(pollWizard, 250);
    await pollWizard();
  } catch (error) { flash(error.message, "error"); }
}

function setupRobot() {
  $("#cal-start").addEventListener("click", () => wizardStep("start"));
  $("#cal-record").addEventListener("click", () => {
    const current = $("#cal-table tr.current");
    wizardStep("record", { joint: current ? current.dataset.joint : "" });
  });
  $("#cal-save").addEventListener("click", () => wizardStep("save"));
  $("#cal-cancel").addEventListener("click", () => wizardStep("cancel"));
  pollWizard();
  $("#scan").addEventListener("click", async () => {
    try {
      const result = await api("GET", "/api/robot/scan");
      const body = $("#scan-result tbody");
      body.replaceChildren();
      for (const s of result.servos) {
        body.append(el("tr", {}, el("td", { text: s.bus ?? "" }), el("td", { text: s.id }), el("td", { text: s.joint || "" }), el("td", { text: s.model || "" })));
      }
      $("#scan-result").hidden = false;
      $("#scan-note").textContent = result.supported ? "" : "This arm driver reports configured ids only, not a live bus scan.";
    } catch (error) { flash(error.message, "error"); }
  });
}

// -- inference --------------------------------------------------------------------------------------
function setupInference() {
  $("#test-connection").addEventListener("click", async (event) => {
    const button = event.currentTarget;
    button.disabled = true;
    button.textContent = "Testing…";
    try {
      const result = await api("POST", "/api/inference/test");
      const box = $("#probe-result");
      box.hidden = false;
      box.className = "probe " + (result.ok ? "ok" : "bad");
      $("#probe-message").textContent = result.message;
      const list = $("#probe-mismatch");
      list.replaceChildren(...(result.mismatch || []).map((m) => el("li", { text: m })));
      const caps = $("#probe-caps");
      caps.replaceChildren();
      for (const [k, v] of Object.entries(result.capabilities || {})) {
        caps.append(el("dt", { text: k }), el("dd", { text: Array.isArray(v) ? v.join(", ") : String(v) }));
      }
    } catch (error) {
      flash(error.message, "error");
    } finally {
      button.disabled = false;
      button.textContent = "Test connection";
    }
  });
  $("#tls-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = {};
    for (const input of $$("input[type=file]", event.currentTarget)) {
      const file = input.files[0];
      if (file) {
        if (file.size > 65536) { flash(`${file.name} is larger than 64 KiB; upload the PEM file itself.`, "error"); return; }
        body[input.name] = await file.text();
      }
    }
    const out = $("#tls-result");
    try {
      const result = await api("POST", "/api/inference/tls", body);
      const names = [...result.ca, ...result.certificate].map((c) => c.subject).join(", ");
      out.className = "notice";
      out.textContent = `Stored: ${names}${result.key_type ? " (key " + result.key_type + ")" : ""}. ${result.warnings.join(" ")}`;
    } catch (error) {
      out.className = "error";
      out.textContent = error.message;
    }
  });
}

// -- network ----------------------------------------------------------------------------------------
async function loadNetwork() {
  try {
    const state = await api("GET", "/api/network");
    $("#hostname").textContent = state.hostname;
    const list = $("#connections");
    list.replaceChildren();
    for (const c of state.connections) {
      list.append(el("li", { text: `${c.kind} · ${c.name}${c.ssid ? " (" + c.ssid + ")" : ""} · ${c.device} · ${c.state} · ${(c.addresses || []).join(", ")}` }));
    }
    if (!state.connections.length) list.append(el("li", { class: "muted", text: "No connection." }));
    const ap = $("#ap-note");
    ap.hidden = !state.access_point;
    ap.textContent = state.access_point ? `The setup access point ${state.access_point} is on.` : "";
    const err = $("#net-error");
    err.hidden = !state.last_error;
    err.textContent = state.last_error || "";
  } catch (error) { flash(error.message, "error"); }
}

async function loadWifi(rescan) {
  try {
    const nets = await api("GET", `/api/network/wifi?rescan=${rescan ? "true" : "false"}`);
    $("#ssids").replaceChildren(...nets.map((n) => el("option", { value: n.ssid })));
    $("#wifi-list").replaceChildren(...nets.map((n) => el("li", { text: `${n.in_use ? "● " : ""}${n.ssid} · ${n.signal}% · ${n.security || "open"}` })));
  } catch (error) { flash(error.message, "error"); }
}

function setupNetwork() {
  if (!$("#wifi-form")) return;
  loadNetwork();
  loadWifi(false);
  $("#rescan").addEventListener("click", () => loadWifi(true));
  $("#wifi-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    try {
      await api("POST", "/api/network/wifi", { ssid: form.ssid.value, password: form.password.value, hidden: form.hidden.checked });
      flash(`Joining ${form.ssid.value}… if this page stops answering, reconnect to the same network as the robot.`);
      form.password.value = "";
      setTimeout(loadNetwork, 3000);
    } catch (error) { flash(error.message, "error"); }
  });
  $("#hostname-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const result = await api("PUT", "/api/network/hostname", { hostname: event.currentTarget.hostname.value });
      flash(`Hostname is now ${result.hostname}`);
      loadNetwork();
    } catch (error) { flash(error.message, "error"); }
  });
}

// -- system -----------------------------------------------------------------------------------------
function setupSystem() {
  $("#reset-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    if (!window.confirm("Factory reset now? This cannot be undone.")) return;
    try {
      await api("POST", "/api/system/factory-reset", { confirm: form.confirm.value, delete_recordings: form.delete_recordings.checked });
      flash("Reset. The device restarts and asks for its new setup code.");
      setTimeout(() => { window.location.href = "/setup"; }, 1500);
    } catch (error) { flash(error.message, "error"); }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  startEvents();
  const carried = sessionStorage.getItem("flash");
  if (carried) { sessionStorage.removeItem("flash"); flash(carried); }
  if ($("img[data-snapshot]")) { refreshSnapshots(); setInterval(refreshSnapshots, 1000); }
  const setups = { recording: setupRecording, cameras: setupCameras, robot: setupRobot, inference: setupInference, network: setupNetwork, system: setupSystem };
  if (setups[PAGE]) setups[PAGE]();
});
