/**
 * RemoteStore's refusals and failures against real `coldvault serve` processes on 127.0.0.1 (plain
 * HTTP on loopback; real datastores, real tokens made with `coldvault token create`): a wrong token,
 * a token of another store, a store the node lacks, a busy guest, a forged chunk, an index before its
 * chunks, a refused manifest - each a typed error naming the node, the store and the server's reason,
 * none retried. A server killed (kill -9) and restarted on its port mid-push: the idempotent calls are
 * retried until it answers again, then the upload is reported gone (UPLOAD_NOT_FOUND), while finish and
 * open are never retried. An upload the server aborted for idleness is UPLOAD_EXPIRED.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleep, waitExit } from '../cli/cli-lab.js';
import { startServe, type ServeProcess } from '../helpers/serve-process.js';
import { Datastore } from '../../dist/datastore/index.js';
import type { RemoteStore, RemoteUpload } from '../../dist/targets/index.js';
import { client, makeRemoteLab, makeToken, push, type RemoteLab, type ServeConfig } from './remote-lab.js';

let lab: RemoteLab;
let config: ServeConfig;
let serve: ServeProcess;
const tokens = {} as Record<'main' | 'other' | 'admin', string>;
const clients: RemoteStore[] = [];
const servers: ServeProcess[] = [];

const remote = (token = tokens.main, extra: Parameters<typeof client>[2] = {}, url = serve.url): RemoteStore => {
  const made = client(url, token, extra);
  clients.push(made);
  return made;
};
const started = async (args: string[]): Promise<ServeProcess> => {
  const s = await startServe(args);
  servers.push(s);
  return s;
};

beforeAll(async () => {
  lab = await makeRemoteLab();
  config = await lab.serveConfig('node1');
  tokens.main = await makeToken(config, 'node2', 'backup', 'main');
  tokens.other = await makeToken(config, 'node3', 'backup', 'other');
  tokens.admin = await makeToken(config, 'ops', 'admin');
  serve = await started(['--config', config.path, '--listen', '127.0.0.1:0']);
});
afterAll(async () => {
  for (const c of clients) c.close();
  await Promise.all(servers.map((s) => s.stop()));
  lab?.cleanup();
});

const src = (id: string) => lab.versions[id]!;
const open = (r: RemoteStore, id: string): Promise<RemoteUpload> => r.openUpload({ guestId: id, node: src(id).manifest.node });

describe('refusals name the node, the store and the reason', () => {
  it('a wrong token: REMOTE_UNAUTHORIZED naming the node and the token', async () => {
    const r = remote('cv_not-a-token');
    const expected = { code: 'REMOTE_UNAUTHORIZED', status: 401, message: expect.stringMatching(new RegExp(`${serve.url}/.*token`)) };
    await expect(open(r, '101')).rejects.toMatchObject(expected);
    await expect(r.listVersions('101')).rejects.toMatchObject(expected);
    expect(r.stats.retries).toBe(0);
  });

  it('a token of another store: REMOTE_FORBIDDEN naming the store it asked for, for pushes and reads', async () => {
    const r = remote(tokens.other);
    const expected = { code: 'REMOTE_FORBIDDEN', status: 403, message: expect.stringMatching(new RegExp(`datastore 'main' on node ${serve.url}/`)) };
    await expect(open(r, '101')).rejects.toMatchObject(expected);
    await expect(r.getChunk(src('101').digests[0]!)).rejects.toMatchObject(expected);
    expect(await (await Datastore.open(config.stores.main)).listVersionNumbers('101')).toEqual([]);
  });

  it('a store the node does not have: REMOTE_NOT_FOUND naming it', async () => {
    const r = remote(tokens.admin, { store: 'nosuch' });
    await expect(r.listVersions('101')).rejects.toMatchObject({
      code: 'REMOTE_NOT_FOUND',
      message: expect.stringMatching(/datastore 'nosuch' is not configured on node node1/),
    });
  });

  it('a guest busy with another upload: LOCKED; the first one goes on', async () => {
    const r = remote();
    const first = await open(r, '103');
    await expect(open(r, '103')).rejects.toMatchObject({
      code: 'LOCKED',
      status: 409,
      message: expect.stringMatching(new RegExp(`opening an upload of guest 103 .*datastore 'main' on node ${serve.url}/`)),
    });
    await first.abort();
    await first.abort(); // gone already: fine
  });

  it('a forged chunk: CHUNK_FORGED, not retried, nothing stored; an index before its chunks: CHUNK_MISSING; a wrong manifest: MANIFEST_INVALID, the upload stays open', async () => {
    const r = remote();
    const upload = await open(r, '103');
    const [a, b] = src('103').digests as [string, string];
    await expect(upload.putChunk(a, await lab.source.chunks.readBlob(b))).rejects.toMatchObject({
      code: 'CHUNK_FORGED',
      message: expect.stringMatching(new RegExp(`pushing chunk ${a} .*datastore 'main' on node ${serve.url}/ was refused: .*does not hash to its name`)),
    });
    expect(upload.stats.retries).toBe(0);
    expect(await upload.known([a])).toEqual([a]);
    const index = src('103').manifest.disks[0]!.index;
    await expect(upload.putFile(index, src('103').files.get(index)!)).rejects.toMatchObject({ code: 'CHUNK_MISSING' });
    await expect(upload.finish({ ...src('103').manifest, node: 'elsewhere' })).rejects.toMatchObject({ code: 'MANIFEST_INVALID' });
    expect(await upload.known([a])).toEqual([a]); // still open
    await upload.abort();
    await expect(upload.known([a])).rejects.toMatchObject({ code: 'UPLOAD_NOT_FOUND' });
  });

  it('known asks in batches of the server limit and answers in the order asked', async () => {
    const r = remote();
    const upload = await open(r, '103');
    const digests = Array.from({ length: 5000 }, (_, i) => i.toString(16).padStart(64, '0'));
    const before = upload.stats.requests;
    expect(await upload.known(digests)).toEqual(digests);
    expect(upload.stats.requests - before).toBe(2);
    await upload.abort();
  });
});

describe('a server that dies mid-push', () => {
  it('kill -9 and a restart on the same port: idempotent calls retried, then the upload is gone (UPLOAD_NOT_FOUND); open and finish never retried', async () => {
    const cfg = await lab.serveConfig('restarted');
    const token = await makeToken(cfg, 'node2', 'backup', 'main');
    const first = await started(['--config', cfg.path, '--listen', '127.0.0.1:0']);
    const port = new URL(first.url).port;
    const r = remote(token, { retry: { attempts: 60, baseDelayMs: 100, maxDelayMs: 500 } }, first.url);
    const upload = await open(r, '101');
    const missing = await upload.known(src('101').digests);
    const blobs = await Promise.all(missing.map((hex) => lab.source.chunks.readBlob(hex)));
    await upload.putChunk(missing[0]!, blobs[0]!);

    first.child.kill('SIGKILL');
    await waitExit(first.child);
    // not idempotent: failed at once, not sent again
    await expect(upload.finish(src('101').manifest)).rejects.toMatchObject({ code: 'CONNECTION_FAILED', message: expect.stringContaining(first.url) });
    await expect(open(r, '101')).rejects.toMatchObject({ code: 'CONNECTION_FAILED' });
    expect(r.stats.retries).toBe(0);
    // idempotent: retried while the server is down
    const puts = missing.slice(1).map((hex, i) => upload.putChunk(hex, blobs[i + 1]!));
    for (let waited = 0; r.stats.retries < puts.length && waited < 20_000; waited += 50) await sleep(50);
    expect(r.stats.retries).toBeGreaterThanOrEqual(puts.length);

    const second = await started(['--config', cfg.path, '--listen', `127.0.0.1:${port}`]);
    const settled = await Promise.allSettled(puts);
    for (const one of settled) {
      expect(one).toMatchObject({
        status: 'rejected',
        reason: {
          code: 'UPLOAD_NOT_FOUND',
          message: expect.stringMatching(new RegExp(`datastore 'main' on node ${second.url}/ .*the upload is gone on that node.*push the version again`)),
        },
      });
    }
    expect(await (await Datastore.open(cfg.stores.main)).listVersionNumbers('101')).toEqual([]);
    const again = await push(r, lab.source, src('101'));
    expect(await (await Datastore.open(cfg.stores.main)).listVersionNumbers('101')).toEqual([again.version]); // a new upload of the guest succeeds
  });

  it('an upload the server aborted for idleness: UPLOAD_EXPIRED, nothing published', async () => {
    const cfg = await lab.serveConfig('impatient', { uploadIdleSeconds: 1 });
    const token = await makeToken(cfg, 'node2', 'backup', 'main');
    const s = await started(['--config', cfg.path, '--listen', '127.0.0.1:0']);
    const r = remote(token, {}, s.url);
    const upload = await open(r, '103');
    expect(upload.idleTimeoutSeconds).toBe(1);
    await sleep(2500);
    await expect(upload.known(src('103').digests)).rejects.toMatchObject({
      code: 'UPLOAD_EXPIRED',
      status: 410,
      message: expect.stringContaining('push the version again'),
    });
    await upload.abort(); // gone already: fine
    expect(await (await Datastore.open(cfg.stores.main)).listVersionNumbers('103')).toEqual([]);
  });
});
