// The overview (the landing page; GET /api/v1/overview): every guest's backup state with its flags
// (not backed up, failed, overdue, ... highlighted), every datastore's space, dedup factor, usage per
// day (a uPlot chart) and "full on" date, each job's run history (duration, downtime, throughput per
// run; 30 or 90 days) and the rotation of external disks (which disk each job used on which day).
import { get } from '../api.js';
import { followWidth, runsChart, usageChart } from '../charts.js';
import { formatBytes, formatTime, h } from '../dom.js';
import { t } from '../i18n.js';
import { statusBadge } from './common.js';

const FLAG_KEYS = {
  'not-backed-up': 'overview.flag.notBackedUp',
  failed: 'overview.flag.failed',
  overdue: 'overview.flag.overdue',
  'verify-failed': 'overview.flag.verifyFailed',
  'boot-test-failed': 'overview.flag.bootTestFailed',
};
const VERIFIED_KEYS = {
  ok: 'overview.verified.ok',
  failed: 'overview.verified.failed',
  incomplete: 'overview.verified.incomplete',
  never: 'overview.verified.never',
};
const RANGES = [30, 90];
const DAY_MS = 86_400_000;

/** `YYYY-MM-DD HH:MM`, local time (the full time with seconds is the cell's title). */
function shortTime(iso) {
  return formatTime(iso).slice(0, 16);
}

