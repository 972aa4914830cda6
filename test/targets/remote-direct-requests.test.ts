/**
 * The Wire's GET requests and byte uploads (PUT) go over DirectConnections (src/targets/remote/direct-*.ts):
 * the socket reads a body straight into its destination, with coldvault's own small HTTP/1.1 answer
 * parser, and writes a PUT's body from the caller's buffer. Against
 * real TLS on 127.0.0.1 (node:https / node:tls servers presenting a certificate made by
 * `coldvault cert fingerprint`, pinned), for what a real serve never does on purpose: chunked answers,
 * `Connection: close`, bodies broken off, garbage instead of HTTP, answers larger than the room.
 * And the parser itself: heads, and chunked framing fed in every possible split (fast-check).
 */
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer, type Server, type ServerOptions } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createServer as createTlsServer } from 'node:tls';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChunkedBody, parseHead, RemoteStore, type RemoteStoreOptions } from '../../dist/targets/index.js';
import { chunkDigest, encodeBlob } from '../../dist/format/index.js';
import { cli, makeLab, type Lab } from '../helpers/fixtures.js';

let lab: Lab;
let pair: ServerOptions;
let fingerprint: string;
const closers: Array<() => unknown> = [];
const clients: RemoteStore[] = [];

beforeAll(async () => {
  lab = makeLab('cv-direct-');
  const path = join(lab.root, 'node.json');
  writeFileSync(path, JSON.stringify({ node: 'n', stateDir: join(lab.root, 'state'), guestsDir: lab.guestsDir, hypervisor: { driver: 'none' } }));
  const r = await cli(['cert', 'fingerprint', '--json', '--config', path]);
  if (r.code !== 0) throw new Error(r.stderr);
  const made = JSON.parse(r.stdout) as { fingerprint: string; cert: string; key: string };
  fingerprint = made.fingerprint;
  pair = { cert: readFileSync(made.cert), key: readFileSync(made.key) };
});
afterAll(() => {
  for (const c of clients) c.close();
  for (const close of closers) close();
  lab?.cleanup();
});

