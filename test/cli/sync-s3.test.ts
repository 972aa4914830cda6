/**
 * `coldvault sync` between any two datastores, with S3 ones in a bucket of a REAL Ceph radosgw (one
 * for the file), through the real CLI: a folder into a bucket (s3:// with --endpoint) and a bucket
 * back into a folder (a configured name), each version with its number and its files byte for byte,
 * restoring byte-identical; a second sync fetches no chunk, a nightly's only its changed one (counted,
 * and in objects); a number at the target is never overwritten; keep-N in a bucket; a sync killed
 * with kill -9 mid-way leaves no version and the next one succeeds; a node's datastore (NODE:STORE)
 * into a bucket; sync jobs from and into configured S3 datastores; Object Lock retention of what a
 * sync writes; the errors of a bad --from / --to. In process (dist/): a sync held up past its lock's
 * life while a prune and a gc ran in the bucket publishes nothing (src/pipeline/sync/s3-sink.ts).
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTaskLog } from '../../dist/core/index.js';
import { collectS3Garbage, Datastore, S3Datastore } from '../../dist/datastore/index.js';
import { Catalog } from '../../dist/catalog/index.js';
import { folderSource, S3Sink, syncStore } from '../../dist/pipeline/index.js';
import type { GuestSink } from '../../src/pipeline/index.js';
import { S3Client } from '../../src/targets/index.js';
import { cli, type CliResult, spawnCli, writeGuest, writeImage, type Region } from '../helpers/fixtures.js';
import { freshBucket, startRadosgw, type Radosgw } from '../helpers/radosgw.js';
import type { ServeProcess } from '../helpers/serve-process.js';
import { restore, sleep, waitExit } from './cli-lab.js';
import { backupOnNode1, disk, guest, makeSyncLab, node2Config, sha256Of, startNode1, versionChunks, type SyncJson, type SyncLab } from './sync-lab.js';

let rgw: Radosgw;
let lab: SyncLab;
let node1: ServeProcess;
let bucket: string;
let s3: S3Client;
let config: string;

const url = (prefix: string): string => `s3://${bucket}/${prefix}`;
const toBucket = (prefix: string): string[] => ['--to', url(prefix), '--endpoint', rgw.endpoint];
const run = (args: string[]): Promise<CliResult> => cli([...args, '--config', config]);

/** `coldvault sync ARGS --json` with the lab's config: the exit code and the parsed result. */
async function sync(args: string[]): Promise<{ run: CliResult; json: SyncJson }> {
  const r = await run(['sync', ...args, '--json']);
  expect(r.stdout, r.stderr).not.toBe('');
  return { run: r, json: JSON.parse(r.stdout) as SyncJson };
}

async function keys(prefix: string): Promise<string[]> {
  const found = [];
  for await (const o of s3.list(prefix)) found.push(o.key);
  return found;
}

const chunkObjects = async (prefix: string): Promise<Set<string>> => new Set((await keys(`${prefix}/chunks/`)).map((k) => k.slice(k.lastIndexOf('/') + 1)));
const listed = async (prefix: string, id: string): Promise<number[]> =>
  (JSON.parse((await run(['list', id, '--store', url(prefix), '--endpoint', rgw.endpoint, '--json'])).stdout) as Array<{ version: number }>).map(
    (v) => v.version,
  );

/** Every file of version `version` of `id` in the bucket is the folder store's, byte for byte, and nothing else is there. */
async function sameFilesAsFolder(prefix: string, id: string, version: number, folder = lab.node1Store): Promise<void> {
  const dir = join(folder, 'guests', id, String(version));
  const names = readdirSync(dir).sort();
  const objects = (await keys(`${prefix}/guests/${id}/${version}/`)).map((k) => k.slice(k.lastIndexOf('/') + 1)).sort();
  expect(objects, `guest ${id} version ${version}`).toEqual(names);
  for (const name of names) expect((await s3.get(`${prefix}/guests/${id}/${version}/${name}`)).equals(readFileSync(join(dir, name))), name).toBe(true);
}

/** Restores version `version` of `id` from `store` (flags naming it) as `newId`: the SHA-256 of the restored disk. */
async function restoredHash(store: string[], id: string, version: number, newId: string): Promise<string> {
  const flags = [...store, '--guests-dir', lab.guestsDir, '--storage', `local=${lab.storageDir}`, '--state-dir', join(lab.root, 'restore-state')];
  const disks = await restore({ ...lab, flags }, id, version, newId);
  return sha256Of(disks.get('scsi0') as string);
}
const fromBucket = (prefix: string): string[] => ['--store', url(prefix), '--endpoint', rgw.endpoint];

