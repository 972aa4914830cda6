/**
 * The remote datastore protocol on the real server (fastify.inject; real datastore folders, the real
 * SQLite state and catalog, the built CLI for restore and verify). Versions are pushed from a second
 * real datastore (a local backup made by `coldvault backup`, as a node's own store would hold it) by
 * the test client (upload-client.ts) with a scoped `backup` token, as another node would push them.
 * What is asserted is what a user relies on: a pushed version restores byte-identical and verifies;
 * a second push of the same data sends metadata only; nothing forged, incomplete or inconsistent is
 * ever published; an upload that ends any other way leaves nothing visible and gc collects what it
 * sent; a token reaches its own store only.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, imagePath, sha256File, writeGuest, writeImage } from '../helpers/fixtures.js';
import { ageChunks, chunkFiles, leftovers, referencedChunks, restore, sha256 } from '../cli/cli-lab.js';
import { createTaskLog } from '../../dist/core/index.js';
import { collectGarbage, Datastore } from '../../dist/datastore/index.js';
import { CHUNK_SIZE, decodeBlob, maxBlobSize } from '../../dist/format/index.js';
import { createDriver } from '../../dist/guests/hypervisor/index.js';
import { createServer } from '../../dist/server/index.js';
import { makeServerLab, type ServerLab } from './helpers-server.js';
import { counting, expectOk, injectSend, Pusher, readSource, type Send, type SourceVersion } from './upload-client.js';

let lab: ServerLab;
let source: Datastore;
let node2: string;
const src = {} as Record<'101' | '103' | '104', SourceVersion>;
let node: string;

const pusher = (send: Send = injectSend(lab.app, node2), store = 'main'): Pusher => new Pusher(send, store);
const versionsOf = async (id: string): Promise<number[]> => (await (await Datastore.open(lab.storeDir)).listVersionNumbers(id)) as number[];
const open = (guestId: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ guestId, node, ...extra });

beforeAll(async () => {
  lab = await makeServerLab();
  const other = join(lab.root, 'other-store');
  await Datastore.init(other);
  lab.config.datastores.other = other;
  node2 = lab.tokens.create('node2', { role: 'backup', store: 'main' }).token;
  for (const [id, regions, seed] of [
    ['103', ['text', 'random', 'zero'], 11],
    ['104', ['random', 'text'], 12],
  ] as const) {
    writeGuest(lab, id, [{ key: 'scsi0', file: `vm-${id}-disk-0.raw` }]);
    writeImage(imagePath(lab, id, `vm-${id}-disk-0.raw`), [...regions], seed);
  }
  const sourceDir = join(lab.root, 'node2-store');
  await Datastore.init(sourceDir);
  for (const id of ['101', '103', '104'] as const) {
    const made = await cli(['backup', id, '--store', sourceDir, '--guests-dir', lab.guestsDir, '--storage', `local=${lab.storageDir}`]);
    expect(made.code, made.stderr).toBe(0);
  }
  source = await Datastore.open(sourceDir);
  for (const id of ['101', '103', '104'] as const) src[id] = await readSource(source, id, 1);
  node = src['101'].manifest.node as string;
});
afterAll(async () => lab?.close());

describe('a push', () => {
  it('publishes a version that `coldvault restore` restores byte-identical and `coldvault verify` passes; the server logs it as a task', async () => {
    const { version, sent } = await pusher().push(source, src['101'], open('101'));
    expect(sent).toBe(src['101'].digests.length); // the store had none of them
    // received chunks are written with O_DIRECT from their (shared, aligned) body buffers: a push does not
    // fill the receiving node's page cache, where it would push out what the host has cached
    const stored = [...chunkFiles(lab.storeDir)].map((hex) => join(lab.storeDir, 'chunks', hex.slice(0, 4), hex));
    const bytes = stored.reduce((n, f) => n + statSync(f).size, 0);
    const resident = stored.reduce(
      (n, f) => n + Number(execFileSync('fincore', ['--bytes', '--noheadings', '--output', 'RES', f], { encoding: 'utf8' }).trim()),
      0,
    );
    expect(bytes).toBeGreaterThan(8 * 1024 * 1024);
    expect(resident).toBeLessThan(bytes / 10);
    expect(await versionsOf('101')).toEqual([version]);
    const restored = await restore(lab, '101', version, '201');
    expect(sha256(restored.get('scsi0')!)).toBe(sha256File(imagePath(lab, '101', 'vm-101-disk-0.raw')));
    const verify = await cli(['verify', '--json', '--store', lab.storeDir]);
    expect(verify.code, verify.stderr).toBe(0);
    const [task] = lab.state.tasks.list(1);
    expect(task).toMatchObject({
      type: 'upload',
      status: 'ok',
      startedBy: 'token:node2',
      result: expect.objectContaining({ guestId: '101', version, chunks: sent }),
    });
    // the task counts the blob bytes it took (as stored): what an admin reads in its log and result
    const blobBytes = (await Promise.all(src['101'].digests.map((d) => source.chunks.readBlob(d)))).reduce((n, b) => n + b.length, 0);
    expect((task?.result as { chunkBytes?: number }).chunkBytes).toBe(blobBytes);
    expect(leftovers(lab.storeDir, '101')).toEqual([]);
  });

  it('a second push of the same data sends only metadata: `known` answers nothing missing; the bytes counted on both sides agree', async () => {
    const counted = counting(injectSend(lab.app, node2));
    const p = pusher(counted.send);
    expectOk(await p.open(open('101')), 'open');
    expect(await p.known(src['101'].digests)).toEqual([]);
    await p.files(src['101'].files);
    const finished = expectOk(await p.finish(src['101'].manifest), 'finish').json<{ version: number; bytesReceived: number }>();
    const metadata = [...src['101'].files.values()].reduce((s, f) => s + f.length, 0) + JSON.stringify(src['101'].manifest).length;
    expect(counted.bytes()).toBeLessThan(metadata + 4096); // the files, the manifest and a few small JSON bodies
    expect(counted.bytes()).toBeLessThan(16 * 1024 * 1024 * 0.01); // of a 16 MiB disk: under 1%
    expect(finished.bytesReceived).toBe(counted.bytes());
    expect(await versionsOf('101')).toEqual([1, finished.version]);
  });

  it('keep rotates the guest after the publish', async () => {
    const { version } = await pusher().push(source, src['101'], open('101', { keep: 1 }));
    expect(await versionsOf('101')).toEqual([version]);
  });
});

describe('nothing that does not hold together is published', () => {
  it('a forged chunk (content not hashing to its name) is refused with CHUNK_FORGED and not stored; the index naming it is refused, so nothing can be published', async () => {
    const p = pusher();
    expectOk(await p.open(open('103')), 'open');
    const [a, b] = src['103'].digests as [string, string];
    expect(await p.known([a, b])).toEqual([a, b]);
    const forged = await p.chunk(a, await source.chunks.readBlob(b));
    expect([forged.status, forged.code]).toEqual([400, 'CHUNK_FORGED']);
    expect(forged.json<{ error: { message: string } }>().error.message).toContain(a);
    const damaged = Buffer.from(await source.chunks.readBlob(a));
    damaged[damaged.length - 1]! ^= 1;
    expect((await p.chunk(a, damaged)).code).toBe('CHUNK_FORGED');
    expect(chunkFiles(lab.storeDir).has(a)).toBe(false);
    await p.chunks(source, [b]);
    const index = await p.file('scsi0.fidx', src['103'].files.get('scsi0.fidx')!);
    expect([index.status, index.code]).toEqual([409, 'CHUNK_MISSING']);
    expect(index.json<{ error: { message: string } }>().error.message).toContain(a);
    await p.files(new Map([...src['103'].files].filter(([name]) => name !== 'scsi0.fidx')));
    const finish = await p.finish(src['103'].manifest);
    expect([finish.status, finish.code]).toEqual([400, 'MANIFEST_INVALID']);
    expect(await versionsOf('103')).toEqual([]);
    expect((await p.abort()).status).toBe(204);
    expect(leftovers(lab.storeDir, '103')).toEqual([]);
  });

  it('an index naming a chunk never sent is refused (CHUNK_MISSING); the upload stays open and finishes once the chunks are there', async () => {
    const p = pusher();
    expectOk(await p.open(open('103')), 'open');
    const early = await p.file('scsi0.fidx', src['103'].files.get('scsi0.fidx')!);
    expect([early.status, early.code]).toEqual([409, 'CHUNK_MISSING']);
    await p.chunks(source, await p.known(src['103'].digests));
    await p.files(src['103'].files);
    expectOk(await p.finish(src['103'].manifest), 'finish');
    expect(await versionsOf('103')).toEqual([p.version]);
  });

  it('a finish whose manifest does not match the upload, its config or its indexes is refused (MANIFEST_INVALID); nothing is published until a right one', async () => {
    const p = pusher();
    expectOk(await p.open(open('101')), 'open');
    await p.known(src['101'].digests);
    await p.files(src['101'].files);
    const m = src['101'].manifest as Record<string, unknown> & { disks: Array<Record<string, unknown>> };
    const disk = (change: Record<string, unknown>) => ({ ...m, disks: [{ ...m.disks[0], ...change }, ...m.disks.slice(1)] });
    const wrong: Array<[string, Record<string, unknown>, RegExp]> = [
      ['disk digest', disk({ sha256: 'a'.repeat(64) }), /does not match index scsi0\.fidx/],
      ['zero chunks', disk({ zeroChunks: (m.disks[0]!.zeroChunks as number) + 1 }), /zeroChunks is \d+, the index says/],
      ['size', disk({ size: (m.disks[0]!.size as number) - 1 }), /does not match index/],
      ['guest', { ...m, guestId: '103' }, /guestId is "103", the upload's is "101"/],
      ['node', { ...m, node: 'elsewhere' }, /node is "elsewhere"/],
      ['config', { ...m, config: `${m.config as string}cores: 64\n` }, /qemu-server\.conf is not the manifest's config/],
      ['checksum', { ...m, checksum: 'b'.repeat(64) }, /carries a checksum/],
      ['unknown field', { ...m, encrypted: true }, /encrypted is not a field of a format-1 manifest/],
      ['index path', disk({ index: '../../etc/x.fidx' }), /disks\[0\]\.index/],
      [
        'a disk without index',
        { ...m, disks: [...m.disks, { ...m.disks[0], key: 'scsi9', index: 'scsi9.fidx' }] },
        /scsi9\.fidx of disk 'scsi9' was not uploaded/,
      ],
    ];
    const before = await versionsOf('101');
    for (const [what, manifest, why] of wrong) {
      const res = await p.send('POST', `${p.base}/finish`, { manifest: { ...manifest, version: p.version } });
      expect([res.status, res.code], what).toEqual([400, 'MANIFEST_INVALID']);
      expect(res.json<{ error: { message: string } }>().error.message, what).toMatch(why);
    }
    const version = await p.send('POST', `${p.base}/finish`, { manifest: { ...m, version: p.version + 1 } });
    expect(version.json<{ error: { message: string } }>().error.message).toMatch(/version is \d+, the upload's is \d+/);
    expect(await versionsOf('101')).toEqual(before);
    expectOk(await p.finish(m), 'the right finish');
    expect(await versionsOf('101')).toEqual([...before, p.version]);
  });
});

describe('an upload that ends without finish', () => {
  it('abort leaves nothing visible and frees the guest; gc then collects what it sent and never a chunk of a published version', async () => {
    const p = pusher();
    expectOk(await p.open(open('104')), 'open');
    const sent = await p.known(src['104'].digests);
    await p.chunks(source, sent);
    await p.files(src['104'].files);
    expect(leftovers(lab.storeDir, '104')).toHaveLength(1); // the staging folder
    expect((await p.abort()).status).toBe(204);
    expect(await versionsOf('104')).toEqual([]);
    expect(leftovers(lab.storeDir, '104')).toEqual([]);
    const after = await p.send('POST', `${p.base}/known`, { digests: [sent[0]] });
    expect([after.status, after.code]).toEqual([404, 'UPLOAD_NOT_FOUND']);
    expect([...sent].every((hex) => chunkFiles(lab.storeDir).has(hex))).toBe(true);
    const referenced = referencedChunks(lab.storeDir);
    ageChunks(lab.storeDir); // as if it all happened an hour ago
    await collectGarbage(await Datastore.open(lab.storeDir), createTaskLog());
    const left = chunkFiles(lab.storeDir);
    expect(sent.filter((hex) => left.has(hex))).toEqual([]);
    expect([...referenced].filter((hex) => !left.has(hex))).toEqual([]);
    const verify = await cli(['verify', '--json', '--store', lab.storeDir]);
    expect(verify.code, verify.stderr).toBe(0);
    const [task] = lab.state.tasks.list(1);
    expect(task).toMatchObject({ type: 'upload', status: 'failed', result: expect.objectContaining({ guestId: '104', error: 'aborted by token:node2' }) });
  });

  it('an upload idle for uploadIdleSeconds is aborted: staging removed, guest free, later requests UPLOAD_EXPIRED', async () => {
    const app = await createServer({
      config: { ...lab.config, uploadIdleSeconds: 0.5 },
      state: lab.state,
      driver: createDriver({ driver: 'none' }),
      uiDir: null,
    });
    try {
      const p = pusher(injectSend(app, node2));
      const opened = expectOk(await p.open(open('104')), 'open').json<{ idleTimeoutSeconds: number }>();
      expect(opened.idleTimeoutSeconds).toBe(0.5);
      await p.chunks(source, [src['104'].digests[0]!]);
      expect(leftovers(lab.storeDir, '104')).toHaveLength(1);
      for (let waited = 0; leftovers(lab.storeDir, '104').length > 0 && waited < 20_000; waited += 50) await new Promise((r) => setTimeout(r, 50));
      expect(leftovers(lab.storeDir, '104')).toEqual([]);
      const late = await p.send('POST', `${p.base}/known`, { digests: [] });
      expect([late.status, late.code]).toEqual([410, 'UPLOAD_EXPIRED']);
      const again = pusher(injectSend(app, node2));
      expectOk(await again.open(open('104')), 'the guest is free again');
      expectOk(await again.abort(), 'abort');
      expect(await versionsOf('104')).toEqual([]);
    } finally {
      await app.close();
    }
  });

  it('closing the server aborts its open uploads: staging removed, guest lock released', async () => {
    const app = await createServer({ config: lab.config, state: lab.state, driver: createDriver({ driver: 'none' }), uiDir: null });
    const p = pusher(injectSend(app, node2));
    expectOk(await p.open(open('104')), 'open');
    await p.files(new Map([['qemu-server.conf', src['104'].files.get('qemu-server.conf')!]]));
    expect(leftovers(lab.storeDir, '104')).toHaveLength(1);
    await app.close();
    expect(leftovers(lab.storeDir, '104')).toEqual([]);
    const lock = await (await Datastore.open(lab.storeDir)).locks.acquire('guest-104', 'test');
    await lock.release();
  });
});

describe('refusals at open and limits', () => {
  it('a second upload of a busy guest is LOCKED; an estimate that does not fit is NO_SPACE and holds nothing', async () => {
    const first = pusher();
    expectOk(await first.open(open('104')), 'open');
    const second = await pusher().open(open('104'));
    expect([second.status, second.code]).toEqual([409, 'LOCKED']);
    expect(second.json<{ error: { message: string } }>().error.message).toMatch(/guest-104 is locked by upload \S+ of guest 104/);
    expectOk(await first.abort(), 'abort');
    const huge = await pusher().open(open('104', { bytesEstimate: 2 ** 52 }));
    expect([huge.status, huge.code]).toEqual([507, 'NO_SPACE']);
    expect(huge.json<{ error: { message: string } }>().error.message).toMatch(/not enough space in datastore 'main'/);
    expect(leftovers(lab.storeDir, '104')).toEqual([]);
    const free = pusher();
    expectOk(await free.open(open('104')), 'the guest was not held');
    expectOk(await free.abort(), 'abort');
  });

  it('bodies over their limits are refused: a chunk over one blob, more than 4096 digests, a config over 1 MiB, JSON as a chunk', async () => {
    const p = pusher();
    expectOk(await p.open(open('103')), 'open');
    const big = await p.chunk('a'.repeat(64), Buffer.alloc(maxBlobSize(CHUNK_SIZE) + 1));
    expect([big.status, big.code]).toEqual([413, 'PAYLOAD_TOO_LARGE']);
    const many = await p.send('POST', `${p.base}/known`, { digests: Array.from({ length: 4097 }, () => 'b'.repeat(64)) });
    expect([many.status, many.code]).toEqual([400, 'INVALID_REQUEST']);
    const config = await p.file('qemu-server.conf', Buffer.alloc(1024 * 1024 + 1, 0x61));
    expect([config.status, config.code]).toEqual([413, 'PAYLOAD_TOO_LARGE']);
    const json = await p.send('PUT', `${p.base}/chunks/${'c'.repeat(64)}`, { blob: 'x' });
    expect([json.status, json.code]).toEqual([415, 'UNSUPPORTED_MEDIA_TYPE']);
    const name = await p.file('..%2Fmanifest.json', Buffer.from('{}'));
    expect([name.status, name.code]).toEqual([400, 'INVALID_REQUEST']);
    expectOk(await p.abort(), 'abort');
  });
});

describe('chunk bodies as they come off the wire', () => {
  const put = (url: string, payload: Buffer | Readable, headers: Record<string, string> = {}) =>
    lab.app.inject({ method: 'PUT', url, payload, headers: { authorization: `Bearer ${node2}`, 'content-type': 'application/octet-stream', ...headers } });
  const codeOf = (res: { json: () => unknown }): string | undefined => (res.json() as { error?: { code?: string } }).error?.code;

  it('a chunk sent without Content-Length (chunked) is taken whole; one over a blob is 413; a body shorter than its Content-Length is 400 and stores nothing', async () => {
    const p = pusher();
    expectOk(await p.open(open('104')), 'open');
    const [a, b] = src['104'].digests as [string, string];
    const blobA = await source.chunks.readBlob(a);
    const inPieces = Readable.from([blobA.subarray(0, 1000), blobA.subarray(1000, 70_000), blobA.subarray(70_000)]);
    const chunked = await put(`${p.base}/chunks/${a}`, inPieces);
    expect(chunked.statusCode, chunked.body).toBe(204);
    expect((await (await Datastore.open(lab.storeDir)).chunks.readBlob(a)).equals(blobA)).toBe(true);
    const huge = Readable.from([Buffer.alloc(maxBlobSize(CHUNK_SIZE)), Buffer.alloc(10)]);
    const over = await put(`${p.base}/chunks/${b}`, huge);
    expect([over.statusCode, codeOf(over)]).toEqual([413, 'PAYLOAD_TOO_LARGE']);
    const blobB = await source.chunks.readBlob(b);
    const short = await put(`${p.base}/chunks/${b}`, Readable.from([blobB]), { 'content-length': String(blobB.length + 100) });
    expect([short.statusCode, codeOf(short)]).toEqual([400, 'INVALID_REQUEST']);
    expect(short.body).toContain(`Content-Length said ${blobB.length + 100}`);
    expect(chunkFiles(lab.storeDir).has(b)).toBe(false);
    expectOk(await p.abort(), 'abort');
  });
});

describe('config and the OpenAPI document', () => {
  it('uploadIdleSeconds must be a number above 0; the document shows byte bodies as application/octet-stream', async () => {
    const bad = createServer({ config: { ...lab.config, uploadIdleSeconds: 0 }, state: lab.state, driver: createDriver({ driver: 'none' }), uiDir: null });
    await expect(bad).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringMatching(/uploadIdleSeconds/) });
    type Operation = {
      requestBody?: { content: Record<string, unknown> };
      responses: Record<string, { content: Record<string, unknown> }>;
      'x-roles': string[];
    };
    const doc = expectOk(await injectSend(lab.app, lab.token)('GET', '/api/v1/openapi.json'), 'openapi').json<{
      paths: Record<string, Record<string, Operation>>;
    }>();
    const chunk = doc.paths['/api/v1/stores/{store}/uploads/{upload}/chunks/{digest}']!.put!;
    expect(Object.keys(chunk.requestBody!.content)).toEqual(['application/octet-stream']);
    expect(chunk['x-roles']).toEqual(['admin', 'backup']);
    expect(doc.paths['/api/v1/stores/{store}/chunks/{digest}']!.get!.responses['200']!.content['application/octet-stream']).toBeDefined();
  });
});

describe('scope', () => {
  it('a token for store main cannot open, use or read on store other (403 naming it), nor create jobs or restores; another token cannot use its upload', async () => {
    const p = pusher();
    expectOk(await p.open(open('104')), 'open');
    const elsewhere = await pusher(injectSend(lab.app, node2), 'other').open(open('104'));
    expect([elsewhere.status, elsewhere.code]).toEqual([403, 'FORBIDDEN']);
    expect(elsewhere.json<{ error: { message: string } }>().error.message).toBe(
      "token:node2: role 'backup' (store 'main') may not write versions of store 'other'",
    );
    const send = injectSend(lab.app, node2);
    for (const [method, url] of [
      ['POST', `/api/v1/stores/other/uploads/${p.upload}/known`],
      ['GET', `/api/v1/stores/other/guests/101/versions`],
      ['GET', `/api/v1/stores/other/chunks/${src['101'].digests[0]}`],
    ] as const) {
      const res = await send(method, url, method === 'POST' ? { digests: [] } : undefined);
      expect([res.status, res.code], url).toEqual([403, 'FORBIDDEN']);
      expect(res.json<{ error: { message: string } }>().error.message, url).toMatch(/of store 'other'$/);
    }
    const job = await send('POST', '/api/v1/jobs', { id: 'sneaky', store: 'main', vmid: ['101'] });
    expect([job.status, job.code]).toEqual([403, 'FORBIDDEN']);
    const restored = await send('POST', '/api/v1/restore', { fromPath: 'main', id: '101', version: 1, newId: '299' });
    expect([restored.status, restored.code]).toEqual([403, 'FORBIDDEN']);
    const node3 = lab.tokens.create('node3', { role: 'backup', store: 'main' }).token;
    const stranger = await injectSend(lab.app, node3)('POST', `${p.base}/known`, { digests: [] });
    expect([stranger.status, stranger.code]).toEqual([404, 'UPLOAD_NOT_FOUND']);
    const admin = await injectSend(lab.app, lab.token)('POST', `/api/v1/stores/other/uploads/${p.upload}/known`, { digests: [] });
    expect([admin.status, admin.code]).toEqual([404, 'UPLOAD_NOT_FOUND']); // an upload is used through its own store only
    expectOk(await p.abort(), 'abort');
  });

  it('the reader routes serve the versions, files and chunks of its own store, as stored', async () => {
    const send = injectSend(lab.app, node2);
    const [version] = await versionsOf('103');
    const list = expectOk(await send('GET', '/api/v1/stores/main/guests/103/versions'), 'list').json<Array<{ id: string; version: number; store: string }>>();
    expect(list.map((v) => [v.id, v.version, v.store])).toEqual([['103', version, 'main']]);
    const dir = join(lab.storeDir, 'guests', '103', String(version));
    for (const name of ['manifest.json', 'scsi0.fidx', 'qemu-server.conf', 'backup.log']) {
      const res = expectOk(await send('GET', `/api/v1/stores/main/guests/103/versions/${version}/files/${name}`), name);
      expect(res.body.equals(readFileSync(join(dir, name))), name).toBe(true);
    }
    const hex = src['103'].digests[0]!;
    const blob = expectOk(await send('GET', `/api/v1/stores/main/chunks/${hex}`), 'chunk').body;
    expect(blob.equals(readFileSync((await Datastore.open(lab.storeDir)).chunks.pathOf(hex)))).toBe(true);
    expect(decodeBlob(blob, 'chunk').length).toBeGreaterThan(0);
    const missing = await send('GET', `/api/v1/stores/main/chunks/${'d'.repeat(64)}`);
    expect([missing.status, missing.code]).toEqual([409, 'CHUNK_MISSING']);
    const noFile = await send('GET', `/api/v1/stores/main/guests/103/versions/${version}/files/scsi7.fidx`);
    expect([noFile.status, noFile.code]).toEqual([404, 'NOT_FOUND']);
    const noVersion = await send('GET', `/api/v1/stores/main/guests/103/versions/999/files/manifest.json`);
    expect([noVersion.status, noVersion.code]).toEqual([404, 'VERSION_NOT_FOUND']);
  });
});

describe('read leases', () => {
  it('a lease whose reader goes quiet for uploadIdleSeconds ends by itself (LEASE_NOT_FOUND), and so do all at server close', async () => {
    const app = await createServer({
      config: { ...lab.config, uploadIdleSeconds: 0.3 },
      state: lab.state,
      driver: createDriver({ driver: 'none' }),
      uiDir: null,
    });
    const send = injectSend(app, node2);
    const readers = async (v: number): Promise<number> => (await (await Datastore.open(lab.storeDir)).locks.liveRegistrations(`read-101-${v}-`)).length;
    try {
      const [v] = await versionsOf('101');
      const taken = await send('POST', `/api/v1/stores/main/guests/101/versions/${v}/lease`);
      expect(taken.status, taken.body.toString()).toBe(201);
      const { lease, idleTimeoutSeconds } = taken.json<{ lease: string; idleTimeoutSeconds: number }>();
      expect(idleTimeoutSeconds).toBe(0.3);
      expect(await readers(v!)).toBe(1);
      for (let waited = 0; (await readers(v!)) > 0 && waited < 10_000; waited += 50) await new Promise((r) => setTimeout(r, 50));
      expect(await readers(v!)).toBe(0);
      const late = await send('POST', `/api/v1/stores/main/leases/${lease}/keepalive`);
      expect([late.status, late.code]).toEqual([404, 'LEASE_NOT_FOUND']);
      expectOk(await send('POST', `/api/v1/stores/main/guests/101/versions/${v}/lease`), 'a second lease');
      expect(await readers(v!)).toBe(1);
    } finally {
      await app.close();
    }
    expect(await readers((await versionsOf('101'))[0]!)).toBe(0);
  });
});
