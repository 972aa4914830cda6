/**
 * The point of the ring, for real: node2's backup lands on node1 (pushed over pinned HTTPS from
 * node2's namespace with the upload protocol), then node3, in its own namespace with only node1's
 * url, fingerprint and backup token in its `cluster.nodes`, lists, verifies and restores it with
 * `coldvault list|verify|restore --remote node1 --store main`: the restored disk is byte-identical to
 * node2's, the config is written under the new ID on node3, and node3's own datastore is not touched.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Datastore } from '../../dist/datastore/index.js';
import { imagePath, sha256File, writeGuest, writeImage } from '../helpers/fixtures.js';
import { Cluster } from '../helpers/netns.js';
import { Relay } from '../helpers/netns-relay.js';
import { volumePath } from '../cli/cli-lab.js';
import { Pusher, readSource } from '../server/upload-client.js';

let cluster: Cluster;
let relay: Relay | undefined;

beforeAll(async () => {
  cluster = await Cluster.create({ nodes: 3 });
});
afterAll(async () => {
  await relay?.stop();
  await cluster?.destroy();
});

describe("restore on node3 of node2's guest from node1's store (--remote node1 --store main)", () => {
  it('lists, verifies and restores it byte-identical over pinned HTTPS between namespaces', async () => {
    const [n1, n2, n3] = [cluster.node(1), cluster.node(2), cluster.node(3)];
    writeGuest(n2, '101', [{ key: 'scsi0', file: 'vm-101-disk-0.raw' }]);
    const image = imagePath(n2, '101', 'vm-101-disk-0.raw');
    writeImage(image, ['random', 'text', 'zero', 'random', 'text'], 23);
    const [backup] = await n2.cliJson<Array<{ ok: boolean }>>(['backup', '101', '--store', 'main']);
    expect(backup).toMatchObject({ ok: true });
    relay = await Relay.start(n2, n1);
    const source = await Datastore.open(n2.storeDir);
    const pushed = await new Pusher(relay.send(await n1.token('node2')), 'main').push(source, await readSource(source, '101', 1), {
      guestId: '101',
      node: 'node2',
    });

    n3.updateConfig({ cluster: { nodes: [{ name: 'node1', url: n1.url, fingerprint: n1.fingerprint, token: await n1.token('node3') }] } });
    const remote = ['--remote', 'node1', '--store', 'main'];
    const listed = await n3.cliJson<Array<{ id: string; version: number; node: string }>>(['list', ...remote]);
    expect(listed.map((v) => [v.id, v.version, v.node])).toEqual([['101', pushed.version, 'node2']]);
    const verified = await n3.cliJson<{ ok: boolean; chunks: number }>(['verify', ...remote]);
    expect(verified.ok).toBe(true);
    expect(verified.chunks).toBeGreaterThan(0);

    const restored = await n3.cliJson<{ config: string; volumes: Record<string, string> }>([
      'restore',
      '101',
      '--version',
      String(pushed.version),
      '--new-id',
      '301',
      ...remote,
    ]);
    expect(sha256File(volumePath(n3, restored.volumes.scsi0!))).toBe(sha256File(image));
    expect(restored.config).toBe(join(n3.guestsDir, '301.conf'));
    expect(readFileSync(restored.config, 'utf8')).toContain('scsi0: local:301/vm-301-disk-0.raw');
    expect(await (await Datastore.open(n3.storeDir)).listGuestIds()).toEqual([]); // read from node1, not node3's own store
  });
});
