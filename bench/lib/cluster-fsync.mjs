/**
 * Which syncs node2's serve makes during a full push, and on which thread (bench/cluster.mjs, when
 * strace is installed): one more push on fresh stores with `strace -f -y -T -e trace=fsync,fdatasync`
 * attached to serve; the calls are counted per file (chunk files and chunk folders folded together)
 * and per thread kind: serve's main thread (its event loop: a sync there stalls every request) or the
 * others (libuv's pool, where the chunk writes run). Times are strace's own (it slows the calls).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { freshStores, useImage, warmImage } from './cluster-steps.mjs';

const fold = (path) =>
  path
    .replace(/\/chunks\/[0-9a-f]{4}\/[0-9a-f]{64}.*$/, '/chunks/<dir>/<chunk>')
    .replace(/\/chunks\/[0-9a-f]{4}$/, '/chunks/<dir>')
    .replace(/\.staging-[^/]+/, '.staging-*')
    .replace(/\.cvtmp-.*$/, '.cvtmp-*')
    .replace(/^.*\/(node\d+)\//, '$1/');

/** strace's lines (`PID call(FD</path>) = 0 <secs>`, `<unfinished ...>` / `resumed` pairs) as {pid, call, path, seconds} */
function parseTrace(text) {
  const open = new Map();
  const calls = [];
  for (const line of text.split('\n')) {
    const start = /^(\d+)\s+(fsync|fdatasync)\(\d+<([^>]*)>(.*)$/.exec(line);
    if (start) {
      const [, pid, call, path, tail] = start;
      const secs = /<([\d.]+)>\s*$/.exec(tail);
      if (secs) calls.push({ pid, call, path, seconds: Number(secs[1]) });
      else open.set(pid, { pid, call, path });
      continue;
    }
    const resumed = /^(\d+)\s+<\.\.\. (fsync|fdatasync) resumed>.*<([\d.]+)>\s*$/.exec(line);
    if (resumed && open.has(resumed[1])) {
      calls.push({ ...open.get(resumed[1]), seconds: Number(resumed[3]) });
      open.delete(resumed[1]);
    }
  }
  return calls;
}

export async function fsyncTrace(cluster, images, localStore, traceFile, log) {
  const [a, b] = cluster.nodes;
  await freshStores(cluster, localStore);
  useImage(a, images.full);
  warmImage(images.full, images.plan);
  const mainPid = String(b.serve.pid);
  const strace = spawn('strace', ['-f', '-y', '-T', '-o', traceFile, '-e', 'trace=fsync,fdatasync', '-p', mainPid], { stdio: 'ignore' });
  await new Promise((resolve) => setTimeout(resolve, 1000)); // attached to every thread
  const t0 = process.hrtime.bigint();
  a.run(['job', 'run', 'p']);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  strace.kill('SIGINT');
  await new Promise((resolve) => strace.once('exit', resolve));
  const rows = new Map();
  for (const c of parseTrace(readFileSync(traceFile, 'utf8'))) {
    const key = `${c.pid === mainPid ? 'main thread' : 'other threads'}|${c.call}|${fold(c.path)}`;
    const row = rows.get(key) ?? { calls: 0, seconds: 0 };
    row.calls++;
    row.seconds += c.seconds;
    rows.set(key, row);
  }
  log(`  push under strace: ${seconds.toFixed(2)} s`);
  return {
    pushSeconds: seconds,
    rows: [...rows]
      .map(([key, r]) => {
        const [thread, call, path] = key.split('|');
        return { thread, call, path, ...r };
      })
      .sort((x, y) => y.seconds - x.seconds),
  };
}
