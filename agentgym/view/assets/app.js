// agentgym view: a small router over server-rendered HTML fragments, plus live updates.
// The server escapes every piece of run data; this script only moves fragments into place,
// keeps the view's state in the address (so a view can be bookmarked or shared), and listens
// to /events to refetch the fragments of a run that changed on disk.
"use strict";

const app = document.getElementById("app");
let view = { name: null, run: null };

function parseHash() {
  const hash = location.hash.replace(/^#/, "") || "/";
  const cut = hash.indexOf("?");
  const path = cut < 0 ? hash : hash.slice(0, cut);
  const query = new URLSearchParams(cut < 0 ? "" : hash.slice(cut + 1));
  return { path, query };
}

const enc = encodeURIComponent;

// Put the fragment at `url` into `el`, then its nested fragments; a newer request for the same
// element wins. `insert` returns once `el` itself is in place (with the nested loads under way).
async function insert(el, url) {
  const seq = (el._seq || 0) + 1;
  el._seq = seq;
  el.setAttribute("aria-busy", "true");
  let html;
  try {
    const response = await fetch(url, { cache: "no-store" });
    html = await response.text();
  } catch (err) {
    html = `<p class="error">The viewer did not answer (${String(err).replace(/[<&]/g, "")}). Is it still running?</p>`;
  }
  if (el._seq !== seq) return [];
  el.innerHTML = html;
  el.dataset.loaded = url;
  el.removeAttribute("aria-busy");
  return [...el.querySelectorAll("[data-fragment]")].map((child) => load(child, child.dataset.fragment));
}

async function load(el, url) {
  await Promise.all(await insert(el, url));
}

async function route() {
  const { path, query } = parseHash();
  if (path.startsWith("/run/")) {
    const run = decodeURIComponent(path.slice(5));
    let nested = [];
    if (view.name !== "run" || view.run !== run) {
      view = { name: "run", run };
      nested = await insert(app, `/f/run?run=${enc(run)}`);  // the list need not wait for the curves
    }
    fillFilters(query);
    await Promise.all([...nested, loadList(run, query), loadDetail(run, query)]);
  } else if (path.startsWith("/curves")) {
    view = { name: "curves", run: null };
    await load(app, `/f/overlay?runs=${enc(query.get("runs") || "")}&extra=${enc(query.get("extra") || "")}`);
  } else if (path.startsWith("/compare")) {
    view = { name: "compare", run: null };
    await load(app, `/f/compare?a=${enc(query.get("a") || "")}&b=${enc(query.get("b") || "")}`);
  } else {
    view = { name: "runs", run: null };
    await load(app, "/f/runs");
  }
}

function listQuery(query) {
  const q = new URLSearchParams(query);
  q.delete("open");
  return q;
}

async function loadList(run, query) {
  const el = document.getElementById("episode-list");
  if (!el) return;
  const url = `/f/episodes?run=${enc(run)}&${listQuery(query)}`;
  if (el.dataset.loaded !== url) await load(el, url);
  markSelected(query.get("open"));
}

async function loadDetail(run, query) {
  const el = document.getElementById("episode-detail");
  if (!el) return;
  const at = query.get("open");
  if (!at) {
    el.innerHTML = "";
    delete el.dataset.loaded;
    return;
  }
  const url = `/f/episode?run=${enc(run)}&at=${enc(at)}`;
  if (el.dataset.loaded !== url) {
    await load(el, url);
    el.scrollIntoView({ block: "start" });
  }
  markSelected(at);
}

function markSelected(at) {
  for (const row of document.querySelectorAll("tr.episode-row")) {
    row.classList.toggle("selected", row.dataset.open === at);
  }
}

function fillFilters(query) {
  const form = document.getElementById("episode-filters");
  if (!form) return;
  for (const field of form.elements) {
    if (field.name) field.value = query.get(field.name) || "";
  }
}

function go(path, params) {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) qs.set(k, v);
  const s = qs.toString();
  location.hash = `#${path}${s ? "?" + s : ""}`;
}

function picked(name, kind) {
  return [...document.querySelectorAll(`input[name="${name}"]:checked`)]
    .filter((box) => !kind || box.dataset.kind === kind)
    .map((box) => box.value);
}

