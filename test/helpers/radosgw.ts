/**
 * A real Ceph radosgw for a test file: ../shared/tools/ceph-rgw-test-server.sh (beside the repo, or
 * COLDVAULT_RGW_TOOL) starts a one-node cluster on 127.0.0.1 in a few seconds (installing Debian's
 * ceph packages when they are missing) and prints its S3 settings; `stop` removes everything. One per
 * test file (share it across the file's tests): memstore, objects in RAM, up to 4 GiB.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface Radosgw {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  /** the daemons' pid files, to kill radosgw mid-test (then `restart` it) */
  dir: string;
  stop(): void;
  /** kill -9 of radosgw alone (the cluster and its objects stay) */
  killGateway(): void;
  /** starts radosgw again as it ran, on the same port; resolves once it answers */
  restartGateway(): Promise<void>;
}

export const RGW_TOOL = process.env.COLDVAULT_RGW_TOOL ?? fileURLToPath(new URL('../../../shared/tools/ceph-rgw-test-server.sh', import.meta.url));

export function startRadosgw(): Radosgw {
  const dir = mkdtempSync(join(tmpdir(), 'cv-rgw-'));
  const env = parseExports(execFileSync('bash', [RGW_TOOL, 'start', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 600_000 }));
  const need = (name: string): string => {
    const v = env[name];
    if (!v) throw new Error(`${RGW_TOOL} printed no ${name}`);
    return v;
  };
  return {
    endpoint: need('S3_ENDPOINT'),
    accessKeyId: need('S3_ACCESS_KEY'),
    secretAccessKey: need('S3_SECRET_KEY'),
    region: need('S3_REGION'),
    dir,
    stop: () => void execFileSync('bash', [RGW_TOOL, 'stop', dir], { stdio: 'ignore', timeout: 120_000 }),
    killGateway: () => killGateway(dir),
    restartGateway: () => restartGateway(dir, need('S3_ENDPOINT')),
  };
}

const gatewayCommand = new Map<string, string[]>();

function killGateway(dir: string): void {
  const pidFile = join(dir, 'client.rgw.pid');
  const pid = Number(readFileSync(pidFile, 'utf8'));
  gatewayCommand.set(dir, readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean));
  process.kill(pid, 'SIGKILL');
  for (let i = 0; i < 100 && existsSync(`/proc/${pid}`); i++) execFileSync('sleep', ['0.05']);
}

async function restartGateway(dir: string, endpoint: string): Promise<void> {
  const argv = gatewayCommand.get(dir);
  if (!argv) throw new Error('restartGateway: killGateway first');
  const [cmd, ...args] = argv as [string, ...string[]];
  const child = spawn(cmd, args, { stdio: 'ignore', detached: true }); // its own session, as the tool starts it
  child.unref();
  writeFileSync(join(dir, 'client.rgw.pid'), `${child.pid}\n`);
  for (let i = 0; i < 300; i++) {
    const up = await fetch(endpoint).then(
      () => true,
      () => false,
    );
    if (up) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`radosgw did not answer at ${endpoint} within 30 s of its restart`);
}

function parseExports(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of text.matchAll(/^export (\w+)=(.*)$/gm)) out[m[1] as string] = (m[2] as string).replace(/^'|'$/g, '');
  return out;
}

/** A bucket name no other test of this run uses. */
export const freshBucket = (what: string): string => `cv-${what}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
