// Charts of the overview, drawn by uPlot (npm `uplot`: small, fast, no framework), served from the
// package as /vendor/uplot/ (scripts/copy-ui.mjs copies its dist files; no CDN). Each chart's
// container keeps its uPlot object as `container.uplot` and the number of points as data-points, so
// tests (and the browser's console) can read exactly what is drawn. Times on the x axis are in
// seconds, as uPlot takes them; a day `YYYY-MM-DD` is drawn at its local noon.
import uPlot from '../vendor/uplot/uPlot.esm.js';
import { formatBytes } from './dom.js';

const BLUE = '#2f6ea8';
const ORANGE = '#c26a00';
const GREEN = '#1d7a35';
const RED = '#b3261e';

/** A day `YYYY-MM-DD` -> seconds at its local noon. */
export function dayX(day) {
  const [y, m, d] = day.split('-').map(Number);
  return new Date(y, m - 1, d, 12).getTime() / 1000;
}

function widthOf(container) {
  return Math.max(280, Math.floor(container.clientWidth || container.parentElement?.clientWidth || 640));
}

function mount(container, opts, data) {
  container.replaceChildren();
  const chart = new uPlot({ width: widthOf(container), ...opts }, data, container);
  container.uplot = chart;
  container.dataset.points = String(data[0].length);
  return chart;
}

const bytesAxis = { size: 80, values: (_u, values) => values.map((v) => formatBytes(v)) };

/** A store's stored bytes, one point per day (`points`: [{day, bytes}]). */
export function usageChart(container, points, label) {
  const data = [points.map((p) => dayX(p.day)), points.map((p) => p.bytes)];
  return mount(
    container,
    {
      height: 190,
      scales: { x: { time: true } },
      series: [{}, { label, stroke: BLUE, width: 2, fill: 'rgba(47,110,168,0.12)', points: { show: points.length < 60 }, value: (_u, v) => formatBytes(v) }],
      axes: [{}, bytesAxis],
    },
    data,
  );
}

const inUnit = (ms, unitMs) => (ms === null || ms === undefined ? null : ms / unitMs);
const mibs = (bps) => (bps === null || bps === undefined ? null : bps / (1024 * 1024));

/**
 * A job's runs: duration and downtime (left axis, in `labels.unitMs`: seconds or minutes) and
 * throughput (MiB/s, right axis) per run; failed runs are marked by a red point on their duration.
 * `labels`: {unitMs, duration, downtime, throughput, failed, time, mibs}.
 */
export function runsChart(container, runs, labels) {
  const unit = (ms) => inUnit(ms, labels.unitMs);
  const data = [
    runs.map((r) => Date.parse(r.start) / 1000),
    runs.map((r) => unit(r.durationMs)),
    runs.map((r) => unit(r.downtimeMs)),
    runs.map((r) => mibs(r.bytesPerSecond)),
    runs.map((r) => (r.result === 'failed' ? (unit(r.durationMs) ?? 0) : null)),
  ];
  const dot = (color, size = 5) => ({ show: true, size, stroke: color, fill: color });
  return mount(
    container,
    {
      height: 200,
      scales: { x: { time: true }, min: { auto: true }, mibs: { auto: true } },
      series: [
        {},
        { label: labels.duration, scale: 'min', stroke: BLUE, width: 2, points: dot(BLUE), value: (_u, v) => fixed(v, 1) },
        { label: labels.downtime, scale: 'min', stroke: ORANGE, width: 2, points: dot(ORANGE), value: (_u, v) => fixed(v, 1) },
        { label: labels.throughput, scale: 'mibs', stroke: GREEN, width: 2, dash: [6, 4], points: dot(GREEN), value: (_u, v) => fixed(v, 1) },
        { label: labels.failed, scale: 'min', stroke: RED, width: 0, paths: () => null, points: dot(RED, 9) },
      ],
      axes: [{}, { scale: 'min', label: labels.time, size: 60 }, { scale: 'mibs', side: 1, label: labels.mibs, size: 60, grid: { show: false } }],
    },
    data,
  );
}

function fixed(v, digits) {
  return v === null || v === undefined ? '–' : v.toFixed(digits);
}

/** Makes a chart follow its container's width. Returns the function that stops it. */
export function followWidth(containers) {
  const resize = () => {
    for (const c of containers()) c.uplot?.setSize({ width: widthOf(c), height: c.uplot.height });
  };
  window.addEventListener('resize', resize);
  return () => window.removeEventListener('resize', resize);
}
