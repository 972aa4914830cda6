/**
 * `coldvault list|restore|verify --remote NODE --store STORE` against a real `coldvault serve` on
 * 127.0.0.1 (plain HTTP: loopback), as another node: its own config (node3, own state dir, guests dir
 * and storage, no datastore) whose `cluster.nodes` lists node1 with a scoped token made there by
 * `coldvault token create --role backup --store main`. Versions pushed into node1's `main` through the
 * real client (made by real local backups) are listed, verified and restored byte-identical from there;
 * a damaged chunk on node1 is reported damaged (exit 1) and left there (no quarantine from afar); a
 * missing one fails the restore with nothing left behind; a token of another store is refused naming
 * the store; an unknown node is named with the listed ones. The API of a third server (createServer,
 * cluster.nodes naming node1) lists node1's backups and restores from there as a task, for admin and
 * operator only.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, imagePath, sha256File, type CliResult } from '../helpers/fixtures.js';
import { expectExportIdentical } from '../helpers/export-process.js';
import { startServe, type ServeProcess } from '../helpers/serve-process.js';
import { client, makeRemoteLab, makeToken, push, type RemoteLab, type ServeConfig } from '../targets/remote-lab.js';
import { errorCode, makeServerLab, waitTask, type ServerLab } from '../server/helpers-server.js';

let lab: RemoteLab;
let server: ServeConfig;
let serve: ServeProcess;
let token: string;
let otherToken: string;
let node3: { root: string; guestsDir: string; storageDir: string; config: string };

beforeAll(async () => {
  lab = await makeRemoteLab();
  server = await lab.serveConfig('node1');
  token = await makeToken(server, 'node3', 'backup', 'main');
  otherToken = await makeToken(server, 'node3-other', 'backup', 'other');
  serve = await startServe(['--config', server.path, '--listen', '127.0.0.1:0']);
  const remote = client(serve.url, token);
  for (const id of ['101', '102']) await push(remote, lab.source, lab.versions[id]!);
  remote.close();
  node3 = node3Config(token);
});
afterAll(async () => {
  await serve?.stop();
  lab?.cleanup();
});

/** node3's folders and config file: no datastore of its own, node1 in its cluster.nodes with `nodeToken`. */
function node3Config(nodeToken: string, name = 'node3'): typeof node3 {
  const root = join(lab.root, name);
  const guestsDir = join(root, 'guests');
  const storageDir = join(root, 'vz');
  mkdirSync(join(storageDir, 'images'), { recursive: true });
  mkdirSync(guestsDir, { recursive: true });
  const config = join(root, 'coldvault.json');
  const cluster = {
    nodes: [
      { name: 'node1', url: serve.url, token: nodeToken },
      { name: 'node3', url: 'http://127.0.0.1:1' },
    ],
  };
  const body = {
    node: 'node3',
    stateDir: join(root, 'state'),
    guestsDir,
    storages: { local: storageDir },
    datastores: {},
    hypervisor: { driver: 'none' },
    cluster,
  };
  writeFileSync(config, JSON.stringify(body));
  return { root, guestsDir, storageDir, config };
}

const onNode3 = (args: string[], config = node3.config): Promise<CliResult> => cli([...args, '--config', config]);
const remoteFlags = ['--remote', 'node1', '--store', 'main'];

async function restoreRemote(id: string, newId: string, config = node3.config): Promise<CliResult> {
  return onNode3(['restore', id, '--version', '1', '--new-id', newId, ...remoteFlags, '--json'], config);
}

/** The chunk file of `hex` in node1's store `main`. */
const chunkPath = (hex: string): string => join(server.stores.main, 'chunks', hex.slice(0, 4), hex);

/** A chunk of guest 102 that guest 101 does not use. */
function chunkOnlyOf102(): string {
  const of101 = new Set(lab.versions['101']!.digests);
  const hex = lab.versions['102']!.digests.find((d) => !of101.has(d));
  if (!hex) throw new Error('guest 102 shares every chunk with 101');
  return hex;
}

