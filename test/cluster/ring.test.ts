/**
 * Cluster mode for real: a ring of three `coldvault serve` nodes, each in its own network namespace
 * (veth pairs on a bridge, made here and removed after), each with its own state dir, guests dir and
 * datastore `main`, set up with scoped tokens and pinned fingerprints (ring-lab.ts). node2 runs the
 * tiny real QEMU guest 201 (TCG) with a second disk of incompressible data; node1 and node3 have
 * guests that are not running. Cluster-mode jobs (`job add --mode cluster --store main`) push:
 * node2's backups land on node1, node1's on node3, node3's on node2. Then: node2's guest restored on
 * node3 from node1's store, byte-identical; an unchanged second push sends only metadata (bytes on
 * the wire counted); kill -9 of the receiving serve mid-push and a cut link mid-push fail the job
 * with a clear error, the guest runs again, nothing partial is visible, the next run succeeds; the
 * external disk sits at the receiving node (mounted there for the push, unmounted after; missing
 * there: the job fails before the guest is stopped); a wrong pinned fingerprint is refused.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imagePath, sha256File, writeGuest, writeImage } from '../helpers/fixtures.js';
import type { Cluster, ClusterNode } from '../helpers/netns.js';
import { guestFiles, killGuest, readBootCount } from '../helpers/tiny-guest.js';
import { addTinyGuest, bootGuest, waitBooted } from '../jobs/helpers-jobs.js';
import { Loops, mounted, sh, type Loop } from '../jobs/helpers-devices.js';
import { volumePath } from '../cli/cli-lab.js';
import { makeRing, qemuOn } from './ring-lab.js';

let ring: Cluster;
let n1: ClusterNode;
let n2: ClusterNode;
let n3: ClusterNode;
let q2: Awaited<ReturnType<typeof qemuOn>>;
let loops: Loops;
let seed = 201;
const RANDOM_MIB = 24;

interface Version {
  id: string;
  version: number;
}
interface Task {
  id: string;
  type: string;
  jobId: string | null;
  status: string;
  result: { guests?: Array<{ vmid: string; status: string; wireBytes?: number; error?: string }> } | null;
}

const versionsIn = async (node: ClusterNode, store = 'main'): Promise<Version[]> => node.cliJson<Version[]>(['list', '--store', store]);
const idsIn = async (node: ClusterNode): Promise<string[]> => [...new Set((await versionsIn(node)).map((v) => v.id))];
const lastRun = async (node: ClusterNode, job = 'ring'): Promise<Task> =>
  (await node.cliJson<Task[]>(['task', 'list'])).find((t) => t.type === 'backup' && t.jobId === job) as Task;
const stagingOf = (node: ClusterNode, vmid: string): string[] => {
  const dir = join(node.storeDir, 'guests', vmid);
  return existsSync(dir) ? readdirSync(dir).filter((n) => n.startsWith('.staging-')) : [];
};

/** Sets fields of one entry of a node's cluster.nodes (a token, a fingerprint). */
function setEntry(node: ClusterNode, name: string, fields: Record<string, string>, tokens?: Record<string, string>): void {
  const cluster = node.config().cluster as { nodes: Array<Record<string, unknown>>; timeoutSeconds: number };
  const change = (e: Record<string, unknown>) => ({ ...e, ...fields, ...(tokens ? { tokens } : {}) });
  node.updateConfig({ cluster: { ...cluster, nodes: cluster.nodes.map((e) => (e.name === name ? change(e) : e)) } });
}

