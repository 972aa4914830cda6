/**
 * The README's first command stays working: the demo (scripts/demo.mjs, without its final `serve`)
 * backs up the demo guest, lists, verifies and restores it under a new ID with identical disks, and a
 * second run (the next night) stores only the changed region.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO } from './helpers/fixtures.js';

describe('npm run demo', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cv-demo-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const demo = (): ReturnType<typeof spawnSync> =>
    spawnSync(process.execPath, [join(REPO, 'scripts', 'demo.mjs'), '--no-serve'], { env: { ...process.env, COLDVAULT_DEMO_DIR: dir }, encoding: 'utf8', timeout: 120_000 });

  it('backs up, verifies and restores the demo guest; the second night stores one region', () => {
    const first = demo();
    expect(first.status, String(first.stderr)).toBe(0);
    expect(String(first.stdout)).toMatch(/vm-101-disk-0.raw -> 201\/vm-201-disk-0.raw: identical/);
    expect(String(first.stdout)).toMatch(/verify ok/);
    const second = demo();
    expect(second.status, String(second.stderr)).toBe(0);
    expect(String(second.stderr)).toMatch(/archive size: 4\.00 MiB new in the store \(1 chunks\)/);
    expect(String(second.stdout)).toMatch(/-> 202\/vm-202-disk-0.raw: identical/);
  });
});
