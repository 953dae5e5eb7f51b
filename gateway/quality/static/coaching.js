// Supervisor's coaching view: their own team's calls with reasons; one agent's figures on
// request. No ranking: agents are listed alphabetically and never sorted by a number.
"use strict";

(() => {
  const C = Centralino;
  const $ = (id) => document.getElementById(id);
  const days = () => $("days").value;

  function reasons(list) {
    const td = C.el("td");
    for (const r of list) { const s = C.el("span", r.text, "reason"); s.title = r.code; td.append(s); }
    return td;
  }

  function callsTable(t, calls, withAgent) {
    t.replaceChildren();
    const head = C.el("tr");
    for (const h of ["When", ...(withAgent ? ["Agent"] : []), "Queue", "Intent", "Why", "MOS", "Hold", ""]) {
      head.append(C.el("th", h));
    }
    t.append(head);
    for (const c of calls) {
      const tr = C.el("tr");
      tr.append(C.el("td", new Date(c.started_at).toLocaleString()));
      if (withAgent) tr.append(C.el("td", c.agent ?? "–"));
      tr.append(C.el("td", c.queue ?? "–"), C.el("td", c.intent ?? "–"), reasons(c.reasons),
                C.el("td", C.fmt(c.mos_min)), C.el("td", C.secs(c.hold_s)));
      const b = C.el("button", "quality");
      b.type = "button";
      b.addEventListener("click", () => legs(c.linkedid));
      const td = C.el("td"); td.append(b); tr.append(td);
      t.append(tr);
    }
  }

  async function legs(linkedid) {
    const box = $("legs");
    box.replaceChildren();
    try {
      const data = await (await C.api(`/api/v1/quality/calls/${encodeURIComponent(linkedid)}`)).json();
      const t = C.el("table");
      const head = C.el("tr");
      const cols = [["endpoint", "Phone"], ["codec", "Codec"], ["mos", "MOS"], ["loss_pct_in", "Loss in %"],
                    ["loss_pct_out", "Loss out %"], ["jitter_ms_avg", "Jitter avg ms"],
                    ["jitter_ms_max", "Jitter max ms"], ["rtt_ms_avg", "RTT ms"], ["burst_ratio", "Burst"]];
      for (const [, h] of cols) head.append(C.el("th", h));
      t.append(head);
      for (const l of data.legs) {
        const tr = C.el("tr");
        for (const [k] of cols) {
          const v = l[k];
          tr.append(C.el("td", typeof v === "number" ? v.toFixed(2) : C.fmt(v)));
        }
        t.append(tr);
      }
      box.append(t);
    } catch (e) { box.append(C.el("p", e.message, "error")); }
  }

  async function agent(name) {
    const box = $("detail");
    box.replaceChildren();
    try {
      const d = await (await C.api(`/api/v1/coaching/agents/${encodeURIComponent(name)}?days=${days()}`)).json();
      const f = d.figures;
      box.append(C.el("h2", `${d.agent}: own figures`));
      const dl = C.el("div", null, "tiles");
      for (const [k, v] of [["Calls answered", f.answered], ["Average handle time", C.secs(f.aht_avg_s)],
                            ["Talk", C.secs(f.talk_avg_s)], ["Hold", C.secs(f.hold_avg_s)],
                            ["After-call work", C.secs(f.acw_avg_s)], ["Average MOS", C.fmt(f.mos_avg)],
                            ["Wrap-ups never submitted", f.acw_capped]]) {
        const t = C.el("div", null, "tile");
        t.append(C.el("div", v, "v"), C.el("div", k, "k"));
        dl.append(t);
      }
      box.append(dl);
      const t = C.el("table");
      callsTable(t, d.flagged_calls, false);
      box.append(t);
    } catch (e) { box.append(C.el("p", e.message, "error")); }
  }

  async function load() {
    $("problem").textContent = "";
    try {
      const data = await (await C.api(`/api/v1/coaching/reviews?days=${days()}`)).json();
      $("login").classList.add("hidden");
      $("view").classList.remove("hidden");
      $("logout").classList.remove("hidden");
      $("team").textContent = data.team;
      callsTable($("calls"), data.calls, true);
      const ul = $("agents");
      ul.replaceChildren();
      for (const name of data.agents) {  // alphabetical, from the server
        const li = C.el("li");
        const b = C.el("button", name);
        b.type = "button";
        b.addEventListener("click", () => agent(name));
        li.append(b);
        ul.append(li);
      }
    } catch (e) {
      if (e instanceof C.AuthError && e.status === 401) {
        $("view").classList.add("hidden");
        $("login").classList.remove("hidden");
      } else {
        $("problem").textContent = e.message;
      }
    }
  }

  C.setupLogin($("login"), load);
  $("logout").addEventListener("click", C.logout);
  $("days").addEventListener("change", load);
  if (C.loggedIn()) load(); else $("login").classList.remove("hidden");
})();
