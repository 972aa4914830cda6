/** Renders the bench's results as bench/RESULTS.md. */
import { existsSync, readFileSync } from 'node:fs';

const MB = 1e6;
const MiB = 2 ** 20;

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return NaN;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

const sizeLabel = (bytes) => (bytes >= 2 ** 30 ? `${+(bytes / 2 ** 30).toFixed(2)} GiB` : `${+(bytes / MiB).toFixed(1)} MiB`);
const f = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
const mb = (bytes, d = 1) => f(bytes / MB, d);

function timeCell(runs) {
  const xs = runs.map((r) => r.seconds);
  if (xs.length === 1) return f(xs[0]);
  return `${f(median(xs))} [${f(Math.min(...xs))}–${f(Math.max(...xs))}]`;
}

const maxRss = (runs) => Math.max(...runs.map((r) => r.rssKiB)) * 1024;

/** Which coldvault step each row compares with. */
const COMPARE = {
  'restic full': 'coldvault full',
  'borg full': 'coldvault full',
  'zstd -1 -T2': 'coldvault full',
  'zstd -3 -T2': 'coldvault full',
  cp: 'coldvault full',
  'openssl dgst -sha256': 'coldvault full',
  'restic nightly': 'coldvault nightly',
  'borg nightly': 'coldvault nightly',
  'restic restore': 'coldvault restore',
  'borg restore': 'coldvault restore',
  'restic verify': 'coldvault verify',
  'borg verify': 'coldvault verify',
};

const LABEL = {
  'coldvault full': ['coldvault', 'backup (full)'],
  'coldvault nightly': ['coldvault', 'backup (nightly)'],
  'coldvault restore': ['coldvault', 'restore'],
  'coldvault verify': ['coldvault', 'verify (whole store)'],
  'restic full': ['restic', 'backup'],
  'restic nightly': ['restic', 'backup (nightly)'],
  'restic restore': ['restic', 'restore'],
  'restic verify': ['restic', 'check --read-data'],
  'borg full': ['borg', 'create'],
  'borg nightly': ['borg', 'create (nightly)'],
  'borg restore': ['borg', 'extract --sparse'],
  'borg verify': ['borg', 'check --verify-data'],
  'zstd -1 -T2': ['zstd -1 -T2', 'compress image to a file'],
  'zstd -3 -T2': ['zstd -3 -T2', 'compress image to a file'],
  cp: ['cp', 'copy image'],
  'openssl dgst -sha256': ['openssl dgst -sha256', 'hash image'],
};

