// Runs view: one experiment's runs as a sortable, filterable table; children folded under
// their parent; refreshed while runs are RUNNING.
import { h, clear, fill, api, fmtTime, fmtDuration, fmtValue, statusBadge, runLink, errorBox } from "./dom.js";

const PAGE = 100;
const BASE_COLUMNS = [
  ["attributes.run_name", "Name"], ["attributes.status", "Status"],
  ["attributes.start_time", "Started"], ["attributes.duration", "Duration"],
];

function pickExperiment(experiments, wanted) {
  if (wanted !== null && (wanted === "" || experiments.some((e) => e.experiment_id === wanted))) {
    return wanted;
  }
  const saved = localStorage.getItem("autotrack.experiment");
  if (saved !== null && experiments.some((e) => e.experiment_id === saved)) return saved;
  const used = experiments.filter((e) => e.last_run_time !== null);
  used.sort((a, b) => b.last_run_time - a.last_run_time);
  return used.length ? used[0].experiment_id : (experiments[0]?.experiment_id ?? "");
}

function defaultColumns(columns) {
  return {
    metrics: columns.metrics.slice(0, 5).map((c) => c.key),
    params: columns.params.slice(0, 4).map((c) => c.key),
    tags: [],
  };
}

export async function runsView(root, query) {
  const experiments = await api("/api/experiments");
  const state = {
    exp: pickExperiment(experiments, query.get("exp")),
    filter: query.get("filter") || "",
    sort: query.get("sort") || "",
    desc: query.get("desc") === "1",
    offset: Number(query.get("offset")) || 0,
    selected: new Set(),
    expanded: new Set(JSON.parse(sessionStorage.getItem("autotrack.expanded") || "[]")),
    chosen: null,
    provisional: false,
    data: null,
  };
  let timer = null;
  let stopped = false;

  const expSelect = h("select", { id: "experiment", "aria-label": "Experiment", onchange: () => {
    state.exp = expSelect.value; state.offset = 0; state.chosen = null;
    localStorage.setItem("autotrack.experiment", state.exp); load();
  } },
  h("option", { value: "" }, "All experiments"),
  experiments.map((e) => h("option", { value: e.experiment_id }, e.name)));
  expSelect.value = state.exp;
  const filterInput = h("input", { id: "filter", type: "search", value: state.filter,
    placeholder: "metrics.accuracy > 0.9 and tags.model_type = 'tree'", spellcheck: "false",
    "aria-label": "Filter" });
  const filterForm = h("form", { class: "filter", onsubmit: (event) => {
    event.preventDefault(); state.filter = filterInput.value.trim(); state.offset = 0; load();
  } }, filterInput, h("button", { type: "submit" }, "Filter"));
  const columnsBox = h("details", { class: "columns-picker" }, h("summary", {}, "Columns"));
  const compareButton = h("button", { id: "compare", disabled: true, onclick: () => {
    window.location.hash = `#/compare?ids=${[...state.selected].map(encodeURIComponent).join(",")}`;
  } }, "Compare");
  const live = h("span", { class: "live" });
  const message = h("div", { class: "message" });
  const table = h("table", { class: "runs", id: "runs-table" });
  const pager = h("div", { class: "pager" });
  fill(root, 
    h("div", { class: "toolbar" }, h("label", {}, "Experiment ", expSelect), filterForm,
      columnsBox, compareButton, live),
    message, h("div", { class: "table-wrap" }, table), pager);

  function columnsKey() { return `autotrack.columns.${state.exp}`; }

  function updateHash() {
    const q = new URLSearchParams();
    q.set("exp", state.exp);
    if (state.filter) q.set("filter", state.filter);
    if (state.sort) q.set("sort", state.sort);
    if (state.desc) q.set("desc", "1");
    if (state.offset) q.set("offset", String(state.offset));
    history.replaceState(null, "", `#/runs?${q}`);
  }

  // quick: when the server has nothing cached it answers from the newest runs at once
  // (partial, no total yet); the full answer is asked for right after.
  async function load(quick = true) {
    clearTimeout(timer);
    updateHash();
    let data;
    try {
      data = await api("/api/runs", { experiment_id: state.exp, filter: state.filter,
        sort: state.sort, desc: state.desc ? "1" : "", offset: state.offset, limit: PAGE,
        quick: quick ? "1" : "" });
    } catch (err) {
      fill(message, errorBox(err.message));
      schedule(15000);
      return;
    }
    if (stopped) return;
    clear(message);
    state.data = data;
    if (!state.chosen || (state.provisional && !data.partial)) {
      const saved = JSON.parse(localStorage.getItem(columnsKey()) || "null");
      state.chosen = saved || defaultColumns(data.columns);
      state.provisional = !saved && data.partial;  // chosen from the newest runs only
    }
    renderPicker();
    renderTable();
    live.textContent = data.any_running ? "● live: runs in progress, refreshing" : "";
    if (data.partial) {
      requestAnimationFrame(() => load(false));
      return;
    }
    if (!performance.getEntriesByName("autotrack:runs-complete").length) {
      requestAnimationFrame(() => performance.mark("autotrack:runs-complete"));
    }
    schedule(data.any_running ? 3000 : 15000);
  }

  function schedule(ms) {
    clearTimeout(timer);
    if (!stopped) timer = setTimeout(() => (document.hidden ? schedule(ms) : load()), ms);
  }

  function renderPicker() {
    const cols = state.data.columns;
    const groups = ["metrics", "params", "tags"].map((kind) => h("fieldset", {},
      h("legend", {}, kind),
      cols[kind].length ? cols[kind].map((c) => h("label", {}, h("input", { type: "checkbox",
        checked: state.chosen[kind].includes(c.key), onchange: (event) => {
          const list = state.chosen[kind].filter((k) => k !== c.key);
          if (event.target.checked) list.push(c.key);
          state.chosen[kind] = list;
          localStorage.setItem(columnsKey(), JSON.stringify(state.chosen));
          renderTable();
        } }), c.key)) : h("span", { class: "muted" }, "none")));
    const summary = columnsBox.querySelector("summary");
    fill(columnsBox, summary, h("div", { class: "picker-body" }, groups));
  }

  function sortHeader(column, label, cls) {
    const active = state.sort === column;
    const arrow = active ? (state.desc ? " ▼" : " ▲") : "";
    return h("th", { class: `sortable ${cls || ""}`, title: `sort by ${column}`,
      "aria-sort": active ? (state.desc ? "descending" : "ascending") : null,
      onclick: () => {
        if (state.sort === column) state.desc = !state.desc;
        else { state.sort = column; state.desc = column.startsWith("metrics.") || column === "attributes.start_time"; }
        state.offset = 0; load();
      } }, label, arrow);
  }

  function renderTable() {
    const { data, chosen } = state;
    const kinds = ["metrics", "params", "tags"].filter((k) => chosen[k].length);
    const showExp = state.exp === "";
    const groupRow = h("tr", { class: "group-row" },
      h("th", { colspan: BASE_COLUMNS.length + 1 + (showExp ? 1 : 0) }),
      kinds.map((k) => h("th", { colspan: chosen[k].length, class: `group group-${k}` }, k)));
    const keyRow = h("tr", {}, h("th", { class: "select" }),
      BASE_COLUMNS.map(([col, label]) => sortHeader(col, label)),
      showExp ? h("th", {}, "Experiment") : null,
      kinds.map((k) => chosen[k].map((key) => sortHeader(`${k}.${key}`, key, `col-${k}`))));
    const body = h("tbody");
    const names = Object.fromEntries(experiments.map((e) => [e.experiment_id, e.name]));
    const addRow = (run, depth) => {
      const kids = run.children || [];
      const open = state.expanded.has(run.run_id);
      const toggle = kids.length ? h("button", { class: "fold", "aria-expanded": String(open),
        title: open ? "hide child runs" : "show child runs", onclick: () => {
          if (open) state.expanded.delete(run.run_id); else state.expanded.add(run.run_id);
          sessionStorage.setItem("autotrack.expanded", JSON.stringify([...state.expanded].slice(-200)));
          renderTable();
        } }, open ? "▾" : "▸", ` ${kids.length}`) : null;
      const box = h("input", { type: "checkbox", class: "select-run", checked: state.selected.has(run.run_id),
        "aria-label": `select ${run.run_name}`, onchange: (event) => {
          if (event.target.checked) state.selected.add(run.run_id); else state.selected.delete(run.run_id);
          updateCompare();
        } });
      const name = h("td", { class: `name depth-${Math.min(depth, 4)}` }, toggle, runLink(run.run_id, run.run_name));
      const cells = kinds.map((k) => chosen[k].map((key) => {
        const v = run[k][key];
        return h("td", { class: `col-${k}`, title: v === undefined ? null : String(v) },
          k === "metrics" ? fmtValue(v) : v);
      }));
      body.append(h("tr", { class: depth ? "child" : "", dataset: { runId: run.run_id } },
        h("td", { class: "select" }, box), name, h("td", {}, statusBadge(run.status)),
        h("td", {}, fmtTime(run.start_time)),
        h("td", {}, run.end_time ? fmtDuration(run.duration_ms) : fmtDuration(Date.now() - run.start_time)),
        showExp ? h("td", {}, names[run.experiment_id] || run.experiment_id) : null, cells));
      if (open) for (const kid of kids) addRow(kid, depth + 1);
    };
    for (const run of data.runs) addRow(run, 0);
    if (!data.runs.length) {
      body.append(h("tr", {}, h("td", { colspan: 99, class: "empty" },
        state.filter ? "No run matches this filter." : "No runs in this experiment yet.")));
    }
    fill(table, h("thead", {}, groupRow, keyRow), body);
    if (data.partial) {
      fill(pager, h("span", { class: "count" }, `newest ${data.runs.length} runs; counting all…`));
      updateCompare();
      return;
    }
    const end = Math.min(data.offset + PAGE, data.total);
    fill(pager, 
      h("button", { disabled: data.offset === 0, onclick: () => { state.offset = Math.max(0, data.offset - PAGE); load(); } }, "‹ Prev"),
      h("span", { class: "count" }, data.total ? `${data.offset + 1}–${end} of ${data.total} runs` : "0 runs",
        data.matched !== data.total ? ` (${data.matched} with child runs)` : "",
        data.truncated ? " — only the first runs were read; narrow the filter" : ""),
      h("button", { disabled: end >= data.total, onclick: () => { state.offset = data.offset + PAGE; load(); } }, "Next ›"));
    updateCompare();
  }

  function updateCompare() {
    compareButton.disabled = state.selected.size < 2;
    compareButton.textContent = `Compare (${state.selected.size})`;
  }

  await load();
  // The frame after the first rows are in the DOM: what benchmarks/bench_ui.py times.
  requestAnimationFrame(() => performance.mark("autotrack:runs-painted"));
  return () => { stopped = true; clearTimeout(timer); };
}
