/**
 * `coldvault sync --from node1:main --to STORE` against a real `coldvault serve` (node1, plain HTTP on
 * 127.0.0.1) whose store holds versions of real backups, pulled as node2 with the scoped token node1
 * issued: exactly the versions the local store lacks are pulled, keeping their numbers, and restore
 * byte-identical; a second sync fetches no chunk; chunks already here are not fetched; a version
 * number here is never overwritten; a forged chunk on node1 fails that version only (nothing of it
 * published) and other guests sync; node1 killed mid-sync: a clear error, nothing partial, and the
 * next sync succeeds.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from '../helpers/fixtures.js';
import type { ServeProcess } from '../helpers/serve-process.js';
import { chunkFiles, leftovers } from './cli-lab.js';
import { backupOnNode1, guest, makeSyncLab, node2Config, restoredHash, StallingProxy, startNode1, sync, versionChunks, type SyncLab } from './sync-lab.js';

let lab: SyncLab;
let node1: ServeProcess;
let config: string;

const newStore = async (name: string): Promise<string> => {
  const dir = join(lab.root, name);
  expect((await cli(['datastore', 'init', dir])).code).toBe(0);
  return dir;
};
const localVersions = (store: string, id: string): number[] => {
  try {
    return readdirSync(join(store, 'guests', id))
      .filter((n) => /^\d+$/.test(n))
      .map(Number)
      .sort((a, b) => a - b);
  } catch {
    return [];
  }
};

beforeAll(async () => {
  lab = await makeSyncLab('cv-sync-');
  await backupOnNode1(lab, '101');
  await backupOnNode1(lab, '101', { region: 3, seed: 7 });
  await backupOnNode1(lab, '102');
  node1 = await startNode1(lab);
  config = node2Config(lab, node1.url);
});
afterAll(async () => {
  await node1?.stop();
  lab?.cleanup();
});

describe('coldvault sync', () => {
  let usb = '';

  it('pulls exactly the versions the local store lacks, keeping their numbers; each restores byte-identical', async () => {
    usb = await newStore('usb1');
    const first = await sync(config, usb, ['--vmid', '101']);
    expect(first.run.code, first.run.stderr).toBe(0);
    expect(first.json.guests.map((g) => [g.id, g.pulled])).toEqual([['101', [1, 2]]]);

    await backupOnNode1(lab, '101', { region: 0, seed: 8 }); // version 3 on node1
    const second = await sync(config, usb);
    expect(second.run.code, second.run.stderr).toBe(0);
    expect(second.json.guests.map((g) => [g.id, g.pulled, g.present])).toEqual([
      ['101', [3], [1, 2]],
      ['102', [1], []],
    ]);
    expect(second.run.stderr).toMatch(/bytes on the wire: .* received/);
    for (const [key, hash] of lab.imageAt) {
      const [id, version] = key.split('/') as [string, string];
      expect(await restoredHash(lab, usb, id, Number(version), String(600 + Number(id) - 100 + 10 * Number(version))), key).toBe(hash);
    }
  });

  it('a second sync of an unchanged node fetches no chunk and little else', async () => {
    const chunksBefore = chunkFiles(usb);
    const again = await sync(config, usb);
    expect(again.run.code, again.run.stderr).toBe(0);
    expect(again.json.guests.map((g) => [g.id, g.pulled, g.present])).toEqual([
      ['101', [], [1, 2, 3]],
      ['102', [], [1]],
    ]);
    expect(again.json.chunks.fetched).toBe(0);
    expect(again.json.wire.receivedBytes).toBeLessThan(16 * 1024); // the guest and version lists only
    expect(chunkFiles(usb)).toEqual(chunksBefore);
  });

  it('chunks already in the local store are not fetched, and a version number taken here is never overwritten', async () => {
    const here = await newStore('usb2');
    const local = await cli(['backup', '101', '--store', here, '--guests-dir', lab.guestsDir, '--storage', `local=${lab.storageDir}`]);
    expect(local.code, local.stderr).toBe(0); // version 1 here: the disk as it is now (node1's version 3)
    const ownManifest = readFileSync(join(here, 'guests/101/1/manifest.json'));
    const before = chunkFiles(here);
    const pulled = await sync(config, here, ['--vmid', '101']);
    expect(pulled.run.code, pulled.run.stderr).toBe(0);
    const g = guest(pulled.json, '101');
    expect([g.pulled, g.skipped]).toEqual([[2, 3], [{ version: 1, reason: 'conflict' }]]);
    expect(pulled.run.stderr).toMatch(/WARN: guest 101: version\(s\) 1 here are other backups/);
    expect(readFileSync(join(here, 'guests/101/1/manifest.json'))).toEqual(ownManifest);
    const needed = versionChunks(here, '101', [2, 3]);
    const lacking = [...needed].filter((d) => !before.has(d));
    expect(lacking.length).toBeGreaterThan(0);
    expect(lacking.length).toBeLessThan(needed.size);
    expect(pulled.json.chunks.fetched).toBe(lacking.length);
    const perVersion = versionChunks(here, '101', [2]).size + versionChunks(here, '101', [3]).size;
    expect(pulled.json.chunks.present + pulled.json.chunks.fetched).toBe(perVersion); // each version's chunks: touched here or fetched
    expect(await restoredHash(lab, here, '101', 3, '731')).toBe(lab.imageAt.get('101/3'));
  });

  it('a forged chunk on node1 fails the version that holds it, nothing of it is published; other guests sync; repaired, the next sync pulls it', async () => {
    const only102 = [...versionChunks(lab.node1Store, '102', [1])].filter((d) => !versionChunks(lab.node1Store, '101', [1, 2, 3]).has(d));
    const victim = only102[0] as string;
    const path = join(lab.node1Store, 'chunks', victim.slice(0, 4), victim);
    const original = readFileSync(path);
    const other = [...versionChunks(lab.node1Store, '101', [1])][0] as string;
    writeFileSync(path, readFileSync(join(lab.node1Store, 'chunks', other.slice(0, 4), other))); // a valid blob under a wrong name
    const store = await newStore('usb3');
    try {
      const failed = await sync(config, store);
      expect(failed.run.code).toBe(1);
      const g102 = guest(failed.json, '102');
      expect([g102.ok, g102.code, g102.pulled]).toEqual([false, 'CHUNK_CORRUPT', []]);
      expect(g102.error).toContain(victim);
      expect(g102.error).toMatch(/does not hash to its name/);
      expect(localVersions(store, '102')).toEqual([]);
      expect(leftovers(store, '102')).toEqual([]);
      expect(chunkFiles(store).has(victim)).toBe(false);
      expect(guest(failed.json, '101').pulled).toEqual([1, 2, 3]);
      expect(failed.run.stderr).toMatch(/ERROR: sync of guest 102 from node1:main failed - pulling version 1 of guest 102 failed, nothing of it was published/);
    } finally {
      writeFileSync(path, original);
    }
    const repaired = await sync(config, store);
    expect(repaired.run.code, repaired.run.stderr).toBe(0);
    expect(guest(repaired.json, '102').pulled).toEqual([1]);
    expect(await restoredHash(lab, store, '102', 1, '741')).toBe(lab.imageAt.get('102/1'));
  });

  it('node1 killed (kill -9) in the middle of a sync: a clear error naming it, no version or staging left, and the next sync succeeds', async () => {
    const store = await newStore('usb4');
    const proxy = await StallingProxy.start(node1.url, 6 * 1024 * 1024);
    const viaProxy = node2Config(lab, proxy.url);
    try {
      const running = sync(viaProxy, store, ['--vmid', '101']);
      const first = await Promise.race([proxy.stalled.then(() => 'stalled' as const), running.then(() => 'ended' as const)]);
      expect(first, 'the sync ended before node1 could be stopped').toBe('stalled');
      node1.child.kill('SIGKILL');
      await node1.stop();
      const { run, json } = await running;
      expect(run.code).toBe(1);
      const g = guest(json, '101');
      expect([g.ok, g.code, g.pulled]).toEqual([false, 'CONNECTION_FAILED', []]);
      expect(g.error).toContain(proxy.url);
      expect(localVersions(store, '101')).toEqual([]);
      expect(leftovers(store, '101')).toEqual([]);
      expect(readdirSync(join(store, 'locks')).filter((n) => !n.startsWith('.'))).toEqual([]);
    } finally {
      await proxy.close();
    }
    node1 = await startNode1(lab);
    config = node2Config(lab, node1.url);
    const next = await sync(config, store, ['--vmid', '101']);
    expect(next.run.code, next.run.stderr).toBe(0);
    expect(guest(next.json, '101').pulled).toEqual([1, 2, 3]);
    expect(await restoredHash(lab, store, '101', 3, '751')).toBe(lab.imageAt.get('101/3'));
  });
});
