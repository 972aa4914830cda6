/**
 * Cluster mode into an S3 datastore (issue 14): node1's real `coldvault serve` on 127.0.0.1 keeps what
 * it receives in a bucket of a REAL Ceph radosgw (configured datastore `offsite`, its secret in a 0600
 * file); nodeA, a config of its own (its guests, no datastore), pushes there with cluster-mode jobs and
 * a scoped token made by `coldvault token create --role backup --store offsite`. A push lands as a
 * version that `restore --remote` brings back byte-identical; an unchanged push stores no chunk and a
 * changed one only the changed chunk; `sync --from node1:offsite` pulls them; kill -9 of the sender mid-push leaves no visible version, S3 gc
 * then removes what it sent and nothing else, the next push succeeds; a chunk that does not hash to its
 * name is refused and never stored, `known` answers from the guest's newest version only, an index
 * naming a chunk not there is refused, an abort leaves nothing, keep rotates; kill -9 of the receiving
 * serve leaves nothing visible and the next upload opens; a remote read lease is the bucket's read lock that prune
 * respects; tokens reach their own store only; `--device` is refused naming the node and store;
 * `cluster status` says the store is an S3 datastore; an Object Lock datastore keeps pushed versions
 * under retention. No mock S3 server, no network namespaces.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, imagePath, rewriteRegion, sha256File, spawnCli, writeGuest, writeImage, type CliResult, type Region } from '../helpers/fixtures.js';
import { freshBucket, startRadosgw, type Radosgw } from '../helpers/radosgw.js';
import { startServe, type ServeProcess } from '../helpers/serve-process.js';
import { sleep, waitExit } from '../cli/cli-lab.js';
import { client, makeRemoteLab, makeToken, type RemoteLab, type ServeConfig } from '../targets/remote-lab.js';
import { expectOk, fetchSend, Pusher, readSource } from '../server/upload-client.js';
import { Datastore, S3Datastore, type S3StoreSettings } from '../../dist/datastore/index.js';
import { MANIFEST_FILE } from '../../dist/format/index.js';

let rgw: Radosgw;
let lab: RemoteLab;
let server: ServeConfig;
let serve: ServeProcess;
let settings: S3StoreSettings;
let vaultSettings: S3StoreSettings;
let bucket: S3Datastore;
let token: string;
let mainToken: string;
let vaultToken: string;
let nodeA: string;

/** 64 MiB that do not compress: a push of them at 8 MB/s takes about 8 s */
const BIG: Region[] = Array.from({ length: 16 }, () => 'random');

interface Task {
  id: string;
  type: string;
  status: string;
  summary: string | null;
  start: string;
  result: Record<string, unknown> | null;
}

beforeAll(async () => {
  rgw = await startRadosgw();
  lab = await makeRemoteLab();
  const name = freshBucket('ring');
  settings = s3Settings(name, 'pve1/');
  (await S3Datastore.init(settings)).close();
  vaultSettings = s3Settings(freshBucket('vault'), 'pve1/');
  (await S3Datastore.init(vaultSettings, { objectLockDays: 1 })).close();
  const secret = join(lab.root, 's3-secret');
  writeFileSync(secret, `${rgw.secretAccessKey}\n`, { mode: 0o600 });
  const entry = (s: S3StoreSettings) => ({
    type: 's3',
    endpoint: rgw.endpoint,
    bucket: s.bucket,
    prefix: 'pve1',
    region: rgw.region,
    accessKeyId: rgw.accessKeyId,
    secretAccessKeyFile: secret,
    pathStyle: true,
  });
  const dir = join(lab.root, 'node1');
  server = await lab.serveConfig('node1', {
    datastores: { main: join(dir, 'main'), other: join(dir, 'other'), offsite: entry(settings), vault: entry(vaultSettings) },
    uploadIdleSeconds: 10, // above the time the first 8 chunks in flight take to arrive at the bandwidth limit
  });
  token = await makeToken(server, 'nodeA', 'backup', 'offsite');
  mainToken = await makeToken(server, 'nodeA-main', 'backup', 'main');
  vaultToken = await makeToken(server, 'nodeA-vault', 'backup', `s3://${vaultSettings.bucket}/pve1/`); // by its address
  serve = await startServe(['--config', server.path, '--listen', '127.0.0.1:0']);
  bucket = await S3Datastore.open(settings);
  writeGuest(lab, '104', [{ key: 'scsi0', file: 'vm-104-disk-0.raw' }]);
  writeImage(imagePath(lab, '104', 'vm-104-disk-0.raw'), BIG, 104);
  nodeA = nodeAConfig();
}, 600_000);

