/**
 * A 1-round smoke of the bench (bench/run.mjs --smoke: a 64 MiB image, no 32 GiB image, no USB):
 * every tool runs, every restore is checked against its source, RESULTS.md is written. The figures
 * are not looked at (a 64 MiB image on a busy CI machine says nothing about speed).
 * Needs restic and borgbackup (the bench installs them from Debian when run as root).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const REPO = resolve(new URL('..', import.meta.url).pathname);

interface Restore {
  tool: string;
  round: number;
  label: string;
  sha256: string;
  expected: string;
  identical: boolean;
}
interface Results {
  steps: Record<string, unknown[]>;
  restores: Restore[];
}

describe('bench smoke', () => {
  const dir = mkdtempSync(join(tmpdir(), 'coldvault-bench-smoke-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('runs every tool once on a small image and checks every restore', () => {
    const out = join(dir, 'RESULTS.md');
    const json = join(dir, 'results.json');
    // --no-build: `npm test` has built dist/ already, and other test files use it meanwhile
    const r = spawnSync(process.execPath, [join(REPO, 'bench', 'run.mjs'), '--smoke', '--no-build', '--dir', join(dir, 'work'), '--out', out, '--json', json], {
      cwd: REPO,
      encoding: 'utf8',
      timeout: 540_000,
    });
    expect(r.status, `bench failed:\n${r.stderr}`).toBe(0);

    const md = readFileSync(out, 'utf8');
    const rows = [
      '| coldvault | backup (full) |',
      '| coldvault | backup (nightly) |',
      '| coldvault | restore |',
      '| coldvault | verify (whole store) |',
      '| restic | backup |',
      '| restic | backup (nightly) |',
      '| restic | restore |',
      '| restic | check --read-data |',
      '| borg | create |',
      '| borg | create (nightly) |',
      '| borg | extract --sparse |',
      '| borg | check --verify-data |',
      '| zstd -1 -T2 |',
      '| zstd -3 -T2 |',
      '| cp |',
      '| openssl dgst -sha256 |',
    ];
    for (const row of rows) expect(md, `RESULTS.md has no row '${row}'`).toContain(row);
    expect(md).toContain('## Targets');
    expect(md).not.toContain('DIFFERENT');

    const results = JSON.parse(readFileSync(json, 'utf8')) as Results;
    const coldvault = results.restores.filter((x) => x.tool === 'coldvault');
    expect(coldvault.length).toBeGreaterThanOrEqual(1);
    for (const x of results.restores) {
      expect(x.identical, `${x.tool} round ${x.round} (${x.label})`).toBe(true);
      expect(x.sha256).toBe(x.expected);
    }
    expect(new Set(results.restores.map((x) => x.tool))).toEqual(new Set(['coldvault', 'restic', 'borg']));
    for (const line of md.split('\n').filter((l) => l.startsWith('| coldvault | 1 |'))) expect(line).toMatch(/\| identical \|$/);
  }, 600_000);
});
