// Shared by the dashboards and the coaching page: login, authenticated fetch, safe DOM helpers.
// Every text from the server goes into the page through textContent, never as HTML.
"use strict";

const Centralino = (() => {
  const KEY = "centralino.token";

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function fmt(v, unit) {
    if (v === null || v === undefined) return "–";
    return unit ? `${v} ${unit}` : String(v);
  }

  function secs(v) {
    if (v === null || v === undefined) return "–";
    const m = Math.floor(v / 60), s = Math.round(v % 60);
    return m ? `${m} min ${s} s` : `${s} s`;
  }

  async function api(path) {
    const token = sessionStorage.getItem(KEY);
    const r = await fetch(path, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
    if (r.status === 401) { sessionStorage.removeItem(KEY); throw new AuthError(401, "please log in"); }
    if (r.status === 403) { const b = await r.json(); throw new AuthError(403, b.error || "forbidden"); }
    if (!r.ok) { const b = await r.json().catch(() => ({})); throw new Error(b.error || r.statusText); }
    return r;
  }

  class AuthError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  function setupLogin(form, onReady) {
    const msg = form.querySelector(".error");
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      msg.textContent = "";
      const body = { username: form.username.value, password: form.password.value };
      const r = await fetch("/api/v1/auth/login", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      const data = await r.json().catch(() => ({}));
      if (!r.ok) { msg.textContent = data.error || "login failed"; return; }
      sessionStorage.setItem(KEY, data.token);
      form.password.value = "";
      onReady();
    });
  }

  function logout() { sessionStorage.removeItem(KEY); location.reload(); }
  function loggedIn() { return !!sessionStorage.getItem(KEY); }

  async function download(path) {
    const r = await api(path);
    const blob = await r.blob();
    const cd = r.headers.get("Content-Disposition") || "";
    const m = /filename="([^"]+)"/.exec(cd);
    const a = el("a");
    a.href = URL.createObjectURL(blob);
    a.download = m ? m[1] : "export.csv";
    document.body.append(a);
    a.click();
    setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  }

  return { el, fmt, secs, api, setupLogin, logout, loggedIn, download, AuthError };
})();
