// GET / : the status page. Self-contained (no external script, style or font):
// it reads the machine diagrams once from /machines and the live actor tree from
// /events (server-sent events, polling /actors if the stream fails), and
// highlights in each machine's diagram the state every actor is in.
export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fedmsg-migration-tools status</title>
<style>
  :root { --bg:#f6f7f9; --card:#fff; --ink:#1d232b; --muted:#67717d; --line:#d5dae0; --ok:#1a7f37; --bad:#c62828; --warn:#b26a00; --cur:#0b63ce; --act:#e8f1fd; }
  * { box-sizing: border-box; }
  body { margin:0; font:14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background:var(--bg); color:var(--ink); }
  header { display:flex; align-items:center; gap:16px; padding:10px 20px; background:#1d232b; color:#fff; }
  header h1 { font-size:17px; margin:0; font-weight:600; }
  header .spacer { flex:1; }
  .badge { display:inline-block; padding:2px 10px; border-radius:12px; font-weight:600; font-size:13px; }
  .badge.ready { background:var(--ok); color:#fff; } .badge.notready { background:var(--bad); color:#fff; } .badge.unknown { background:#555; color:#fff; }
  #updated { color:#c9d1d9; font-size:12px; }
  main { padding:16px 20px; display:grid; grid-template-columns:minmax(560px, 1fr); gap:16px; }
  section.card { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:12px 16px; }
  h2 { font-size:15px; margin:0 0 8px; }
  table { border-collapse:collapse; width:100%; }
  th, td { text-align:left; padding:4px 8px; border-bottom:1px solid #eef0f3; vertical-align:top; white-space:nowrap; }
  th { color:var(--muted); font-weight:600; font-size:12px; }
  td.counters { white-space:normal; color:#333; font-family:ui-monospace, SFMono-Regular, Menlo, monospace; font-size:12px; }
  td.actor { font-family:ui-monospace, SFMono-Regular, Menlo, monospace; }
  .state { display:inline-block; padding:1px 8px; border-radius:10px; background:var(--act); color:var(--cur); font-weight:600; font-family:ui-monospace, monospace; font-size:12px; }
  .state.bad { background:#fdecea; color:var(--bad); } .state.warn { background:#fff4e0; color:var(--warn); }
  #notready { color:var(--bad); margin:6px 0 0; padding-left:18px; }
  #machines { display:grid; grid-template-columns:repeat(auto-fill, minmax(520px, 1fr)); gap:16px; }
  .machine h3 { margin:0 0 6px; font-size:14px; }
  .machine h3 small { color:var(--muted); font-weight:400; margin-left:6px; }
  .sm-state { border:1px solid var(--line); border-radius:8px; padding:4px 6px; margin:3px; background:#fff; min-width:90px; }
  .sm-state.sm-root { border:none; padding:0; margin:0; }
  .sm-children { display:flex; flex-wrap:wrap; align-items:flex-start; }
  .sm-state.parallel > .sm-children { flex-direction:column; }
  .sm-name { font-weight:600; font-family:ui-monospace, monospace; font-size:12px; }
  .sm-name .mark { color:var(--muted); font-weight:400; margin-left:4px; }
  .sm-state.final > .sm-name::after { content:" ◎"; color:var(--muted); }
  .sm-tr { list-style:none; margin:2px 0 0; padding:0; color:var(--muted); font-size:11px; font-family:ui-monospace, monospace; }
  .sm-tr li.inv { color:#7a5af5; }
  .sm-state.active { border-color:var(--cur); background:var(--act); }
  .sm-state.current { border:2px solid var(--cur); background:#d3e5fb; box-shadow:0 0 0 3px rgba(11,99,206,.15); }
  .sm-actors { display:flex; flex-wrap:wrap; gap:3px; margin-top:2px; }
  .sm-actors span { background:var(--cur); color:#fff; border-radius:8px; padding:0 6px; font-size:11px; font-family:ui-monospace, monospace; }
</style>
</head>
<body>
<header>
  <h1>fedmsg-migration-tools</h1>
  <span id="readiness" class="badge unknown">…</span>
  <span class="spacer"></span>
  <span id="updated">connecting…</span>
</header>
<main>
  <section class="card">
    <h2>Actors</h2>
    <table id="actors"><thead><tr><th>actor</th><th>machine</th><th>state</th><th>since</th><th>counters and detail</th></tr></thead><tbody></tbody></table>
    <ul id="notready"></ul>
  </section>
  <section class="card">
    <h2>Machines <small style="font-weight:400;color:var(--muted)">generated from the machine definitions; the current state of each actor is highlighted</small></h2>
    <div id="machines"></div>
  </section>
</main>
<script>
"use strict";
const machinesEl = document.getElementById("machines");
const boxes = new Map(); // machine id -> Map(path -> element)
let machineIds = new Set();
let loadingMachines = null;

function el(tag, attrs, children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k === "text") e.textContent = v; else e.setAttribute(k, v);
  }
  for (const c of children || []) if (c) e.appendChild(c);
  return e;
}

function transitionText(t) {
  const targets = t.targets.length ? t.targets.map((p) => p === "" ? "(root)" : p).join(", ") : "(stays)";
  return t.label + (t.guard ? " [" + t.guard + "]" : "") + " → " + targets;
}

function renderState(model, state, map, parent) {
  const classes = ["sm-state", state.type];
  if (state.path === "") classes.push("sm-root");
  if (parent && parent.initial === state.path) classes.push("initial");
  const box = el("div", { class: classes.join(" "), "data-path": state.path });
  map.set(state.path, box);
  if (state.path !== "") {
    const name = el("div", { class: "sm-name", text: state.key });
    if (parent && parent.initial === state.path) name.appendChild(el("span", { class: "mark", text: "(initial)" }));
    box.appendChild(name);
  }
  const tr = el("ul", { class: "sm-tr" });
  for (const inv of state.invokes) tr.appendChild(el("li", { class: "inv", text: "invoke " + inv }));
  for (const t of state.transitions) tr.appendChild(el("li", { text: (state.path === "" ? "in any state: " : "") + transitionText(t) }));
  if (state.path === "" && tr.childNodes.length) box.appendChild(tr);
  if (state.states.length) {
    const children = el("div", { class: "sm-children" });
    for (const child of state.states) children.appendChild(renderState(model, child, map, state));
    box.appendChild(children);
  }
  if (state.path !== "" && tr.childNodes.length) box.appendChild(tr);
  box.appendChild(el("div", { class: "sm-actors" }));
  return box;
}

async function loadMachines() {
  const res = await fetch("machines");
  const models = await res.json();
  machinesEl.textContent = "";
  boxes.clear();
  machineIds = new Set(models.map((m) => m.id));
  for (const model of models) {
    const map = new Map();
    const title = el("h3", { text: model.id }, [el("small", { class: "who" })]);
    const card = el("div", { class: "machine", "data-machine": model.id }, [title, renderState(model, model.root, map, null)]);
    boxes.set(model.id, map);
    machinesEl.appendChild(card);
  }
}

function flatten(node, depth, out) {
  out.push({ node, depth });
  for (const c of node.children) flatten(c, depth + 1, out);
  return out;
}

function ago(iso) {
  if (!iso) return "";
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 60) return s + " s";
  if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
  return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
}

function stateClass(state) {
  if (/failed|error|stopped|closed|reconnecting|reopening|waiting$/.test(state)) return "state bad";
  if (/backpressured|saturated|blocked|highWater|draining|starting|connecting|opening|retrying/.test(state)) return "state warn";
  return "state";
}

function renderActors(root) {
  const tbody = document.querySelector("#actors tbody");
  tbody.textContent = "";
  for (const { node, depth } of flatten(root, 0, [])) {
    const counters = Object.entries(node.counters).map(([k, v]) => k + "=" + v)
      .concat(Object.entries(node.detail || {}).map(([k, v]) => k + "=" + (Array.isArray(v) ? v.join(",") : v)))
      .join(" ");
    const row = el("tr", { "data-actor": node.id }, [
      el("td", { class: "actor", text: "\\u00a0\\u00a0".repeat(depth) + node.id }),
      el("td", { text: node.machine }),
      el("td", {}, [el("span", { class: stateClass(node.state), text: node.state })]),
      el("td", { title: node.since || "", text: ago(node.since) }),
      el("td", { class: "counters", text: counters + (node.last_error ? "  last error: " + node.last_error : "") }),
    ]);
    tbody.appendChild(row);
  }
}

function highlight(root) {
  const byMachine = new Map();
  for (const { node } of flatten(root, 0, [])) {
    if (!byMachine.has(node.machine)) byMachine.set(node.machine, []);
    byMachine.get(node.machine).push(node);
  }
  for (const [machine, map] of boxes) {
    for (const box of map.values()) {
      box.classList.remove("active", "current");
      box.querySelector(":scope > .sm-actors").textContent = "";
    }
    const actors = byMachine.get(machine) || [];
    const card = document.querySelector('.machine[data-machine="' + machine + '"]');
    card.querySelector("h3 .who").textContent = actors.length ? actors.map((a) => a.id).join(", ") : "no actor running";
    for (const actor of actors) {
      for (const leaf of actor.state.split(",")) {
        const parts = leaf.split(".");
        for (let i = 1; i <= parts.length; i++) {
          const box = map.get(parts.slice(0, i).join("."));
          if (box) box.classList.add("active");
        }
        const current = map.get(leaf);
        if (current) {
          current.classList.add("current");
          current.querySelector(":scope > .sm-actors").appendChild(el("span", { text: actor.id }));
        }
      }
    }
  }
}

function renderReady(ready) {
  const badge = document.getElementById("readiness");
  badge.className = "badge " + (ready.ready ? "ready" : "notready");
  badge.textContent = ready.ready ? "ready" : "not ready";
  const list = document.getElementById("notready");
  list.textContent = "";
  for (const a of ready.actors) if (!a.ready) list.appendChild(el("li", { text: a.reason || a.actor }));
}

async function update(data) {
  const missing = [];
  for (const { node } of flatten(data.actors, 0, [])) if (node.machine && !machineIds.has(node.machine) && /^[a-z]/.test(node.machine)) missing.push(node.machine);
  if (missing.length && !loadingMachines) {
    loadingMachines = loadMachines().finally(() => (loadingMachines = null));
  }
  if (loadingMachines) await loadingMachines;
  renderActors(data.actors);
  renderReady(data.ready);
  highlight(data.actors);
  document.getElementById("updated").textContent = "updated " + new Date(data.time).toLocaleTimeString();
  document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
}

let polling = null;
function poll() {
  if (polling) return;
  polling = setInterval(async () => {
    try {
      const [actors, ready] = await Promise.all([fetch("actors").then((r) => r.json()), fetch("ready").then((r) => r.json())]);
      await update({ time: new Date().toISOString(), actors, ready });
    } catch (e) {
      document.getElementById("updated").textContent = "disconnected";
    }
  }, 2000);
}

loadingMachines = loadMachines().finally(() => (loadingMachines = null));
if (window.EventSource) {
  const events = new EventSource("events");
  events.onmessage = (m) => update(JSON.parse(m.data));
  events.onerror = () => {
    document.getElementById("updated").textContent = "reconnecting…";
    if (events.readyState === EventSource.CLOSED) poll();
  };
} else {
  poll();
}
</script>
</body>
</html>
`;
