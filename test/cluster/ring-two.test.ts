/**
 * A two-node cluster is a ring too: each node's backups land on the other. Two real `coldvault
 * serve` processes in their own network namespaces (ring-lab.ts), guests not running (driver none),
 * cluster-mode jobs on both; and a scoped token's limits seen from a cluster job: the store named
 * by the job must be the token's, else the push is refused before anything is sent, naming the store.
 * And an encrypted push (issue 13): the receiving node stores what it cannot read (it checks the
 * blobs' CRC), and only the key restores it there or from the sending node (--remote).
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imagePath, sha256File, writeGuest, writeImage } from '../helpers/fixtures.js';
import type { Cluster, ClusterNode } from '../helpers/netns.js';
import { volumePath } from '../cli/cli-lab.js';
import { makeRing } from './ring-lab.js';

let ring: Cluster;
let a: ClusterNode;
let b: ClusterNode;

beforeAll(async () => {
  ring = await makeRing({ nodes: 2, config: (node) => ({ datastores: { main: node.storeDir, other: `${node.root}/other` } }) });
  [a, b] = ring.nodes as [ClusterNode, ClusterNode];
  for (const [node, vmid] of [
    [a, '111'],
    [b, '222'],
  ] as const) {
    writeGuest(node, vmid, [{ key: 'scsi0', file: `vm-${vmid}-disk-0.raw` }]);
    writeImage(imagePath(node, vmid, `vm-${vmid}-disk-0.raw`), ['text', 'random', 'zero'], Number(vmid));
    const add = await node.cli(['job', 'add', 'ring', '--mode', 'cluster', '--store', 'main', '--vmid', vmid]);
    expect(add.code, add.stderr).toBe(0);
  }
}, 120_000);

afterAll(async () => {
  await ring?.destroy();
});

describe('a two-node cluster', { timeout: 120_000 }, () => {
  it("each node's backups land on the other, and restore there byte-identical", async () => {
    const [ra, rb] = await Promise.all([a.cli(['job', 'run', 'ring']), b.cli(['job', 'run', 'ring'])]);
    expect(ra.code, ra.stdout + ra.stderr).toBe(0);
    expect(rb.code, rb.stdout + rb.stderr).toBe(0);
    expect((await b.cliJson<Array<{ id: string }>>(['list', '--store', 'main'])).map((v) => v.id)).toEqual(['111']);
    expect((await a.cliJson<Array<{ id: string }>>(['list', '--store', 'main'])).map((v) => v.id)).toEqual(['222']);
    const restored = await b.cliJson<{ volumes: Record<string, string> }>(['restore', '111', '--version', '1', '--new-id', '811', '--store', 'main']);
    expect(sha256File(volumePath(b, restored.volumes.scsi0 as string))).toBe(sha256File(imagePath(a, '111', 'vm-111-disk-0.raw')));
    const status = await a.cliJson<{ sendsTo: string; receivesFrom: string }>(['cluster', 'status']);
    expect(status).toMatchObject({ sendsTo: 'node2', receivesFrom: 'node2' });
  });

  it("a cluster job naming a store outside the token's scope is refused, naming the store; nothing lands there", async () => {
    expect((await a.cli(['job', 'add', 'wrong', '--mode', 'cluster', '--store', 'other', '--vmid', '111'])).code).toBe(0);
    const run = await a.cli(['job', 'run', 'wrong']);
    expect(run.code).toBe(1);
    expect(run.stdout + run.stderr).toMatch(/Backup of VM 111 failed - .*'other'/);
    expect(run.stdout + run.stderr).not.toContain('stopping virtual guest');
    const status = await a.cli(['cluster', 'status', '--json']);
    expect(status.code).toBe(1);
    const stores = (JSON.parse(status.stdout) as { stores: Array<{ store: string; ok: boolean }> }).stores;
    expect(stores.find((s) => s.store === 'other')?.ok).toBe(false);
    expect(stores.find((s) => s.store === 'main')?.ok).toBe(true);
  });

  it('an encrypted push lands on the other node as an encrypted version that only the key restores, there or from the sender', async () => {
    const key = join(a.root, 'ring.key');
    const made = await a.cliJson<{ fingerprint: string }>(['key', 'create', key, '--kdf', 'none']);
    const add = await a.cli(['job', 'add', 'enc', '--mode', 'cluster', '--store', 'main', '--vmid', '111', '--encrypt', key]);
    expect(add.code, add.stderr).toBe(0);
    const run = await a.cli(['job', 'run', 'enc']);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    const listed = await b.cliJson<Array<{ id: string; version: number; keyFingerprint: string | null }>>(['list', '111', '--store', 'main']);
    expect(listed.map((v) => [v.version, v.keyFingerprint])).toEqual([
      [1, null],
      [2, made.fingerprint],
    ]);
    const refused = await b.cli(['restore', '111', '--version', '2', '--new-id', '812', '--store', 'main']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`encrypted with key ${made.fingerprint}`);
    const there = await b.cliJson<{ volumes: Record<string, string> }>([
      'restore',
      '111',
      '--version',
      '2',
      '--new-id',
      '812',
      '--store',
      'main',
      '--keyfile',
      key,
    ]);
    expect(sha256File(volumePath(b, there.volumes.scsi0 as string))).toBe(sha256File(imagePath(a, '111', 'vm-111-disk-0.raw')));
    const back = await a.cliJson<{ volumes: Record<string, string> }>([
      'restore',
      '111',
      '--version',
      '2',
      '--new-id',
      '813',
      '--remote',
      'node2',
      '--store',
      'main',
      '--keyfile',
      key,
    ]);
    expect(sha256File(volumePath(a, back.volumes.scsi0 as string))).toBe(sha256File(imagePath(a, '111', 'vm-111-disk-0.raw')));
    const verified = await b.cliJson<{ ok: boolean; contentUnchecked: unknown[] }>(['verify', '111', '--store', 'main']);
    expect(verified).toMatchObject({ ok: true, contentUnchecked: [{ guestId: '111', version: 2, fingerprint: made.fingerprint }] });
  });
});
