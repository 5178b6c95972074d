// Run view: params, tags, latest metrics, one chart per metric history, the artifact tree
// with previews (images inline, CSV as a table, text and JSON), and the run's models.
import { h, clear, fill, api, artifactUrl, fmtTime, fmtDuration, fmtValue, fmtBytes, statusBadge,
  runLink, errorBox, PALETTE } from "./dom.js";
import { switchableLineChart } from "./chart.js";

const PREFIXES = /^(val_|validation_|train_|training_|test_|eval_|val\/|validation\/|train\/|training\/|test\/|eval\/)/;
const IMAGE = /\.(png|jpe?g|gif|webp|bmp|svg)$/i;

export function metricGroups(keys) {
  // loss, val_loss and train/loss share a chart: group keys by their name without the split.
  const groups = new Map();
  for (const key of keys) {
    const base = key.replace(PREFIXES, "");
    if (!groups.has(base)) groups.set(base, []);
    groups.get(base).push(key);
  }
  return [...groups.entries()];
}

function kvTable(entries, cls, valueFn = (v) => v) {
  if (!entries.length) return h("p", { class: "muted" }, "none");
  return h("table", { class: `kv ${cls}` }, h("tbody", {}, entries.map(([k, v]) =>
    h("tr", {}, h("th", { scope: "row" }, k), h("td", { class: "value" }, valueFn(v))))));
}

function section(title, id, ...body) {
  return h("section", { class: "card", id }, h("h2", {}, title), ...body);
}

export async function runView(root, runId) {
  let timer = null;
  let stopped = false;
  let selectedPath = null;
  const chartsBox = h("div", { class: "charts", id: "charts" });
  const artifactsBox = h("div", { class: "artifacts" });
  const modelsBox = h("div", { class: "models" });

  async function render() {
    const run = await api(`/api/runs/${encodeURIComponent(runId)}`);
    if (stopped) return;
    const tags = Object.entries(run.tags).sort();
    const userTags = tags.filter(([k]) => !k.startsWith("autotrack."));
    const systemTags = tags.filter(([k]) => k.startsWith("autotrack."));
    const counts = Object.fromEntries(run.metric_keys.map((m) => [m.key, m.count]));
    const metrics = Object.entries(run.metrics).sort();
    fill(root, 
      h("div", { class: "run-head" },
        h("h1", { id: "run-name" }, run.run_name), statusBadge(run.status),
        h("div", { class: "meta" },
          h("span", {}, "id ", h("code", {}, run.run_id)),
          h("span", {}, "started ", fmtTime(run.start_time)),
          h("span", {}, "duration ", run.end_time ? fmtDuration(run.duration_ms) : `${fmtDuration(Date.now() - run.start_time)} so far`),
          run.parent ? h("span", {}, "parent ", runLink(run.parent.run_id, run.parent.run_name)) : null,
          h("a", { href: `#/runs?exp=${encodeURIComponent(run.experiment_id)}` }, "← all runs"))),
      run.children.length ? section(`Child runs (${run.children_total})`, "children",
        h("ul", { class: "children" }, run.children.map((c) => h("li", {}, runLink(c.run_id, c.run_name), " ",
          statusBadge(c.status))))) : null,
      h("div", { class: "grid" },
        section("Metrics", "metrics", metrics.length ? h("table", { class: "kv metrics" },
          h("thead", {}, h("tr", {}, h("th", {}, "key"), h("th", {}, "latest"), h("th", {}, "points"))),
          h("tbody", {}, metrics.map(([k, v]) => h("tr", {}, h("th", { scope: "row" }, k),
            h("td", { class: "value" }, fmtValue(v)), h("td", { class: "muted" }, counts[k] ?? ""))))) :
          h("p", { class: "muted" }, "none")),
        section("Parameters", "params", kvTable(Object.entries(run.params).sort(), "params")),
        section("Tags", "tags", kvTable(userTags, "tags"),
          systemTags.length ? h("details", {}, h("summary", {}, `system tags (${systemTags.length})`),
            kvTable(systemTags, "system-tags")) : null)),
      section("Metric history", "history", chartsBox),
      section("Models", "models", modelsBox),
      section("Artifacts", "artifacts", artifactsBox));
    await Promise.all([renderCharts(run), renderModels(), renderArtifacts()]);
    if (run.status === "RUNNING" && !stopped) timer = setTimeout(render, 3000);
  }

  async function renderCharts(run) {
    const keys = run.metric_keys.filter((m) => m.count > 1).map((m) => m.key);
    chartsBox.closest("section").hidden = !keys.length;  // single values are in the table
    if (!keys.length) return;
    const histories = {};
    for (let i = 0; i < keys.length; i += 100) {
      const got = await api("/api/metric-history", { run_id: runId, key: keys.slice(i, i + 100), max_points: 1000 });
      Object.assign(histories, got[runId]);
    }
    clear(chartsBox);
    for (const [base, group] of metricGroups(keys)) {
      const series = group.map((key, i) => ({ label: key, color: PALETTE[i % PALETTE.length],
        points: histories[key].points }));
      const note = group.filter((k) => histories[k].downsampled)
        .map((k) => `${k}: ${histories[k].points.length} of ${histories[k].total} points shown`);
      chartsBox.append(h("figure", { class: "chart-card", dataset: { metric: base } },
        h("figcaption", {}, base), switchableLineChart({ series, yLabel: base }),
        note.length ? h("p", { class: "muted small" }, note.join("; ")) : null));
    }
  }

  async function renderModels() {
    const models = await api(`/api/runs/${encodeURIComponent(runId)}/models`);
    clear(modelsBox);
    if (!models.length) { modelsBox.append(h("p", { class: "muted" }, "No model logged.")); return; }
    for (const model of models) {
      const d = model.descriptor || {};
      const facts = ["flavor", "framework", "framework_version", "serialization_format", "model_class", "created", "autotrack_version", "python_version"]
        .filter((k) => d[k] !== undefined && typeof d[k] !== "object").map((k) => [k, String(d[k])]);
      modelsBox.append(h("div", { class: "model" },
        h("h3", {}, model.path || "(artifact root)"), kvTable(facts, "model-facts"),
        signatureTable(model.signature),
        h("p", {}, "Load it with:"), h("pre", { class: "code load-snippet" }, model.load)));
    }
  }

  async function renderArtifacts() {
    const listing = await api(`/api/runs/${encodeURIComponent(runId)}/artifacts`, { recursive: 1 });
    const preview = h("div", { class: "preview", id: "artifact-preview" });
    const files = listing.entries.filter((e) => !e.is_dir);
    const images = files.filter((e) => IMAGE.test(e.name));
    const show = async (entry) => {
      selectedPath = entry.path;
      for (const b of artifactsBox.querySelectorAll(".file.selected")) b.classList.remove("selected");
      artifactsBox.querySelector(`[data-path="${CSS.escape(entry.path)}"]`)?.classList.add("selected");
      fill(preview, await previewOf(runId, entry));
    };
    clear(artifactsBox);
    if (!listing.entries.length) { artifactsBox.append(h("p", { class: "muted" }, "No artifacts.")); return; }
    if (images.length) {
      artifactsBox.append(h("div", { class: "gallery" }, images.map((img) => h("figure", {},
        h("img", { src: artifactUrl(runId, img.path), alt: img.path, loading: "lazy", onclick: () => show(img) }),
        h("figcaption", {}, img.path)))));
    }
    artifactsBox.append(h("div", { class: "artifact-panes" }, h("div", { class: "tree" }, tree(listing.entries, show)), preview));
    const first = files.find((e) => e.path === selectedPath) || images[0] || files[0];
    if (first) await show(first);
  }

  await render();
  requestAnimationFrame(() => performance.mark("autotrack:run-painted"));
  return () => { stopped = true; clearTimeout(timer); };
}

