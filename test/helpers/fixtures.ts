/**
 * Test fixtures made at run time: deterministic disk images of 4 MiB regions (all-zero, random,
 * log-like text), guest configs in a guests dir, a storage dir, and a way to run the real CLI.
 * Nothing here is a mock: the CLI is the built bin/coldvault.js, the files are real files.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, mkdirSync, openSync, writeSync, closeSync, writeFileSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

export const REPO = resolve(new URL('../..', import.meta.url).pathname);
export const CLI = join(REPO, 'bin', 'coldvault.js');
export const REGION = 4 * 1024 * 1024;

export type Region = 'zero' | 'random' | 'text';

/** A small deterministic PRNG (xorshift32), so images are the same on every run. */
export function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

export function regionBytes(kind: Region, seed: number, length = REGION): Buffer {
  if (kind === 'zero') return Buffer.alloc(length);
  if (kind === 'random') {
    const next = prng(seed);
    const buf = Buffer.allocUnsafe(length);
    for (let i = 0; i + 4 <= length; i += 4) buf.writeUInt32LE(next(), i);
    for (let i = length - (length % 4); i < length; i++) buf[i] = next() & 0xff;
    return buf;
  }
  const next = prng(seed);
  const lines: string[] = [];
  let size = 0;
  while (size < length) {
    const line = `2026-11-27 10:${String(next() % 60).padStart(2, '0')}:${String(next() % 60).padStart(2, '0')} host${next() % 8} sshd[${next() % 30000}]: session ${next() % 1000} opened for user u${next() % 50}\n`;
    lines.push(line);
    size += line.length;
  }
  return Buffer.from(lines.join('')).subarray(0, length);
}

/** Writes an image of the given regions (zero regions left as holes); `tail` adds a short last chunk. */
export function writeImage(path: string, regions: Region[], seed = 1, tail = 0): void {
  const fd = openSync(path, 'w');
  try {
    regions.forEach((kind, i) => {
      if (kind !== 'zero') writeSync(fd, regionBytes(kind, seed * 1000 + i), 0, REGION, i * REGION);
    });
    if (tail > 0) writeSync(fd, regionBytes('text', seed * 1000 + 999, tail), 0, tail, regions.length * REGION);
    else if (regions.length > 0 && regions[regions.length - 1] === 'zero') {
      writeSync(fd, Buffer.alloc(1), 0, 1, regions.length * REGION - 1); // size the file; the last byte is zero
    }
  } finally {
    closeSync(fd);
  }
}

/** Overwrites one region in place (a changed 4 MiB area of the disk). */
export function rewriteRegion(path: string, index: number, kind: Region, seed: number): void {
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, regionBytes(kind, seed), 0, REGION, index * REGION);
  } finally {
    closeSync(fd);
  }
}

export function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

export interface Lab {
  root: string;
  guestsDir: string;
  storageDir: string;
  storeDir: string;
  /** CLI flags that point at this lab: --store, --guests-dir, --storage local=... */
  flags: string[];
  cleanup(): void;
}

/**
 * Writes `<lab>/coldvault.json` for a `coldvault serve` (or CLI) of this lab: node name, its own state
 * folder `<lab>/<stateName>`, the lab's guests, `local` storage and datastore `main`, no hypervisor;
 * `extra` keys are merged in. Returns the file's path.
 */
export function writeServeConfig(lab: Lab, node: string, stateName: string, extra: Record<string, unknown> = {}): string {
  const configPath = join(lab.root, 'coldvault.json');
  const config = {
    node,
    stateDir: join(lab.root, stateName),
    guestsDir: lab.guestsDir,
    storages: { local: lab.storageDir },
    datastores: { main: lab.storeDir },
    hypervisor: { driver: 'none' },
    ...extra,
  };
  writeFileSync(configPath, JSON.stringify(config));
  return configPath;
}

/** A temp folder with a guests dir, a `local` storage dir and a datastore path (not yet initialised). */
export function makeLab(prefix = 'cv-test-'): Lab {
  const root = mkdtempSync(join(tmpdir(), prefix));
  const lab: Lab = {
    root,
    guestsDir: join(root, 'guests'),
    storageDir: join(root, 'vz'),
    storeDir: join(root, 'store'),
    flags: [],
    cleanup: () => rmSync(root, { recursive: true, force: true }),
  };
  mkdirSync(lab.guestsDir, { recursive: true });
  mkdirSync(join(lab.storageDir, 'images'), { recursive: true });
  lab.flags = ['--store', lab.storeDir, '--guests-dir', lab.guestsDir, '--storage', `local=${lab.storageDir}`];
  return lab;
}

/** Creates guest `<vmid>.conf` with the given disks (raw or qcow2 files in the local storage). */
export function writeGuest(lab: Lab, vmid: string, disks: Array<{ key: string; file: string; format?: string; extra?: string }>, extra = ''): void {
  mkdirSync(join(lab.storageDir, 'images', vmid), { recursive: true });
  const lines = [
    `# test guest ${vmid}`,
    'cores: 1',
    'memory: 256',
    `name: test-${vmid}`,
    'net0: virtio=A2:C0:43:77:08:A0,bridge=vmbr0',
    'ide2: none,media=cdrom',
    ...disks.map((d) => `${d.key}: local:${vmid}/${d.file}${d.format ? `,format=${d.format}` : ''}${d.extra ? `,${d.extra}` : ''},size=1G`),
    'smbios1: uuid=21a7e7bc-3cd2-4232-a009-a41f4ee992ae',
    'vmgenid: 0',
  ];
  writeFileSync(join(lab.guestsDir, `${vmid}.conf`), `${lines.join('\n')}\n${extra}`);
}

export function imagePath(lab: Lab, vmid: string, file: string): string {
  return join(lab.storageDir, 'images', vmid, file);
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real CLI (built bin/coldvault.js) and resolves with its exit code and output. */
export function cli(args: string[], opts: { env?: Record<string, string> } = {}): Promise<CliResult> {
  return new Promise((resolvePromise) => {
    execFile(process.execPath, [CLI, ...args], { env: { ...process.env, ...opts.env }, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolvePromise({ code, stdout, stderr });
    });
  });
}

/** Starts the CLI without waiting (for kill -9 tests). */
export function spawnCli(args: string[]): ChildProcess {
  return spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
}

export const execFileAsync = promisify(execFile);
