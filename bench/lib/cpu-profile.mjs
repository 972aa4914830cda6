/**
 * Where a Node process spends its CPU, from the .cpuprofile that `--cpu-prof` writes at exit (V8's
 * sampling profiler; native work such as hashing, zstd or TLS counts as self time of the JS function
 * that called into it). summarizeProfile() gives the total sampled time, the functions with the most
 * self time and the self time per area: the coldvault module (dist/<folder>/<file>), Node's
 * internal module (node:internal/...), or V8's own buckets ((garbage collector), (program); (idle) is
 * counted apart). Each thread's time is its own: a sum over threads can exceed the wall time.
 */
import { readFileSync } from 'node:fs';

function area(frame) {
  const url = frame.url ?? '';
  if (!url) return frame.functionName || '(native)';
  const dist = /\/dist\/(.+)$/.exec(url);
  if (dist) return `coldvault ${dist[1]}`;
  if (url.startsWith('node:')) return url.replace(/^node:(internal\/)?/, 'node ');
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return `npm ${nm[1]}`;
  return url.split('/').slice(-2).join('/');
}

const label = (frame) => `${frame.functionName || '(anonymous)'} (${area(frame)}:${frame.lineNumber + 1})`;

const add = (map, key, ms) => map.set(key, (map.get(key) ?? 0) + ms);

/**
 * The profiles of one process (its main thread and each worker thread write one file), summed.
 * @returns {{threads: number, totalMs: number, idleMs: number, top: Array<{name: string, ms: number}>, areas: Array<{name: string, ms: number}>}}
 */
export function summarizeProfiles(files, topN = 12) {
  const fn = new Map();
  const areas = new Map();
  let totalMs = 0;
  let idleMs = 0;
  for (const file of files) {
    const prof = JSON.parse(readFileSync(file, 'utf8'));
    const byId = new Map(prof.nodes.map((n) => [n.id, n]));
    prof.samples.forEach((id, i) => {
      const frame = byId.get(id).callFrame;
      const ms = (prof.timeDeltas[i] ?? 0) / 1000;
      if (frame.functionName === '(idle)') {
        idleMs += ms;
        return;
      }
      totalMs += ms;
      add(fn, label(frame), ms);
      add(areas, area(frame), ms);
    });
  }
  const sorted = (m) => [...m].map(([name, ms]) => ({ name, ms })).sort((a, b) => b.ms - a.ms);
  return { threads: files.length, totalMs, idleMs, top: sorted(fn).slice(0, topN), areas: sorted(areas).slice(0, topN) };
}