export function renderResults(r) {
  const steps = r.steps;
  const med = (key) => (steps[key] ? median(steps[key].map((x) => x.seconds)) : NaN);
  const imageBytes = r.images.size;
  const out = [];
  const p = (s = '') => out.push(s);
  const total = r.totalSeconds;

  p('# coldvault bench results');
  p();
  p(
    `\`${r.command}\`${r.smoke ? ' (**smoke run**: small image, figures not meaningful)' : ''}, started ${r.startedAt}, ` +
      `${r.rounds} round(s), total runtime **${Math.floor(total / 60)} min ${Math.round(total % 60)} s**.`,
  );
  p(
    `Times are wall-clock seconds of the whole command, median over the rounds with [min–max]; MB = 10^6 bytes, ` +
      `MB/s = the image's ${mb(imageBytes, 0)} MB divided by the median time unless said otherwise; ` +
      `peak RSS = GNU time's maximum resident set in MiB (2^20), the largest over the rounds.`,
  );
  p();

  // ---- targets
  const targets = [];
  const t = (name, measured, ok, detail) => targets.push({ name, measured, ok, detail });
  const ratio = (peer, cv) => med(peer) / med(cv);
  const tm = (key) =>
    steps[key]
      ? `${f(med(key))} s${steps[key].length > 1 ? ` [${f(Math.min(...steps[key].map((x) => x.seconds)))}–${f(Math.max(...steps[key].map((x) => x.seconds)))}]` : ''}`
      : 'n/a';
  const x = ratio('restic full', 'coldvault full');
  t('full backup >= 3x restic backup', `${f(x)}x`, x >= 3, `coldvault ${tm('coldvault full')}, restic ${tm('restic full')}`);
  const z = ratio('zstd -3 -T2', 'coldvault full');
  t('full backup >= 1.3x `zstd -3 -T2`', `${f(z)}x`, z >= 1.3, `zstd -3 -T2 ${tm('zstd -3 -T2')}`);
  const n = ratio('borg nightly', 'coldvault nightly');
  t('nightly backup >= 2x borg (fixed 4 MiB) nightly', `${f(n)}x`, n >= 2, `coldvault ${tm('coldvault nightly')}, borg ${tm('borg nightly')}`);
  const rs = ratio('restic restore', 'coldvault restore');
  t('restore >= 2x restic restore', `${f(rs)}x`, rs >= 2, `coldvault ${tm('coldvault restore')}, restic ${tm('restic restore')}`);
  const v = med('coldvault verify') / med('restic verify');
  t(
    'verify <= 0.5x the time of `restic check --read-data`',
    `${f(v)}x the time`,
    v <= 0.5,
    `coldvault ${tm('coldvault verify')}, restic ${tm('restic verify')}`,
  );
  const cvKeys = ['coldvault full', 'coldvault nightly', 'coldvault restore', 'coldvault verify'].filter((k) => steps[k]);
  const rss2 = cvKeys.length ? Math.max(...cvKeys.map((k) => maxRss(steps[k]))) : NaN;
  t(
    `peak RSS <= 200 MiB, ${sizeLabel(imageBytes)} image (backup, nightly, restore, verify)`,
    `${f(rss2 / MiB, 0)} MiB`,
    rss2 <= 200 * MiB,
    'largest of the four coldvault commands',
  );
  if (r.sparse) {
    const rssS = maxRss(r.sparse.runs);
    t('peak RSS <= 200 MiB, 32 GiB sparse image (backup)', `${f(rssS / MiB, 0)} MiB`, rssS <= 200 * MiB, '');
    const s = median(r.sparse.runs.map((x) => x.seconds));
    t('32 GiB sparse image (100 MiB of data) backed up in <= 3 s', `${f(s)} s`, s <= 3, '');
  } else {
    t('32 GiB sparse image: RSS <= 200 MiB, backup <= 3 s', 'not run', null, '');
  }
  for (const u of r.usb) {
    const lim = u.bps / MB;
    const full = u.steps.full;
    const rest = u.steps.restore;
    const night = u.steps.nightly;
    t(
      `${u.name.toUpperCase()} (${lim} MB/s): full backup >= 95% of the device's rate`,
      `${f(full.payloadRate / MB, 1)} MB/s = ${f((100 * full.payloadRate) / u.bps, 0)}%`,
      full.payloadRate >= 0.95 * u.bps,
      'store bytes written / time',
    );
    t(
      `${u.name.toUpperCase()} (${lim} MB/s): restore >= 95% of the device's rate`,
      `${f(rest.payloadRate / MB, 1)} MB/s = ${f((100 * rest.payloadRate) / u.bps, 0)}%`,
      rest.payloadRate >= 0.95 * u.bps,
      'chunk bytes read / time, cold cache',
    );
    t(
      `${u.name.toUpperCase()} (${lim} MB/s): nightly backup >= 10x the device's rate`,
      `${f(night.imageRate / MB, 0)} MB/s = ${f(night.imageRate / u.bps, 1)}x`,
      night.imageRate >= 10 * u.bps,
      'image bytes / time',
    );
  }
  if (r.usb.length === 0) t('emulated USB: full/restore >= 95%, nightly >= 10x the device rate', 'not run', null, '');

  p('## Targets');
  p();
  p('| target | measured | met? | detail |');
  p('|---|---|---|---|');
  for (const x of targets) {
    const verdict = x.ok === null ? '—' : x.measured.includes('n/a') ? 'n/a' : x.ok ? '**met**' : '**missed**';
    p(`| ${x.name} | ${x.measured} | ${verdict} | ${x.detail} |`);
  }
  p();
  p(
    'Ratios are "coldvault is N x as fast": the peer\'s median time / coldvault\'s median time, from this run; [min–max] over the rounds. ' +
      "Mind the machine's other load (see *Machine and versions*): on a shared machine single rounds can be several times slower.",
  );
  p();

  // ---- the hand-written analysis (where the time goes, why a target is missed), kept in bench/ANALYSIS.md
  const analysis = new URL('../ANALYSIS.md', import.meta.url);
  if (existsSync(analysis)) {
    p(readFileSync(analysis, 'utf8').trim());
    p();
  }

  // ---- main table
  const img = r.images;
  p(`## ${sizeLabel(imageBytes)} image, page cache warm`);
  p();
  p(
    `${img.regions} regions of 4 MiB, shuffled: ${img.counts.zero} all-zero (${img.counts.zero - img.counts.holes} written as zeros, ${img.counts.holes} left as holes), ` +
      `${img.counts.random} random, ${img.counts.text} log-like text; ${mb(img.allocated, 0)} MB allocated. ` +
      `The nightly copy has ${img.changed} of the non-zero regions rewritten with new content of the same kind ` +
      `(same path, so every tool sees "the next night").`,
  );
  p();
  p('| tool | step | time s, median [min–max] | MB/s | coldvault x as fast | CPU s, user+sys (sys) | peak RSS MiB |');
  p('|---|---|---|---|---|---|---|');
  const order = [
    'coldvault full',
    'coldvault nightly',
    'coldvault restore',
    'coldvault verify',
    'restic full',
    'restic nightly',
    'restic restore',
    'restic verify',
    'borg full',
    'borg nightly',
    'borg restore',
    'borg verify',
    'zstd -1 -T2',
    'zstd -3 -T2',
    'cp',
    'openssl dgst -sha256',
  ];
  for (const key of order) {
    const runs = steps[key];
    if (!runs) continue;
    const [tool, step] = LABEL[key];
    const m = median(runs.map((x) => x.seconds));
    const rate = key.endsWith('verify') ? `${mb(median(runs.map((x) => x.storeBytes)) / m, 0)} (of the store)` : mb(imageBytes / m, 0);
    const cmp = COMPARE[key] && steps[COMPARE[key]] ? `${f(m / med(COMPARE[key]))}x` : '—';
    p(
      `| ${tool} | ${step} | ${timeCell(runs)} | ${rate} | ${cmp} | ${f(median(runs.map((x) => x.cpuSeconds)), 1)} (${f(median(runs.map((x) => x.sysSeconds)), 1)}) | ${f(maxRss(runs) / MiB, 0)} |`,
    );
  }
  p();
  p(
    'Restores are of the nightly version into an empty folder. coldvault fsyncs the restored image before it reports success; ' +
      'restic 0.14 and borg 1.2 do not fsync restored files (checked with strace), and restic 0.14 writes the zeros (its `--sparse` came in 0.15). ' +
      'The backups of all three fsync their stores. `zstd`, `cp` (which makes holes of zero runs) and `openssl` write to the page cache only. ' +
      "restic's times include opening its encrypted repository (about 0.7 s per command here, the scrypt key derivation).",
  );
  p();

  // ---- store sizes
  p('## Store sizes');
  p();
  p('| tool | after full backup, MB | after nightly backup, MB | added by the nightly, MB | store / non-zero data of the image |');
  p('|---|---|---|---|---|');
  const nonZero = (img.counts.random + img.counts.text) * 4 * MiB;
  for (const [tool, runs] of Object.entries(r.stores)) {
    const a = median(runs.map((x) => x.afterFull));
    const b = median(runs.map((x) => x.afterNightly));
    p(`| ${tool} | ${mb(a)} | ${mb(b)} | ${mb(b - a)} | ${f(a / nonZero)} |`);
  }
  for (const key of ['zstd -1 -T2', 'zstd -3 -T2']) {
    if (!steps[key]) continue;
    const o = median(steps[key].map((x) => x.outBytes));
    p(`| ${key} (one file) | ${mb(o)} | — | — | ${f(o / nonZero)} |`);
  }
  p();
  p(
    `du -sb of the repository (apparent bytes, all files); the image has ${mb(nonZero, 0)} MB of non-zero data. ` +
      'restic: repository format 2, compression auto (zstd), encrypted (it cannot be turned off); borg: `--encryption none`.',
  );
  p();

  // ---- sparse
  if (r.sparse) {
    p('## 32 GiB sparse image');
    p();
    p(
      `${f(r.sparse.size / 2 ** 30, 0)} GiB, ${mb(r.sparse.dataBytes, 0)} MB of data in 25 regions of 4 MiB (text and random) at seeded places, the rest holes. Fresh store each round.`,
    );
    p();
    p('| tool | step | time s, median [min–max] | MB/s of the image | CPU s | peak RSS MiB | store MB |');
    p('|---|---|---|---|---|---|---|');
    const s = median(r.sparse.runs.map((x) => x.seconds));
    p(
      `| coldvault | backup (full) | ${timeCell(r.sparse.runs)} | ${mb(r.sparse.size / s, 0)} | ${f(median(r.sparse.runs.map((x) => x.cpuSeconds)), 1)} | ${f(maxRss(r.sparse.runs) / MiB, 0)} | ${mb(median(r.sparse.runs.map((x) => x.storeBytes)))} |`,
    );
    p();
  }

  // ---- USB
  if (r.usb.length) {
    p('## Emulated USB disks (one round each)');
    p();
    p(
      'A sparse file on a loop device (`--direct-io=on`), ext4, throttled in the block layer by a cgroup v1 blkio group ' +
        '(`blkio.throttle.read_bps_device` and `write_bps_device` on the loop device); the coldvault process runs in that cgroup. ' +
        'The source image is on the local disk, warm in the page cache; the restore writes to the local disk and reads the store ' +
        'from the device after `echo 3 > /proc/sys/vm/drop_caches`. "Data" is the store bytes written (backup: growth of the store, du -sb) ' +
        'or the chunk bytes read (restore: the whole chunks/ folder after the full backup); "device" is what the cgroup read and ' +
        'wrote on the loop device (blkio.throttle.io_service_bytes).',
    );
    p();
    p('| device | step | time s | CPU s | data MB | data MB/s | % of the limit | device read / written MB | image MB/s | x the limit |');
    p('|---|---|---|---|---|---|---|---|---|---|');
    for (const u of r.usb) {
      for (const [step, s] of Object.entries(u.steps)) {
        p(
          `| ${u.name.toUpperCase()} ${u.bps / MB} MB/s | ${step} | ${f(s.seconds)} | ${f(s.cpuSeconds, 1)} | ${mb(s.payload)} | ${mb(s.payloadRate)} | ${f((100 * s.payloadRate) / u.bps, 0)}% | ` +
            `${mb(s.deviceRead)} / ${mb(s.deviceWrite)} | ${mb(s.imageRate, 0)} | ${f(s.imageRate / u.bps, 1)} |`,
        );
      }
    }
    p();
  }

  // ---- restores
  p('## Restores checked');
  p();
  p(
    `Every restored image is hashed (SHA-256) and compared with its source; the bench stops with an error on any difference. ` +
      `Source images: full \`${img.sha256Full}\`, nightly \`${img.sha256Nightly}\`.`,
  );
  p();
  p('| tool | round | what | SHA-256 of the restored image | result |');
  p('|---|---|---|---|---|');
  for (const x of r.restores) p(`| ${x.tool} | ${x.round} | ${x.label} | \`${x.sha256.slice(0, 16)}…\` | ${x.identical ? 'identical' : '**DIFFERENT**'} |`);
  p();

  // ---- machine
  p('## Machine and versions');
  p();
  for (const [k, v] of Object.entries(r.machine)) p(`- ${k}: ${v}`);
  for (const [k, v] of Object.entries(r.versions)) p(`- ${k}: ${v}`);
  p(
    `- coldvault hole detection (SEEK_DATA addon): ${r.holeDetection ? 'built' : 'not built'}; coldvault runs with its defaults (zstd level 1, one worker per core)`,
  );
  for (const note of r.notes) p(`- note: ${note}`);
  p();
  return out.join('\n');
}
