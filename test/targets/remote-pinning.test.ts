/**
 * The pinning client (src/targets/remote) against real TLS on 127.0.0.1: a real `coldvault serve`
 * (built CLI, its own self-signed certificate), and small node:https / node:tls / node:http / node:net
 * servers for what serve never does (another certificate, silence, a body broken off, plain HTTP).
 * Asserts: the pinned fingerprint is accepted (any case, with or without ':'), connections are kept
 * alive; any other certificate is refused with FINGERPRINT_MISMATCH naming the URL and both
 * fingerprints before a byte of the request (its token) is sent; other failures are TLS_FAILED /
 * CONNECTION_FAILED naming the URL, bounded by the timeouts.
 */
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer, type ServerOptions } from 'node:https';
import { createServer as createNetServer, type AddressInfo, type Server } from 'node:net';
import { Readable } from 'node:stream';
import { createServer as createTlsServer } from 'node:tls';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, makeLab, type Lab } from '../helpers/fixtures.js';
import { startServe, type ServeProcess } from '../helpers/serve-process.js';
import { FingerprintMismatchError, PinnedAgent, pinnedFetch, presentedFingerprint } from '../../dist/targets/index.js';

let lab: Lab;
let serve: ServeProcess;
let fingerprint: string;
/** serve's own key and certificate (for the small servers that must present the pinned certificate) */
let pair: ServerOptions;
/** another node's certificate */
let otherPair: ServerOptions;
const closers: Array<() => unknown> = [];

async function makePair(node: string, extra: Record<string, unknown> = {}): Promise<{ path: string; fingerprint: string; cert: string; key: string }> {
  const path = join(lab.root, `${node}.json`);
  writeFileSync(path, JSON.stringify({ node, stateDir: join(lab.root, `state-${node}`), guestsDir: lab.guestsDir, hypervisor: { driver: 'none' }, ...extra }));
  const r = await cli(['cert', 'fingerprint', '--json', '--config', path]);
  if (r.code !== 0) throw new Error(r.stderr);
  return { path, ...(JSON.parse(r.stdout) as { fingerprint: string; cert: string; key: string }) };
}

const filesOf = (p: { cert: string; key: string }): ServerOptions => ({ cert: readFileSync(p.cert), key: readFileSync(p.key) });

