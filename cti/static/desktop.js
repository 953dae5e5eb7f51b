// Centralino agent desktop. Every value that comes from the server is set with textContent
// (never innerHTML): customer names, notes and transcripts are untrusted text.
// The token lives in sessionStorage (this tab only) and goes to the websocket in its first
// message, never in a URL.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const api = "/api/v1";
  let token = sessionStorage.getItem("centralino.token");
  let me = null;
  let config = { pause_reasons: [], dispositions: [], queues: [] };
  let ws = null;
  let retry = 500;
  let stateVersion = -1; // of the last agent state shown; the gateway numbers its state frames
  const pops = new Map(); // key "agent|linkedid" -> pop
  const drafts = new Map(); // key -> {disposition, notes, case}

  function show(view) {
    $("login-view").hidden = view !== "login";
    $("desk-view").hidden = view !== "desk";
    $("signout").hidden = view !== "desk";
  }

  async function call(method, path, body) {
    const res = await fetch(api + path, {
      method,
      headers: Object.assign({ "Content-Type": "application/json" },
        token ? { Authorization: "Bearer " + token } : {}),
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
    });
    let data = {};
    try { data = await res.json(); } catch (e) { data = {}; }
    if (res.status === 401 && path !== "/auth/login") { signedOut(); }
    if (!res.ok) { throw new Error(data.error || ("HTTP " + res.status)); }
    return data;
  }

  function signedOut() {
    token = null;
    me = null;
    sessionStorage.removeItem("centralino.token");
    if (ws) { ws.onclose = null; ws.close(); ws = null; }
    pops.clear();
    renderPops();
    $("link").dataset.state = "down";
    $("link").textContent = "offline";
    $("who").textContent = "";
    show("login");
  }

  // -- login ---------------------------------------------------------------------------------
  $("login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("login-error").textContent = "";
    try {
      const out = await call("POST", "/auth/login",
        { username: $("username").value, password: $("password").value });
      token = out.token;
      sessionStorage.setItem("centralino.token", token);
      $("password").value = "";
      await start();
    } catch (e) {
      $("login-error").textContent = e.message;
    }
  });

  $("signout").addEventListener("click", async () => {
    try { await call("POST", "/auth/logout"); } catch (e) { /* already gone */ }
    signedOut();
  });

  async function start() {
    me = await call("GET", "/me");
    $("who").textContent = me.username + " (" + me.role + (me.team ? ", team " + me.team : "") + ")";
    const isAgent = me.role === "agent";
    $("state-panel").hidden = !isAgent;
    if (isAgent) {
      config = await call("GET", "/agent/config");
      fillSelect($("pause-reason"), config.pause_reasons);
      renderState(await call("GET", "/agent/state"));
    }
    show("desk");
    connect();
  }

  function fillSelect(sel, values) {
    while (sel.firstChild) { sel.removeChild(sel.firstChild); }
    for (const v of values) {
      const o = document.createElement("option");
      o.value = v;
      o.textContent = v.replace(/_/g, " ");
      sel.appendChild(o);
    }
  }

  // -- agent state ----------------------------------------------------------------------------
  function renderState(s) {
    if (!me || s.agent !== me.username) { return; }
    // A reply to an action can arrive after a newer state pushed on the websocket.
    if (typeof s.version === "number") {
      if (s.version < stateVersion) { return; }
      stateVersion = s.version;
    }
    const el = $("state");
    el.dataset.state = s.state;
    el.textContent = s.state.replace(/_/g, " ");
    $("state-reason").textContent = s.reason ? "(" + s.reason + ")" : "";
    $("queues").textContent = s.queues.length ? s.queues.join(", ") : "none";
    const busy = s.state === "on_call" || s.state === "ringing";
    $("btn-login").disabled = s.queues.length === config.queues.length && s.queues.length > 0;
    $("btn-logout").disabled = s.queues.length === 0;
    $("btn-pause").disabled = s.queues.length === 0 || s.state === "paused";
    $("btn-ready").disabled = busy || s.queues.length === 0 || s.state === "ready";
  }

  async function act(path, body) {
    $("action-error").textContent = "";
    try { renderState(await call("POST", path, body)); }
    catch (e) { $("action-error").textContent = e.message; }
  }
  $("btn-login").addEventListener("click", () => act("/agent/login", {}));
  $("btn-logout").addEventListener("click", () => act("/agent/logout", {}));
  $("btn-pause").addEventListener("click", () => act("/agent/pause", { reason: $("pause-reason").value }));
  $("btn-ready").addEventListener("click", () => act("/agent/ready", {}));

  // -- websocket --------------------------------------------------------------------------------
  function connect() {
    const proto = location.protocol === "https:" ? "wss://" : "ws://";
    ws = new WebSocket(proto + location.host + api + "/ws");
    ws.onopen = () => {
      ws.send(JSON.stringify({ type: "auth", token }));
    };
    ws.onmessage = (ev) => {
      let m;
      try { m = JSON.parse(ev.data); } catch (e) { return; }
      if (m.type === "hello") {
        retry = 500;
        stateVersion = -1; // a restarted gateway counts from zero again
        $("link").dataset.state = "up";
        $("link").textContent = "online";
        if (me && me.role === "supervisor") { ws.send(JSON.stringify({ type: "watch" })); }
      } else if (m.type === "state") {
        renderState(m);
      } else if (m.type === "pop") {
        pops.set(m.agent + "|" + m.linkedid, m);
        renderPops();
      } else if (m.type === "pop_end") {
        pops.delete(m.agent + "|" + m.linkedid);
        drafts.delete(m.agent + "|" + m.linkedid);
        renderPops();
      }
    };
    ws.onclose = (ev) => {
      $("link").dataset.state = "down";
      $("link").textContent = "offline";
      ws = null;
      if (ev.code === 4401) { signedOut(); return; }
      if (token) { setTimeout(connect, retry); retry = Math.min(retry * 2, 10000); }
    };
  }

  // -- pops -------------------------------------------------------------------------------------
  const STATUS = { ringing: "Ringing", connected: "Connected", wrap_up: "Wrap-up" };
  const MATCH = { unknown: "Unknown caller", withheld: "Withheld number", loading: "Looking up…" };

  function text(el, value) { el.textContent = value == null ? "" : String(value); }

  function renderPops() {
    const box = $("pops");
    while (box.firstChild) { box.removeChild(box.firstChild); }
    $("no-call").hidden = pops.size > 0;
    for (const [key, p] of pops) { box.appendChild(renderPop(key, p)); }
  }

  function renderPop(key, p) {
    const node = $("pop-template").content.firstElementChild.cloneNode(true);
    node.dataset.linkedid = p.linkedid;
    node.dataset.status = p.status;
    node.dataset.match = p.match;
    const q = (sel) => node.querySelector(sel);
    text(q(".pop-status"), STATUS[p.status] || p.status);
    text(q(".pop-agent"), me && p.agent !== me.username ? "agent " + p.agent : "");
    text(q(".pop-queue"), p.queue ? "queue " + p.queue : "");
    q(".pop-hold").hidden = !p.hold;
    q(".pop-repeat").hidden = !p.repeat_contact;
    q(".pop-transfers").hidden = !p.transfers;
    text(q(".pop-transfers"), "transferred " + p.transfers + "×");
    const c = p.customer;
    text(q(".customer-name"), c ? c.name : (MATCH[p.match] || p.match));
    text(q(".caller-number"), p.caller.number + (p.caller.name ? " · " + p.caller.name : ""));
    text(q(".customer-meta"), c ? [c.segment, c.language].filter(Boolean).join(" · ") : "");
    text(q(".customer-notes"), c && c.notes ? c.notes : "");
    if (p.ivr) {
      q(".ivr").hidden = false;
      text(q(".ivr-intent"), p.ivr.intent ? p.ivr.intent.replace(/_/g, " ") : "no intent");
      text(q(".ivr-confidence"), p.ivr.confidence != null ? "(confidence " + Number(p.ivr.confidence).toFixed(2) + ")" : "");
      text(q(".ivr-language"), p.ivr.language ? "[" + p.ivr.language + "]" : "");
      text(q(".ivr-transcript"), p.ivr.transcript || "");
    }
    if (p.cases.length) {
      q(".cases-box").hidden = false;
      for (const k of p.cases) {
        const li = document.createElement("li");
        text(li, "#" + k.id + " " + k.subject + " (opened " + k.opened_at.slice(0, 10) + ")");
        q(".cases").appendChild(li);
      }
    }
    q(".history-empty").hidden = p.history.length > 0;
    for (const h of p.history) { q(".history").appendChild(historyItem(h)); }
    if (c && c.id != null) {
      const b = q(".full-history");
      b.hidden = false;
      b.addEventListener("click", () => fullHistory(c.id, p.linkedid));
    }
    if (me && p.agent === me.username && (p.status === "connected" || p.status === "wrap_up")) {
      wrapupForm(node, key, p);
    }
    return node;
  }

  function historyItem(h) {
    const li = document.createElement("li");
    li.className = "history-item";
    const parts = [h.at.slice(0, 16).replace("T", " "), h.intent || h.queue || "",
      h.agent ? "with " + h.agent : "", h.disposition || ""].filter(Boolean);
    text(li, parts.join(" · ") + (h.repeat_contact ? " · repeat" : "") + (h.notes ? "\n" + h.notes : ""));
    return li;
  }

  function wrapupForm(node, key, p) {
    const form = node.querySelector(".wrapup");
    form.hidden = false;
    const sel = form.querySelector(".disposition");
    fillSelect(sel, config.dispositions);
    const d = drafts.get(key) || {};
    if (d.disposition) { sel.value = d.disposition; }
    form.querySelector(".notes").value = d.notes || "";
    form.querySelector(".case-subject").value = d.case || "";
    const save = () => drafts.set(key, { disposition: sel.value,
      notes: form.querySelector(".notes").value, case: form.querySelector(".case-subject").value });
    form.addEventListener("input", save);
    form.addEventListener("change", save);
    const submit = form.querySelector(".wrapup-submit");
    submit.disabled = p.status !== "wrap_up";
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      save();
      submit.disabled = true;
      const draft = drafts.get(key);
      try {
        await call("POST", "/agent/wrapup", { linkedid: p.linkedid, disposition: draft.disposition,
          notes: draft.notes, case: draft.case || null });
        drafts.delete(key);
      } catch (e) {
        text(form.querySelector(".wrapup-error"), e.message);
        submit.disabled = false;
      }
    });
  }

  async function fullHistory(customerId, linkedid) {
    try {
      const h = await call("GET", "/customers/" + encodeURIComponent(customerId) +
        "/history?linkedid=" + encodeURIComponent(linkedid));
      text($("history-name"), h.customer.name);
      const list = $("history-list");
      while (list.firstChild) { list.removeChild(list.firstChild); }
      for (const i of h.interactions) { list.appendChild(historyItem(i)); }
      const cases = $("history-cases");
      while (cases.firstChild) { cases.removeChild(cases.firstChild); }
      for (const k of h.cases) {
        const li = document.createElement("li");
        text(li, "#" + k.id + " [" + k.status + "] " + k.subject);
        cases.appendChild(li);
      }
      $("history-panel").hidden = false;
    } catch (e) {
      $("action-error").textContent = e.message;
    }
  }
  $("history-close").addEventListener("click", () => { $("history-panel").hidden = true; });

  // -- boot -------------------------------------------------------------------------------------
  if (token) { start().catch(() => signedOut()); } else { show("login"); }
})();
