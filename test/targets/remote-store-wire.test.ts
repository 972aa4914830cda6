/**
 * RemoteStore's transport against what a real `coldvault serve` never does on purpose (so a small
 * node:http server on 127.0.0.1 plays the node here, answering as the protocol says): a node answering
 * 503 for a while (idempotent calls retried, finish never, abort once more only), 507 (never retried), a connection broken
 * while finish runs (the outcome is reported unknown), a chunk body broken off mid-way (retried), a
 * silent node (bounded by the idle timeout, then CONNECTION_FAILED), an answer larger than any chunk
 * blob (CHUNK_CORRUPT), the caller's abort (ABORTED).
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { chunkDigest, encodeBlob, type Manifest } from '../../dist/format/index.js';
import { RemoteStore, type RemoteStoreOptions } from '../../dist/targets/index.js';

type Handler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void;
let server: Server;
let url: string;
let handler: Handler;
const seen: string[] = [];
const clients: RemoteStore[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const pieces: Buffer[] = [];
    req.on('data', (b: Buffer) => pieces.push(b));
    req.on('end', () => {
      seen.push(`${req.method} ${req.url}`);
      handler(req, res, Buffer.concat(pieces));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterEach(() => {
  seen.length = 0;
  for (const c of clients.splice(0)) c.close();
});
afterAll(() => {
  server.closeAllConnections();
  server.close();
});

const remote = (extra: Partial<RemoteStoreOptions> = {}): RemoteStore => {
  const made = new RemoteStore({ url, token: 'tok', store: 'main', retry: { attempts: 4, baseDelayMs: 10, maxDelayMs: 20 }, ...extra });
  clients.push(made);
  return made;
};
const json = (res: ServerResponse, status: number, body: unknown): void => {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
};
const refuse = (res: ServerResponse, status: number, code: string, message: string): void => json(res, status, { error: { code, message } });
const UPLOAD = 'AAAAAAAAAAAAAAAAAAAAAA';
/** Answers open as serve does; everything else with `rest`. */
const withOpen =
  (rest: Handler): Handler =>
  (req, res, body) => {
    if (req.method === 'POST' && req.url === '/api/v1/stores/main/uploads') json(res, 201, { upload: UPLOAD, version: 4, idleTimeoutSeconds: 300 });
    else rest(req, res, body);
  };
const openUpload = (r: RemoteStore) => r.openUpload({ guestId: '101', node: 'node2' });
const plain = Buffer.alloc(4096, 7);
const hex = chunkDigest(plain).toString('hex');
const blob = encodeBlob(plain, 1);

describe('retries', () => {
  it('an idempotent call is sent again while the node answers 503, and succeeds when it recovers', async () => {
    let failures = 2;
    handler = (_req, res) => (failures-- > 0 ? refuse(res, 503, 'INTERNAL', 'busy') : json(res, 200, []));
    const r = remote();
    expect(await r.listVersions('101')).toEqual([]);
    expect(r.stats).toMatchObject({ requests: 3, retries: 2 });
  });

  it('finish is never sent twice, whatever the node answers; 507 NO_SPACE is not retried either', async () => {
    handler = withOpen((req, res) => (req.url?.endsWith('/finish') ? refuse(res, 503, 'INTERNAL', 'busy') : refuse(res, 507, 'NO_SPACE', 'the disk is full')));
    const r = remote();
    const upload = await openUpload(r);
    await expect(upload.finish({ guestId: '101' } as Manifest)).rejects.toMatchObject({ code: 'REMOTE_FAILED', status: 503 });
    await expect(upload.putChunk(hex, blob)).rejects.toMatchObject({ code: 'NO_SPACE', message: expect.stringContaining('the disk is full') });
    expect(seen.filter((s) => s.endsWith('/finish'))).toHaveLength(1);
    expect(r.stats.retries).toBe(0);
  });

  it("abort is tried twice, not through the whole retry chain: a failed push's guest waits for it, and the node ends a lost upload itself", async () => {
    handler = withOpen((_req, res) => refuse(res, 503, 'INTERNAL', 'busy'));
    const upload = await openUpload(remote());
    await expect(upload.abort()).rejects.toMatchObject({ code: 'REMOTE_FAILED', status: 503 });
    expect(seen.filter((s) => s.startsWith('DELETE '))).toHaveLength(2);
  });

  it('a connection broken while finish runs: CONNECTION_FAILED saying whether it was published is unknown', async () => {
    handler = withOpen((_req, res) => res.socket?.destroy());
    const upload = await openUpload(remote());
    await expect(upload.finish({ guestId: '101' } as Manifest)).rejects.toMatchObject({
      code: 'CONNECTION_FAILED',
      message: expect.stringMatching(/whether version 4 of guest 101 was published in datastore 'main' on node http:\/\/127\.0\.0\.1:\d+\/ is unknown/),
    });
    expect(seen.filter((s) => s.endsWith('/finish'))).toHaveLength(1);
  });

  it('a chunk whose body broke off is read again', async () => {
    let broken = 1;
    handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(blob.length) });
      if (broken-- > 0) res.write(blob.subarray(0, 10), () => res.socket?.destroy());
      else res.end(blob);
    };
    const r = remote();
    expect((await r.getChunk(hex)).equals(blob)).toBe(true);
    expect(r.stats.retries).toBe(1);
  });
});

describe('bounds', () => {
  it('a silent node: CONNECTION_FAILED after the idle timeout, for each try', async () => {
    handler = () => undefined; // never answers
    const r = remote({ timeouts: { idleMs: 150 }, retry: { attempts: 2, baseDelayMs: 10, maxDelayMs: 10 } });
    await expect(r.listVersions('101')).rejects.toMatchObject({ code: 'CONNECTION_FAILED', message: expect.stringMatching(/no data for 0\.15 s/) });
    expect(r.stats).toMatchObject({ requests: 2, retries: 1 });
  });

  it('an answer larger than the room for a chunk blob: CHUNK_CORRUPT', async () => {
    handler = (_req, res) => res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(Buffer.alloc(1000));
    await expect(remote().readChunkInto(hex, new ArrayBuffer(600))).rejects.toMatchObject({ code: 'CHUNK_CORRUPT', message: expect.stringContaining(hex) });
  });

  it('close() fails the requests in flight and later ones with ABORTED, without retrying them', async () => {
    handler = () => undefined;
    const r = remote();
    const pending = r.listVersions('101');
    for (let waited = 0; seen.length === 0 && waited < 5000; waited += 10) await new Promise((resolve) => setTimeout(resolve, 10));
    r.close();
    await expect(pending).rejects.toMatchObject({ code: 'ABORTED', message: expect.stringContaining('the client was closed') });
    await expect(r.listVersions('101')).rejects.toMatchObject({ code: 'ABORTED' });
    expect(r.stats).toMatchObject({ requests: 1, retries: 0 });
  });

  it("the caller's signal aborts the upload's requests in flight: ABORTED", async () => {
    handler = withOpen(() => undefined);
    const controller = new AbortController();
    const upload = await remote().openUpload({ guestId: '101', node: 'node2', signal: controller.signal });
    const put = upload.putChunk(hex, blob);
    setTimeout(() => controller.abort(), 50);
    await expect(put).rejects.toMatchObject({ code: 'ABORTED' });
  });
});