/** Listens on 127.0.0.1 (any port); closed after the tests. Returns https://127.0.0.1:PORT. */
async function listen(server: Server | HttpServer): Promise<string> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  closers.push(() => server.close());
  return `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  lab = makeLab('cv-pin-');
  const made = await makePair('pinned', { tls: 'auto', storages: { local: lab.storageDir } });
  fingerprint = made.fingerprint;
  pair = filesOf(made);
  otherPair = filesOf(await makePair('impostor'));
  serve = await startServe(['--config', made.path, '--listen', '127.0.0.1:0']);
});
afterAll(async () => {
  for (const close of closers) close();
  await serve?.stop();
  lab?.cleanup();
});

describe('pinnedFetch with the pinned fingerprint', () => {
  it('talks to the node whose certificate it is, over one kept-alive connection', async () => {
    expect(serve.fingerprint).toBe(fingerprint);
    const agent = new PinnedAgent({ fingerprint });
    closers.push(() => agent.destroy());
    const first = await pinnedFetch(`${serve.url}/api/v1/health`, { agent });
    expect(first.status).toBe(200);
    expect(await first.json()).toMatchObject({ ok: true });
    const [socket] = Object.values(agent.freeSockets).flat();
    const second = await pinnedFetch(`${serve.url}/api/v1/health`, { agent });
    expect(second.status).toBe(200);
    await second.arrayBuffer();
    expect(Object.values(agent.freeSockets).flat()).toEqual([socket]);
  });

  it('takes the fingerprint in any case, with or without colons; an HTTP error status is an answer', async () => {
    const agent = new PinnedAgent({ fingerprint: fingerprint.replaceAll(':', '').toLowerCase() });
    closers.push(() => agent.destroy());
    expect(agent.fingerprint).toBe(fingerprint);
    const res = await pinnedFetch(`${serve.url}/api/v1/jobs`, { agent, headers: { authorization: 'Bearer cv_wrong' } });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ error: { code: 'UNAUTHORIZED' } });
  });

  it('sends buffers and streams, and reads a streamed answer', async () => {
    const echo = createHttpsServer(pair, (req, res) => {
      let n = 0;
      req.on('data', (b: Buffer) => (n += b.length));
      req.on('end', () => res.end(JSON.stringify({ n, length: req.headers['content-length'] ?? null })));
    });
    const url = await listen(echo);
    const agent = new PinnedAgent({ fingerprint });
    closers.push(() => agent.destroy());
    const sent = await pinnedFetch(`${url}/x`, { agent, method: 'PUT', body: Buffer.alloc(100_000, 1) });
    expect(await sent.json()).toEqual({ n: 100_000, length: '100000' });
    const streamed = await pinnedFetch(`${url}/x`, { agent, method: 'PUT', body: Readable.from([Buffer.alloc(70_000), Buffer.alloc(30_000)]) });
    expect(await streamed.json()).toEqual({ n: 100_000, length: null });
  });

  it('presentedFingerprint shows what a node presents', async () => {
    expect(await presentedFingerprint(`${serve.url}/`)).toBe(fingerprint);
  });
});

describe('refusals', () => {
  it('another fingerprint: FINGERPRINT_MISMATCH naming the URL, the expected and the presented fingerprint', async () => {
    const wrong = fingerprint.replace(/^../, fingerprint.startsWith('00') ? '11' : '00');
    const agent = new PinnedAgent({ fingerprint: wrong });
    closers.push(() => agent.destroy());
    const url = `${serve.url}/api/v1/health`;
    const err = await pinnedFetch(url, { agent }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FingerprintMismatchError);
    expect(err).toMatchObject({ code: 'FINGERPRINT_MISMATCH', url, expected: wrong, presented: fingerprint });
    const message = (err as Error).message;
    for (const part of [url, wrong, fingerprint]) expect(message).toContain(part);
  });

  it('no byte of the request (nor its token) reaches a server with another certificate', async () => {
    const received: Buffer[] = [];
    let closed: Promise<unknown> = Promise.resolve();
    const impostor = createTlsServer(otherPair, (socket) => {
      closed = once(socket, 'close');
      socket.on('data', (b: Buffer) => received.push(b));
      socket.on('error', () => undefined);
    });
    const url = await listen(impostor);
    const agent = new PinnedAgent({ fingerprint });
    closers.push(() => agent.destroy());
    const body = 'secret body';
    const err = await pinnedFetch(`${url}/api/v1/jobs`, { agent, method: 'POST', headers: { authorization: 'Bearer cv_secret' }, body }).catch(
      (e: unknown) => e,
    );
    await closed;
    expect(Buffer.concat(received).toString()).toBe('');
    expect(err).toMatchObject({ code: 'FINGERPRINT_MISMATCH', expected: fingerprint });
    expect((err as FingerprintMismatchError).presented).not.toBe(fingerprint);
  });

  it('a server that speaks no TLS: TLS_FAILED naming the URL', async () => {
    const url = await listen(createHttpServer((_req, res) => res.end('plain')));
    const agent = new PinnedAgent({ fingerprint });
    closers.push(() => agent.destroy());
    await expect(pinnedFetch(`${url}/api/v1/health`, { agent })).rejects.toMatchObject({
      code: 'TLS_FAILED',
      message: expect.stringContaining(`${url}/`) as unknown,
    });
  });

  it('nothing listening, or a silent peer: CONNECTION_FAILED naming the URL, bounded by connectTimeoutMs', async () => {
    const gone = createNetServer();
    const goneUrl = await listen(gone);
    gone.close();
    const agent = new PinnedAgent({ fingerprint, connectTimeoutMs: 300 });
    closers.push(() => agent.destroy());
    await expect(pinnedFetch(`${goneUrl}/x`, { agent })).rejects.toMatchObject({
      code: 'CONNECTION_FAILED',
      message: expect.stringContaining(goneUrl) as unknown,
    });
    const silent = createNetServer((socket) => socket.on('error', () => undefined)); // accepts, never answers the handshake
    const silentUrl = await listen(silent);
    await expect(pinnedFetch(`${silentUrl}/x`, { agent })).rejects.toMatchObject({
      code: 'CONNECTION_FAILED',
      message: expect.stringMatching(/no answer within 0\.3 s/) as unknown,
    });
  });

  it('a node that stops answering mid-request, or breaks a body off: CONNECTION_FAILED', async () => {
    const stalled = createHttpsServer(pair, (req, res) => {
      if (req.url === '/broken') {
        res.writeHead(200, { 'content-length': '1000' });
        res.write(Buffer.alloc(10));
        setTimeout(() => req.socket.destroy(), 50);
      } // else: never answers
    });
    const url = await listen(stalled);
    const agent = new PinnedAgent({ fingerprint });
    closers.push(() => agent.destroy());
    await expect(pinnedFetch(`${url}/stall`, { agent, idleTimeoutMs: 300 })).rejects.toMatchObject({
      code: 'CONNECTION_FAILED',
      message: `GET ${url}/stall: no data for 0.3 s`,
    });
    const res = await pinnedFetch(`${url}/broken`, { agent });
    expect(res.status).toBe(200);
    await expect(res.arrayBuffer()).rejects.toMatchObject({ code: 'CONNECTION_FAILED', message: expect.stringMatching(/the response broke off/) as unknown });
  });

  it('a malformed fingerprint or a plain http:// URL is a config error', async () => {
    expect(() => new PinnedAgent({ fingerprint: 'AB:CD' })).toThrow(/pinned fingerprint 'AB:CD' is not a SHA-256 fingerprint/);
    const agent = new PinnedAgent({ fingerprint });
    closers.push(() => agent.destroy());
    await expect(pinnedFetch('http://127.0.0.1:1/', { agent })).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
  });
});
