/**
 * The end-to-end lab: the REAL server (`node bin/coldvault.js serve --config <tmp> --listen
 * 127.0.0.1:<free port>`, COLDVAULT_ADMIN_PASSWORD set, hypervisor `none`) on a temp folder with
 * guest 101 (a 16 MiB generated disk), a `local` storage, a datastore `main` and a scripts folder; and
 * Debian's chromium driven by playwright-core, headless (chromium.launch gives every run a fresh
 * temporary user data dir, removed at close). Screenshots go to test-artifacts/e2e/ (gitignored).
 * Needs the build (`npm run build`: tsc and the UI files in dist/server/ui).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { CLI, imagePath, makeLab, REPO, writeGuest, writeImage, type Lab } from '../helpers/fixtures.js';

export const CHROMIUM = '/usr/bin/chromium';
export const PASSWORD = 'e2e-secret-pw';
export const ARTIFACTS = join(REPO, 'test-artifacts', 'e2e');
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

if (!existsSync(join(REPO, 'dist/server/ui/index.html')) || !existsSync(join(REPO, 'dist/cli/main.js'))) {
  throw new Error('dist/ or dist/server/ui is missing: run `npm run build` first');
}
if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: scripts/install-test-deps.sh installs Debian's chromium`);

export interface E2eLab extends Lab {
  url: string;
  stateDir: string;
  scriptsDir: string;
  configPath: string;
  server: ChildProcess;
  output: () => string;
  close(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

async function waitHealthy(url: string, server: ChildProcess, output: () => string, ms = 20_000): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    if (server.exitCode !== null) throw new Error(`coldvault serve exited with ${server.exitCode}:\n${output()}`);
    try {
      const res = await fetch(`${url}/api/v1/health`);
      if (res.ok) return;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > until) throw new Error(`coldvault serve did not answer /api/v1/health within ${ms} ms:\n${output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * A lab with guest 101 and the running server. `beforeScript`: the body of scripts/before.sh; `config`: more keys of the config file;
 * `prepare`: runs on the new lab before its datastore is made (e.g. to mount a filesystem on lab.storeDir).
 */
export async function startE2eLab(opts: { beforeScript?: string; config?: Record<string, unknown>; prepare?: (lab: Lab) => void } = {}): Promise<E2eLab> {
  const lab = makeLab('cv-e2e-');
  opts.prepare?.(lab);
  const stateDir = join(lab.root, 'state');
  const scriptsDir = join(lab.root, 'scripts');
  mkdirSync(scriptsDir);
  writeFileSync(join(scriptsDir, 'before.sh'), `#!/bin/sh\n${opts.beforeScript ?? 'exit 0'}\n`, { mode: 0o755 });
  writeGuest(lab, '101', [{ key: 'scsi0', file: 'vm-101-disk-0.raw' }]);
  writeImage(imagePath(lab, '101', 'vm-101-disk-0.raw'), ['random', 'zero', 'text', 'random'], 7);
  const configPath = join(lab.root, 'coldvault.json');
  writeFileSync(
    configPath,
    JSON.stringify(
      {
        node: 'e2enode',
        stateDir,
        guestsDir: lab.guestsDir,
        storages: { local: lab.storageDir },
        datastores: { main: lab.storeDir },
        hypervisor: { driver: 'none' },
        scriptDirs: [scriptsDir],
        zstdLevel: 1,
        ...opts.config,
      },
      null,
      2,
    ),
  );
  const init = spawn(process.execPath, [CLI, 'datastore', 'init', lab.storeDir, '--config', configPath], { stdio: 'ignore' });
  const initCode = await new Promise<number | null>((resolve) => init.on('exit', resolve));
  if (initCode !== 0) throw new Error(`coldvault datastore init exited with ${initCode}`);

  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let out = '';
  const server = spawn(process.execPath, [CLI, 'serve', '--config', configPath, '--listen', `127.0.0.1:${port}`], {
    env: { ...process.env, COLDVAULT_ADMIN_PASSWORD: PASSWORD, COLDVAULT_CONFIG: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  server.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  server.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const output = (): string => out;
  await waitHealthy(url, server, output);
  return {
    ...lab,
    url,
    stateDir,
    scriptsDir,
    configPath,
    server,
    output,
    close: async () => {
      if (server.exitCode === null) {
        const exited = new Promise((resolve) => server.once('exit', resolve));
        server.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
        if (server.exitCode === null) server.kill('SIGKILL');
      }
      lab.cleanup();
    },
  };
}

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}

/** Saves a full-page screenshot as test-artifacts/e2e/<name>.png. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** Collects the page's console errors and uncaught exceptions (a CSP refusal shows up here too). */
export function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    // refused requests (401 before the login, 400 for a form the API rejects) are expected; anything else is not
    if (msg.type() === 'error' && !/^Failed to load resource: the server responded with a status of 4\d\d/.test(msg.text()))
      errors.push(`console: ${msg.text()}`);
  });
  return errors;
}
