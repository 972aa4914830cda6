/**
 * `npm run lint` catches the bugs it is there for: a promise nobody awaits (typescript-eslint's
 * type-checked rules, the project's own eslint.config.js), code that is not formatted (Biome), an
 * import that points up the layers or into another folder past its index (scripts/check-layers.mjs).
 * Each check runs the real tool on a small file or tree made here.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { REPO } from './helpers/fixtures.js';

const run = promisify(execFile);

async function exitOf(cmd: string, args: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await run(cmd, args, { cwd: REPO });
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

/** Writes `text` as a probe file inside test/ (where the lint's test project looks), runs `f`, removes it. */
async function withProbe<T>(text: string, f: (path: string) => Promise<T>): Promise<T> {
  const path = join(REPO, 'test', `lint-probe-${process.pid}.ts`);
  writeFileSync(path, text);
  try {
    return await f(path);
  } finally {
    rmSync(path, { force: true });
  }
}

describe('npm run lint', () => {
  it('eslint refuses a floating promise and passes the same code awaited', async () => {
    const floating = 'export async function save(): Promise<void> {}\nexport async function run(): Promise<void> {\n  save();\n}\n';
    const bad = await withProbe(floating, (p) => exitOf('npx', ['eslint', p]));
    expect(bad.code).toBe(1);
    expect(bad.out).toContain('@typescript-eslint/no-floating-promises');
    const good = await withProbe(floating.replace('  save();', '  await save();'), (p) => exitOf('npx', ['eslint', p]));
    expect(good).toEqual({ code: 0, out: '' });
  }, 60_000);

  it('the formatter check refuses unformatted code', async () => {
    const bad = await withProbe('export const x = {a:1,\n   b:2}\n', (p) => exitOf('npx', ['biome', 'format', p]));
    expect(bad.code).toBe(1);
    const good = await withProbe('export const x = { a: 1, b: 2 };\n', (p) => exitOf('npx', ['biome', 'format', p]));
    expect(good.code).toBe(0);
  });

  it("the layer check refuses an import up the layers and one past a folder's index", async () => {
    const tree = mkdtempSync(join(tmpdir(), 'cv-layers-'));
    try {
      const file = (path: string, text: string): void => {
        mkdirSync(join(tree, path, '..'), { recursive: true });
        writeFileSync(join(tree, path), text);
      };
      file('core/index.ts', "/** core */\nexport * from './errors.js';\n");
      file('core/errors.ts', 'export class E extends Error {}\n');
      file('datastore/index.ts', "/** datastore */\nexport { E } from '../core/index.js';\n");
      file('pipeline/index.ts', "/** pipeline */\nexport { E } from '../core/index.js';\n");
      expect((await exitOf('node', ['scripts/check-layers.mjs', tree])).code).toBe(0);
      file('datastore/up.ts', "import { E } from '../pipeline/index.js';\nexport const e = E;\n");
      file('datastore/deep.ts', "import { E } from '../core/errors.js';\nexport const e2 = E;\n");
      const r = await exitOf('node', ['scripts/check-layers.mjs', tree]);
      expect(r.code).toBe(1);
      expect(r.out).toContain('imports ../pipeline/index.js (datastore -> pipeline: may only import lower layers)');
      expect(r.out).toContain('imports ../core/errors.js (a folder is used through its index.js from outside it)');
    } finally {
      rmSync(tree, { recursive: true, force: true });
    }
  });
});
