/**
 * What a RemoteStore may be made from, refused before any connection with CONFIG_INVALID naming the
 * setting: https needs the node's fingerprint to pin, plain http goes to loopback only (the token and
 * the backups would otherwise cross the network in the clear), a fingerprint must be one, a token
 * must be there, limits must make sense. And the client's batch of `known` is the server's limit. A
 * short request timeout (config cluster.timeoutSeconds) bounds connecting too: a silent peer on
 * loopback (accepts, never answers the TLS handshake) fails within it, not after the 10 s default.
 */
import { createServer, type Server } from 'node:net';
import { describe, expect, it } from 'vitest';
import { isLoopbackHost } from '../../dist/core/index.js';
import { KNOWN_BATCH_MAX, RemoteStore, ringStoreOptions, type RemoteStoreOptions } from '../../dist/targets/index.js';
import { KNOWN_BATCH } from '../../dist/server/routes/store-schemas.js';

const FP = 'AB:'.repeat(31) + 'AB';
const base: RemoteStoreOptions = { url: 'https://10.0.0.2:8007', fingerprint: FP, token: 'tok', store: 'main' };
const refused = (opts: Partial<RemoteStoreOptions>, message: RegExp): void => {
  expect(() => new RemoteStore({ ...base, ...opts })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringMatching(message) }));
};

describe('RemoteStore options', () => {
  it('https with a fingerprint, and plain http to loopback, are accepted', () => {
    const made = [
      new RemoteStore(base),
      new RemoteStore({ ...base, url: 'https://[fd00::2]:8007/', fingerprint: FP.replaceAll(':', '').toLowerCase() }),
      new RemoteStore({ ...base, url: 'http://127.0.0.1:8080', fingerprint: undefined }),
      new RemoteStore({ ...base, url: 'http://[::1]:8080', fingerprint: undefined }),
      new RemoteStore({ ...base, url: 'http://localhost:8080', fingerprint: undefined }),
    ];
    expect(made.map((r) => r.node)).toEqual([
      'https://10.0.0.2:8007/',
      'https://[fd00::2]:8007/',
      'http://127.0.0.1:8080/',
      'http://[::1]:8080/',
      'http://localhost:8080/',
    ]);
    for (const r of made) r.close();
  });

  it('refuses plain http beyond loopback, https without a fingerprint, a fingerprint on http, and URLs with more than the node', () => {
    refused({ url: 'http://10.0.0.2:8080', fingerprint: undefined }, /http:\/\/10\.0\.0\.2:8080\/: plain http is allowed only to a loopback address/);
    refused({ fingerprint: undefined }, /https:\/\/10\.0\.0\.2:8007\/: https needs the fingerprint/);
    refused({ url: 'http://127.0.0.1:8080' }, /a fingerprint pins a TLS certificate; use https/);
    refused({ fingerprint: 'AB:CD' }, /fingerprint of node https:\/\/10\.0\.0\.2:8007\/ 'AB:CD' is not a SHA-256 fingerprint/);
    refused({ url: 'https://10.0.0.2:8007/api' }, /just https:\/\/HOST:PORT/);
    refused({ url: 'ftp://10.0.0.2' }, /must start with https/);
    refused({ url: 'not a url' }, /does not parse/);
  });

  it('refuses a missing token, a bad store name and senseless limits', () => {
    refused({ token: '' }, /API token for node https:\/\/10\.0\.0\.2:8007\/ is empty/);
    refused({ token: 'a b' }, /API token/);
    refused({ store: '' }, /datastore name ''/);
    refused({ store: '../x' }, /datastore name '..\/x'/);
    refused({ maxInFlight: 0 }, /maxInFlight 0/);
    refused({ bwlimitMBps: -1 }, /bwlimit -1/);
  });

  it('knows loopback addresses', () => {
    expect(['127.0.0.1', '127.9.9.9', '::1', '[::1]', 'localhost'].every(isLoopbackHost)).toBe(true);
    expect(['10.0.0.1', '128.0.0.1', '::2', 'example.org', '127.0.0.1.example.org'].some(isLoopbackHost)).toBe(false);
  });

  it('asks `known` in batches no larger than the server takes', () => {
    expect(KNOWN_BATCH_MAX).toBe(KNOWN_BATCH);
  });

  it('connecting waits no longer than a request may go without a byte (idleMs, when below the 10 s default)', async () => {
    const silent: Server = createServer((socket) => socket.on('error', () => undefined));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as { port: number }).port;
    const remote = new RemoteStore({ ...base, url: `https://127.0.0.1:${port}`, timeouts: { idleMs: 400 }, retry: { attempts: 1 } });
    try {
      await expect(remote.listGuests()).rejects.toMatchObject({ code: 'CONNECTION_FAILED', message: expect.stringMatching(/no answer within 0\.4 s/) });
    } finally {
      remote.close();
      silent.close();
    }
  });

  it("a client of a node of the ring takes the ring's request timeout (cluster.timeoutSeconds), its store's token, and names an unknown node", () => {
    const ring = {
      timeoutSeconds: 7,
      nodes: [
        { name: 'node1', url: 'https://10.0.0.1:8007', fingerprint: FP, token: 'tok1', tokens: { usb: 'tok1-usb' } },
        { name: 'node2', url: 'https://10.0.0.2:8007', fingerprint: FP, token: 'tok2' },
      ],
    };
    expect(ringStoreOptions(ring, 'node1', 'main')).toMatchObject({ url: 'https://10.0.0.1:8007', token: 'tok1', store: 'main', timeouts: { idleMs: 7000 } });
    expect(ringStoreOptions(ring, 'node1', 'usb')).toMatchObject({ token: 'tok1-usb', timeouts: { idleMs: 7000 } });
    expect(ringStoreOptions({ nodes: ring.nodes }, 'node2', 'main').timeouts).toEqual({});
    expect(() => ringStoreOptions(ring, 'node9', 'main')).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringContaining('(listed: node1, node2)') }),
    );
  });
});
