/**
 * RemoteStore against real `coldvault serve` processes on 127.0.0.1: plain HTTP (loopback) and HTTPS
 * with serve's own certificate (`tls: "auto"`) pinned by the fingerprint serve prints; real datastores,
 * a real `backup` token made with `coldvault token create`. Versions come from real local backups
 * (the pipeline's own blobs, indexes and manifests). Asserted, over both transports: a pushed version
 * restores byte-identical with `coldvault restore` on the server's store; a second push of the same
 * data sends metadata only (no chunk body on the wire; the client's byte count equals the server's);
 * requests run side by side over a few kept-alive connections; the reader lists, fetches manifest,
 * index and chunks (byte-identical to the source's); a chunk damaged on the server's disk is detected
 * by the client (CHUNK_CORRUPT naming the digest and the node); a push under a bandwidth limit meters
 * every body byte through the token bucket (on a virtual clock: no timed assertion).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../cli/cli-lab.js';
import { imagePath, sha256File } from '../helpers/fixtures.js';
import { startServe, type ServeProcess } from '../helpers/serve-process.js';
import { CHUNK_SIZE, decodeBlob, encodeBlob } from '../../dist/format/index.js';
import { TokenBucket, type BucketClock, type RemoteStore } from '../../dist/targets/index.js';
import { client, makeRemoteLab, makeToken, push, restoreFrom, type RemoteLab, type ServeConfig } from './remote-lab.js';

let lab: RemoteLab;
const servers: ServeProcess[] = [];
const clients: RemoteStore[] = [];

interface Node {
  serve: ServeProcess;
  config: ServeConfig;
  token: string;
  /** a client with this transport's settings */
  remote(extra?: Parameters<typeof client>[2]): RemoteStore;
}
const nodes = {} as Record<'http' | 'https', Node>;

async function startNode(name: 'http' | 'https'): Promise<Node> {
  const config = await lab.serveConfig(name, name === 'https' ? { tls: 'auto' } : {});
  const token = await makeToken(config, 'node2', 'backup', 'main');
  const serve = await startServe(['--config', config.path, '--listen', '127.0.0.1:0']);
  servers.push(serve);
  const remote = (extra: Parameters<typeof client>[2] = {}): RemoteStore => {
    const made = client(serve.url, token, { fingerprint: serve.fingerprint, ...extra });
    clients.push(made);
    return made;
  };
  return { serve, config, token, remote };
}

beforeAll(async () => {
  lab = await makeRemoteLab();
  nodes.http = await startNode('http');
  nodes.https = await startNode('https');
  expect(nodes.http.serve.url).toMatch(/^http:\/\/127\.0\.0\.1:/);
  expect(nodes.https.serve.url).toMatch(/^https:\/\/127\.0\.0\.1:/);
});
afterAll(async () => {
  for (const c of clients) c.close();
  await Promise.all(servers.map((s) => s.stop()));
  lab?.cleanup();
});

const blobBytes = async (hexes: string[]): Promise<number> => {
  let total = 0;
  for (const hex of hexes) total += (await lab.source.chunks.readBlob(hex)).length;
  return total;
};

