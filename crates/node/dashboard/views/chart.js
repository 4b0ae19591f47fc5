// Charts: uPlot line charts (global `uPlot`, vendored) and plain SVG bar charts, each with the
// data also available as a table for screen readers.
import { h, truncate } from './common.js';

const PALETTE = ['#c2410c', '#2563eb', '#15803d', '#9333ea', '#b45309', '#0e7490', '#be123c', '#4d7c0f'];
const PALETTE_DARK = ['#fb923c', '#60a5fa', '#4ade80', '#c084fc', '#fbbf24', '#22d3ee', '#fb7185', '#a3e635'];

function cssVar(name, fallback) {
  const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return v || fallback;
}

export function seriesColor(i) {
  if (i === 0) return cssVar('--accent', PALETTE[0]);
  const dark = window.matchMedia && window.matchMedia('(prefers-color-scheme: dark)').matches;
  const p = dark ? PALETTE_DARK : PALETTE;
  return p[i % p.length];
}

function dataTable(caption, headers, rows) {
  return h('details', { class: 'chart-data' },
    h('summary', null, 'Chart data as a table'),
    h('div', { class: 'table-wrap' },
      h('table', null, h('caption', { class: 'sr-only' }, caption),
        h('thead', null, h('tr', null, headers.map((x) => h('th', { scope: 'col' }, x)))),
        h('tbody', null, rows.slice(0, 200).map((r) => h('tr', null, r.map((c) => h('td', null, String(c)))))))));
}

/**
 * A line chart. x: numbers (ascending); series: [{label, values}]; time: x are seconds since the
 * epoch. Returns { el, destroy }.
 */
export function lineChart({ id, title, x, series, time = false, xLabel = 'x', yLabel = '' }) {
  const plotBox = h('div', { class: 'chart-plot', role: 'img', 'aria-label': `${title}: line chart of ${series.map((s) => s.label).join(', ')} over ${xLabel}` });
  const fig = h('figure', { class: 'chart', id: id || null }, h('figcaption', null, title), plotBox,
    dataTable(title, [xLabel, ...series.map((s) => s.label)], x.map((xv, i) => [time ? new Date(xv * 1000).toISOString() : xv, ...series.map((s) => s.values[i] ?? '')])));
  let plot = null;
  let ro = null;
  let destroyed = false;
  const text = cssVar('--text', '#1f2328');
  const grid = cssVar('--border', '#d0d7de');
  const axis = { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
  const make = () => {
    const width = Math.max(260, Math.min(plotBox.clientWidth || 600, 1200));
    const opts = {
      width,
      height: 240,
      scales: { x: { time } },
      axes: [{ ...axis, label: time ? undefined : xLabel }, { ...axis, label: yLabel || undefined, size: 70 }],
      series: [{ label: xLabel }, ...series.map((s, i) => ({ label: s.label, stroke: seriesColor(i), width: 2, points: { show: x.length < 40 } }))],
      legend: { live: true },
    };
    plot = new window.uPlot(opts, [x, ...series.map((s) => s.values)], plotBox);
  };
  loadUPlot().then(() => {
    // Draw once attached (so the width is known).
    requestAnimationFrame(() => {
      if (destroyed || !fig.isConnected) return;
      make();
      if (typeof ResizeObserver === 'function') {
        let last = plotBox.clientWidth;
        ro = new ResizeObserver(() => {
          const w = plotBox.clientWidth;
          if (plot && Math.abs(w - last) > 8) { last = w; plot.setSize({ width: Math.max(260, Math.min(w, 1200)), height: 240 }); }
        });
        ro.observe(plotBox);
      }
    });
  }).catch(() => {
    plotBox.append(h('p', { class: 'muted' }, 'The chart library did not load; the data is in the table below.'));
  });
  return { el: fig, destroy() { destroyed = true; if (ro) ro.disconnect(); if (plot) plot.destroy(); } };
}

let uplotPromise = null;

/** uPlot (vendored, MIT) is a classic script that defines the global `uPlot`: added on first use. */
export function loadUPlot() {
  if (typeof window.uPlot === 'function') return Promise.resolve(window.uPlot);
  if (!uplotPromise) {
    uplotPromise = new Promise((resolve, reject) => {
      const s = document.createElement('script');
      s.src = 'vendor/uPlot.iife.min.js';
      s.onload = () => (typeof window.uPlot === 'function' ? resolve(window.uPlot) : reject(new Error('uPlot did not load')));
      s.onerror = () => { uplotPromise = null; reject(new Error('uPlot did not load')); };
      document.head.append(s);
    });
  }
  return uplotPromise;
}

const SVG = 'http://www.w3.org/2000/svg';
function s(tag, attrs, ...kids) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  for (const k of kids) el.append(k);
  return el;
}