afterAll(async () => {
  await serve?.stop();
  bucket?.close();
  rgw?.stop();
  lab?.cleanup();
});

function s3Settings(name: string, prefix: string): S3StoreSettings {
  return {
    endpoint: rgw.endpoint,
    region: rgw.region,
    bucket: name,
    prefix,
    pathStyle: true,
    credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey },
  };
}

/** nodeA: the lab's guests, no datastore, node1 before it in the ring with the offsite token (and the vault's). */
function nodeAConfig(): string {
  const root = join(lab.root, 'nodeA');
  mkdirSync(root, { recursive: true });
  const path = join(root, 'coldvault.json');
  const nodes = [
    { name: 'node1', url: serve.url, token, tokens: { vault: vaultToken, main: mainToken } },
    { name: 'nodeA', url: 'http://127.0.0.1:1' },
  ];
  const config = { node: 'nodeA', stateDir: join(root, 'state'), guestsDir: lab.guestsDir, storages: { local: lab.storageDir }, datastores: {} };
  writeFileSync(path, JSON.stringify({ ...config, hypervisor: { driver: 'none' }, cluster: { nodes, timeoutSeconds: 5 } }));
  return path;
}

const onA = (args: string[]): Promise<CliResult> => cli([...args, '--config', nodeA]);
const onNode1 = (args: string[]): Promise<CliResult> => cli([...args, '--config', server.path]);

async function ok(result: Promise<CliResult>): Promise<CliResult> {
  const r = await result;
  expect(r.code, r.stdout + r.stderr).toBe(0);
  return r;
}

async function chunkObjects(store = bucket): Promise<Set<string>> {
  const found = new Set<string>();
  for await (const o of store.client.list(store.keys.chunks())) found.add(o.key.slice(o.key.lastIndexOf('/') + 1));
  return found;
}

/** Every chunk a published version of the bucket names. */
async function referenced(): Promise<Set<string>> {
  const found = new Set<string>();
  for (const guestId of await bucket.listGuestIds()) {
    for (const version of await bucket.listVersionNumbers(guestId)) {
      for (const disk of (await bucket.readManifest(guestId, version)).disks) {
        for (const d of (await bucket.readIndex(guestId, version, disk.index)).digests) if (d) found.add(d.toString('hex'));
      }
    }
  }
  return found;
}

async function uploadTasks(): Promise<Task[]> {
  const r = await ok(onNode1(['task', 'list', '--json']));
  return (JSON.parse(r.stdout) as Task[]).filter((t) => t.type === 'upload').sort((a, b) => a.start.localeCompare(b.start));
}

async function until(what: string, check: () => Promise<boolean>, ms = 60_000): Promise<void> {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(100)) if (await check()) return;
  throw new Error(`timed out waiting for ${what}`);
}

async function restoreFromNode1(id: string, version: number, newId: string, store = 'offsite'): Promise<string> {
  const r = await ok(onA(['restore', id, '--version', String(version), '--new-id', newId, '--remote', 'node1', '--store', store, '--json']));
  const out = JSON.parse(r.stdout) as { volumes: Record<string, string> };
  expect(out.volumes.scsi0).toBe(`local:${newId}/vm-${newId}-disk-0.raw`);
  return join(lab.storageDir, 'images', newId, `vm-${newId}-disk-0.raw`);
}

const node = (): string => lab.versions['103']!.manifest.node;