function say(message) {
  let el = document.getElementById("notice");
  if (!el) {
    app.insertAdjacentHTML("afterbegin", '<p id="notice" class="notice"></p>');
    el = document.getElementById("notice");
  }
  el.textContent = message;
}

document.addEventListener("submit", (event) => {
  if (event.target.id !== "episode-filters") return;
  event.preventDefault();
  const params = {};
  for (const field of event.target.elements) if (field.name && field.value.trim()) params[field.name] = field.value.trim();
  go(`/run/${enc(view.run)}`, params);
});

document.addEventListener("change", (event) => {
  const action = event.target.dataset.action;
  const { query } = parseHash();
  if (action === "overlay-pick") {
    go("/curves", { runs: picked("runs").join(","), extra: query.get("extra") });
  } else if (action === "compare-pick") {
    const form = document.getElementById("compare-picker");
    go("/compare", { a: form.elements.a.value, b: form.elements.b.value });
  } else if (action === "add-metric" && event.target.value) {
    if (view.name === "run") {
      const section = app.querySelector("section.curves");
      const extra = new Set((new URLSearchParams(section.dataset.fragment.split("?")[1]).get("extra") || "").split(",").filter(Boolean));
      extra.add(event.target.value);
      section.dataset.fragment = `/f/curves?runs=${enc(view.run)}&extra=${enc([...extra].join(","))}`;
      load(section, section.dataset.fragment);
    } else {
      const extra = (query.get("extra") || "").split(",").filter(Boolean);
      go("/curves", { runs: query.get("runs"), extra: [...extra, event.target.value].join(",") });
    }
  }
});

document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-action]");
  if (!button || button.tagName === "SELECT" || button.tagName === "INPUT") return;
  const action = button.dataset.action;
  if (action === "clear-filters") {
    go(`/run/${enc(view.run)}`, {});
  } else if (action === "overlay") {
    const runs = picked("pick", "train");
    if (!runs.length) return say("Select one or more training runs first.");
    go("/curves", { runs: runs.join(",") });
  } else if (action === "compare") {
    const runs = picked("pick", "eval");
    if (runs.length !== 2) return say("Select exactly two eval runs to compare.");
    go("/compare", { a: runs[0], b: runs[1] });
  } else if (action === "reveal" || action === "tokens") {
    const article = button.closest("article.episode");
    const at = enc(article.dataset.where);
    if (action === "reveal") {
      load(document.getElementById("episode-detail"), `/f/episode?run=${enc(view.run)}&at=${at}&reveal=1`);
    } else {
      const box = article.querySelector(".tokens-box");
      box.innerHTML = '<p class="muted">loading the tokens (the first view loads the tokenizer)…</p>';
      load(box, `/f/tokens?run=${enc(view.run)}&at=${at}`);
    }
  }
});

// ----------------------------------------------------------------------------- live updates
const pending = new Set();
let flushTimer = null;

function refresh(event) {
  if (event.type === "runs") pending.add("*runs");
  if (event.type === "run") pending.add(event.run);
  if (!flushTimer) flushTimer = setTimeout(flush, 250);
}

async function flush() {
  flushTimer = null;
  const runs = new Set(pending);
  pending.clear();
  if (view.name === "runs" && runs.size) return load(app, "/f/runs");
  const jobs = [];
  for (const el of app.querySelectorAll("[data-live]")) {
    const ids = el.dataset.live.split(" ");
    if (el.dataset.loaded && ids.some((id) => runs.has(id))) jobs.push(load(el, el.dataset.loaded));
  }
  await Promise.all(jobs);
  const { query } = parseHash();
  markSelected(query.get("open"));
}

function listen() {
  const state = document.getElementById("live");
  const source = new EventSource("/events");
  source.onopen = () => { state.textContent = "● live"; state.className = "live-state on"; };
  source.onerror = () => { state.textContent = "○ reconnecting…"; state.className = "live-state off"; };
  source.onmessage = (message) => {
    try { refresh(JSON.parse(message.data)); } catch (err) { /* a malformed event is ignored */ }
  };
}

async function warnings() {
  const el = document.getElementById("warnings");
  await load(el, "/f/warnings");
}

window.addEventListener("hashchange", route);
warnings();
route();
listen();