/** A horizontal bar chart in SVG: labels (strings) and values (numbers). */
export function barChart({ id, title, labels, values, valueLabel = 'value' }) {
  const n = Math.min(labels.length, 30);
  const max = Math.max(0, ...values.slice(0, n).map((v) => Math.abs(v))) || 1;
  const rowH = 22;
  const labelW = 150;
  const width = 600;
  const barW = width - labelW - 80;
  const svg = s('svg', { viewBox: `0 0 ${width} ${n * rowH + 8}`, class: 'bars', role: 'img', 'aria-label': `${title}: bar chart of ${valueLabel} by ${labels.length} labels` });
  for (let i = 0; i < n; i++) {
    const v = values[i];
    const w = Math.max(1, (Math.abs(v) / max) * barW);
    const y = i * rowH + 4;
    const lab = truncate(labels[i], 22);
    const g = s('g', null,
      s('title', null, `${labels[i]}: ${v}`),
      s('text', { x: labelW - 6, y: y + 14, 'text-anchor': 'end', class: 'bar-label' }, lab),
      s('rect', { x: labelW, y: y + 2, width: w, height: rowH - 6, rx: 2, class: 'bar' }),
      s('text', { x: labelW + w + 4, y: y + 14, class: 'bar-value' }, formatShort(v)));
    svg.append(g);
  }
  const fig = h('figure', { class: 'chart', id: id || null }, h('figcaption', null, title), svg,
    labels.length > n ? h('p', { class: 'muted' }, `First ${n} of ${labels.length} bars.`) : null,
    dataTable(title, ['label', valueLabel], labels.map((l, i) => [l, values[i]])));
  return { el: fig, destroy() {} };
}

function formatShort(v) {
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v)) return v.toLocaleString('en-US');
  return v.toLocaleString('en-US', { maximumFractionDigits: 4 });
}

/**
 * Picks a chart for result rows: a label/time column and a numeric column. Returns null when the
 * rows do not suit one.
 */
export function autoChart(rows, title) {
  if (!Array.isArray(rows) || rows.length < 1 || typeof rows[0] !== 'object' || rows[0] === null) return null;
  const cols = Object.keys(rows[0]);
  if (cols.length < 2) return null;
  const isNum = (v) => (typeof v === 'number' && Number.isFinite(v)) || (typeof v === 'string' && /^-?\d+(\.\d+)?$/.test(v) && v.length < 16);
  const isTime = (v) => typeof v === 'string' && /^\d{4}-\d\d-\d\dT\d\d:\d\d/.test(v);
  const numeric = cols.filter((c) => rows.every((r) => r[c] == null || isNum(r[c])) && rows.some((r) => r[c] != null));
  const timeCol = cols.find((c) => rows.every((r) => r[c] == null || isTime(r[c])) && rows.some((r) => r[c] != null));
  const heightCol = numeric.find((c) => /^(height|epoch|block|day|hour)$/i.test(c));
  const labelCol = cols.find((c) => !numeric.includes(c) && c !== timeCol);
  if (timeCol || (heightCol && numeric.length > 1)) {
    const xc = timeCol || heightCol;
    const ys = numeric.filter((c) => c !== xc).slice(0, 4);
    if (!ys.length || rows.length < 2) return null;
    const pts = rows.filter((r) => r[xc] != null)
      .map((r) => ({ x: timeCol ? Date.parse(r[xc]) / 1000 : Number(r[xc]), r }))
      .sort((a, b) => a.x - b.x);
    return lineChart({
      title, time: Boolean(timeCol), xLabel: xc,
      x: pts.map((p) => p.x),
      series: ys.map((c) => ({ label: c, values: pts.map((p) => (p.r[c] == null ? null : Number(p.r[c]))) })),
    });
  }
  if (labelCol && numeric.length && rows.length >= 2) {
    const vc = numeric[0];
    return barChart({ title, labels: rows.map((r) => String(r[labelCol] ?? '∅')), values: rows.map((r) => Number(r[vc] ?? 0)), valueLabel: vc });
  }
  return null;
}