/** `0.4 s`, `12 s`, `3 min 05 s`, `1 h 02 min`; `–` when not known. */
export function formatDuration(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '–';
  if (ms < 9950) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  const pad = (n) => String(n).padStart(2, '0');
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${pad(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${pad(Math.floor((s % 3600) / 60))} min`;
}

export async function overviewView(ctx) {
  const data = await get(`/overview?days=${Math.max(...RANGES)}`);
  if (ctx.stale()) return;
  const view = { days: RANGES[0], charts: [] };
  const history = h('div', { class: 'history' });
  const rotation = h('div', { class: 'rotation' });
  const renderRanged = () => {
    history.replaceChildren(...historyCharts(data, view));
    rotation.replaceChildren(rotationTable(data, view.days));
  };
  ctx.main.append(
    h(
      'div',
      { class: 'toolbar' },
      h('h1', { t: 'overview.title' }),
      h('button', { type: 'button', t: 'common.refresh', on: { click: () => ctx.navigate('#/overview') } }),
    ),
    h('section', { class: 'card', 'aria-labelledby': 'ov-guests' }, h('h2', { id: 'ov-guests', t: 'overview.guests' }), guestTable(data, ctx.status.node)),
    h('section', { class: 'card', 'aria-labelledby': 'ov-stores' }, h('h2', { id: 'ov-stores', t: 'overview.datastores' }), ...data.datastores.map(storeCard)),
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'ov-history' },
      h('div', { class: 'toolbar' }, h('h2', { id: 'ov-history', t: 'overview.history' }), rangeSwitch(view, renderRanged)),
      history,
      h('h2', { id: 'ov-rotation', t: 'overview.rotation' }),
      rotation,
    ),
  );
  renderRanged();
  drawStoreCharts(ctx.main, data);
  // charts are drawn with the words of the language they were made in: a switch draws them again
  const redraw = () => {
    drawStoreCharts(ctx.main, data);
    history.replaceChildren(...historyCharts(data, view));
  };
  document.addEventListener('coldvault:lang', redraw);
  const stopFollowing = followWidth(() => ctx.main.querySelectorAll('[data-chart]'));
  ctx.setCleanup(() => {
    document.removeEventListener('coldvault:lang', redraw);
    stopFollowing();
    for (const c of ctx.main.querySelectorAll('[data-chart]')) c.uplot?.destroy();
  });
}

// ---- guests -------------------------------------------------------------------------------------

function guestTable(data, node) {
  if (data.guests.length === 0) return h('p', { class: 'empty', t: 'overview.guestsEmpty' });
  const col = (key, cls) => h('th', { scope: 'col', class: cls, t: key });
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { class: 'grid overview-guests' },
      h('caption', { class: 'sr-only', t: ['overview.caption', { node }] }),
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          col('col.vmid'),
          col('col.name'),
          col('overview.col.flags'),
          col('overview.col.lastBackup'),
          col('overview.col.duration', 'num'),
          col('overview.col.downtime', 'num'),
          col('overview.col.size', 'num'),
          col('overview.col.versions', 'num'),
          col('overview.col.verified'),
          col('overview.col.daysSinceGood', 'num'),
          col('overview.col.nextRun'),
        ),
      ),
      h('tbody', {}, data.guests.map(guestRow)),
    ),
  );
}

function guestRow(g) {
  const last = g.lastBackup;
  const result = last ? last.result : 'none';
  return h(
    'tr',
    {
      'data-vmid': g.id,
      'data-result': result,
      'data-flags': g.flags.join(' '),
      class: g.flags.length > 0 ? `flagged ${g.flags.map((f) => `flag-${f}`).join(' ')}` : undefined,
    },
    h('th', { scope: 'row' }, g.id),
    h('td', { class: 'name' }, g.name || '–'),
    h(
      'td',
      { class: 'flags' },
      g.flags.map((f) => h('span', { class: `flag flag-${f}`, 'data-flag': f, t: FLAG_KEYS[f] })),
    ),
    h(
      'td',
      { class: 'last', title: last?.error ?? (last ? formatTime(last.time) : undefined) },
      last ? [statusBadge(last.result), ' ', h('span', { class: 'time' }, shortTime(last.time))] : h('span', { class: 'muted', t: 'overview.result.none' }),
    ),
    h('td', { class: 'num' }, formatDuration(last?.durationMs)),
    h('td', { class: 'num' }, formatDuration(last?.downtimeMs)),
    h('td', { class: 'num size' }, last ? [`${formatBytes(last.newBytes)} /`, h('br'), formatBytes(last.logicalBytes)] : '–'),
    h('td', { class: 'num' }, String(g.versions)),
    h('td', { class: `verified verified-${g.verified}`, t: VERIFIED_KEYS[g.verified] }),
    h('td', { class: 'num since' }, g.daysSinceGood === null ? '–' : String(g.daysSinceGood)),
    h(
      'td',
      { class: 'next' },
      g.nextRun ? [h('span', { class: 'time' }, shortTime(g.nextRun.time)), h('br'), h('span', { class: 'job' }, g.nextRun.job)] : '–',
    ),
  );
}

// ---- datastores ---------------------------------------------------------------------------------

function storeCard(s) {
  const percent = s.totalBytes ? Math.round(((s.usedBytes ?? 0) / s.totalBytes) * 100) : null;
  const facts = s.detached
    ? [h('p', { class: 'note detached', title: s.error, t: 'overview.storeDetached' })]
    : s.error
      ? [h('p', { class: 'form-error', t: ['overview.storeError', { name: s.name, error: s.error }] })]
      : [
          s.totalBytes
            ? h(
                'p',
                { class: 'space' },
                h('meter', { min: '0', max: String(s.totalBytes), value: String(s.usedBytes ?? 0), high: String(s.totalBytes * 0.85) }),
                ' ',
                h('span', { t: ['overview.used', { used: formatBytes(s.usedBytes), total: formatBytes(s.totalBytes), percent }] }),
                ', ',
                h('span', { t: ['overview.free', { free: formatBytes(s.freeBytes) }] }),
              )
            : null,
          h(
            'p',
            {},
            h('span', { t: ['overview.stored', { stored: formatBytes(s.storedBytes), logical: formatBytes(s.logicalBytes), versions: s.versions }] }),
            ', ',
            h('span', { class: 'dedup', t: ['overview.dedup', { factor: s.dedupFactor === null ? '–' : `${s.dedupFactor.toFixed(1)}×` }] }),
          ),
          h(
            'p',
            { class: 'full-on', 'data-full-on': s.fullOn ?? '', tAttr: { title: 'overview.fullOnMethod' } },
            s.fullOn ? h('strong', { t: ['overview.fullOn', { day: s.fullOn }] }) : h('span', { class: 'muted', t: 'overview.fullOnNone' }),
            s.trendBytesPerDay !== null ? h('span', { class: 'muted', t: ['overview.trend', { rate: formatBytes(s.trendBytesPerDay) }] }) : null,
          ),
          s.usage.length > 0
            ? h('div', {
                class: 'chart',
                'data-chart': 'usage',
                'data-store': s.name,
                role: 'img',
                tAttr: { 'aria-label': ['overview.usageChart', { name: s.name }] },
              })
            : null,
        ];
  return h('article', { class: 'store', 'data-store': s.name }, h('h3', { title: s.dir }, s.name), ...facts);
}

function drawStoreCharts(root, data) {
  for (const s of data.datastores) {
    const el = root.querySelector(`[data-chart="usage"][data-store="${CSS.escape(s.name)}"]`);
    if (!el) continue;
    el.uplot?.destroy();
    usageChart(el, s.usage, t('overview.series.stored'));
  }
}

// ---- run history --------------------------------------------------------------------------------

function rangeSwitch(view, render) {
  const buttons = RANGES.map((days) =>
    h('button', {
      type: 'button',
      class: 'small',
      'data-days': String(days),
      'aria-pressed': String(days === view.days),
      t: `overview.days${days}`,
      on: {
        click: () => {
          view.days = days;
          for (const b of buttons) b.setAttribute('aria-pressed', String(Number(b.dataset.days) === days));
          render();
        },
      },
    }),
  );
  return h('div', { class: 'range-switch', role: 'group', tAttr: { 'aria-label': 'overview.range' } }, buttons);
}

const inRange = (data, days) => {
  const since = Date.parse(data.generatedAt) - days * DAY_MS;
  return (iso) => Date.parse(iso) >= since;
};

function historyCharts(data, view) {
  for (const c of view.charts) c.destroy();
  view.charts = [];
  const recent = inRange(data, view.days);
  const jobs = data.history.jobs.map((j) => ({ id: j.id, runs: j.runs.filter((r) => recent(r.start)) })).filter((j) => j.runs.length > 0);
  if (jobs.length === 0) return [h('p', { class: 'empty', t: 'overview.historyEmpty' })];
  return jobs.map((job) => {
    // seconds for runs that take less than two minutes (and guests off less than that), else minutes
    const longest = Math.max(0, ...job.runs.flatMap((r) => [r.durationMs ?? 0, r.downtimeMs ?? 0]));
    const unit = longest < 120_000 ? 's' : 'min';
    const labels = {
      unitMs: unit === 's' ? 1000 : 60_000,
      duration: t(unit === 's' ? 'overview.series.durationS' : 'overview.series.duration'),
      downtime: t(unit === 's' ? 'overview.series.downtimeS' : 'overview.series.downtime'),
      throughput: t('overview.series.throughput'),
      failed: t('overview.series.failed'),
      time: t(unit === 's' ? 'overview.axis.seconds' : 'overview.axis.minutes'),
      mibs: 'MiB/s',
    };
    const failed = job.runs.filter((r) => r.result === 'failed').length;
    const el = h('div', {
      class: 'chart',
      'data-chart': 'runs',
      'data-job': job.id,
      role: 'img',
      tAttr: { 'aria-label': ['overview.runsChart', { job: job.id }] },
    });
    const box = h(
      'article',
      { class: 'job-runs', 'data-job': job.id },
      h('h3', { t: ['overview.runsOf', { job: job.id, runs: job.runs.length, failed }] }),
      el,
    );
    // drawn once the box is in the page (uPlot measures nothing, but the width comes from the container)
    queueMicrotask(() => view.charts.push(runsChart(el, job.runs, labels)));
    return box;
  });
}

// ---- rotation -----------------------------------------------------------------------------------

function rotationTable(data, days) {
  const recent = inRange(data, days);
  const entries = data.rotation.filter((e) => recent(e.time)).reverse();
  if (entries.length === 0) return h('p', { class: 'empty', t: 'overview.rotationEmpty' });
  const disks = [...new Set(data.rotation.map((e) => e.device))];
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { class: 'grid rotation' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', { scope: 'col', t: 'overview.col.day' }),
          h('th', { scope: 'col', t: 'overview.col.job' }),
          h('th', { scope: 'col', t: 'overview.col.disk' }),
          h('th', { scope: 'col', t: 'overview.col.node' }),
        ),
      ),
      h(
        'tbody',
        {},
        entries.map((e) =>
          h(
            'tr',
            { 'data-day': e.day, 'data-job': e.job, 'data-device': e.device },
            h('th', { scope: 'row', class: 'time' }, e.day),
            h('td', {}, e.job),
            h('td', {}, h('span', { class: `disk disk-${disks.indexOf(e.device) % 6}`, title: e.uuid ? `UUID ${e.uuid}` : e.spec }, e.device)),
            h('td', {}, e.node ?? '–'),
          ),
        ),
      ),
    ),
  );
}
