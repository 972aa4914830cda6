/**
 * A small client of the remote datastore protocol for the tests (the real client comes with cluster
 * mode): it pushes a version of a local datastore, made by a real local backup, into a server's
 * store, step by step (open, known in batches, the missing chunks a few at a time, the files, finish),
 * and counts the request body bytes it sends. Two transports: fastify.inject and real HTTP (fetch).
 */
import type { FastifyInstance } from 'fastify';
import type { Datastore } from '../../dist/datastore/index.js';
import { MANIFEST_FILE, VERSION_CONFIG_FILE, VERSION_LOG_FILE } from '../../dist/format/index.js';

export interface Answer {
  status: number;
  body: Buffer;
  json<T = Record<string, unknown>>(): T;
  code?: string;
}

/** Sends one request: a Buffer goes as application/octet-stream, anything else as JSON. */
export type Send = (method: string, url: string, body?: unknown) => Promise<Answer>;

function answer(status: number, body: Buffer): Answer {
  const json = <T>(): T => JSON.parse(body.toString('utf8')) as T;
  let code: string | undefined;
  if (status >= 400) code = (json() as { error?: { code?: string } }).error?.code;
  return { status, body, json, code };
}

function encode(body: unknown): { payload?: Buffer | string; type?: string } {
  if (body === undefined) return {};
  if (Buffer.isBuffer(body)) return { payload: body, type: 'application/octet-stream' };
  return { payload: JSON.stringify(body), type: 'application/json' };
}

export function injectSend(app: FastifyInstance, token: string): Send {
  return async (method, url, body) => {
    const { payload, type } = encode(body);
    const headers: Record<string, string> = { authorization: `Bearer ${token}`, ...(type ? { 'content-type': type } : {}) };
    const res = await app.inject({ method: method as 'GET', url, headers, ...(payload === undefined ? {} : { payload }) });
    return answer(res.statusCode, res.rawPayload);
  };
}

export function fetchSend(base: string, token: string): Send {
  return async (method, url, body) => {
    const { payload, type } = encode(body);
    const headers: Record<string, string> = { authorization: `Bearer ${token}`, ...(type ? { 'content-type': type } : {}) };
    const res = await fetch(`${base}${url}`, {
      method,
      headers,
      body: typeof payload === 'string' || payload === undefined ? payload : new Uint8Array(payload),
    });
    return answer(res.status, Buffer.from(await res.arrayBuffer()));
  };
}

/** Counts the request body bytes that go through `send`. */
export function counting(send: Send): { send: Send; bytes: () => number } {
  let bytes = 0;
  return {
    bytes: () => bytes,
    send: (method, url, body) => {
      bytes += encode(body).payload?.length ?? 0;
      return send(method, url, body);
    },
  };
}

export function expectOk(res: Answer, what: string): Answer {
  if (res.status >= 300) throw new Error(`${what}: ${res.status} ${res.body.toString('utf8').slice(0, 400)}`);
  return res;
}

/** What a version of the source store holds: its manifest (as JSON, without checksum), files and chunk digests. */
export interface SourceVersion {
  manifest: Record<string, unknown> & { disks: Array<{ index: string }> };
  files: Map<string, Buffer>;
  digests: string[];
}

export async function readSource(source: Datastore, guestId: string, version: number): Promise<SourceVersion> {
  const { checksum: _checksum, ...manifest } = JSON.parse((await source.readVersionFile(guestId, version, MANIFEST_FILE)).toString('utf8'));
  const files = new Map<string, Buffer>();
  const digests = new Set<string>();
  for (const name of [VERSION_CONFIG_FILE, VERSION_LOG_FILE]) files.set(name, await source.readVersionFile(guestId, version, name));
  for (const disk of manifest.disks as Array<{ index: string }>) {
    files.set(disk.index, await source.readVersionFile(guestId, version, disk.index));
    for (const d of (await source.readIndex(guestId, version, disk.index)).digests) if (d) digests.add(d.toString('hex'));
  }
  return { manifest, files, digests: [...digests] };
}

export class Pusher {
  upload = '';
  version = 0;

  constructor(
    readonly send: Send,
    readonly store: string,
  ) {}

  get base(): string {
    return `/api/v1/stores/${this.store}/uploads/${this.upload}`;
  }

  async open(body: Record<string, unknown>): Promise<Answer> {
    const res = await this.send('POST', `/api/v1/stores/${this.store}/uploads`, body);
    if (res.status === 201) ({ upload: this.upload, version: this.version } = res.json<{ upload: string; version: number }>());
    return res;
  }

  /** Asks about every digest, 4096 at a time; returns the missing ones. */
  async known(digests: string[]): Promise<string[]> {
    const missing: string[] = [];
    for (let i = 0; i < digests.length; i += 4096) {
      const res = expectOk(await this.send('POST', `${this.base}/known`, { digests: digests.slice(i, i + 4096) }), 'known');
      missing.push(...res.json<{ missing: string[] }>().missing);
    }
    return missing;
  }

  chunk(hex: string, blob: Buffer): Promise<Answer> {
    return this.send('PUT', `${this.base}/chunks/${hex}`, blob);
  }

  /** Sends the chunks from the source store, four in flight. */
  async chunks(source: Datastore, hexes: string[]): Promise<void> {
    for (let i = 0; i < hexes.length; i += 4) {
      const batch = hexes.slice(i, i + 4);
      await Promise.all(batch.map(async (hex) => expectOk(await this.chunk(hex, await source.chunks.readBlob(hex)), `chunk ${hex}`)));
    }
  }

  file(name: string, data: Buffer): Promise<Answer> {
    return this.send('PUT', `${this.base}/files/${name}`, data);
  }

  async files(files: Map<string, Buffer>): Promise<void> {
    for (const [name, data] of files) expectOk(await this.file(name, data), `file ${name}`);
  }

  finish(manifest: Record<string, unknown>): Promise<Answer> {
    return this.send('POST', `${this.base}/finish`, { manifest: { ...manifest, version: this.version } });
  }

  abort(): Promise<Answer> {
    return this.send('DELETE', this.base);
  }

  /** The whole protocol for one version of the source; returns the published version number and the chunks sent. */
  async push(source: Datastore, src: SourceVersion, open: Record<string, unknown>): Promise<{ version: number; sent: number }> {
    expectOk(await this.open(open), 'open');
    const missing = await this.known(src.digests);
    await this.chunks(source, missing);
    await this.files(src.files);
    expectOk(await this.finish(src.manifest), 'finish');
    return { version: this.version, sent: missing.length };
  }
}