beforeAll(async () => {
  rgw = await startRadosgw();
  lab = await makeSyncLab('cv-sync-s3-');
  bucket = freshBucket('sync');
  const env = { AWS_ACCESS_KEY_ID: rgw.accessKeyId, AWS_SECRET_ACCESS_KEY: rgw.secretAccessKey };
  Object.assign(process.env, env); // the CLI's children, spawnCli's too
  const credentials = { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey };
  s3 = new S3Client({ endpoint: rgw.endpoint, region: rgw.region, bucket, credentials });
  await backupOnNode1(lab, '101');
  await backupOnNode1(lab, '101', { region: 3, seed: 7 });
  await backupOnNode1(lab, '102');
  node1 = await startNode1(lab);
  const secret = join(lab.root, 's3-secret');
  writeFileSync(secret, `${rgw.secretAccessKey}\n`, { mode: 0o600 });
  const named = (prefix: string) => ({ type: 's3', endpoint: rgw.endpoint, bucket, prefix, accessKeyId: rgw.accessKeyId, secretAccessKeyFile: secret });
  config = node2Config(lab, node1.url, { datastores: { offsite: named('a'), vault: named('job'), usb: lab.node1Store } });
  for (const prefix of ['a', 'b', 'c', 'd', 'e', 'g']) expect((await cli(['datastore', 'init', url(prefix), '--endpoint', rgw.endpoint])).code).toBe(0);
}, 600_000);

afterAll(async () => {
  await node1?.stop();
  s3?.close();
  rgw?.stop();
  lab?.cleanup();
});