/** Nothing of a restore to `newId` on node3: no config, no disk, no temp file. */
function nothingRestored(newId: string): void {
  expect(existsSync(join(node3.guestsDir, `${newId}.conf`))).toBe(false);
  const images = join(node3.storageDir, 'images', newId);
  expect(existsSync(images) ? readdirSync(images) : []).toEqual([]);
}

describe('list, restore and verify on node3 from datastore main on node1 (--remote node1 --store main)', () => {
  it('list: every guest of the remote store (GET .../guests), or one; text as a local list', async () => {
    const all = await onNode3(['list', ...remoteFlags, '--json']);
    expect(all.code, all.stderr).toBe(0);
    const listed = JSON.parse(all.stdout) as Array<{ id: string; version: number; node: string; store: string }>;
    expect(listed.map((v) => [v.id, v.version])).toEqual([
      ['101', 1],
      ['102', 1],
    ]);
    expect(listed[0]).toMatchObject({ node: lab.versions['101']!.manifest.node, store: 'main' });
    const one = await onNode3(['list', '102', ...remoteFlags]);
    expect(one.code, one.stderr).toBe(0);
    expect(one.stdout.trim().split('\n')).toHaveLength(1);
    expect(one.stdout).toMatch(/^ID: 102, Version: 1 \(\d{4}-\d\d-\d\d\), name: /);
  });

  it('restore: byte-identical disk and the config under the new ID on node3; the log names the node and store', async () => {
    const r = await restoreRemote('101', '301');
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { config: string; volumes: Record<string, string>; remote: string; store: string };
    expect(out).toMatchObject({ remote: 'node1', store: 'main', config: join(node3.guestsDir, '301.conf') });
    expect(out.volumes.scsi0).toBe('local:301/vm-301-disk-0.raw');
    const disk = join(node3.storageDir, 'images', '301', 'vm-301-disk-0.raw');
    expect(sha256File(disk)).toBe(sha256File(imagePath(lab, '101', 'vm-101-disk-0.raw')));
    expect(readFileSync(out.config, 'utf8')).toContain('scsi0: local:301/vm-301-disk-0.raw');
    expect(r.stderr).toContain(`from datastore 'main' on node node1 (${serve.url}/)`);
    expect(r.stderr).toMatch(/space needed: .*available/);
  });

  it("export --remote: node1's version served over NBD here, every chunk checked here; qemu-img compare finds it identical", async () => {
    const args = ['101', '--version', '1', ...remoteFlags, '--config', node3.config];
    await expectExportIdentical(args, join(node3.root, 'export.sock'), 'scsi0', imagePath(lab, '101', 'vm-101-disk-0.raw'));
  });

  it("boot-test --remote: node1's version booted here (a disk with no system: it fails on its timeout), and the command ends with the test", async () => {
    const started = Date.now();
    const r = await onNode3(['boot-test', '101', '--version', '1', ...remoteFlags, '--accel', 'tcg', '--timeout', '3', '--json']);
    const outcome = JSON.parse(r.stdout) as { ok: boolean; seconds: number; detail: string };
    expect(r.code, r.stderr).toBe(1);
    expect(outcome.ok).toBe(false);
    expect(outcome.detail).toMatch(/3 s/);
    // its connections to node1 closed: the process does not linger for their idle timeout (30 s)
    const lingered = Date.now() - started - outcome.seconds * 1000;
    expect(lingered, `the command ended ${lingered} ms after its test`).toBeLessThan(15_000);
  });

  it('verify: every chunk of the remote versions read and checked, exit 0', async () => {
    const r = await onNode3(['verify', ...remoteFlags, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout) as { ok: boolean; versions: unknown[]; chunks: number; remote: string };
    const distinct = new Set([...lab.versions['101']!.digests, ...lab.versions['102']!.digests]);
    expect(result).toMatchObject({ ok: true, remote: 'node1', chunks: distinct.size });
    expect(result.versions).toHaveLength(2);
  });

  it('a damaged chunk on node1: verify reports it damaged (exit 1) and leaves it there; a restore of its version fails and leaves nothing', async () => {
    const hex = chunkOnlyOf102();
    const good = readFileSync(chunkPath(hex));
    const bad = Buffer.from(good);
    bad[bad.length - 1] = (bad[bad.length - 1] ?? 0) ^ 0xff;
    writeFileSync(chunkPath(hex), bad);
    try {
      const r = await onNode3(['verify', ...remoteFlags, '--json']);
      expect(r.code, r.stderr).toBe(1);
      const result = JSON.parse(r.stdout) as { ok: boolean; badChunks: Array<{ digest: string; trouble: string; versions: string[]; quarantined?: string }> };
      expect(result.badChunks).toEqual([expect.objectContaining({ digest: hex, trouble: 'damaged', versions: ['102/1'] })]);
      expect(result.badChunks[0]?.quarantined).toBeUndefined();
      expect(readFileSync(chunkPath(hex))).toEqual(bad); // still there, unchanged: nothing is quarantined from afar
      expect(r.stderr).toContain('cannot be quarantined from here');
      const text = await onNode3(['verify', ...remoteFlags]);
      expect(text.code).toBe(1);
      expect(text.stdout).toContain('verify FAILED: 1 bad chunk(s), 1 version(s) damaged');
      expect(text.stdout).toContain("1 damaged chunk(s) left in datastore 'main' on node node1");
      expect((await onNode3(['verify', '101', ...remoteFlags])).code).toBe(0);
      const restored = await restoreRemote('102', '302');
      expect(restored.code).toBe(1);
      expect(restored.stderr).toContain(hex);
      nothingRestored('302');
    } finally {
      writeFileSync(chunkPath(hex), good);
    }
  });

  it('a chunk missing on node1 (as after a prune and gc there mid-restore): verify says missing, the restore fails with CHUNK_MISSING and leaves nothing', async () => {
    const hex = chunkOnlyOf102();
    renameSync(chunkPath(hex), `${chunkPath(hex)}.away`);
    try {
      const r = await onNode3(['verify', '102', ...remoteFlags, '--json']);
      expect(r.code, r.stderr).toBe(1);
      expect((JSON.parse(r.stdout) as { badChunks: unknown[] }).badChunks).toEqual([expect.objectContaining({ digest: hex, trouble: 'missing' })]);
      const restored = await restoreRemote('102', '303');
      expect(restored.code).toBe(1);
      expect(restored.stderr).toMatch(new RegExp(`chunk ${hex}.*(missing|CHUNK_MISSING)`));
      nothingRestored('303');
    } finally {
      renameSync(`${chunkPath(hex)}.away`, chunkPath(hex));
    }
  });

  it('a chunk node1 cannot read (its I/O error): verify says not fully checked, names node1 as where the trouble is, and leaves it', async () => {
    const hex = chunkOnlyOf102();
    renameSync(chunkPath(hex), `${chunkPath(hex)}.away`);
    mkdirSync(chunkPath(hex)); // reading it fails on node1 with EISDIR: an I/O error there, not damage
    try {
      const r = await onNode3(['verify', '102', ...remoteFlags]);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stdout).toContain('verify INCOMPLETE: 1 chunk(s) could not be read');
      expect(r.stdout).toContain('the unreadable chunks could not be read from node node1');
      expect(r.stdout).not.toContain('verify FAILED');
    } finally {
      rmdirSync(chunkPath(hex));
      renameSync(`${chunkPath(hex)}.away`, chunkPath(hex));
    }
  });

  it("a token of another store: node1's refusal reaches the user, naming the store (list, restore, verify)", async () => {
    const other = node3Config(otherToken, 'node3-other');
    for (const args of [
      ['list', ...remoteFlags],
      ['verify', ...remoteFlags],
      ['restore', '101', '--version', '1', '--new-id', '304', ...remoteFlags],
    ]) {
      const r = await onNode3(args, other.config);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr).toContain(`in datastore 'main' on node ${serve.url}/ was refused`);
      // a restore asks for its read lease first: refused the same way, naming the store
      expect(r.stderr).toMatch(/may not (read the versions|hold versions against prune) of store 'main'/);
      expect(r.stderr).toContain('HTTP 403 FORBIDDEN');
    }
    expect(existsSync(join(other.guestsDir, '304.conf'))).toBe(false);
  });

  it('an unknown node: a clear error naming the listed nodes; --remote without --store, or with --device: usage errors', async () => {
    const r = await onNode3(['list', '--remote', 'node9', '--store', 'main']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("no node 'node9' in the config's cluster.nodes (listed: node1, node3)");
    const noStore = await onNode3(['verify', '--remote', 'node1']);
    expect([noStore.code, noStore.stderr.trim()]).toEqual([2, 'coldvault verify: --store is required']);
    const both = await onNode3(['restore', '101', '--version', '1', '--new-id', '305', ...remoteFlags, '--device', '/dev/null']);
    expect([both.code, both.stderr.trim()]).toEqual([2, 'coldvault restore: give --device or --remote, not both']);
  });
});