describe('a cluster push into an S3 datastore on the receiving node', () => {
  it('lands as a version in the bucket (catalog, task) that restore --remote brings back byte-identical', async () => {
    await ok(onA(['job', 'add', 'push', '--mode', 'cluster', '--store', 'offsite', '--vmid', '101']));
    await ok(onA(['job', 'run', 'push']));
    expect(await bucket.listVersionNumbers('101')).toEqual([1]);
    const listed = JSON.parse((await ok(onNode1(['list', '--store', 'offsite', '--json']))).stdout) as Array<{ id: string; version: number; node: string }>;
    expect(listed.map((v) => [v.id, v.version, v.node])).toEqual([['101', 1, 'nodeA']]);
    const [task] = await uploadTasks();
    expect(task).toMatchObject({ status: 'ok', summary: "receive guest 101 from node nodeA into S3 datastore 'offsite'" });
    expect(task?.result).toMatchObject({ store: 'offsite', version: 1, chunks: lab.versions['101']!.digests.length });
    expect(await chunkObjects()).toEqual(new Set(lab.versions['101']!.digests));
    const disk = await restoreFromNode1('101', 1, '301');
    expect(sha256File(disk)).toBe(sha256File(imagePath(lab, '101', 'vm-101-disk-0.raw')));
  });

  it('deduplicates: an unchanged push stores no chunk, a push after one changed region stores that chunk alone', async () => {
    const before = await chunkObjects();
    await ok(onA(['job', 'run', 'push']));
    expect(await bucket.listVersionNumbers('101')).toEqual([1, 2]);
    expect(await chunkObjects()).toEqual(before);
    expect((await uploadTasks()).at(-1)?.result).toMatchObject({ version: 2, chunks: 0, missing: 0 });
    rewriteRegion(imagePath(lab, '101', 'vm-101-disk-0.raw'), 0, 'random', 4242);
    await ok(onA(['job', 'run', 'push']));
    const after = await chunkObjects();
    expect([...after].filter((hex) => !before.has(hex))).toHaveLength(1);
    expect((await uploadTasks()).at(-1)?.result).toMatchObject({ version: 3, chunks: 1 });
    const disk = await restoreFromNode1('101', 3, '302');
    expect(sha256File(disk)).toBe(sha256File(imagePath(lab, '101', 'vm-101-disk-0.raw')));
  });

  it('sync --from node1:offsite pulls its versions into a folder datastore on nodeA, each chunk checked', async () => {
    const dir = join(lab.root, 'nodeA', 'copy');
    await Datastore.init(dir);
    await ok(onA(['sync', '--from', 'node1:offsite', '--to', dir, '--vmid', '101', '--json']));
    const copy = await Datastore.open(dir);
    expect(await copy.listVersionNumbers('101')).toEqual(await bucket.listVersionNumbers('101'));
    await ok(onA(['verify', '--store', dir]));
  });

  it("refuses a chunk that does not hash to its name (never stored); `known` answers from the guest's newest version and the node's chunk cache, never a HEAD; an index naming a chunk not there is refused", async () => {
    const src = await readSource(lab.source, '103', 1);
    const p = new Pusher(fetchSend(serve.url, token), 'offsite');
    expectOk(await p.open({ guestId: '103', node: node() }), 'open');
    const inBucket = [...(await chunkObjects())][0] as string;
    // no HEAD per chunk: guest 103 has no version here; what node1 published in the bucket is known from its chunk cache
    expect(await p.known([inBucket, ...src.digests])).toEqual(src.digests);
    const [x, y] = src.digests as [string, string];
    const blob = await lab.source.chunks.readBlob(x);
    const forged = await p.chunk(y, blob);
    expect([forged.status, forged.code]).toEqual([400, 'CHUNK_FORGED']);
    const flipped = Buffer.from(blob);
    flipped[flipped.length - 1] = (flipped[flipped.length - 1] ?? 0) ^ 0xff;
    expect((await p.chunk(x, flipped)).code).toBe('CHUNK_FORGED');
    expect(await bucket.client.head(bucket.keys.chunk(y))).toBeUndefined();
    expect(await bucket.client.head(bucket.keys.chunk(x))).toBeUndefined();
    const index = [...src.files.keys()].find((n) => n.endsWith('.fidx')) as string;
    const early = await p.file(index, src.files.get(index)!);
    expect([early.status, early.code]).toEqual([409, 'CHUNK_MISSING']);
    await p.chunks(lab.source, src.digests);
    await p.files(src.files);
    expect((await p.finish({ ...src.manifest, node: 'someone-else' })).code).toBe('MANIFEST_INVALID');
    expect(await bucket.listVersionNumbers('103')).toEqual([]);
    expectOk(await p.finish(src.manifest), 'finish');
    expect(await bucket.listVersionNumbers('103')).toEqual([p.version]);
  });

  it('an aborted upload leaves nothing of its version; a finished one with keep rotates the guest on node1', async () => {
    const src = await readSource(lab.source, '103', 1);
    const aborted = new Pusher(fetchSend(serve.url, token), 'offsite');
    expectOk(await aborted.open({ guestId: '103', node: node() }), 'open');
    await aborted.files(new Map([...src.files].filter(([n]) => n === 'qemu-server.conf')));
    expect((await bucket.versionFolders('103')).map((v) => v.version)).toContain(aborted.version);
    expectOk(await aborted.abort(), 'abort');
    expect(await bucket.versionFolders('103')).toEqual([{ version: aborted.version - 1, published: true }]);
    const kept = await new Pusher(fetchSend(serve.url, token), 'offsite').push(lab.source, src, { guestId: '103', node: node(), keep: 1 });
    expect(kept.sent).toBe(0); // every chunk of the newest version is known
    expect(await bucket.listVersionNumbers('103')).toEqual([kept.version]);
    const listed = JSON.parse((await ok(onNode1(['list', '103', '--store', 'offsite', '--json']))).stdout) as Array<{ version: number }>;
    expect(listed.map((v) => v.version)).toEqual([kept.version]);
  });

  it('kill -9 of the sender mid-push: no visible version; S3 gc then removes what it sent and nothing else; the next push succeeds', async () => {
    await ok(onA(['job', 'add', 'big', '--mode', 'cluster', '--store', 'offsite', '--vmid', '104', '--bwlimit', '8']));
    const before = await chunkObjects();
    const run = spawnCli(['job', 'run', 'big', '--config', nodeA]);
    let out = '';
    run.stdout?.on('data', (b: Buffer) => (out += b.toString()));
    run.stderr?.on('data', (b: Buffer) => (out += b.toString()));
    await until('chunks of the push in the bucket', async () => (await chunkObjects()).size > before.size).catch((err: Error) => {
      throw new Error(`${err.message}; the job said:\n${out}`);
    });
    run.kill('SIGKILL');
    await waitExit(run);
    await until("node1's idle timeout ending the upload", async () => (await uploadTasks()).at(-1)?.status === 'failed');
    expect(await bucket.listVersionNumbers('104')).toEqual([]);
    expect(await bucket.versionFolders('104')).toEqual([]); // its files are gone with the abort
    const published = await referenced();
    const left = [...(await chunkObjects())].filter((hex) => !published.has(hex));
    expect(left.length).toBeGreaterThan(0);
    await ok(onNode1(['gc', '--store', 'offsite']));
    expect(await chunkObjects()).toEqual(published);
    await ok(onNode1(['verify', '--store', 'offsite']));
    await ok(onA(['job', 'edit', 'big', '--bwlimit', '0']));
    await ok(onA(['job', 'run', 'big']));
    const [version] = await bucket.listVersionNumbers('104');
    expect(version).toBe(2); // number 1 went to the killed push and is never used again
    const disk = await restoreFromNode1('104', version as number, '304');
    expect(sha256File(disk)).toBe(sha256File(imagePath(lab, '104', 'vm-104-disk-0.raw')));
  });

  it("a remote reader's lease is the bucket's read lock: prune keeps the version until it is released", async () => {
    const remote = client(serve.url, token, { store: 'offsite' });
    try {
      const lease = await remote.leaseVersion('101', 1);
      const readers = [];
      for await (const o of bucket.client.list(`${settings.prefix}locks/read-101-1/`)) readers.push(o.key);
      expect(readers).toHaveLength(1);
      const kept = await ok(onNode1(['prune', '101', '--keep-last', '1', '--store', 'offsite']));
      expect(kept.stderr + kept.stdout).toContain('kept version 1 of VM 101: it is being read (held by read by token:nodeA');
      expect(await bucket.listVersionNumbers('101')).toEqual([1, 3]);
      await lease.release();
      await ok(onNode1(['prune', '101', '--keep-last', '1', '--store', 'offsite']));
      expect(await bucket.listVersionNumbers('101')).toEqual([3]);
      const gone = await remote.leaseVersion('101', 1).then(
        () => 'leased',
        (err: { code?: string }) => err.code,
      );
      expect(gone).toBe('VERSION_NOT_FOUND');
    } finally {
      remote.close();
    }
  });

  it('a scoped token reaches its own store only', async () => {
    const get = (store: string, bearer: string) => fetch(`${serve.url}/api/v1/stores/${store}/guests`, { headers: { authorization: `Bearer ${bearer}` } });
    expect((await get('offsite', token)).status).toBe(200);
    expect((await get('offsite', mainToken)).status).toBe(403);
    expect((await get('main', token)).status).toBe(403);
    expect((await get('vault', token)).status).toBe(403);
    const open = await new Pusher(fetchSend(serve.url, mainToken), 'offsite').open({ guestId: '103', node: node() });
    expect([open.status, open.code]).toEqual([403, 'FORBIDDEN']);
    const made = await onNode1(['token', 'create', 'nowhere', '--role', 'backup', '--store', 's3://no-such-bucket/pve1/']);
    expect(made.code).toBe(2);
    expect(made.stderr).toContain('is not a configured datastore (configured: main, other, offsite, vault');
  });

  it('cluster status says the receiving store is an S3 datastore; --device with it is refused naming the node and the store', async () => {
    const status = JSON.parse((await onA(['cluster', 'status', '--json'])).stdout) as { stores: Array<{ store: string; ok: boolean; kind?: string }> };
    expect(status.stores.find((s) => s.store === 'offsite')).toMatchObject({ ok: true, kind: 's3' });
    const text = await onA(['cluster', 'status']);
    expect(text.stdout).toContain("S3 datastore 'offsite' on node1");
    await ok(onA(['job', 'add', 'carry', '--mode', 'cluster', '--store', 'offsite', '--vmid', '101', '--device', 'UUID=0a1b-2c3d']));
    const run = await onA(['job', 'run', 'carry']);
    const out = run.stdout + run.stderr;
    expect(run.code).toBe(1);
    expect(out).toMatch(/node node1 refuses to mount an external disk: datastore 'offsite' there is an S3 datastore/);
    expect(out).not.toContain('stopping virtual guest');
  });

  it('kill -9 of the receiving serve mid-upload: nothing visible; restarted, the next upload of the guest opens (the dead lock ignored, its files removed)', async () => {
    const src = await readSource(lab.source, '103', 1);
    const p = new Pusher(fetchSend(serve.url, token), 'offsite');
    expectOk(await p.open({ guestId: '103', node: node() }), 'open');
    await p.files(new Map([...src.files].filter(([n]) => n === 'qemu-server.conf')));
    serve.child.kill('SIGKILL');
    await waitExit(serve.child);
    const published = await bucket.listVersionNumbers('103');
    expect((await bucket.versionFolders('103')).filter((v) => !v.published).map((v) => v.version)).toEqual([p.version]);
    serve = await startServe(['--config', server.path, '--listen', '127.0.0.1:0']);
    nodeA = nodeAConfig();
    const again = new Pusher(fetchSend(serve.url, token), 'offsite');
    expectOk(await again.open({ guestId: '103', node: node() }), 'the next upload opens');
    expect(again.version).toBe(p.version + 1);
    expect((await bucket.versionFolders('103')).filter((v) => !v.published)).toEqual([]); // the dead run's files are gone
    expectOk(await again.abort(), 'abort');
    expect(await bucket.listVersionNumbers('103')).toEqual(published);
    await ok(onA(['cluster', 'status']));
  });

  it('an Object Lock datastore: a pushed version and its chunks are kept under retention', async () => {
    await ok(onA(['job', 'add', 'locked', '--mode', 'cluster', '--store', 'vault', '--vmid', '102']));
    await ok(onA(['job', 'run', 'locked']));
    const store = await S3Datastore.open(vaultSettings);
    try {
      expect(await store.listVersionNumbers('102')).toEqual([1]);
      const manifest = await store.client.head(store.keys.file('102', 1, MANIFEST_FILE));
      expect(manifest?.retainUntil?.getTime()).toBeGreaterThan(Date.now());
      const [chunk] = await chunkObjects(store);
      expect((await store.client.head(store.keys.chunk(chunk as string)))?.retainUntil?.getTime()).toBeGreaterThan(Date.now());
      const disk = await restoreFromNode1('102', 1, '305', 'vault');
      expect(sha256File(disk)).toBe(sha256File(imagePath(lab, '102', 'vm-102-disk-0.raw')));
    } finally {
      store.close();
    }
  });
});