describe('coldvault sync with S3 datastores', () => {
  it('a folder into a bucket (s3:// --endpoint): every version with its number and its files byte for byte, each chunk once; each restores byte-identical', async () => {
    const { run: r, json } = await sync(['--from', lab.node1Store, ...toBucket('a')]);
    expect(r.code, r.stderr).toBe(0);
    expect(json.guests.map((g) => [g.id, g.pulled])).toEqual([
      ['101', [1, 2]],
      ['102', [1]],
    ]);
    expect(json.to).toBe(`${url('a')}/`);
    for (const [id, v] of [
      ['101', 1],
      ['101', 2],
      ['102', 1],
    ] as const)
      await sameFilesAsFolder('a', id, v);
    const needed = new Set([...versionChunks(lab.node1Store, '101', [1, 2]), ...versionChunks(lab.node1Store, '102', [1])]);
    expect(await chunkObjects('a')).toEqual(needed);
    expect(json.chunks.fetched).toBe(needed.size);
    expect(await restoredHash(fromBucket('a'), '101', 2, '612')).toBe(lab.imageAt.get('101/2'));
    expect(await restoredHash(fromBucket('a'), '102', 1, '621')).toBe(lab.imageAt.get('102/1'));
    expect(await keys('a/locks/')).toEqual([]); // the writer registration and the guest locks are gone
  });

  it("a second sync fetches no chunk; a nightly's sync fetches only its changed chunk, without a request per chunk there", async () => {
    const before = await chunkObjects('a');
    const again = await sync(['--from', 'usb', ...toBucket('a')]);
    expect(again.run.code, again.run.stderr).toBe(0);
    expect(again.json.guests.map((g) => [g.id, g.pulled, g.present])).toEqual([
      ['101', [], [1, 2]],
      ['102', [], [1]],
    ]);
    expect(again.json.chunks.fetched).toBe(0);
    expect(await chunkObjects('a')).toEqual(before);

    await backupOnNode1(lab, '101', { region: 0, seed: 8 }); // version 3: one region changed
    const changed = [...versionChunks(lab.node1Store, '101', [3])].filter((d) => !before.has(d));
    expect(changed).toHaveLength(1);
    const nightly = await sync(['--from', lab.node1Store, ...toBucket('a'), '--vmid', '101']);
    expect(nightly.run.code, nightly.run.stderr).toBe(0);
    expect(guest(nightly.json, '101').pulled).toEqual([3]);
    expect(nightly.json.chunks.fetched).toBe(1);
    expect(nightly.json.chunks.present).toBe(versionChunks(lab.node1Store, '101', [3]).size - 1);
    expect(nightly.run.stderr).toMatch(/guest 101: \d+ chunk\(s\) of version 2 here are known to be stored/);
    expect(await chunkObjects('a')).toEqual(new Set([...before, ...changed]));
    await sameFilesAsFolder('a', '101', 3);
  });

  it('a bucket into a folder (a configured S3 datastore by name): numbers kept, files byte for byte, each restores byte-identical; no lease left', async () => {
    const usb = join(lab.root, 'usb-from-bucket');
    expect((await cli(['datastore', 'init', usb])).code).toBe(0);
    const { run: r, json } = await sync(['--from', 'offsite', '--to', usb]);
    expect(r.code, r.stderr).toBe(0);
    expect(json.from).toBe('offsite');
    expect(json.guests.map((g) => [g.id, g.pulled])).toEqual([
      ['101', [1, 2, 3]],
      ['102', [1]],
    ]);
    for (const [id, v] of [
      ['101', 1],
      ['101', 2],
      ['101', 3],
      ['102', 1],
    ] as const) {
      for (const name of readdirSync(join(lab.node1Store, 'guests', id, String(v)))) {
        expect(readFileSync(join(usb, 'guests', id, String(v), name)).equals(readFileSync(join(lab.node1Store, 'guests', id, String(v), name))), name).toBe(
          true,
        );
      }
    }
    expect(await restoredHash(['--store', usb], '101', 3, '631')).toBe(lab.imageAt.get('101/3'));
    expect(await restoredHash(['--store', usb], '101', 1, '632')).toBe(lab.imageAt.get('101/1'));
    expect(await keys('a/locks/')).toEqual([]); // the read leases (locks/read-<vmid>-<version>/) are released
  });

  it('a number taken in the bucket is never overwritten; one pruned there is not pulled back', async () => {
    const local = await cli(['backup', '101', ...fromBucket('b'), '--guests-dir', lab.guestsDir, '--storage', `local=${lab.storageDir}`, '--config', config]);
    expect(local.code, local.stderr).toBe(0); // version 1 in the bucket: the disk as it is now
    const ownManifest = await s3.get('b/guests/101/1/manifest.json');
    const pulled = await sync(['--from', lab.node1Store, ...toBucket('b'), '--vmid', '101']);
    expect(pulled.run.code, pulled.run.stderr).toBe(0);
    const g = guest(pulled.json, '101');
    expect([g.pulled, g.skipped]).toEqual([[2, 3], [{ version: 1, reason: 'conflict' }]]);
    expect(pulled.run.stderr).toMatch(/WARN: guest 101: version\(s\) 1 here are other backups/);
    expect((await s3.get('b/guests/101/1/manifest.json')).equals(ownManifest)).toBe(true);
    const prune = await run(['prune', '101', '--keep-last', '1', ...fromBucket('b')]);
    expect(prune.code, prune.stderr).toBe(0);
    expect(await listed('b', '101')).toEqual([1]); // the newest backup by time: the one made here
    const after = await sync(['--from', lab.node1Store, ...toBucket('b'), '--vmid', '101']);
    expect(after.run.code, after.run.stderr).toBe(0);
    expect(guest(after.json, '101').skipped).toEqual([
      { version: 1, reason: 'conflict' },
      { version: 2, reason: 'older' },
      { version: 3, reason: 'older' },
    ]);
    expect(await listed('b', '101')).toEqual([1]);
  });

  it('--keep N rotates the versions in the bucket, and pulls none the rotation would remove at once', async () => {
    const first = await sync(['--from', lab.node1Store, ...toBucket('c'), '--vmid', '101', '--keep', '2']);
    expect(first.run.code, first.run.stderr).toBe(0);
    expect([guest(first.json, '101').pulled, guest(first.json, '101').skipped]).toEqual([[2, 3], [{ version: 1, reason: 'keep' }]]);
    await backupOnNode1(lab, '101', { region: 2, seed: 9 }); // version 4
    const second = await sync(['--from', lab.node1Store, ...toBucket('c'), '--vmid', '101', '--keep', '2']);
    expect(second.run.code, second.run.stderr).toBe(0);
    expect([guest(second.json, '101').pulled, guest(second.json, '101').pruned]).toEqual([[4], [2]]);
    expect(await listed('c', '101')).toEqual([3, 4]);
    expect(await keys('c/guests/101/2/')).toEqual([]);
    expect(await restoredHash(fromBucket('c'), '101', 4, '641')).toBe(lab.imageAt.get('101/4'));
  });

  it('a sync killed (kill -9) mid-way into a bucket leaves no version; the next one removes what it left and succeeds', async () => {
    writeGuest(lab, '103', [{ key: 'scsi0', file: 'vm-103-disk-0.raw' }]);
    writeImage(
      disk(lab, '103'),
      Array.from({ length: 24 }, () => 'random' as Region),
      103,
    );
    await backupOnNode1(lab, '103');
    const child = spawnCli(['sync', '--from', lab.node1Store, ...toBucket('d'), '--vmid', '103', '--config', config]);
    const exited = waitExit(child);
    for (let i = 0; i < 1000 && (await keys('d/chunks/')).length < 3; i++) await sleep(10);
    child.kill('SIGKILL');
    expect((await exited).signal).toBe('SIGKILL');
    expect((await keys('d/chunks/')).length).toBeGreaterThan(0);
    expect((await keys('d/chunks/')).length).toBeLessThan(24);
    expect(await listed('d', '103')).toEqual([]);
    // what a sync killed after its index PUT leaves: files of the version without its manifest
    await s3.put('d/guests/103/1/scsi0.fidx', Buffer.from('half'));
    const next = await sync(['--from', lab.node1Store, ...toBucket('d'), '--vmid', '103']);
    expect(next.run.code, next.run.stderr).toBe(0);
    expect(guest(next.json, '103').pulled).toEqual([1]);
    expect(next.run.stderr).toMatch(/removed the files of unfinished version\(s\) 1 of guest 103/);
    await sameFilesAsFolder('d', '103', 1);
    expect((await run(['verify', ...fromBucket('d')])).code).toBe(0);
    expect(await restoredHash(fromBucket('d'), '103', 1, '651')).toBe(lab.imageAt.get('103/1'));
  });

  it("a node's datastore (NODE:STORE) into a bucket", async () => {
    const { run: r, json } = await sync(['--from', 'node1:main', ...toBucket('e'), '--vmid', '102']);
    expect(r.code, r.stderr).toBe(0);
    expect(guest(json, '102').pulled).toEqual([1]);
    expect(json.wire.receivedBytes).toBeGreaterThan(0);
    await sameFilesAsFolder('e', '102', 1);
    expect(await restoredHash(fromBucket('e'), '102', 1, '661')).toBe(lab.imageAt.get('102/1'));
  });

  it('sync jobs: into a configured S3 datastore with keep-N there, and from it into a folder; a folder named in from is stored as its path', async () => {
    expect((await run(['datastore', 'init', 'vault'])).code).toBe(0);
    const add = await run(['job', 'add', 'to-vault', '--kind', 'sync', '--from', 'usb', '--store', 'vault', '--vmid', '101', '--keep', '2']);
    expect(add.code, add.stderr).toBe(0);
    const jobs = JSON.parse((await run(['job', 'list', '--json'])).stdout) as Array<{ id: string; from: string; store: string }>;
    expect(jobs.find((j) => j.id === 'to-vault')).toMatchObject({ from: lab.node1Store, store: 'vault' });
    const into = await run(['job', 'run', 'to-vault']);
    expect(into.code, into.stdout + into.stderr).toBe(0);
    expect(into.stdout).toMatch(/pulled version 4 of guest 101 .* into 's3:\/\/.*\/job\/guests\/101\/4'/);
    expect(await listed('job', '101')).toEqual([3, 4]);

    const back = join(lab.root, 'usb-from-job');
    expect((await run(['job', 'add', 'back', '--kind', 'sync', '--from', 'vault', '--store', back, '--all'])).code).toBe(0);
    const from = await run(['job', 'run', 'back']);
    expect(from.code, from.stdout + from.stderr).toBe(0);
    expect(await restoredHash(['--store', back], '101', 4, '671')).toBe(lab.imageAt.get('101/4'));
    const s3From = await run(['job', 'add', 'bad', '--kind', 'sync', '--from', url('job'), '--store', back, '--all']);
    expect(s3From.stderr).toMatch(/a sync job names an S3 datastore by a datastore name of the config file/);
  });

  it('into an Object Lock datastore: the files of a pulled version are retained its days, its chunks at least as long (chunks-until)', async () => {
    const locked = `s3://${freshBucket('locked')}/x`;
    expect((await cli(['datastore', 'init', locked, '--endpoint', rgw.endpoint, '--object-lock-days', '2'])).code).toBe(0);
    const { run: r } = await sync(['--from', lab.node1Store, '--to', locked, '--endpoint', rgw.endpoint, '--vmid', '102']);
    expect(r.code, r.stderr).toBe(0);
    const lockedS3 = new S3Client({
      endpoint: rgw.endpoint,
      region: rgw.region,
      bucket: locked.slice(5, locked.lastIndexOf('/')),
      credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey },
    });
    try {
      const day = 86_400_000;
      const manifest = await lockedS3.head('x/guests/102/1/manifest.json');
      expect(manifest?.retainUntil?.getTime()).toBeGreaterThan(Date.now() + 1.9 * day);
      const chunksUntil = new Date(manifest?.metadata['chunks-until'] ?? 0).getTime();
      expect(chunksUntil).toBeGreaterThanOrEqual(manifest?.retainUntil?.getTime() ?? Infinity);
      for (const hex of versionChunks(lab.node1Store, '102', [1])) {
        const chunk = await lockedS3.head(`x/chunks/${hex.slice(0, 4)}/${hex}`);
        expect(chunk?.retainUntil?.getTime()).toBeGreaterThanOrEqual(chunksUntil);
      }
    } finally {
      lockedS3.close();
    }
  });

  it('says what is wrong with a --from or --to it cannot take', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--from', 'nowhere', '--to', 'usb'], /--from 'nowhere' is no datastore name of the config file; expected .*absolute path.*NODE:STORE/],
      [['--from', 'relative/dir', '--to', 'usb'], /--from 'relative\/dir' is none of the forms/],
      [['--from', 'usb', '--to', 'node1:main'], /--to 'node1:main' names a datastore on node node1: a sync writes into a datastore of this node/],
      [['--from', url('a'), ...toBucket('b')], /--from and --to are both s3:\/\/ addresses/],
      [['--from', 'usb', '--to', join(lab.root, 'x'), '--endpoint', rgw.endpoint], /--endpoint goes with an s3:\/\/BUCKET\/PREFIX address in --from or --to/],
      [['--from', 'offsite', ...toBucket('a')], /the source and the target of a sync are the same datastore/],
    ];
    for (const [args, message] of cases) {
      const r = await run(['sync', ...args]);
      expect([r.code, r.stderr], args.join(' ')).toEqual([2, expect.stringMatching(message)]);
    }
  });
});

