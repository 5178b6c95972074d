// A small SVG charting script: line charts (metric histories) and scatter charts (a metric
// against a param). Labels are SVG text nodes, so user strings stay text.
import { h, fmtValue } from "./dom.js";

const M = { left: 60, right: 16, top: 14, bottom: 40 };

// Round tick values covering [min, max]; `integer` keeps steps whole (training steps).
export function niceTicks(min, max, count = 5, integer = false) {
  if (!(max > min)) {
    const pad = integer ? 1 : Math.abs(min) * 0.1 || 1;
    return niceTicks(min - pad, max + pad, count, integer);
  }
  const raw = (max - min) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag)
    .filter((s) => !integer || (s >= 1 && Number.isInteger(s))).find((s) => s >= raw) || 1;
  const ticks = [];
  for (let t = Math.ceil(min / step) * step; t <= max + step * 1e-9; t += step) {
    ticks.push(Number(t.toPrecision(12)));
  }
  return { ticks, lo: Math.min(min, ticks[0]), hi: Math.max(max, ticks[ticks.length - 1]) };
}

function extent(values) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (typeof v !== "number" || !Number.isFinite(v)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return lo <= hi ? [lo, hi] : null;
}

function frame(width, height, xs, ys, xLabel, yLabel) {
  const svg = h("svg:svg", { viewBox: `0 0 ${width} ${height}`, class: "chart-svg",
    width, height, role: "img" });
  const plotW = width - M.left - M.right;
  const plotH = height - M.top - M.bottom;
  const sx = (x) => M.left + ((x - xs.lo) / (xs.hi - xs.lo || 1)) * plotW;
  const sy = (y) => M.top + plotH - ((y - ys.lo) / (ys.hi - ys.lo || 1)) * plotH;
  for (const t of ys.ticks) {
    svg.append(h("svg:line", { x1: M.left, x2: M.left + plotW, y1: sy(t), y2: sy(t), class: "grid" }));
    svg.append(h("svg:text", { x: M.left - 6, y: sy(t) + 4, class: "tick", "text-anchor": "end" },
      ys.format ? ys.format(t) : fmtValue(t)));
  }
  for (const t of xs.ticks || []) {
    svg.append(h("svg:line", { x1: sx(t), x2: sx(t), y1: M.top + plotH, y2: M.top + plotH + 4,
      class: "axis" }));
    svg.append(h("svg:text", { x: sx(t), y: M.top + plotH + 16, class: "tick",
      "text-anchor": "middle" }, fmtValue(t)));
  }
  svg.append(h("svg:line", { x1: M.left, x2: M.left + plotW, y1: M.top + plotH,
    y2: M.top + plotH, class: "axis" }));
  svg.append(h("svg:line", { x1: M.left, x2: M.left, y1: M.top, y2: M.top + plotH, class: "axis" }));
  svg.append(h("svg:text", { x: M.left + plotW / 2, y: height - 6, class: "axis-label",
    "text-anchor": "middle" }, xLabel || ""));
  svg.append(h("svg:text", { x: 12, y: M.top + plotH / 2, class: "axis-label",
    "text-anchor": "middle", transform: `rotate(-90 12 ${M.top + plotH / 2})` }, yLabel || ""));
  return { svg, sx, sy, plotW, plotH };
}

function nearestIndex(points, x) {
  let lo = 0;
  let hi = points.length - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (points[mid][0] < x) lo = mid;
    else hi = mid;
  }
  return Math.abs(points[lo][0] - x) <= Math.abs(points[hi][0] - x) ? lo : hi;
}

// series: [{label, color, points: [[step, value], ...] sorted by step}]
// With logY, values are plotted as log10 (values <= 0 leave a gap) and ticks read 10^k.
export function lineChart({ series, xLabel = "step", yLabel = "", width = 520, height = 260, logY = false }) {
  const all = series.flatMap((s) => s.points);
  const ty = (y) => (typeof y !== "number" ? null : !logY ? y : y > 0 ? Math.log10(y) : null);
  const xe = extent(all.map((p) => p[0]));
  const ye = extent(all.map((p) => ty(p[1])));
  const wrap = h("div", { class: "chart" });
  if (!xe || !ye) return h("div", { class: "chart empty" }, "no numeric points to plot");
  const xs = niceTicks(xe[0], xe[1], 6, all.every((p) => Number.isInteger(p[0])));
  const ys = logY ? { ...logTicks(ye[0], ye[1]), format: (k) => fmtValue(10 ** k) } : niceTicks(ye[0], ye[1], 5);
  const { svg, sx, sy } = frame(width, height, xs, ys, xLabel, logY ? `${yLabel} (log)` : yLabel);
  for (const s of series) {
    let d = "";
    let pen = false;
    for (const [x, raw] of s.points) {
      const y = ty(raw);
      if (y === null) { pen = false; continue; }
      d += `${pen ? "L" : "M"}${sx(x).toFixed(1)} ${sy(y).toFixed(1)}`;
      pen = true;
    }
    svg.append(h("svg:path", { d, class: "line", stroke: s.color, fill: "none" }));
    const numeric = s.points.filter((p) => ty(p[1]) !== null);
    if (numeric.length <= 30) {
      for (const [x, y] of numeric) {
        svg.append(h("svg:circle", { cx: sx(x), cy: sy(ty(y)), r: 2.5, fill: s.color }));
      }
    }
  }
  const cursor = h("svg:line", { class: "cursor", y1: M.top, y2: height - M.bottom, x1: -10, x2: -10 });
  const tip = h("div", { class: "tooltip", hidden: true });
  svg.append(cursor);
  svg.addEventListener("mousemove", (event) => {
    const box = svg.getBoundingClientRect();
    const px = ((event.clientX - box.left) / box.width) * width;
    const x = xs.lo + ((px - M.left) / (width - M.left - M.right)) * (xs.hi - xs.lo);
    const lines = [];
    let step = null;
    for (const s of series) {
      if (!s.points.length) continue;
      const p = s.points[nearestIndex(s.points, x)];
      step = p[0];
      lines.push(h("div", {}, h("span", { class: "swatch", dataset: { color: s.color } }),
        `${s.label}: ${fmtValue(p[1])}`));
    }
    if (step === null) return;
    cursor.setAttribute("x1", sx(step));
    cursor.setAttribute("x2", sx(step));
    tip.replaceChildren(h("div", { class: "tip-head" }, `${xLabel} ${fmtValue(step)}`), ...lines);
    for (const sw of tip.querySelectorAll(".swatch")) sw.style.background = sw.dataset.color;
    tip.hidden = false;
    tip.style.left = `${Math.min(event.clientX - box.left + 12, box.width - 160)}px`;
    tip.style.top = `${event.clientY - box.top + 8}px`;
  });
  svg.addEventListener("mouseleave", () => { tip.hidden = true; cursor.setAttribute("x1", -10); cursor.setAttribute("x2", -10); });
  wrap.append(svg, tip);
  if (series.length > 1 || series[0]?.label) wrap.append(legend(series));
  return wrap;
}

