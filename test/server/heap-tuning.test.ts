/**
 * serve's heap growing factor (src/server/heap-tuning.ts): set at start so the Buffers Node's HTTP
 * parser makes for pushed bodies are freed by young collections, not by a full mark-compact every
 * ~100 ms (the effect is measured by bench/cluster.mjs, not here); an admin's own
 * `node --heap-growing-percent=N` wins.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO } from '../helpers/fixtures.js';
import { heapGrowingGiven } from '../../dist/server/heap-tuning.js';

const MODULE = join(REPO, 'dist', 'server', 'heap-tuning.js');

/** tuneHeapForServing() in a fresh node process with these node flags: did it set the factor? */
function tunedIn(nodeFlags: string[]): boolean {
  const code = `import(${JSON.stringify(MODULE)}).then((m) => console.log(JSON.stringify(m.tuneHeapForServing())))`;
  return JSON.parse(execFileSync(process.execPath, [...nodeFlags, '-e', code], { encoding: 'utf8' }).trim()) as boolean;
}

describe("serve's heap growing factor", () => {
  it('is set in a process started without one', () => {
    expect(tunedIn([])).toBe(true);
    expect(tunedIn(['--max-old-space-size=512', '--trace-gc'])).toBe(true);
  });

  it("leaves the admin's own factor alone, spelt with - or _", () => {
    expect(tunedIn(['--heap-growing-percent=50'])).toBe(false);
    expect(tunedIn(['--heap_growing_percent=50'])).toBe(false);
    expect(heapGrowingGiven(['--heap-growing-percent', '50'])).toBe(true);
    expect(heapGrowingGiven(['--trace-gc', '--max-old-space-size=100'])).toBe(false);
  });
});