describe('a sync into a bucket, in process', () => {
  it("held up past its lock's life while a prune and a gc ran there: publishes nothing; the next sync stores the chunks afresh", async () => {
    writeGuest(lab, '104', [{ key: 'scsi0', file: 'vm-104-disk-0.raw' }]);
    writeImage(disk(lab, '104'), ['random', 'text', 'random'], 104);
    await backupOnNode1(lab, '104');
    expect((await sync(['--from', lab.node1Store, ...toBucket('g'), '--vmid', '104'])).run.code).toBe(0);
    await backupOnNode1(lab, '104', { region: 1, seed: 41 }); // version 2 reuses two chunks of version 1
    const settings = {
      endpoint: rgw.endpoint,
      region: rgw.region,
      bucket,
      prefix: 'g/',
      pathStyle: true,
      credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey },
    };
    const log = createTaskLog();
    const store = await S3Datastore.open(settings);
    const catalog = await Catalog.open(store, { file: join(lab.root, 'held-catalog.sqlite') });
    const source = folderSource(await Datastore.open(lab.node1Store), lab.node1Store);
    let removed = 0;
    const sink = new S3Sink(store, catalog);
    const holdGuest = sink.holdGuest.bind(sink);
    sink.holdGuest = async (...args: Parameters<S3Sink['holdGuest']>): Promise<GuestSink> => {
      const held = await holdGuest(...args);
      const publish = held.publish.bind(held);
      held.publish = async (...p: Parameters<GuestSink['publish']>) => {
        // as if this process had been stopped for more than an hour: its lock objects are stale and
        // cleared, another node prunes version 1 (whose chunks this sync reuses) and collects the garbage
        for await (const o of store.client.list('g/locks/')) await store.client.delete(o.key);
        await store.removeVersion('104', 1);
        removed = (await collectS3Garbage(store, log)).removedChunks;
        return publish(...p);
      };
      return held;
    };
    try {
      const result = await syncStore({ source, sink, guestIds: ['104'], log });
      const g = result.guests[0];
      expect([g?.ok, g?.code, g?.pulled]).toEqual([false, 'LOCKED', []]);
      expect(g?.error).toMatch(/a garbage collection ran in .* run the sync again/);
      expect(removed).toBe(4); // version 1's three chunks, and the one this sync stored for version 2
      expect(await store.listVersionNumbers('104')).toEqual([]);
    } finally {
      source.close();
      catalog.close();
      store.close();
    }
    const next = await sync(['--from', lab.node1Store, ...toBucket('g'), '--vmid', '104']);
    expect(next.run.code, next.run.stderr).toBe(0);
    expect(guest(next.json, '104')).toMatchObject({ pulled: [2], skipped: [{ version: 1, reason: 'older' }] });
    expect(next.json.chunks.fetched).toBe(3);
    expect(await restoredHash(fromBucket('g'), '104', 2, '681')).toBe(lab.imageAt.get('104/2'));
  });
});