// A chart with a "log scale" switch (offered when every value is positive).
export function switchableLineChart(options) {
  const positive = options.series.every((s) => s.points.every((p) => typeof p[1] !== "number" || p[1] > 0));
  const box = h("div", {}, lineChart(options));
  if (!positive) return box;
  const toggle = h("input", { type: "checkbox", class: "log-toggle", onchange: () => {
    box.firstChild.replaceWith(lineChart({ ...options, logY: toggle.checked }));
  } });
  box.append(h("label", { class: "small muted" }, toggle, " log scale"));
  return box;
}

export function legend(series) {
  const el = h("div", { class: "legend" });
  for (const s of series) {
    const sw = h("span", { class: "swatch" });
    sw.style.background = s.color;
    el.append(h("span", { class: "legend-item" }, sw, s.label));
  }
  return el;
}

function isNumber(text) {
  return text !== "" && text !== null && Number.isFinite(Number(text));
}

function padded(lo, hi) {
  const pad = (hi - lo) * 0.06 || Math.abs(lo) * 0.1 || 1;
  return [lo - pad, hi + pad];
}

function logTicks(lo, hi) {
  const ticks = [];
  for (let k = Math.floor(lo); k <= Math.ceil(hi); k += 1) ticks.push(k);
  return { ticks, lo: Math.min(lo, ticks[0]), hi: Math.max(hi, ticks[ticks.length - 1]) };
}

// points: [{x (param text), y (number), label, color}]. A numeric param spanning two decades
// or more (learning rates, C) goes on a log axis; a non-numeric one on a category axis.
export function scatterChart({ points, xLabel, yLabel, width = 560, height = 300 }) {
  const usable = points.filter((p) => typeof p.y === "number" && p.x !== undefined && p.x !== null);
  if (!usable.length) return h("div", { class: "chart empty" }, "no run has both values");
  const numericX = usable.every((p) => isNumber(p.x));
  const values = numericX ? usable.map((p) => Number(p.x)) : [];
  const logX = numericX && Math.min(...values) > 0 && Math.max(...values) / Math.min(...values) >= 100;
  const categories = numericX ? null : [...new Set(usable.map((p) => String(p.x)))].sort();
  const xOf = (p) => (!numericX ? categories.indexOf(String(p.x)) : logX ? Math.log10(Number(p.x)) : Number(p.x));
  const xe = extent(usable.map(xOf));
  const ye = extent(usable.map((p) => p.y));
  let xs;
  if (!numericX) xs = { lo: -0.5, hi: categories.length - 0.5, ticks: [] };
  else if (logX) xs = { ...logTicks(...padded(xe[0], xe[1])), labels: true };
  else xs = niceTicks(...padded(xe[0], xe[1]), 6);
  const ys = niceTicks(...padded(ye[0], ye[1]), 5);
  const shownX = logX ? { ...xs, ticks: [] } : xs;
  const { svg, sx, sy, plotH } = frame(width, height, shownX, ys, logX ? `${xLabel} (log scale)` : xLabel, yLabel);
  const xTick = (x, text) => svg.append(h("svg:text", { x: sx(x), y: M.top + plotH + 16,
    class: "tick", "text-anchor": "middle" }, text));
  if (!numericX) categories.forEach((c, i) => xTick(i, c.length > 14 ? `${c.slice(0, 13)}…` : c));
  if (logX) xs.ticks.forEach((k) => xTick(k, fmtValue(10 ** k)));
  for (const p of usable) {
    const dot = h("svg:circle", { cx: sx(xOf(p)), cy: sy(p.y), r: 6, fill: p.color, class: "dot" });
    dot.append(h("svg:title", {}, `${p.label}: ${xLabel}=${p.x}, ${yLabel}=${fmtValue(p.y)}`));
    svg.append(dot);
  }
  return h("div", { class: "chart scatter-chart" }, svg);
}