describe('GET /api/v1/stores/:store/guests (the reader protocol)', () => {
  const get = (path: string, bearer: string): Promise<Response> => fetch(`${serve.url}${path}`, { headers: { authorization: `Bearer ${bearer}` } });

  it('answers the ids of the guests with versions, to a token of that store only', async () => {
    const ok = await get('/api/v1/stores/main/guests', token);
    expect([ok.status, await ok.json()]).toEqual([200, ['101', '102']]);
    const empty = await get('/api/v1/stores/other/guests', otherToken);
    expect([empty.status, await empty.json()]).toEqual([200, []]);
    const refused = await get('/api/v1/stores/other/guests', token);
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('FORBIDDEN');
  });
});

describe('the API: the Restore tab on another node (GET /backups?remote=, POST /restore {remote}, GET /restore/nodes)', () => {
  let api: ServerLab;
  beforeAll(async () => {
    api = await makeServerLab({ config: { cluster: { nodes: [{ name: 'node1', url: serve.url, token }] } } });
  });
  afterAll(async () => {
    await api?.close();
  });

  it('names the nodes whose stores a restore can read (never their tokens)', async () => {
    const res = await api.api('GET', '/api/v1/restore/nodes');
    expect([res.statusCode, res.json()]).toEqual([200, { self: 'testnode', nodes: [{ name: 'node1', url: serve.url }] }]);
  });

  it("lists node1's backups and restores one of them byte-identical as a task", async () => {
    const listed = await api.api('GET', '/api/v1/backups?remote=node1&store=main');
    expect(listed.statusCode, listed.body).toBe(200);
    expect((listed.json() as Array<{ id: string; version: number; store: string }>).map((v) => [v.id, v.version, v.store])).toEqual([
      ['101', 1, 'main'],
      ['102', 1, 'main'],
    ]);
    const one = await api.api('GET', '/api/v1/backups?remote=node1&store=main&guest=102');
    expect((one.json() as unknown[]).length).toBe(1);
    const started = await api.api('POST', '/api/v1/restore', { remote: 'node1', fromPath: 'main', id: '102', version: 1, newId: '402' });
    expect(started.statusCode, started.body).toBe(202);
    const task = await waitTask(api, (started.json() as { taskId: string }).taskId);
    expect(task.status).toBe('ok');
    const disk = join(api.storageDir, 'images', '402', 'vm-402-disk-0.raw');
    expect(sha256File(disk)).toBe(sha256File(imagePath(lab, '102', 'vm-102-disk-0.raw')));
    expect(existsSync(join(api.guestsDir, '402.conf'))).toBe(true);
  });

  it('refuses at once: an unknown node (naming the listed ones), a version node1 lacks, a store outside the token (node1 said so), a device with remote', async () => {
    const unknown = await api.api('GET', '/api/v1/backups?remote=node9&store=main');
    expect([unknown.statusCode, errorCode(unknown)]).toEqual([400, 'INVALID_REQUEST']);
    expect(unknown.body).toContain("no node 'node9' in the config's cluster.nodes (listed: node1)");
    const missing = await api.api('POST', '/api/v1/restore', { remote: 'node1', fromPath: 'main', id: '102', version: 7, newId: '403' });
    expect(errorCode(missing)).toBe('VERSION_NOT_FOUND');
    const scope = await api.api('GET', '/api/v1/backups?remote=node1&store=other');
    expect([scope.statusCode, errorCode(scope)]).toEqual([502, 'REMOTE_FORBIDDEN']); // the other node refused: a bad gateway, not this server's fault
    expect((scope.json() as { error: { message: string } }).error.message).toContain("may not read the versions of store 'other'");
    const device = await api.api('POST', '/api/v1/restore', {
      remote: 'node1',
      fromPath: 'main',
      fromDevice: '/dev/null',
      id: '102',
      version: 1,
      newId: '403',
    });
    expect([device.statusCode, errorCode(device)]).toEqual([400, 'INVALID_REQUEST']);
    expect(existsSync(join(api.guestsDir, '403.conf'))).toBe(false);
  });

  it("admin and operator only: an audit token may not read another node's backups", async () => {
    const { token: audit } = api.tokens.create('auditor', { role: 'audit' });
    const res = await api.api('GET', '/api/v1/backups?remote=node1&store=main', undefined, { authorization: `Bearer ${audit}` });
    expect([res.statusCode, errorCode(res)]).toEqual([403, 'FORBIDDEN']);
    const { token: operator } = api.tokens.create('operator', { role: 'operator' });
    const ok = await api.api('GET', '/api/v1/backups?remote=node1&store=main', undefined, { authorization: `Bearer ${operator}` });
    expect(ok.statusCode).toBe(200);
  });
});