describe.each(['http', 'https'] as const)('over %s', (transport) => {
  const node = (): Node => nodes[transport];

  it('a pushed version restores byte-identical on the server; several requests ran side by side over kept-alive connections', async () => {
    const remote = node().remote({ maxInFlight: 2 });
    const src = lab.versions['101']!;
    const { upload, missing, version, bytesReceived } = await push(remote, lab.source, src);
    expect(version).toBe(1);
    expect(missing.sort()).toEqual([...src.digests].sort()); // a new store lacks them all
    expect(upload.stats).toMatchObject({ chunksSent: src.digests.length, chunkBytesSent: await blobBytes(src.digests), retries: 0 });
    expect(upload.stats.sentBytes).toBe(bytesReceived); // what the client counts is what the server received
    expect(remote.peakInFlight).toBeGreaterThan(1);
    expect(remote.peakInFlight).toBeLessThanOrEqual(2);
    expect(remote.stats.connections).toBeLessThanOrEqual(2);
    expect(remote.stats.requests).toBeGreaterThan(remote.stats.connections);

    const restored = await restoreFrom(lab, node().config.stores.main, '101', version, transport === 'http' ? '201' : '211');
    expect(sha256(restored)).toBe(sha256File(imagePath(lab, '101', 'vm-101-disk-0.raw')));
  });

  it('a second push of the same data sends only metadata: no chunk body goes on the wire', async () => {
    const remote = node().remote();
    const src = lab.versions['101']!;
    const { upload, missing, version, bytesReceived } = await push(remote, lab.source, src);
    expect(version).toBe(2);
    expect(missing).toEqual([]);
    expect(upload.stats).toMatchObject({ chunksSent: 0, chunkBytesSent: 0, digestsAsked: src.digests.length, digestsMissing: 0 });
    expect(upload.stats.sentBytes).toBe(bytesReceived);
    const fileBytes = [...src.files.values()].reduce((s, f) => s + f.length, 0);
    expect(upload.stats.fileBytesSent).toBe(fileBytes);
    // open, known and finish are small JSON bodies: the rest of what was sent is the files
    expect(upload.stats.sentBytes - fileBytes).toBeLessThan(16 * 1024);
    expect(upload.stats.sentBytes).toBeLessThan((await blobBytes(src.digests)) / 100);
  });

  it('the reader lists the versions and fetches manifest, index and chunks as the source has them', async () => {
    const remote = node().remote();
    const src = lab.versions['101']!;
    const listed = await remote.listVersions('101');
    expect(listed.map((v) => [v.version, v.store, v.node])).toEqual([
      [1, 'main', src.manifest.node],
      [2, 'main', src.manifest.node],
    ]);
    expect(await remote.getManifest('101', 1)).toEqual({ ...src.manifest, version: 1 });
    const [disk] = src.manifest.disks;
    expect((await remote.getFile('101', 1, disk!.index)).equals(src.files.get(disk!.index)!)).toBe(true);
    const index = await remote.getIndex('101', 1, disk!.index);
    expect(index.digests.filter((d) => d !== null).map((d) => d.toString('hex'))).toEqual(expect.arrayContaining(src.digests));
    const buf = new ArrayBuffer(2 * CHUNK_SIZE);
    for (const hex of src.digests) {
      const stored = await lab.source.chunks.readBlob(hex);
      expect((await remote.getChunk(hex)).equals(stored)).toBe(true);
      const length = await remote.readChunkInto(hex, buf, 512);
      expect(Buffer.from(buf, 512, length).equals(stored)).toBe(true);
    }
    const absent = 'ab'.repeat(32);
    await expect(remote.getChunk(absent)).rejects.toMatchObject({ code: 'CHUNK_MISSING', message: expect.stringContaining(remote.node) });
    await expect(remote.getManifest('101', 9)).rejects.toMatchObject({ code: 'VERSION_NOT_FOUND' });
  });

  it('a chunk damaged on the server disk is detected by the client: CHUNK_CORRUPT naming the digest and the node', async () => {
    const remote = node().remote();
    const [hex] = lab.versions['101']!.digests as [string];
    const path = join(node().config.stores.main, 'chunks', hex.slice(0, 4), hex);
    const good = readFileSync(path);
    try {
      const flipped = Buffer.from(good);
      flipped[flipped.length - 1]! ^= 0x01;
      writeFileSync(path, flipped); // damaged: the CRC no longer holds
      await expect(remote.getChunk(hex)).rejects.toMatchObject({
        code: 'CHUNK_CORRUPT',
        message: expect.stringMatching(new RegExp(`${hex}.*${escape(remote.node)}.*CRC`)),
      });
      const other = decodeBlob(good, 'good');
      other[0]! ^= 0xff;
      writeFileSync(path, encodeBlob(other, 1)); // a sound blob of other bytes: only the SHA-256 tells
      await expect(remote.getChunk(hex)).rejects.toMatchObject({
        code: 'CHUNK_CORRUPT',
        message: expect.stringMatching(new RegExp(`${hex}.*${escape(remote.node)}.*does not hash to its name`)),
      });
    } finally {
      writeFileSync(path, good);
    }
    expect((await remote.getChunk(hex)).equals(good)).toBe(true);
  });
});

describe('bandwidth limit', () => {
  it('every request body byte of a push goes through the token bucket, which holds it to the rate (virtual clock)', async () => {
    let now = 0;
    const clock: BucketClock = {
      now: () => now,
      sleep: async (ms) => {
        now += ms;
      },
    };
    const rate = 4 * 1024 * 1024;
    const limiter = new TokenBucket(rate, { clock, burst: 256 * 1024 });
    const remote = nodes.http.remote({ limiter });
    const src = lab.versions['102']!;
    const { upload } = await push(remote, lab.source, src);
    expect(upload.stats.chunkBytesSent).toBe(await blobBytes(src.digests));
    expect(limiter.stats.takenBytes).toBe(remote.stats.sentBytes);
    // the bucket let the bytes beyond its burst through at `rate` and no faster
    expect(now).toBeGreaterThanOrEqual(((remote.stats.sentBytes - limiter.burst) / rate) * 1000 - 1e-6);
    expect(limiter.stats.waits).toBeGreaterThan(0);
    const restored = await restoreFrom(lab, nodes.http.config.stores.main, '102', 1, '202');
    expect(sha256(restored)).toBe(sha256File(imagePath(lab, '102', 'vm-102-disk-0.raw')));
  });

  it('bwlimitMBps makes a bucket of that many MiB/s', () => {
    expect(nodes.http.remote({ bwlimitMBps: 2.5 }).limiter?.rate).toBe(2.5 * 1024 * 1024);
    expect(nodes.http.remote({ bwlimitMBps: 0 }).limiter).toBeUndefined();
  });
});

describe('https pinning', () => {
  it('a wrong fingerprint is refused before any request: FINGERPRINT_MISMATCH naming the node', async () => {
    const remote = nodes.https.remote({ fingerprint: 'AB'.repeat(32) });
    await expect(remote.listVersions('101')).rejects.toMatchObject({ code: 'FINGERPRINT_MISMATCH', message: expect.stringContaining(nodes.https.serve.url) });
    expect(remote.stats.retries).toBe(0);
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
