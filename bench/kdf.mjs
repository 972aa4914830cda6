#!/usr/bin/env node
/**
 * Which KDF protects a key file's passphrase (issue 13): scrypt from node:crypto (native) against
 * argon2id from @noble/hashes (pure JavaScript), at the same memory, on this machine, in one run.
 * The question is what an attacker must spend per guess for the time an admin waits per unlock:
 * memory x passes per second of the admin's wait. `node bench/kdf.mjs [--rounds N] [--out FILE]`
 * writes the block "kdf" of bench/RESULTS.md.
 */
import { randomBytes, scrypt } from 'node:crypto';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { argon2idAsync } from '@noble/hashes/argon2.js';
import { machineInfo, loadAverage } from './lib/machine.mjs';
import { median } from './lib/report.mjs';
import { replaceBlock } from './lib/sections.mjs';

const { values: opt } = parseArgs({ options: { rounds: { type: 'string', default: '5' }, out: { type: 'string', default: 'bench/RESULTS.md' } } });
const rounds = Number(opt.rounds);
const salt = randomBytes(16);
const pw = 'correct horse battery staple';

const scryptOnce = (N, r) => new Promise((res, rej) => scrypt(pw, salt, 32, { N, r, p: 1, maxmem: 2 ** 31 }, (e) => (e ? rej(e) : res())));
const argonOnce = (m, t) => argon2idAsync(pw, salt, { m, t, p: 1, dkLen: 32 });

const cases = [
  { kdf: 'scrypt', params: 'N=2^17, r=8, p=1 (the default)', mib: 128, passes: 1, run: () => scryptOnce(2 ** 17, 8) },
  { kdf: 'argon2id', params: 'm=128 MiB, t=1, p=1', mib: 128, passes: 1, run: () => argonOnce(128 * 1024, 1) },
  { kdf: 'argon2id', params: 'm=64 MiB, t=3, p=1 (--kdf argon2id)', mib: 64, passes: 3, run: () => argonOnce(64 * 1024, 3) },
];

const started = new Date().toISOString();
const load = loadAverage();
// interleaved: every round runs each case once (the machine is shared: its other load hits all cases alike)
const times = cases.map(() => []);
for (let i = 0; i < rounds; i++) {
  for (const [k, c] of cases.entries()) {
    const t0 = performance.now();
    await c.run();
    times[k].push((performance.now() - t0) / 1000);
  }
}
const rows = cases.map((c, k) => {
  const s = median(times[k]);
  console.log(`${c.kdf} ${c.params}: ${s.toFixed(3)} s`);
  return { ...c, seconds: s, min: Math.min(...times[k]), max: Math.max(...times[k]), mibPerSecond: (c.mib * c.passes) / s };
});

const base = rows[0].mibPerSecond;
const text = [
  "## Issue 13: the key file's KDF",
  '',
  `\`node bench/kdf.mjs --rounds ${rounds}\`, started ${started}, load average before ${load}; one derivation at a time on the main thread (as \`coldvault key\` does), ${rounds} rounds of each case in turn (interleaved), median [min-max].`,
  '',
  '| KDF | parameters | memory | time s | MiB x passes per second of wait | vs scrypt |',
  '|---|---|---|---|---|---|',
  ...rows.map(
    (r) =>
      `| ${r.kdf} | ${r.params} | ${r.mib} MiB | ${r.seconds.toFixed(3)} [${r.min.toFixed(3)}-${r.max.toFixed(3)}] | ${r.mibPerSecond.toFixed(0)} | ${(r.mibPerSecond / base).toFixed(2)} |`,
  ),
  '',
  "Memory-hard work per second of the admin's wait is what a guess costs an attacker (who runs the best",
  'native code): the native scrypt gives the most of it here, so it is the default; argon2id in JavaScript',
  "spends the admin's time on the interpreter, not on memory. Machine: " +
    `${machineInfo(resolve('.')).cpu ?? 'see the other blocks'}, node ${process.version}.`,
].join('\n');
replaceBlock(resolve(opt.out), 'kdf', text);
console.log(text);
