// Hand-drawn SVG charts: one line or dot series per chart, scaled to its data.

import { svg } from "./format.js";

const W = 320;
const H = 120;
const PAD = { l: 62, r: 6, t: 8, b: 16 };

function scale(values, lo, hi) {
  let min = Math.min(...values);
  let max = Math.max(...values);
  if (min === max) {
    const d = Math.abs(min) * 0.001 || 1e-6;
    min -= d;
    max += d;
  }
  return (v) => hi - ((v - min) / (max - min)) * (hi - lo);
}

// points: [[t, v], ...] sorted by t; dots: draw dots, not a line; fmt: the axis label.
export function chart(points, { dots = false, fmt = (v) => v.toFixed(2), label = "" } = {}) {
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": label });
  if (points.length === 0) {
    const t = svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "empty" });
    t.textContent = "no data yet";
    root.append(t);
    return root;
  }
  const ts = points.map((p) => p[0]);
  const vs = points.map((p) => p[1]);
  const xs = scale(ts, W - PAD.r, PAD.l); // earliest at the left edge
  const y = scale(vs, PAD.t, H - PAD.b);
  const lo = Math.min(...vs);
  const hi = Math.max(...vs);
  for (const [v, cls] of [[hi, "axis"], [lo, "axis"]]) {
    const line = svg("line", { x1: PAD.l, x2: W - PAD.r, y1: y(v), y2: y(v), class: "grid" });
    const text = svg("text", { x: PAD.l - 4, y: y(v) + 4, "text-anchor": "end", class: cls });
    text.textContent = fmt(v);
    root.append(line, text);
  }
  if (dots) {
    for (const [t, v] of points) root.append(svg("circle", { cx: xs(t), cy: y(v), r: 3, class: "dot" }));
  } else {
    const d = points.map(([t, v], i) => `${i ? "L" : "M"}${xs(t).toFixed(1)},${y(v).toFixed(1)}`).join("");
    root.append(svg("path", { d, class: "line" }));
  }
  const span = ts[ts.length - 1] - ts[0];
  const foot = svg("text", { x: W - PAD.r, y: H - 3, "text-anchor": "end", class: "axis" });
  foot.textContent = span > 0 ? `last ${Math.round(span)} s` : "";
  root.append(foot);
  return root;
}