async function listen(server: Server | ReturnType<typeof createTlsServer>): Promise<string> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  closers.push(() => server.close());
  return `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function client(url: string, extra: Partial<RemoteStoreOptions> = {}): RemoteStore {
  const made = new RemoteStore({ url, fingerprint, token: 'tok', store: 'main', retry: { attempts: 3, baseDelayMs: 5, maxDelayMs: 10 }, ...extra });
  clients.push(made);
  return made;
}

/** a blob of ~3 MiB of incompressible-ish bytes, and its digest */
const plain = Buffer.from(Array.from({ length: 3 * 1024 * 1024 }, (_, i) => (i * 2654435761) >>> 24));
const hex = chunkDigest(plain).toString('hex');
const blob = encodeBlob(plain, 0);

describe('GET answers read in place over pinned TLS', () => {
  it('a chunk lands byte-exact at the offset asked for; requests in flight share kept-alive connections; the token is sent', async () => {
    const seen: string[] = [];
    const server = createHttpsServer(pair, (req, res) => {
      seen.push(`${req.method} ${req.url} ${req.headers.authorization}`);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(blob.length) }).end(blob);
    });
    const remote = client(await listen(server), { maxInFlight: 3 });
    const room = new ArrayBuffer(blob.length + 4096 + 100);
    const results = await Promise.all(Array.from({ length: 12 }, () => remote.readChunkInto(hex, room, 4096)));
    expect(results).toEqual(Array(12).fill(blob.length));
    expect(Buffer.from(room, 4096, blob.length).equals(blob)).toBe(true);
    expect(seen[0]).toBe(`GET /api/v1/stores/main/chunks/${hex} Bearer tok`);
    expect(remote.stats.connections).toBeLessThanOrEqual(3);
    expect(remote.stats.requests).toBe(12);
    expect(remote.stats.receivedBytes).toBe(12 * blob.length);
    expect((await remote.getChunk(hex)).equals(blob)).toBe(true); // into a buffer of its own, checked
  });

  it('a chunked answer is read into place; one larger than the room is CHUNK_CORRUPT; an error answer keeps its code', async () => {
    const server = createHttpsServer(pair, (req, res) => {
      if (req.url?.includes('/missing/')) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.write('{"error":{"code":"CHUNK_MISSING",');
        res.end('"message":"no such chunk"}}');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/octet-stream' }); // no length: chunked
      for (let at = 0; at < blob.length; at += 100_000) res.write(blob.subarray(at, at + 100_000));
      res.end();
    });
    const remote = client(await listen(server));
    const room = new ArrayBuffer(blob.length);
    expect(await remote.readChunkInto(hex, room)).toBe(blob.length);
    expect(Buffer.from(room).equals(blob)).toBe(true);
    await expect(remote.readChunkInto(hex, new ArrayBuffer(blob.length - 1))).rejects.toMatchObject({
      code: 'CHUNK_CORRUPT',
      message: expect.stringContaining(hex),
    });
    const missing = await remote.listVersions('missing').catch((e: unknown) => e);
    expect(missing).toMatchObject({ code: 'CHUNK_MISSING', message: expect.stringContaining('no such chunk') });
  });

  it("'Connection: close' answers: each request gets a new connection, and all succeed", async () => {
    const server = createHttpsServer(pair, (_req, res) => {
      res.writeHead(200, { connection: 'close', 'content-type': 'application/octet-stream', 'content-length': String(blob.length) }).end(blob);
    });
    const remote = client(await listen(server), { maxInFlight: 1 });
    for (let i = 0; i < 3; i++) expect((await remote.getChunk(hex)).equals(blob)).toBe(true);
    expect(remote.stats).toMatchObject({ requests: 3, connections: 3, retries: 0 });
  });

  it('a body broken off over TLS is read again on a new connection', async () => {
    let broken = 1;
    const server = createHttpsServer(pair, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(blob.length) });
      if (broken-- > 0) res.write(blob.subarray(0, 200_000), () => res.socket?.destroy());
      else res.end(blob);
    });
    const remote = client(await listen(server));
    const room = new ArrayBuffer(blob.length);
    expect(await remote.readChunkInto(hex, room)).toBe(blob.length);
    expect(Buffer.from(room).equals(blob)).toBe(true);
    expect(remote.stats).toMatchObject({ retries: 1, connections: 2 });
  });

  it('garbage instead of HTTP, or a head without framing: CONNECTION_FAILED naming the request, tried as often as allowed', async () => {
    const garbage = createTlsServer(pair, (socket) => socket.end('SSH-2.0-OpenSSH_9.2\r\n\r\n'));
    const remote = client(await listen(garbage));
    await expect(remote.readChunkInto(hex, new ArrayBuffer(16))).rejects.toMatchObject({
      code: 'CONNECTION_FAILED',
      message: expect.stringMatching(/GET https:\/\/127\.0\.0\.1:\d+\/api\/v1\/stores\/main\/chunks\/.*not HTTP\/1\.1 as expected: status line 'SSH-2\.0/),
    });
    expect(remote.stats).toMatchObject({ requests: 3, retries: 2 });
    const unframed = createTlsServer(pair, (socket) => socket.end('HTTP/1.1 200 OK\r\ncontent-type: x\r\n\r\nabc'));
    await expect(client(await listen(unframed)).listVersions('101')).rejects.toMatchObject({
      message: expect.stringContaining('without Content-Length or chunked framing'),
    });
  });
});

/** A node that opens uploads and takes chunk PUTs: what it received, by chunk; `onChunk` may answer otherwise. */
function uploadNode(onChunk?: (n: number, req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => boolean) {
  const got = new Map<string, Buffer>();
  const seen: string[] = [];
  let chunks = 0;
  const server = createHttpsServer(pair, (req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (p: Buffer) => parts.push(p));
    req.on('end', () => {
      seen.push(`${req.method} ${req.url} ${req.headers.authorization} ${req.headers['content-type']} ${req.headers['content-length']}`);
      if (req.method === 'POST' && req.url?.endsWith('/uploads')) {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ upload: 'u1', version: 1, idleTimeoutSeconds: 60 }));
        return;
      }
      if (req.method === 'PUT' && onChunk?.(++chunks, req, res)) return;
      got.set(req.url ?? '', Buffer.concat(parts));
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"stored":true}');
    });
  });
  return { server, got, seen };
}

describe("PUT bodies written from the caller's buffer over pinned TLS", () => {
  it('chunks in flight arrive byte-exact with their head (method, path, token, type, length) over kept-alive connections; bytes are counted', async () => {
    const node = uploadNode();
    const remote = client(await listen(node.server), { maxInFlight: 3 });
    const upload = await remote.openUpload({ guestId: '101', node: 'n1' });
    const blobs = [blob, blob.subarray(0, 12_345), encodeBlob(Buffer.alloc(0), 0)];
    await Promise.all(Array.from({ length: 9 }, (_, i) => upload.putChunk(`${i}`.padStart(64, 'a'), blobs[i % 3]!)));
    for (let i = 0; i < 9; i++) expect(node.got.get(`/api/v1/stores/main/uploads/u1/chunks/${`${i}`.padStart(64, 'a')}`)?.equals(blobs[i % 3]!)).toBe(true);
    expect(node.seen).toContain(`PUT /api/v1/stores/main/uploads/u1/chunks/${'0'.padStart(64, 'a')} Bearer tok application/octet-stream ${blob.length}`);
    expect(remote.stats.connections).toBeLessThanOrEqual(4); // the open's and up to 3 in flight
    const chunkBytes = 3 * blobs.reduce((n, b) => n + b.length, 0);
    expect(upload.stats.chunkBytesSent).toBe(chunkBytes);
    expect(upload.stats.sentBytes - chunkBytes).toBe(JSON.stringify({ guestId: '101', node: 'n1' }).length); // and the open's body
  });

  it('a node that answers 507 before reading the body: the error with its code, the connection not reused half-read', async () => {
    const node = uploadNode((n, req, res) => {
      if (n !== 1) return false;
      res.writeHead(507, { 'content-type': 'application/json', connection: 'close' }).end('{"error":{"code":"NO_SPACE","message":"the datastore is full"}}');
      req.socket.destroySoon();
      return true;
    });
    const remote = client(await listen(node.server), { maxInFlight: 1 });
    const upload = await remote.openUpload({ guestId: '101', node: 'n1' });
    await expect(upload.putChunk('b'.repeat(64), blob)).rejects.toMatchObject({ code: 'NO_SPACE', message: expect.stringContaining('full') });
    await upload.putChunk('c'.repeat(64), blob);
    expect(node.got.get(`/api/v1/stores/main/uploads/u1/chunks/${'c'.repeat(64)}`)?.equals(blob)).toBe(true);
  });

  it('a connection broken while the body is sent: the PUT is sent again whole on a new connection', async () => {
    let broken = 1;
    const server = createHttpsServer(pair, (req, res) => {
      if (req.method === 'POST') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ upload: 'u1', version: 1, idleTimeoutSeconds: 60 }));
        return;
      }
      const parts: Buffer[] = [];
      let n = 0;
      req.on('data', (p: Buffer) => {
        parts.push(p);
        n += p.length;
        if (broken > 0 && n > 200_000) {
          broken--;
          req.socket.destroy();
        }
      });
      req.on('end', () => {
        expect(Buffer.concat(parts).equals(blob)).toBe(true);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    const remote = client(await listen(server), { maxInFlight: 1 });
    const upload = await remote.openUpload({ guestId: '101', node: 'n1' });
    await upload.putChunk('d'.repeat(64), blob);
    expect(remote.stats.retries).toBe(1);
  });
});

describe('the HTTP/1.1 answer parser', () => {
  const head = (text: string) => Buffer.from(`${text}\r\n\r\n`);

  it('reads status, length, chunked and close; refuses what a node would not send', () => {
    expect(parseHead(head('HTTP/1.1 200 OK\r\nContent-Length: 12\r\nX: y'), 'GET')).toEqual({ status: 200, contentLength: 12, chunked: false, close: false });
    expect(parseHead(head('HTTP/1.1 404 Not Found\r\ntransfer-encoding: chunked\r\nConnection: keep-alive, close'), 'GET')).toEqual({
      status: 404,
      contentLength: undefined,
      chunked: true,
      close: true,
    });
    expect(parseHead(head('HTTP/1.0 204 No Content'), 'GET')).toEqual({ status: 204, contentLength: 0, chunked: false, close: true });
    expect(() => parseHead(head('HTTP/1.1 200 OK\r\nContent-Length: 1\r\ncontent-length: 2'), 'GET')).toThrow(/two different Content-Length/);
    expect(() => parseHead(head('HTTP/1.1 200 OK\r\nContent-Length: -1'), 'GET')).toThrow(/Content-Length '-1'/);
    expect(() => parseHead(head('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip'), 'GET')).toThrow(/Transfer-Encoding 'gzip'/);
    expect(() => parseHead(head('HTTP/2 200'), 'GET')).toThrow(/status line/);
    expect(() => parseHead(head('HTTP/1.1 200 OK\r\nbroken header'), 'GET')).toThrow(/header line 'broken header'/);
  });

  it('chunked framing: any data, cut into any chunks, fed in any pieces, comes out whole and stops at its end', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 3000 }),
        fc.array(fc.integer({ min: 1, max: 700 }), { minLength: 1 }),
        fc.array(fc.integer({ min: 1, max: 97 }), { minLength: 1 }),
        (data, sizes, feeds) => {
          const frames: Buffer[] = [];
          for (let at = 0, i = 0; at < data.length; i++) {
            const size = Math.min(sizes[i % sizes.length] as number, data.length - at);
            frames.push(Buffer.from(`${size.toString(16)}\r\n`), Buffer.from(data.subarray(at, at + size)), Buffer.from('\r\n'));
            at += size;
          }
          const after = Buffer.from('HTTP/1.1 200 OK');
          const wire = Buffer.concat([...frames, Buffer.from('0\r\n\r\n'), after]);
          const out: Buffer[] = [];
          const body = new ChunkedBody((piece) => out.push(Buffer.from(piece)));
          let at = 0;
          for (let i = 0; at < wire.length && !body.done; i++) {
            const piece = wire.subarray(at, at + (feeds[i % feeds.length] as number));
            at += body.feed(piece);
          }
          expect(body.done).toBe(true);
          expect(Buffer.concat(out).equals(Buffer.from(data))).toBe(true);
          expect(wire.subarray(at).equals(after)).toBe(true); // nothing past the body's end was taken
        },
      ),
      { numRuns: 300 },
    );
  });
});
