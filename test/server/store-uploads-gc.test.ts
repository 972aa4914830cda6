/**
 * Garbage collection on the receiving server while a node pushes (the gc rule, src/server/uploads
 * index.ts): the server's datastores run on a clock the test moves (core/seams.ts, as
 * test/datastore/gc-race.test.ts does), and gc runs in this process on its own Datastore object, as
 * `coldvault gc` would, parked at its checkpoints where the race needs it. What is asserted is what a
 * user relies on: the pushed version is published whole and restores byte-identical; a chunk that
 * went missing after it was touched is caught before the publish, never after. And finish runs alone:
 * parked at its publish step, every other request on the upload, the sender's abort too, is LOCKED.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { cli, imagePath, sha256File } from '../helpers/fixtures.js';
import { ManualClock, StepGate } from '../helpers/interleaving.js';
import { restore, sha256 } from '../cli/cli-lab.js';
import { createTaskLog } from '../../dist/core/index.js';
import { collectGarbage, Datastore } from '../../dist/datastore/index.js';
import { createDriver } from '../../dist/guests/hypervisor/index.js';
import { createServer } from '../../dist/server/index.js';
import { makeServerLab, type ServerLab } from './helpers-server.js';
import { expectOk, injectSend, Pusher, readSource, type SourceVersion } from './upload-client.js';

const HOUR = 3_600_000;

let lab: ServerLab;
let source: Datastore;
let src: SourceVersion;
let node2: string;
let clock: ManualClock;
let app: FastifyInstance;
let restoreId = 300;

beforeAll(async () => {
  lab = await makeServerLab();
  node2 = lab.tokens.create('node2', { role: 'backup', store: 'main' }).token;
  const sourceDir = join(lab.root, 'node2-store');
  await Datastore.init(sourceDir);
  const made = await cli(['backup', '101', '--store', sourceDir, '--guests-dir', lab.guestsDir, '--storage', `local=${lab.storageDir}`]);
  expect(made.code, made.stderr).toBe(0);
  source = await Datastore.open(sourceDir);
  src = await readSource(source, '101', 1);
});
afterAll(async () => lab?.close());

beforeEach(async () => {
  clock = new ManualClock();
  app = await createServer({ config: lab.config, state: lab.state, driver: createDriver({ driver: 'none' }), uiDir: null, storeSeams: { clock } });
});
afterEach(async () => {
  await app.close();
  rmSync(join(lab.storeDir, 'chunks'), { recursive: true, force: true }); // each test starts from an empty store
  rmSync(join(lab.storeDir, 'guests'), { recursive: true, force: true });
});

const pusher = (): Pusher => new Pusher(injectSend(app, node2), 'main');
const gc = async (checkpoint?: (step: string) => Promise<void>) => collectGarbage(await Datastore.open(lab.storeDir, { clock, checkpoint }), createTaskLog());
const node = (): string => src.manifest.node as string;

/** Pushes the version, removes it again: its chunks are in the store, unreferenced, and become old as the clock moves. */
async function leaveUnreferencedChunks(): Promise<void> {
  const { version } = await pusher().push(source, src, { guestId: '101', node: node() });
  await (await Datastore.open(lab.storeDir)).removeVersion('101', version);
  clock.advance(2 * HOUR);
}

async function expectRestoresIdentical(version: number): Promise<void> {
  const restored = await restore(lab, '101', version, String(restoreId++));
  expect(sha256(restored.get('scsi0')!)).toBe(sha256File(imagePath(lab, '101', 'vm-101-disk-0.raw')));
}

