/**
 * The `ip` commands under the cluster harness (test/helpers/netns.ts), and the cleanup that must work
 * even when a test run died: names, the stale sweep, killing what runs in a namespace.
 *
 * Vocabulary: a *run* is one Cluster; its id is `cv-<pid>-<6 hex>` (pid: the test process). Its
 * namespaces are `<run id>-br` (the bridge) and `<run id>-n1` .. `-nN` (the nodes); its scratch
 * folder is `<tmpdir>/cv-cluster-<pid>-<6 hex>`. A run whose pid is dead is stale: `sweepStale`
 * kills what still runs in its namespaces, deletes them (which deletes their veths) and removes its
 * folder. Nothing of a run is ever made in the root namespace.
 */
import { execFile, execFileSync } from 'node:child_process';
import { readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** `ip ARGS`; rejects with ip's stderr. */
export async function ip(...args: string[]): Promise<string> {
  try {
    return (await run('ip', args)).stdout;
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? '';
    throw new Error(`ip ${args.join(' ')} failed: ${stderr.trim() || String(err)}`, { cause: err });
  }
}

/** `ip ARGS` from a signal or exit handler (synchronous); '' when it fails. */
function ipSync(...args: string[]): string {
  try {
    return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return '';
  }
}

export function namespaces(): string[] {
  return ipSync('netns', 'list')
    .split('\n')
    .map((line) => line.split(' ')[0] ?? '')
    .filter(Boolean);
}

export function namespacePids(ns: string): number[] {
  return ipSync('netns', 'pids', ns).split('\n').filter(Boolean).map(Number);
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** SIGKILLs every process in the namespace, waits (bounded) until they are gone, deletes it. */
export function killNamespace(ns: string): void {
  for (let round = 0; round < 50; round++) {
    const pids = namespacePids(ns);
    if (pids.length === 0) break;
    for (const pid of pids) killQuietly(pid);
    execFileSync('sleep', ['0.1']);
  }
  ipSync('netns', 'del', ns);
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone already
  }
}

const NS_NAME = /^(cv-(\d+)-[0-9a-f]{6})-(br|n\d+)$/;
const DIR_NAME = /^cv-cluster-(\d+)-([0-9a-f]{6})$/;

/** The scratch folder of a run id. */
export function runFolder(runId: string): string {
  return join(tmpdir(), runId.replace(/^cv-/, 'cv-cluster-'));
}

/** The namespaces that belong to run `runId`. */
export function runNamespaces(runId: string): string[] {
  return namespaces().filter((ns) => NS_NAME.exec(ns)?.[1] === runId);
}

/** Removes what runs of dead test processes left: their namespaces (and processes in them) and folders. */
export function sweepStale(): string[] {
  const swept: string[] = [];
  for (const ns of namespaces()) {
    const pid = Number(NS_NAME.exec(ns)?.[2] ?? 0);
    if (pid > 0 && !alive(pid)) {
      killNamespace(ns);
      swept.push(ns);
    }
  }
  for (const name of readdirSync(tmpdir())) {
    const pid = Number(DIR_NAME.exec(name)?.[1] ?? 0);
    if (pid > 0 && !alive(pid)) rmSync(join(tmpdir(), name), { recursive: true, force: true });
  }
  return swept;
}

const toInt = (addr: string): number => addr.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);

function overlaps(a: string, b: string): boolean {
  const [addrA = '', lenA = '32'] = a.split('/');
  const [addrB = '', lenB = '32'] = b.split('/');
  const bits = Math.min(Number(lenA), Number(lenB));
  const mask = bits === 0 ? 0 : 2 ** 32 - 2 ** (32 - bits);
  return (toInt(addrA) & mask) >>> 0 === (toInt(addrB) & mask) >>> 0;
}

/** The root namespace's IPv4 routes and addresses other than its default route (CIDRs). */
export async function rootPrefixes(): Promise<string[]> {
  const routes = JSON.parse(await ip('-j', '-4', 'route', 'show', 'table', 'all')) as Array<{ dst: string }>;
  const addrs = JSON.parse(await ip('-j', '-4', 'addr', 'show')) as Array<{ addr_info: Array<{ local: string; prefixlen: number }> }>;
  const dsts = routes.map((r) => r.dst).filter((dst) => dst !== 'default' && /^\d+\.\d+\.\d+\.\d+/.test(dst));
  return [...dsts.map((d) => (d.includes('/') ? d : `${d}/32`)), ...addrs.flatMap((a) => a.addr_info.map((i) => `${i.local}/${i.prefixlen}`))];
}

/**
 * A /24 of the benchmark range 198.18.0.0/15, picked at random, that no route or address of the root
 * namespace covers (so the root namespace can only send it to its default route, never to the run).
 */
export async function pickSubnet(random: () => number = Math.random): Promise<string> {
  const taken = await rootPrefixes();
  for (let attempt = 0; attempt < 64; attempt++) {
    const subnet = `198.${18 + Math.floor(random() * 2)}.${Math.floor(random() * 256)}.0/24`;
    if (!taken.some((p) => overlaps(p, subnet))) return subnet;
  }
  throw new Error(`no free /24 in 198.18.0.0/15: the root namespace routes ${taken.join(', ')}`);
}

/** Whether CIDR or address `a` and CIDR `b` share an address. */
export { overlaps as cidrOverlaps };
