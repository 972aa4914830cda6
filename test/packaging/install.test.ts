/**
 * The install path of README "Run as a service", for real: `npm pack` of this checkout, then
 * `npm install -g` of that tarball into a temporary prefix, dependencies fetched from a registry on
 * 127.0.0.1 (test/helpers/npm-registry.ts: this checkout's node_modules, packed; the public registry is
 * not reachable from the tests, and npm ci's cache cannot resolve a tarball's dependencies offline).
 * Dependencies' install scripts are skipped (their packed folders hold what npm ci built); coldvault's
 * own (`node-gyp rebuild` of native/) runs through `npm rebuild`. The installed command then runs
 * --version, a backup (native addon, zstd, SQLite catalog), a job (the state database) and
 * `doctor --json`, and the installed unit file passes `systemd-analyze verify` with its ExecStart.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO, writeImage } from '../helpers/fixtures.js';
import { type LocalRegistry, startLocalRegistry } from '../helpers/npm-registry.js';
import { verifyUnit } from './unit-verify.js';

const run = promisify(execFile);
const version = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;

let root: string;
let registry: LocalRegistry;
let prefix: string;
let coldvault: string;

/** npm with its own cache and no call home; node-gyp finds Node's headers beside the running node (no download). */
function npm(args: string[], cwd = root): Promise<{ stdout: string; stderr: string }> {
  const nodedir = dirname(dirname(process.execPath));
  const env = {
    ...process.env,
    npm_config_cache: join(root, 'npm-cache'),
    npm_config_update_notifier: 'false',
    npm_config_audit: 'false',
    npm_config_fund: 'false',
    ...(existsSync(join(nodedir, 'include', 'node', 'node_api.h')) ? { npm_config_nodedir: nodedir } : {}),
  };
  return run('npm', args, { cwd, env, maxBuffer: 64 * 1024 * 1024 });
}

async function installed(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(coldvault, args, { env: { ...process.env, ...env } });
    return { code: 0, ...r };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

beforeAll(async () => {
  if (!existsSync(join(REPO, 'dist', 'bundle', 'coldvault.js'))) throw new Error('run npm run build first: the package ships dist/');
  root = mkdtempSync(join(tmpdir(), 'cv-install-'));
  prefix = join(root, 'prefix');
  coldvault = join(prefix, 'bin', 'coldvault');
  mkdirSync(join(root, 'registry'));
  registry = await startLocalRegistry(REPO, join(root, 'registry'));
}, 180_000);

afterAll(async () => {
  await registry?.close();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('the npm package tarball', () => {
  let tarball: string;

  it('npm pack ships the CLI, its build, the native sources and the systemd unit, and no tests', async () => {
    const { stdout } = await npm(['pack', '--json', '--pack-destination', root], REPO);
    const [packed] = JSON.parse(stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
    tarball = join(root, packed?.filename ?? '');
    const paths = (packed?.files ?? []).map((f) => f.path);
    for (const needed of [
      'bin/coldvault.js',
      'dist/bundle/coldvault.js',
      'dist/cli/main.js',
      'binding.gyp',
      'native/sparse.c',
      'packaging/coldvault.service',
      'package.json',
    ]) {
      expect(paths).toContain(needed);
    }
    expect(paths.filter((p) => p.startsWith('test/') || p.startsWith('src/'))).toEqual([]);
    expect(existsSync(tarball)).toBe(true);
  }, 120_000);

  it('installs with npm install -g into a prefix and its coldvault runs: --version, a backup, a job, doctor --json', async () => {
    expect(registry.served.some((p) => p.startsWith('better-sqlite3@'))).toBe(true);
    await npm(['install', '-g', '--prefix', prefix, '--registry', registry.url, '--ignore-scripts', tarball]);
    await npm(['rebuild', '-g', '--prefix', prefix, 'coldvault']); // coldvault's install script: node-gyp rebuild of native/
    expect(existsSync(join(prefix, 'lib', 'node_modules', 'coldvault', 'build', 'Release', 'coldvault_native.node'))).toBe(true);

    const v = await installed(['--version']);
    expect(v.stdout).toBe(`coldvault ${version} (node ${process.version})\n`);

    const config = healthyNode(join(root, 'node'));
    expect((await installed(['datastore', 'init', join(root, 'node', 'store')])).code).toBe(0);
    const backup = await installed(['backup', '101', '--store', 'main', '--config', config, '--json']);
    expect(backup.code, backup.stderr).toBe(0);
    expect((JSON.parse(backup.stdout) as Array<{ ok: boolean }>)[0]?.ok).toBe(true);
    const job = await installed(['job', 'add', 'nightly', '--store', 'main', '--vmid', '101', '--at', '22:30', '--config', config]);
    expect(job.code, job.stderr).toBe(0);

    const doctor = await installed(['doctor', '--json', '--config', config]);
    const report = JSON.parse(doctor.stdout) as { ok: boolean; findings: Array<{ check: string; status: string; found: string }> };
    // every finding ok (free space may warn on a full build machine: that is the machine's, not the package's)
    expect(report.findings.filter((f) => f.status !== 'ok' && f.check !== 'free space')).toEqual([]);
    expect(doctor.code).toBe(0);
    expect(report.findings.find((f) => f.check === 'datastore main')?.found).toMatch(/1 guest\(s\), writable/);
  }, 300_000);

  it('the installed unit passes systemd-analyze verify with the installed coldvault as ExecStart', async () => {
    const unit = readFileSync(join(prefix, 'lib', 'node_modules', 'coldvault', 'packaging', 'coldvault.service'), 'utf8');
    const result = await verifyUnit(unit.replace(/^ExecStart=coldvault /m, `ExecStart=${coldvault} `));
    expect(result).toEqual({ code: 0, output: '' });
  });
});

/** A node whose setup doctor finds fine: state dir, guests dir with guest 101, storage, datastore main, no hypervisor. */
function healthyNode(dir: string): string {
  for (const sub of ['state', 'guests', 'vz/images/101']) mkdirSync(join(dir, sub), { recursive: true, mode: 0o700 });
  writeImage(join(dir, 'vz', 'images', '101', 'vm-101-disk-0.raw'), ['random', 'zero', 'text']);
  writeFileSync(join(dir, 'guests', '101.conf'), 'name: web\nmemory: 256\nscsi0: local:101/vm-101-disk-0.raw,size=12M\n');
  const config = join(dir, 'config.json');
  const settings = {
    node: 'pve1',
    stateDir: join(dir, 'state'),
    guestsDir: join(dir, 'guests'),
    storages: { local: join(dir, 'vz') },
    datastores: { main: join(dir, 'store') },
    hypervisor: { driver: 'none' },
  };
  writeFileSync(config, JSON.stringify(settings), { mode: 0o600 });
  return config;
}
