// AgentGate admin page: sessions, their exchanges (masked bodies, stream playback) and
// pending approvals, refreshed every two seconds. Talks only to this server's /api/v1.
// Every value from the store is inserted as text (never as HTML): bodies are what agents
// and clusters sent, and may contain markup.
"use strict";

const state = { token: "", approver: "", selected: null, filters: {} };

function readFragment() {
  const params = new URLSearchParams(location.hash.slice(1));
  if (params.get("token")) sessionStorage.setItem("agentgate-token", params.get("token"));
  if (params.get("approver")) sessionStorage.setItem("agentgate-approver", params.get("approver"));
  if (params.get("token") || params.get("approver")) history.replaceState(null, "", location.pathname);
  state.token = sessionStorage.getItem("agentgate-token") || "";
  state.approver = sessionStorage.getItem("agentgate-approver") || "";
}

async function api(path, options = {}, bearer = state.token) {
  const response = await fetch(path, {
    ...options,
    headers: { "Authorization": "Bearer " + bearer, "Content-Type": "application/json", ...(options.headers || {}) },
  });
  const text = await response.text();
  let body = null;
  try { body = JSON.parse(text); } catch (_) { body = { message: text }; }
  if (!response.ok) {
    const error = new Error((body && body.message) || response.statusText);
    error.status = response.status;
    throw error;
  }
  return body;
}

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function showError(message) {
  const box = document.getElementById("error");
  box.textContent = message || "";
  box.hidden = !message;
}

function resourceOf(e) {
  const resource = [e.resource, e.subresource].filter(Boolean).join("/");
  return resource || e.path || "";
}

// ---- approvals ----

async function loadApprovals() {
  let items = [];
  try {
    const answer = await api("/api/v1/approvals?state=pending");
    items = (answer.items || []).filter(a => a.state === "pending");
  } catch (error) {
    if (error.status === 404) return; // a gateway without approvals
    throw error;
  }
  document.getElementById("approval-count").textContent = String(items.length);
  const box = document.getElementById("approvals");
  box.replaceChildren();
  if (items.length === 0) { box.append(el("p", { class: "muted", text: "None." })); return; }
  for (const a of items) {
    const what = `${a.verb || ""} ${[a.resource, a.subresource].filter(Boolean).join("/")} ${a.namespace ? a.namespace + "/" : ""}${a.name || ""}`;
    const reason = el("input", { placeholder: "reason", size: "40", "data-reason": a.id });
    const decide = (decision) => async () => {
      try {
        await api(`/api/v1/approvals/${encodeURIComponent(a.id)}/${decision}`,
                  { method: "POST", body: JSON.stringify({ reason: reason.value || `${decision}d from the web page` }) },
                  state.approver || state.token);
        showError("");
        await refresh();
      } catch (error) { showError(`${decision} ${a.id}: ${error.message}`); }
    };
    const card = el("div", { class: "approval", "data-approval": a.id },
      el("div", {}, el("strong", { text: what.trim() }), " ",
         el("span", { class: "muted", text: `requested by ${a.subject || "?"}${a.model ? " (" + a.model + ")" : ""} on ${a.connection || "?"} · rule ${a.rule || "?"} · ${a.id}` })),
      el("div", { class: "muted", text: `${a.method || ""} ${a.path || ""}${a.expiresAt ? " · expires " + a.expiresAt : ""}` }));
    if (a.requestBody) card.append(el("pre", { text: a.requestBody }));
    if (a.dryRunBody) card.append(el("details", {}, el("summary", { text: `server-side dry run (${a.dryRunStatusCode || "?"}): what would change` }),
      el("pre", { text: a.dryRunBody })));
    card.append(el("div", { class: "actions" }, reason, " ",
      el("button", { "data-approve": a.id, onclick: decide("approve"), text: "Approve" }), " ",
      el("button", { "data-deny": a.id, onclick: decide("deny"), text: "Deny" })));
    box.append(card);
  }
}

// ---- sessions ----

async function loadSessions() {
  const query = new URLSearchParams(Object.entries(state.filters).filter(([, v]) => v));
  const answer = await api("/api/v1/sessions" + (query.toString() ? "?" + query : ""));
  const body = document.querySelector("#sessions tbody");
  body.replaceChildren();
  for (const s of answer.items || []) {
    const row = el("tr", { class: "session" + (s.id === state.selected ? " selected" : ""), "data-session": s.id,
                           onclick: () => { state.selected = s.id; loadDetail(); loadSessions(); } },
      el("td", { text: s.id }), el("td", { text: s.connection }), el("td", { text: s.subject }),
      el("td", { text: s.model || "-" }), el("td", { text: String(s.exchangeCount) }),
      el("td", { text: s.startedAt }), el("td", { text: s.lastActivity }));
    body.append(row);
  }
  if ((answer.items || []).length === 0) body.append(el("tr", {}, el("td", { colspan: "7", class: "muted", text: "No sessions match." })));
}