describe("a remote reader's read lease on node1", () => {
  const prune = (): Promise<CliResult> => cli(['prune', '101', '--keep-last', '1', '--store', server.stores.main, '--json']);
  const versionsOf101 = async (): Promise<number[]> => (await client(serve.url, token).listVersions('101')).map((v) => v.version);

  it("keeps the version from prune on node1 until released; a lease is its taker's, and a version node1 lacks is VERSION_NOT_FOUND", async () => {
    const remote = client(serve.url, token);
    try {
      const { version: second } = await push(remote, lab.source, lab.versions['101']!);
      const first = Math.min(...(await versionsOf101()));
      const lease = await remote.leaseVersion('101', first);
      const kept = await prune();
      expect(kept.code, kept.stderr).toBe(0);
      expect(kept.stderr).toContain(`kept version ${first} of VM 101: it is being read by`);
      expect(await versionsOf101()).toEqual([first, second]);

      const foreign = await fetch(`${serve.url}/api/v1/stores/main/leases/${lease.id}/keepalive`, {
        method: 'POST',
        headers: { authorization: `Bearer ${otherToken}` },
      });
      expect(foreign.status).toBe(403); // a token of store other may not touch store main's leases

      await lease.release();
      await lease.release(); // twice is fine: the node no longer knows it
      const gone = await fetch(`${serve.url}/api/v1/stores/main/leases/${lease.id}/keepalive`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
      });
      expect([gone.status, ((await gone.json()) as { error: { code: string } }).error.code]).toEqual([404, 'LEASE_NOT_FOUND']);
      const removed = await prune();
      expect(removed.code, removed.stderr).toBe(0);
      expect(await versionsOf101()).toEqual([second]);

      const missing = await remote.leaseVersion('101', first).then(
        () => 'leased',
        (err: { code?: string }) => err.code,
      );
      expect(missing).toBe('VERSION_NOT_FOUND');
    } finally {
      remote.close();
    }
  });
});