function signatureTable(signature) {
  if (!signature || !Array.isArray(signature.inputs)) return null;
  const rows = (specs, side) => (specs || []).map((s) => h("tr", {}, h("td", {}, side),
    h("td", {}, s.name ?? ""), h("td", {}, s.dtype ?? ""), h("td", {}, s.shape ? `(${s.shape.join(", ")})` : "")));
  return h("table", { class: "signature" },
    h("thead", {}, h("tr", {}, h("th", {}, ""), h("th", {}, "name"), h("th", {}, "dtype"), h("th", {}, "shape"))),
    h("tbody", {}, rows(signature.inputs, "input"), rows(signature.outputs, "output")));
}

function tree(entries, show) {
  const root = { children: new Map() };
  for (const entry of entries) {
    let node = root;
    const parts = entry.path.split("/");
    parts.forEach((part, i) => {
      if (!node.children.has(part)) node.children.set(part, { children: new Map(), entry: null });
      node = node.children.get(part);
      if (i === parts.length - 1) node.entry = entry;
    });
  }
  const list = (node, depth) => h("ul", {}, [...node.children.entries()]
    .sort(([a, x], [b, y]) => (x.entry?.is_dir === y.entry?.is_dir ? a.localeCompare(b) : x.entry?.is_dir ? -1 : 1))
    .map(([name, child]) => (child.entry && !child.entry.is_dir
      ? h("li", {}, h("button", { class: "file", dataset: { path: child.entry.path },
        onclick: () => show(child.entry) }, name), h("span", { class: "muted small" }, ` ${fmtBytes(child.entry.size)}`))
      : h("li", {}, h("details", { open: depth < 1 }, h("summary", {}, `${name}/`), list(child, depth + 1))))));
  return list(root, 0);
}

async function previewOf(runId, entry) {
  let p;
  try {
    p = await api(`/api/runs/${encodeURIComponent(runId)}/artifacts/preview`, { path: entry.path });
  } catch (err) {
    return errorBox(err.message);
  }
  const head = h("div", { class: "preview-head" }, h("strong", {}, p.path), ` ${fmtBytes(p.size)} `,
    h("a", { href: artifactUrl(runId, p.path), download: p.path.split("/").pop() }, "download"));
  if (p.kind === "image") return h("div", {}, head, h("img", { class: "artifact-image", src: artifactUrl(runId, p.path), alt: p.path }));
  if (p.kind === "table") {
    const [first, ...rest] = p.rows;
    return h("div", {}, head, h("div", { class: "table-wrap" }, h("table", { class: "csv" },
      h("thead", {}, h("tr", {}, (first || []).map((c) => h("th", {}, c)))),
      h("tbody", {}, rest.map((r) => h("tr", {}, r.map((c) => h("td", {}, c))))))),
    p.truncated ? h("p", { class: "muted" }, "first rows only") : null);
  }
  if (p.kind === "json" || p.kind === "text") {
    return h("div", {}, head, h("pre", { class: `code ${p.kind}` }, p.text), p.truncated ? h("p", { class: "muted" }, "truncated") : null);
  }
  return h("div", {}, head, h("p", { class: "muted" }, "Binary file: use download."));
}
