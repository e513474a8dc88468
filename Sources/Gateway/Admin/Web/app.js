// AgentGate admin page: sessions, their exchanges (masked bodies, stream playback) and
// pending approvals, refreshed every two seconds. Talks only to this server's /api/v1 and,
// to log in, to the OIDC issuer /api/v1/login-config names.
// Every value from the store is inserted as text (never as HTML): bodies are what agents
// and clusters sent, and may contain markup.
//
// Login: OIDC authorization code with PKCE, in the browser. Without a token the page reads
// the issuer's discovery, keeps a random code verifier, state and nonce in sessionStorage and
// goes to the authorization endpoint with the verifier's S256 challenge; back here with
// ?code&state, it checks the state, exchanges the code at the token endpoint (fetch, CORS),
// checks the ID token's nonce and keeps the ID token in sessionStorage, sent as Bearer to the
// admin API. A break-glass admin token can be given as #token=... or pasted (reads only).
"use strict";

const state = { token: "", selected: null, filters: {} };
const TOKEN = "agentgate-token", LOGIN = "agentgate-login", FAILED = "agentgate-login-failed";

function readFragment() {
  const params = new URLSearchParams(location.hash.slice(1));
  if (params.get("token")) {
    sessionStorage.setItem(TOKEN, params.get("token"));
    history.replaceState(null, "", location.pathname);
  }
  state.token = sessionStorage.getItem(TOKEN) || "";
}

// ---- OIDC login (authorization code + PKCE) ----

function base64url(bytes) {
  return btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomString() { return base64url(crypto.getRandomValues(new Uint8Array(32))); }

function claims(jwt) {
  try { return JSON.parse(atob(jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))); } catch (_) { return null; }
}

async function fetchJSON(url, options) {
  const response = await fetch(url, options);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error_description || body.error || body.message || `${url}: ${response.status}`);
  return body;
}

async function beginLogin(config) {
  const discovery = await fetchJSON(config.issuer.replace(/\/$/, "") + "/.well-known/openid-configuration");
  const verifier = randomString();
  const challenge = base64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  const login = { verifier, state: randomString(), nonce: randomString(), clientID: config.clientID,
                  redirectURI: location.origin + "/", tokenEndpoint: discovery.token_endpoint };
  sessionStorage.setItem(LOGIN, JSON.stringify(login));
  const query = new URLSearchParams({ response_type: "code", client_id: config.clientID, redirect_uri: login.redirectURI,
                                      scope: (config.scopes || ["openid"]).join(" "), state: login.state, nonce: login.nonce,
                                      code_challenge: challenge, code_challenge_method: "S256" });
  location.assign(discovery.authorization_endpoint + "?" + query);
}

// Back from the issuer: true when a token was obtained; throws what went wrong.
async function finishLogin() {
  const params = new URLSearchParams(location.search);
  if (!params.has("code") && !params.has("error")) return false;
  const login = JSON.parse(sessionStorage.getItem(LOGIN) || "null");
  sessionStorage.removeItem(LOGIN);
  history.replaceState(null, "", location.pathname);
  if (params.get("error")) throw new Error(`the issuer refused the login: ${params.get("error_description") || params.get("error")}`);
  if (!login || params.get("state") !== login.state) throw new Error("the login answer does not match a login this page started (state); log in again");
  const answer = await fetchJSON(login.tokenEndpoint, {
    method: "POST", headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "authorization_code", code: params.get("code"), redirect_uri: login.redirectURI,
                                client_id: login.clientID, code_verifier: login.verifier }),
  });
  const token = answer.id_token || answer.access_token;
  if (!token) throw new Error("the issuer answered without a token");
  if (answer.id_token && (claims(answer.id_token) || {}).nonce !== login.nonce) throw new Error("the ID token's nonce is not this login's; log in again");
  sessionStorage.setItem(TOKEN, token);
  sessionStorage.removeItem(FAILED);
  return true;
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
                  { method: "POST", body: JSON.stringify({ reason: reason.value || `${decision}d from the web page` }) });
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
    if (error.status === 401) {
      // An expired or refused token: back to the login screen, which says why (no loop of redirects).
      sessionStorage.removeItem(TOKEN);
      sessionStorage.setItem(FAILED, error.message);
      start();
      return;
    }
    document.getElementById("live").textContent = "disconnected";
    showError(error.message);
  }
}

function showWho() {
  const who = claims(state.token);
  document.getElementById("who").textContent = who && who.sub ? `${who.sub} (${who.iss})` : "break-glass admin token";
  document.getElementById("approver-note").textContent = who && who.sub
    ? "Approve and deny act as you; the gateway checks your role and the connection's approver groups."
    : "The break-glass token reads but cannot approve or deny: log in as a person to decide.";
}

let timer = null;
async function start() {
  let loginError = "";
  try { await finishLogin(); } catch (error) { loginError = error.message; }
  readFragment();
  const logged = Boolean(state.token);
  document.getElementById("login").hidden = logged;
  document.getElementById("app").hidden = !logged;
  document.getElementById("logout").hidden = !logged;
  if (!logged) {
    if (timer) { clearInterval(timer); timer = null; }
    const config = await fetchJSON("/api/v1/login-config").catch(() => ({}));
    loginError = loginError || sessionStorage.getItem(FAILED) || "";
    document.getElementById("login-error").textContent = loginError;
    document.getElementById("login-error").hidden = !loginError;
    document.getElementById("login-oidc").hidden = !config.issuer;
    document.getElementById("login-issuer").textContent = config.issuer || "";
    document.getElementById("login-breakglass").hidden = !config.breakGlass;
    document.getElementById("login-button").onclick = () => { sessionStorage.removeItem(FAILED); beginLogin(config).catch(e => showLoginError(e)); };
    // Straight to the issuer, as any OIDC application does, unless the last attempt failed.
    if (config.issuer && !loginError) beginLogin(config).catch(e => showLoginError(e));
    return;
  }
  showWho();
  refresh();
  if (!timer) timer = setInterval(refresh, 2000);
}

function showLoginError(error) {
  document.getElementById("login-error").textContent = `logging in failed: ${error.message}`;
  document.getElementById("login-error").hidden = false;
}

document.getElementById("login-form").addEventListener("submit", event => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN, document.getElementById("login-token").value.trim());
  sessionStorage.removeItem(FAILED);
  start();
});
document.getElementById("logout").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN);
  sessionStorage.setItem(FAILED, "Logged out.");
  start();
});
document.getElementById("filters").addEventListener("submit", event => {
  event.preventDefault();
  state.filters = Object.fromEntries(new FormData(event.target).entries());
  loadSessions().catch(error => showError(error.message));
});
start();