async function loadDetail() {
  if (!state.selected) return;
  const s = await api("/api/v1/sessions/" + encodeURIComponent(state.selected));
  document.getElementById("detail").hidden = false;
  document.getElementById("detail-id").textContent = s.id;
  document.getElementById("detail-meta").textContent =
    `${s.connection} · ${s.subject}${s.model ? " · model " + s.model : ""} · ${s.exchangeCount} exchanges`;
  const box = document.getElementById("exchanges");
  const open = new Set([...box.querySelectorAll("details[open]")].map(d => d.dataset.exchange));
  box.replaceChildren();
  for (const e of s.exchanges || []) {
    const code = e.statusCode ? String(e.statusCode) : "…";
    const summary = el("summary", {},
      el("span", { class: "code-" + code[0], text: code.padEnd(4) }), " ",
      `#${e.sequence} ${e.time} ${e.verb} ${resourceOf(e)} ${e.namespace || ""}${e.name ? "/" + e.name : ""}`,
      e.kubectlCommand ? ` (${e.kubectlCommand})` : "", e.approvalID ? ` · approval ${e.approvalID}` : "",
      e.state && e.state !== "complete" ? ` [${e.state}]` : "");
    const detail = el("div", { class: "body" },
      el("div", { class: "muted", text: `${e.method} ${e.path}${e.query ? "?" + e.query : ""} · ${e.latencyMs != null ? e.latencyMs.toFixed(1) + " ms" : ""}` }));
    if (e.requestBody) detail.append(el("div", { text: "request" }), el("pre", { text: e.requestBody }));
    if (e.responseBody) detail.append(el("div", { text: "response (as the agent saw it)" }), el("pre", { text: e.responseBody }));
    if (e.streamChunkCount > 0) {
      const screen = el("pre", { "data-stream": e.id });
      detail.append(el("div", {}, `stream (${e.streamChunkCount} frames) `,
        el("button", { text: "Play", onclick: () => play(e.id, screen) })), screen);
    }
    const item = el("details", { class: "exchange", "data-exchange": e.id }, summary, detail);
    if (open.has(e.id)) item.open = true;
    box.append(item);
  }
}

// Plays a recorded stream at its recorded pace (pauses over two seconds shortened).
async function play(exchangeID, screen) {
  const answer = await api(`/api/v1/exchanges/${encodeURIComponent(exchangeID)}/chunks`);
  screen.textContent = "";
  const forwarded = {};
  let previous = null;
  for (const chunk of answer.items || []) {
    const at = Date.parse(chunk.time);
    if (previous !== null) await new Promise(r => setTimeout(r, Math.min(Math.max(at - previous, 0), 2000)));
    previous = at;
    const text = chunk.data != null ? chunk.data : atob(chunk.dataBase64 || "");
    if (chunk.channel === "stdout" || chunk.channel === "stderr" || chunk.channel === "body") {
      screen.textContent += text;
    } else if (chunk.channel === "status") {
      let message = text;
      try { const status = JSON.parse(text); message = status.message || status.status || text; } catch (_) {}
      screen.textContent += `\n[${message}]\n`;
    } else if (chunk.channel.startsWith("forward-in") || chunk.channel.startsWith("forward-out")) {
      // forward-in:PORT / forward-out:PORT (decoded SPDY), or forward-in / forward-out (raw).
      const direction = chunk.channel.split(":")[0];
      forwarded[direction] = (forwarded[direction] || 0) + text.length;
      screen.textContent = `port-forward: ${forwarded["forward-in"] || 0} bytes in, ${forwarded["forward-out"] || 0} bytes out`;
    } else if (chunk.channel === "event") {
      screen.textContent += text;
    }
    // stdin (what was typed, masked) and resize are recorded but not drawn: the terminal echoes.
  }
}

// ---- wiring ----

async function refresh() {
  try {
    await Promise.all([loadApprovals(), loadSessions()]);
    if (state.selected) await loadDetail();
    document.getElementById("live").textContent = "live · updated " + new Date().toLocaleTimeString();
    showError("");
  } catch (error) {
    if (error.status === 401) { sessionStorage.removeItem("agentgate-token"); start(); return; }
    document.getElementById("live").textContent = "disconnected";
    showError(error.message);
  }
}

async function loadApprover() {
  if (state.approver) return;
  try {
    const answer = await api("/api/v1/sandbox/approver-token");
    state.approver = answer.token;
    document.getElementById("approver-note").textContent = `Deciding as the sandbox approver (${answer.subject}, groups ${answer.groups.join(", ")}).`;
  } catch (_) {
    document.getElementById("approver-note").textContent = "Approve and deny act with the admin credential unless an approver token is given (#approver=JWT).";
  }
}

let timer = null;
function start() {
  readFragment();
  const logged = Boolean(state.token);
  document.getElementById("login").hidden = logged;
  document.getElementById("app").hidden = !logged;
  if (!logged) return;
  loadApprover().then(refresh);
  if (!timer) timer = setInterval(refresh, 2000);
}

document.getElementById("login-form").addEventListener("submit", event => {
  event.preventDefault();
  sessionStorage.setItem("agentgate-token", document.getElementById("login-token").value.trim());
  start();
});
document.getElementById("filters").addEventListener("submit", event => {
  event.preventDefault();
  state.filters = Object.fromEntries(new FormData(event.target).entries());
  loadSessions().catch(error => showError(error.message));
});
start();
