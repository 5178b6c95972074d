// Compare view: the selected runs' metric curves overlaid, their params/metrics/tags side by
// side with differences highlighted, and one metric plotted against one param.
import { h, clear, fill, api, fmtValue, runLink, errorBox, PALETTE } from "./dom.js";
import { switchableLineChart, scatterChart, legend } from "./chart.js";

export async function compareView(root, query) {
  const ids = (query.get("ids") || "").split(",").filter(Boolean);
  if (ids.length < 1) {
    fill(root, errorBox("Select runs in the runs view, then press Compare."));
    return () => {};
  }
  const data = await api("/api/compare", { run_id: ids });
  const runs = data.runs.map((r, i) => ({ ...r, color: PALETTE[i % PALETTE.length] }));
  const curves = h("div", { class: "charts", id: "compare-charts" });
  const scatterBox = h("div", { class: "scatter", id: "scatter" });
  const onlyDiff = h("input", { type: "checkbox", id: "only-diff", onchange: () => renderTable() });
  const tableBox = h("div", { class: "table-wrap" });
  const paramKeys = data.table.filter((r) => r.kind === "params");
  const metricKeys = data.table.filter((r) => r.kind === "metrics");
  const byDiff = (rows) => [...rows.filter((r) => r.differs), ...rows.filter((r) => !r.differs)];
  const xSelect = h("select", { id: "scatter-x", "aria-label": "param", onchange: () => renderScatter() },
    byDiff(paramKeys).map((r) => h("option", { value: r.key }, r.key)));
  const ySelect = h("select", { id: "scatter-y", "aria-label": "metric", onchange: () => renderScatter() },
    metricKeys.map((r) => h("option", { value: r.key }, r.key)));

  fill(root, 
    h("h1", {}, `Comparing ${runs.length} runs`),
    legend(runs.map((r) => ({ label: r.run_name, color: r.color }))),
    h("section", { class: "card", id: "curves" }, h("h2", {}, "Metric curves"), curves),
    h("section", { class: "card", id: "param-vs-metric" }, h("h2", {}, "Metric against param"),
      h("div", { class: "toolbar" }, h("label", {}, "metric ", ySelect), h("label", {}, "against param ", xSelect)),
      scatterBox),
    h("section", { class: "card", id: "diff" }, h("h2", {}, "Params, metrics and tags"),
      h("label", { class: "toggle" }, onlyDiff, " only rows that differ"), tableBox));

  function renderTable() {
    const rows = data.table.filter((r) => !onlyDiff.checked || r.differs);
    const head = h("tr", {}, h("th", {}, ""), h("th", {}, ""), runs.map((r) => {
      const sw = h("span", { class: "swatch" });
      sw.style.background = r.color;
      return h("th", {}, sw, runLink(r.run_id, r.run_name));
    }));
    fill(tableBox, h("table", { class: "compare", id: "compare-table" }, h("thead", {}, head),
      h("tbody", {}, rows.map((r) => h("tr", { class: r.differs ? "differs" : "" },
        h("td", { class: "muted" }, r.kind), h("th", { scope: "row" }, r.key),
        r.values.map((v) => h("td", { title: v === null ? "not logged" : String(v) },
          v === null ? "—" : r.kind === "metrics" ? fmtValue(v) : v)))))));
  }

  function renderScatter() {
    const x = xSelect.value;
    const y = ySelect.value;
    clear(scatterBox);
    if (!x || !y) { scatterBox.append(h("p", { class: "muted" }, "These runs have no params or no metrics.")); return; }
    scatterBox.append(scatterChart({ xLabel: x, yLabel: y, points: runs.map((r) => ({
      x: r.params[x], y: r.metrics[y], label: r.run_name, color: r.color })) }));
  }

  async function renderCurves() {
    const keys = new Set();
    for (const counts of Object.values(data.metric_counts)) {
      for (const [k, n] of Object.entries(counts)) if (n > 1) keys.add(k);
    }
    const chosen = [...keys].sort().slice(0, 24);
    if (!chosen.length) { curves.append(h("p", { class: "muted" }, "No metric has more than one point in these runs.")); return; }
    const per = Math.max(1, Math.floor(400 / runs.length));
    const histories = {};
    for (let i = 0; i < chosen.length; i += per) {
      const got = await api("/api/metric-history", { run_id: ids, key: chosen.slice(i, i + per), max_points: 1000 });
      for (const [rid, byKey] of Object.entries(got)) histories[rid] = { ...(histories[rid] || {}), ...byKey };
    }
    clear(curves);
    for (const key of chosen) {
      const series = runs.filter((r) => histories[r.run_id]?.[key]?.total)
        .map((r) => ({ label: r.run_name, color: r.color, points: histories[r.run_id][key].points }));
      curves.append(h("figure", { class: "chart-card", dataset: { metric: key } }, h("figcaption", {}, key),
        switchableLineChart({ series, yLabel: key })));
    }
  }

  renderTable();
  renderScatter();
  await renderCurves();
  return () => {};
}
