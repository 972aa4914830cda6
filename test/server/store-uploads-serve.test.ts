/**
 * The remote datastore protocol through a real `coldvault serve` process over HTTP on 127.0.0.1,
 * with a real scoped token made by `coldvault token create --role backup --store main`: a push that
 * `coldvault restore` restores byte-identical; kill -9 of the server in the middle of a push leaves
 * no version, only a staging folder and a stale lock, which the next upload of that guest (after a
 * restart) clears, and `coldvault gc` collects what the killed push sent; SIGTERM aborts open uploads.
 */
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, imagePath, sha256File, spawnCli, writeGuest, writeImage, writeServeConfig } from '../helpers/fixtures.js';
import { ageChunks, chunkFiles, leftovers, referencedChunks, restore, sha256, waitExit } from '../cli/cli-lab.js';
import { Datastore } from '../../dist/datastore/index.js';
import { makeServerLab, type ServerLab } from './helpers-server.js';
import { expectOk, fetchSend, Pusher, readSource, type SourceVersion } from './upload-client.js';

let lab: ServerLab;
let configPath: string;
let token: string;
let source: Datastore;
const src = {} as Record<'101' | '103', SourceVersion>;
const children: ChildProcess[] = [];

beforeAll(async () => {
  lab = await makeServerLab();
  writeGuest(lab, '103', [{ key: 'scsi0', file: 'vm-103-disk-0.raw' }]);
  writeImage(imagePath(lab, '103', 'vm-103-disk-0.raw'), ['text', 'random', 'random'], 21);
  configPath = writeServeConfig(lab, 'node1', 'serve-state');
  const made = await cli(['token', 'create', 'node2', '--role', 'backup', '--store', 'main', '--config', configPath]);
  expect(made.code, made.stderr).toBe(0);
  token = made.stdout.split('\n')[0]!;
  const sourceDir = join(lab.root, 'node2-store');
  await Datastore.init(sourceDir);
  for (const id of ['101', '103'] as const) {
    const backup = await cli(['backup', id, '--store', sourceDir, '--guests-dir', lab.guestsDir, '--storage', `local=${lab.storageDir}`]);
    expect(backup.code, backup.stderr).toBe(0);
  }
  source = await Datastore.open(sourceDir);
  for (const id of ['101', '103'] as const) src[id] = await readSource(source, id, 1);
});
afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await lab?.close();
});

async function startServe(): Promise<{ child: ChildProcess; url: string }> {
  const child = spawnCli(['serve', '--config', configPath, '--listen', '127.0.0.1:0']);
  children.push(child);
  let out = '';
  child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (out += b.toString()));
  for (let waited = 0; !/on http:\/\/\S+ /.test(out) && waited < 20_000; waited += 50) await new Promise((r) => setTimeout(r, 50));
  const url = /on (http:\/\/\S+?)\/? /.exec(out)?.[1];
  if (!url) throw new Error(`serve did not start:\n${out}`);
  return { child, url };
}

const node = (): string => src['101'].manifest.node as string;

describe('pushing to a real coldvault serve', () => {
  it('a push over HTTP with a token made by `coldvault token create --role backup --store main` restores byte-identical', async () => {
    const serve = await startServe();
    try {
      const { version } = await new Pusher(fetchSend(serve.url, token), 'main').push(source, src['101'], { guestId: '101', node: node() });
      const restored = await restore(lab, '101', version, '201');
      expect(sha256(restored.get('scsi0')!)).toBe(sha256File(imagePath(lab, '101', 'vm-101-disk-0.raw')));
      const jobs = await fetchSend(serve.url, token)('POST', '/api/v1/jobs', { id: 'x', store: 'main', vmid: ['101'] });
      expect([jobs.status, jobs.code]).toEqual([403, 'FORBIDDEN']);
    } finally {
      serve.child.kill('SIGKILL');
    }
  });

  it('kill -9 mid-push: no version, a staging folder and a stale lock that the next upload clears; gc collects what was sent', async () => {
    const first = await startServe();
    const p = new Pusher(fetchSend(first.url, token), 'main');
    expectOk(await p.open({ guestId: '103', node: node() }), 'open');
    const sent = await p.known(src['103'].digests);
    await p.chunks(source, sent);
    await p.file('qemu-server.conf', src['103'].files.get('qemu-server.conf')!);
    first.child.kill('SIGKILL');
    await waitExit(first.child);
    const store = await Datastore.open(lab.storeDir);
    expect(await store.listVersionNumbers('103')).toEqual([]);
    expect(leftovers(lab.storeDir, '103')).toHaveLength(1); // the dead server's staging folder
    expect(await store.locks.holder('guest-103')).toBeUndefined(); // its lock file is there, but its holder is dead

    const second = await startServe();
    try {
      const again = new Pusher(fetchSend(second.url, token), 'main');
      expectOk(await again.open({ guestId: '103', node: node() }), 'the next upload of the guest opens');
      expect(leftovers(lab.storeDir, '103')).toHaveLength(1); // the old staging folder is gone; this is the new one
      expectOk(await again.abort(), 'abort');
      expect(leftovers(lab.storeDir, '103')).toEqual([]);
    } finally {
      second.child.kill('SIGKILL');
    }
    const referenced = referencedChunks(lab.storeDir);
    ageChunks(lab.storeDir);
    const gc = await cli(['gc', '--store', lab.storeDir]);
    expect(gc.code, gc.stderr).toBe(0);
    const left = chunkFiles(lab.storeDir);
    expect(sent.filter((hex) => left.has(hex))).toEqual([]);
    expect([...referenced].filter((hex) => !left.has(hex))).toEqual([]);
    const verify = await cli(['verify', '--json', '--store', lab.storeDir]);
    expect(verify.code, verify.stderr).toBe(0);
  });

  it('SIGTERM aborts open uploads before serve exits: nothing staged is left', async () => {
    const serve = await startServe();
    const p = new Pusher(fetchSend(serve.url, token), 'main');
    expectOk(await p.open({ guestId: '103', node: node() }), 'open');
    await p.file('qemu-server.conf', src['103'].files.get('qemu-server.conf')!);
    expect(leftovers(lab.storeDir, '103')).toHaveLength(1);
    serve.child.kill('SIGTERM');
    expect((await waitExit(serve.child)).code).toBe(0);
    expect(leftovers(lab.storeDir, '103')).toEqual([]);
    expect(await (await Datastore.open(lab.storeDir)).listVersionNumbers('103')).toEqual([]);
  });
});
