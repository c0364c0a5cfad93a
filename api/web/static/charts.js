// Small local SVG charts for the platform's pages: no library, no network.
// Every element with data-chart='{"bars": [{label, value}], "series": [{label, value, group}], "unit", "target"}'
// gets a bar chart (bars) and, when there is a series, a line chart of it, drawn as inline SVG.
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";

  function el(name, attrs, text) {
    var node = document.createElementNS(NS, name);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, String(attrs[k])); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function fmt(value, unit) {
    if (value === null || value === undefined || !isFinite(value)) return "—";
    if (unit === "ratio") return (value * 100).toFixed(1) + " %";
    var a = Math.abs(value);
    return a >= 1000 ? value.toFixed(0) : a >= 1 ? value.toFixed(2) : value.toPrecision(3);
  }

  function scale(values, target) {
    var all = values.filter(function (v) { return v !== null && isFinite(v); });
    if (target !== null && target !== undefined && isFinite(target)) all.push(target);
    var top = Math.max.apply(null, all.concat([0]));
    return top > 0 ? top * 1.1 : 1;
  }

  function barChart(spec) {
    var bars = spec.bars || [];
    var w = 360, h = 180, pad = 30, bottom = 36;
    var top = scale(bars.map(function (b) { return b.value; }), spec.target);
    var svg = el("svg", { viewBox: "0 0 " + w + " " + h, class: "bar-chart", role: "img" });
    svg.appendChild(el("title", {}, bars.map(function (b) { return b.label + ": " + fmt(b.value, spec.unit); }).join("; ")));
    var slot = (w - 2 * pad) / Math.max(bars.length, 1);
    var plot = h - bottom - 10;
    svg.appendChild(el("line", { x1: pad, y1: h - bottom, x2: w - pad, y2: h - bottom, class: "axis" }));
    bars.forEach(function (b, i) {
      var x = pad + i * slot + slot * 0.15, bw = slot * 0.7;
      var v = b.value === null || !isFinite(b.value) ? 0 : b.value;
      var bh = plot * v / top;
      svg.appendChild(el("rect", { x: x, y: h - bottom - bh, width: bw, height: bh, class: "bar bar-" + i }));
      svg.appendChild(el("text", { x: x + bw / 2, y: h - bottom - bh - 4, class: "value" }, fmt(b.value, spec.unit)));
      svg.appendChild(el("text", { x: x + bw / 2, y: h - bottom + 14, class: "label" }, b.label));
    });
    if (spec.target !== null && spec.target !== undefined && isFinite(spec.target)) {
      var ty = h - bottom - plot * spec.target / top;
      svg.appendChild(el("line", { x1: pad, y1: ty, x2: w - pad, y2: ty, class: "target" }));
      svg.appendChild(el("text", { x: w - pad, y: ty - 3, class: "target-label" }, "▸ " + fmt(spec.target, spec.unit)));
    }
    return svg;
  }

  function lineChart(spec) {
    var points = spec.series || [];
    var w = 480, h = 180, pad = 34, bottom = 30;
    var top = scale(points.map(function (p) { return p.value; }), spec.target);
    var svg = el("svg", { viewBox: "0 0 " + w + " " + h, class: "line-chart", role: "img" });
    svg.appendChild(el("title", {}, points.map(function (p) { return p.label + ": " + fmt(p.value, spec.unit); }).join("; ")));
    var step = (w - 2 * pad) / Math.max(points.length - 1, 1);
    var plot = h - bottom - 10;
    svg.appendChild(el("line", { x1: pad, y1: h - bottom, x2: w - pad, y2: h - bottom, class: "axis" }));
    svg.appendChild(el("text", { x: 2, y: 12, class: "label start" }, fmt(top / 1.1, spec.unit)));
    var groups = {};
    points.forEach(function (p, i) {
      if (p.value === null || !isFinite(p.value)) return;
      var x = pad + i * step, y = h - bottom - plot * p.value / top;
      (groups[p.group || "all"] = groups[p.group || "all"] || []).push(x.toFixed(1) + "," + y.toFixed(1));
      svg.appendChild(el("circle", { cx: x, cy: y, r: 2.5, class: "dot group-" + (p.group || "all") }));
    });
    Object.keys(groups).forEach(function (g) {
      svg.appendChild(el("polyline", { points: groups[g].join(" "), class: "line group-" + g }));
    });
    if (points.length) {
      svg.appendChild(el("text", { x: pad, y: h - 8, class: "label start" }, points[0].label));
      svg.appendChild(el("text", { x: w - pad, y: h - 8, class: "label end" }, points[points.length - 1].label));
    }
    return svg;
  }

  function finite(items) {
    return (items || []).some(function (item) { return item.value !== null && isFinite(item.value); });
  }

  function draw(node) {
    var spec;
    try { spec = JSON.parse(node.getAttribute("data-chart")); } catch (e) { return; }
    node.textContent = "";
    if (finite(spec.bars)) node.appendChild(barChart(spec));
    if (finite(spec.series)) node.appendChild(lineChart(spec));
    if (!node.firstChild) {
      // Nothing the evidence supports: say so rather than draw an empty axis.
      var empty = document.createElement("p");
      empty.className = "no-data";
      empty.textContent = "—";
      node.appendChild(empty);
    }
  }

  function drawAll() { Array.prototype.forEach.call(document.querySelectorAll("[data-chart]"), draw); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", drawAll);
  else drawAll();
})();