async function until(what: string, ok: () => boolean | Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The newest `boot N` on guest 201's serial console. */
function currentBoot(): number {
  const log = readFileSync(guestFiles(q2.qemuDir, '201').log, 'utf8');
  return Math.max(0, ...[...log.matchAll(/coldvault-tiny-guest: boot (\d+)/g)].map((m) => Number(m[1])));
}

/** node2's job run, expecting the guest to have been stopped and booted again. */
async function runOnNode2(job: string): Promise<{ code: number; out: string }> {
  const boot = currentBoot();
  const r = await n2.cli(['job', 'run', job]);
  const out = r.stdout + r.stderr;
  await waitBooted(q2, '201', boot + 1).catch((err: unknown) => {
    throw new Error(`${String(err)}\nthe job run (exit ${r.code}):\n${out}`);
  });
  return { code: r.code, out };
}

/** New incompressible content on guest 201's second disk: the next push has 24 MiB to send. */
function rewriteRandomDisk(): void {
  writeImage(imagePath(n2, '201', 'vm-201-disk-1.raw'), Array<'random'>(RANDOM_MIB / 4).fill('random'), ++seed);
}

beforeAll(async () => {
  ring = await makeRing({ nodes: 3, timeoutSeconds: 5, uploadIdleSeconds: 8 });
  [n1, n2, n3] = ring.nodes as [ClusterNode, ClusterNode, ClusterNode];
  q2 = await qemuOn(n2);
  await addTinyGuest(q2, '201', 'web201');
  const random = imagePath(n2, '201', 'vm-201-disk-1.raw');
  writeImage(random, Array<'random'>(RANDOM_MIB / 4).fill('random'), seed);
  const conf = join(n2.guestsDir, '201.conf');
  writeFileSync(conf, `${readFileSync(conf, 'utf8')}scsi1: local:201/vm-201-disk-1.raw,size=${RANDOM_MIB}M\n`);
  await bootGuest(q2, '201');
  for (const [node, vmid] of [
    [n1, '101'],
    [n3, '301'],
  ] as const) {
    writeGuest(node, vmid, [{ key: 'scsi0', file: `vm-${vmid}-disk-0.raw` }]);
    writeImage(imagePath(node, vmid, `vm-${vmid}-disk-0.raw`), ['text', 'random', 'zero', 'random'], Number(vmid));
  }
  for (const [node, vmid] of [
    [n1, '101'],
    [n2, '201'],
    [n3, '301'],
  ] as const) {
    const add = await node.cli(['job', 'add', 'ring', '--mode', 'cluster', '--store', 'main', '--vmid', vmid]);
    expect(add.code, add.stderr).toBe(0);
  }
  mkdirSync(join(ring.root, 'loops'));
  loops = new Loops(join(ring.root, 'loops'));
}, 300_000);

afterAll(async () => {
  if (q2) await killGuest(q2.qemuDir, '201');
  await loops?.cleanup([join(n1?.root ?? '/nonexistent', 'usb')]);
  await ring?.destroy();
});

describe('a three-node ring of coldvault serve processes in network namespaces', { timeout: 300_000 }, () => {
  it("places every node's backups on the previous node (node2 -> node1, node1 -> node3, node3 -> node2); the QEMU guest runs again", async () => {
    const [r1, r3] = await Promise.all([n1.cli(['job', 'run', 'ring']), n3.cli(['job', 'run', 'ring'])]);
    expect(r1.code, r1.stdout + r1.stderr).toBe(0);
    expect(r3.code, r3.stdout + r3.stderr).toBe(0);
    const r2 = await runOnNode2('ring');
    expect(r2.code, r2.out).toBe(0);
    expect(r2.out).toContain("the backups of node node2 go to datastore 'main' on node node1");
    expect(await idsIn(n1)).toEqual(['201']);
    expect(await idsIn(n3)).toEqual(['101']);
    expect(await idsIn(n2)).toEqual(['301']);
    expect(await q2.driver.status('201')).toBe('running');
    const list = await n2.cli(['job', 'list']);
    expect(list.stdout).toMatch(/ring .* node1:main/);
    const status = await n2.cli(['cluster', 'status', '--json']);
    expect(status.code, status.stderr).toBe(0);
    const parsed = JSON.parse(status.stdout) as { sendsTo: string; receivesFrom: string; stores: Array<{ ok: boolean }>; lastPush: { status: string } };
    expect(parsed).toMatchObject({ sendsTo: 'node1', receivesFrom: 'node3', stores: [{ store: 'main', ok: true }], lastPush: { status: 'ok' } });
  });

  it("restores node2's guest on node3 from node1's store (--remote node1), byte-identical to the version", async () => {
    setEntry(n3, 'node1', { token: await n1.token('node3-restores') });
    const remote = await n3.cliJson<{ volumes: Record<string, string> }>([
      'restore',
      '201',
      '--version',
      '1',
      '--new-id',
      '901',
      '--remote',
      'node1',
      '--store',
      'main',
    ]);
    const local = await n1.cliJson<{ volumes: Record<string, string> }>(['restore', '201', '--version', '1', '--new-id', '902', '--store', 'main']);
    for (const key of ['scsi0', 'scsi1']) {
      expect(sha256File(volumePath(n3, remote.volumes[key] as string))).toBe(sha256File(volumePath(n1, local.volumes[key] as string)));
    }
    expect(sha256File(volumePath(n3, remote.volumes.scsi1 as string))).toBe(sha256File(imagePath(n2, '201', 'vm-201-disk-1.raw')));
    expect(await readBootCount(volumePath(n3, remote.volumes.scsi0 as string))).toBe(1); // the disk as it was when the guest was off
    expect(readFileSync(join(n3.guestsDir, '901.conf'), 'utf8')).toContain('name: web201');
    expect(await idsIn(n3)).toEqual(['101']); // node3's own store got nothing
  });

  it('a second push of an unchanged guest sends only metadata (bytes on the wire counted)', async () => {
    const first = await lastRun(n1);
    const firstWire = first.result?.guests?.[0]?.wireBytes ?? 0;
    expect(firstWire).toBeGreaterThan(2 * 4 * 1024 * 1024); // two random regions of 4 MiB went over the wire
    const again = await n1.cli(['job', 'run', 'ring']);
    expect(again.code, again.stdout + again.stderr).toBe(0);
    const second = await lastRun(n1);
    const wire = second.result?.guests?.[0]?.wireBytes ?? -1;
    expect(wire).toBeGreaterThan(0);
    expect(wire).toBeLessThan(64 * 1024); // indexes, config, log, manifest and the questions: no chunk
    expect(again.stdout).toMatch(/on the wire: .* sent/);
    expect((await versionsIn(n3)).map((v) => v.version)).toEqual([1, 2]);
  });

  it('kill -9 of the receiving serve mid-push: the job fails clearly, the guest runs again, nothing partial on node1; the next run succeeds', async () => {
    expect((await n2.cli(['job', 'edit', 'ring', '--bwlimit', '2'])).code).toBe(0);
    rewriteRandomDisk();
    const run = runOnNode2('ring');
    await until('the upload on node1', () => stagingOf(n1, '201').length > 0);
    await new Promise((r) => setTimeout(r, 1000));
    await n1.kill();
    const failed = await run;
    expect(failed.code).not.toBe(0);
    expect(failed.out).toMatch(/Backup of VM 201 failed - .*node1|https:\/\/[\d.]+:8007/);
    expect(failed.out).toMatch(/CONNECTION|connect|reset|refused|socket/i);
    expect(await q2.driver.status('201')).toBe('running');
    await n1.start();
    expect((await versionsIn(n1)).filter((v) => v.id === '201').map((v) => v.version)).toEqual([1]);
    expect((await n2.cli(['job', 'edit', 'ring', '--bwlimit', '0'])).code).toBe(0);
    const next = await runOnNode2('ring');
    expect(next.code, next.out).toBe(0);
    expect((await versionsIn(n1)).filter((v) => v.id === '201').length).toBe(2);
    expect(stagingOf(n1, '201')).toEqual([]);
  });

  it('the link cut mid-push: the job fails within the timeouts, the guest runs again, nothing partial; after the link is back the next run succeeds', async () => {
    expect((await n2.cli(['job', 'edit', 'ring', '--bwlimit', '2'])).code).toBe(0);
    const before = (await versionsIn(n1)).filter((v) => v.id === '201').length;
    rewriteRandomDisk();
    const run = runOnNode2('ring');
    await until('the upload on node1', () => stagingOf(n1, '201').length > 0);
    await new Promise((r) => setTimeout(r, 1000));
    await n1.cutLink();
    const failed = await run; // bounded: cluster.timeoutSeconds 5 per try (vitest's timeout would catch a hang)
    await n1.restoreLink();
    expect(failed.code).not.toBe(0);
    expect(failed.out).toMatch(/Backup of VM 201 failed/);
    expect(await q2.driver.status('201')).toBe('running');
    await until("node1's idle timeout ending the cut upload", () => stagingOf(n1, '201').length === 0, 60_000);
    expect((await versionsIn(n1)).filter((v) => v.id === '201').length).toBe(before);
    expect((await n2.cli(['job', 'edit', 'ring', '--bwlimit', '0'])).code).toBe(0);
    const next = await runOnNode2('ring');
    expect(next.code, next.out).toBe(0);
    expect((await versionsIn(n1)).filter((v) => v.id === '201').length).toBe(before + 1);
  });

  it('the external disk sits at the receiving node: node1 mounts it for the push and unmounts it after; missing there, the job fails before the guest is stopped', async () => {
    const disk: Loop = loops.make('usb', '128M', (dev) => void sh('mkfs.ext4', ['-q', '-F', '-L', 'cvring', dev]));
    const usb = join(n1.root, 'usb');
    await n1.stop();
    n1.updateConfig({ datastores: { main: n1.storeDir, usb }, storeDevices: { usb: [`UUID=${disk.uuid}`] } });
    await n1.start();
    setEntry(n2, 'node1', {}, { usb: await n1.token('node2-usb', 'usb') }); // a backup token reaches one datastore
    const add = await n2.cli(['job', 'add', 'carry', '--mode', 'cluster', '--store', 'usb', '--vmid', '201', '--device', `UUID=${disk.uuid}`, '--init-device']);
    expect(add.code, add.stderr).toBe(0);
    expect((await n2.cli(['job', 'list'])).stdout).toContain(`node1:usb (disk UUID=${disk.uuid} at node node1)`);
    const ran = await runOnNode2('carry');
    expect(ran.code, ran.out).toBe(0);
    expect(ran.out).toContain('asking node node1 to mount the external disk');
    expect(await mounted(usb)).toBe(false);
    const onDisk = await loops.byHand(disk, async (dir) => (await n1.cliJson<Version[]>(['list', '--store', dir])).map((v) => v.id), true);
    expect(onDisk).toEqual(['201']);

    sh('losetup', ['-d', disk.path]); // unplugged at node1
    const bootsBefore = await readBootCount(guestFiles(q2.qemuDir, '201').disk).catch(() => -1);
    const missing = await n2.cli(['job', 'run', 'carry']);
    const out = missing.stdout + missing.stderr;
    expect(missing.code).not.toBe(0);
    expect(out).toMatch(new RegExp(`UUID=${disk.uuid}.*node1|node1.*UUID=${disk.uuid}`));
    expect(out).not.toContain('stopping virtual guest');
    expect(await q2.driver.status('201')).toBe('running');
    expect(await readBootCount(guestFiles(q2.qemuDir, '201').disk).catch(() => -1)).toBe(bootsBefore);
  });

  it('a wrong pinned fingerprint: cluster status says so and the push is refused before the guest is touched', async () => {
    const right = n2.fingerprint;
    const wrong = right.replace(/^../, right.startsWith('00') ? '11' : '00');
    setEntry(n3, 'node2', { fingerprint: wrong });
    try {
      const status = await n3.cli(['cluster', 'status', '--json']);
      expect(status.code).toBe(1);
      const node2 = (JSON.parse(status.stdout) as { nodes: Array<{ name: string; fingerprintOk: boolean | null }> }).nodes.find((n) => n.name === 'node2');
      expect(node2?.fingerprintOk).toBe(false);
      const before = (await versionsIn(n2)).length;
      const run = await n3.cli(['job', 'run', 'ring']);
      expect(run.code).not.toBe(0);
      expect(run.stdout + run.stderr).toContain(wrong);
      expect((await versionsIn(n2)).length).toBe(before);
    } finally {
      setEntry(n3, 'node2', { fingerprint: right });
    }
  });
});
