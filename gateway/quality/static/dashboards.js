// Managers' dashboards: aggregates by queue, intent and MOS. Nothing here is per agent.
"use strict";

(() => {
  const C = Centralino;
  const $ = (id) => document.getElementById(id);
  const charts = {};
  const COLUMNS = [
    ["calls", "Calls"], ["answered", "Answered"], ["abandoned", "Abandoned"],
    ["service_level_pct", "Service level %"], ["queue_wait_avg_s", "Avg wait s"],
    ["aht_avg_s", "AHT s"], ["talk_avg_s", "Talk s"], ["hold_avg_s", "Hold s"],
    ["acw_avg_s", "ACW s"], ["mos_avg", "MOS"], ["repeat_contact_pct", "Repeat %"],
  ];

  function chart(id, type, labels, data, label) {
    if (charts[id]) charts[id].destroy();
    charts[id] = new Chart($(id), {
      type, data: { labels, datasets: [{ label, data, backgroundColor: "#457b9d" }] },
      options: { responsive: true, maintainAspectRatio: false, animation: false,
                 plugins: { legend: { display: type === "doughnut" } } },
    });
  }

  function table(id, key, rows) {
    const t = $(id);
    t.replaceChildren();
    const head = C.el("tr");
    head.append(C.el("th", key));
    for (const [, title] of COLUMNS) head.append(C.el("th", title));
    t.append(head);
    for (const r of rows) {
      const tr = C.el("tr");
      tr.append(C.el("td", r[key] ?? "(none)"));
      for (const [k] of COLUMNS) tr.append(C.el("td", C.fmt(r[k])));
      t.append(tr);
    }
  }

  function tiles(t) {
    const box = $("tiles");
    box.replaceChildren();
    for (const [k, v] of [
      ["Calls", t.calls], ["Answered", t.answered], ["Service level", C.fmt(t.service_level_pct, "%")],
      ["Average handle time", C.secs(t.aht_avg_s)], ["Average wait", C.secs(t.queue_wait_avg_s)],
      ["Average MOS", C.fmt(t.mos_avg)], ["Calls below review MOS", C.fmt(t.mos_below_review_pct, "%")],
      ["Repeat contacts", C.fmt(t.repeat_contact_pct, "%")],
    ]) {
      const d = C.el("div", null, "tile");
      d.append(C.el("div", v, "v"), C.el("div", k, "k"));
      box.append(d);
    }
  }

  async function load() {
    $("problem").textContent = "";
    try {
      const data = await (await C.api(`/api/v1/dashboards/overview?days=${$("days").value}`)).json();
      $("login").classList.add("hidden");
      $("board").classList.remove("hidden");
      $("logout").classList.remove("hidden");
      tiles(data.totals);
      const q = data.by_queue, i = data.by_intent;
      const name = (x, k) => x[k] ?? "(none)";
      chart("c-aht-queue", "bar", q.map((x) => name(x, "queue")), q.map((x) => x.aht_avg_s), "AHT s");
      chart("c-aht-intent", "bar", i.map((x) => name(x, "intent")), i.map((x) => x.aht_avg_s), "AHT s");
      chart("c-mos", "bar", data.mos_distribution.map((b) => `${b.from}–${b.to}`),
            data.mos_distribution.map((b) => b.calls), "calls");
      chart("c-sl", "bar", q.map((x) => name(x, "queue")), q.map((x) => x.service_level_pct), "%");
      chart("c-intents", "doughnut", i.map((x) => name(x, "intent")), i.map((x) => x.calls), "calls");
      chart("c-repeat", "bar", i.map((x) => name(x, "intent")), i.map((x) => x.repeat_contact_pct), "%");
      table("t-queue", "queue", q);
      table("t-intent", "intent", i);
    } catch (e) {
      if (e instanceof C.AuthError && e.status === 401) {
        $("board").classList.add("hidden");
        $("login").classList.remove("hidden");
      } else {
        $("problem").textContent = e.message;
      }
    }
  }

  C.setupLogin($("login"), load);
  $("logout").addEventListener("click", C.logout);
  $("days").addEventListener("change", load);
  for (const b of document.querySelectorAll("button[data-report]")) {
    b.addEventListener("click", () => C.download(
      `/api/v1/dashboards/export.csv?report=${b.dataset.report}&days=${$("days").value}`)
      .catch((e) => { $("problem").textContent = e.message; }));
  }
  if (C.loggedIn()) load(); else $("login").classList.remove("hidden");
})();