describe('gc while a node pushes', () => {
  it('a gc between `known` (which touched old, unreferenced chunks) and finish removes none of them', async () => {
    await leaveUnreferencedChunks();
    const p = pusher();
    expectOk(await p.open({ guestId: '101', node: node() }), 'open');
    expect(await p.known(src.digests)).toEqual([]); // all there, now touched
    clock.advance(HOUR); // the push takes an hour; gc runs meanwhile
    const result = await gc();
    expect(result.removedChunks).toBe(0);
    await p.files(src.files);
    expectOk(await p.finish(src.manifest), 'finish');
    await expectRestoresIdentical(p.version);
  });

  it('a sender that does not ask `known` is covered too: the index upload touches every chunk it names', async () => {
    await leaveUnreferencedChunks();
    const p = pusher();
    expectOk(await p.open({ guestId: '101', node: node() }), 'open');
    await p.files(src.files);
    clock.advance(HOUR);
    expect((await gc()).removedChunks).toBe(0);
    expectOk(await p.finish(src.manifest), 'finish');
    await expectRestoresIdentical(p.version);
  });

  it('a gc that started while the upload was open, and sweeps after its publish, keeps the chunks it sent', async () => {
    const p = pusher();
    expectOk(await p.open({ guestId: '101', node: node() }), 'open');
    await p.chunks(source, await p.known(src.digests));
    await p.files(src.files);
    clock.advance(HOUR); // chunks and indexes were sent an hour before gc starts: only the writer registration protects them
    const gate = new StepGate().hold('gc:marked');
    const running = gc(gate.checkpoint);
    await gate.reached('gc:marked'); // gc has listed every version: the pushed one is not among them yet
    expectOk(await p.finish(src.manifest), 'finish'); // published, writer registration released
    clock.advance(HOUR);
    gate.release('gc:marked');
    expect((await running).removedChunks).toBe(0);
    await expectRestoresIdentical(p.version);
  });

  it('a chunk that vanishes after it was touched (a touch that lost its race with gc) is CHUNK_MISSING at finish, nothing published; sent again, finish succeeds', async () => {
    const p = pusher();
    expectOk(await p.open({ guestId: '101', node: node() }), 'open');
    await p.chunks(source, await p.known(src.digests));
    await p.files(src.files);
    const store = await Datastore.open(lab.storeDir);
    const [gone] = src.digests as [string];
    rmSync(store.chunks.pathOf(gone)); // what gc did in that window
    const refused = await p.finish(src.manifest);
    expect([refused.status, refused.code]).toEqual([409, 'CHUNK_MISSING']);
    expect(refused.json<{ error: { message: string } }>().error.message).toContain(gone);
    expect(await store.listVersionNumbers('101')).toEqual([]);
    expect(await p.known(src.digests)).toEqual([gone]);
    await p.chunks(source, [gone]);
    expectOk(await p.finish(src.manifest), 'finish');
    await expectRestoresIdentical(p.version);
  });
});

describe('finish runs alone', () => {
  it('while finish runs, other requests and the sender abort are LOCKED; then the version is published', async () => {
    const gate = new StepGate().hold('upload:publish');
    const parked = await createServer({
      config: lab.config,
      state: lab.state,
      driver: createDriver({ driver: 'none' }),
      uiDir: null,
      storeSeams: { clock, checkpoint: gate.checkpoint },
    });
    try {
      const p = new Pusher(injectSend(parked, node2), 'main');
      expectOk(await p.open({ guestId: '101', node: node() }), 'open');
      await p.chunks(source, await p.known(src.digests));
      await p.files(src.files);
      const finishing = p.finish(src.manifest);
      await gate.reached('upload:publish'); // checked, manifest written, not yet renamed
      for (const res of [await p.abort(), await p.send('POST', `${p.base}/known`, { digests: [] })]) expect([res.status, res.code]).toEqual([409, 'LOCKED']);
      gate.release('upload:publish');
      expectOk(await finishing, 'finish');
      expect(await (await Datastore.open(lab.storeDir)).listVersionNumbers('101')).toEqual([p.version]);
      expect((await p.abort()).code).toBe('UPLOAD_NOT_FOUND');
    } finally {
      await parked.close();
    }
  });
});
