/**
 * The cluster harness (test/helpers/netns.ts), for real: three `coldvault serve` processes (the built
 * CLI), each in its own network namespace on a bridge, speaking HTTPS with the certificate it made.
 * From node2's namespace, through the real pinning client (a relay run there: netns-relay.ts),
 * node1 answers a backup token scoped to its store, refuses a wrong fingerprint, is unreachable while
 * its link is cut or its serve killed and reachable again after, and takes a pushed version that it
 * restores byte-identical. The root namespace has no route to the run. Nothing of a run is left after
 * teardown, after a SIGTERM to the test process (its handler), or, for a run whose process died, after
 * the sweep at the next Cluster.create.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Datastore } from '../../dist/datastore/index.js';
import { imagePath, sha256File, writeGuest, writeImage } from '../helpers/fixtures.js';
import { Cluster } from '../helpers/netns.js';
import { cidrOverlaps, ip, namespaces, rootPrefixes, runFolder } from '../helpers/netns-ip.js';
import { Relay, RELAY_FAILED } from '../helpers/netns-relay.js';
import { volumePath } from '../cli/cli-lab.js';
import { Pusher, readSource } from '../server/upload-client.js';

let cluster: Cluster;
let token: string;
let relay: Relay;
const VERSIONS = '/api/v1/stores/main/guests/101/versions';

beforeAll(async () => {
  cluster = await Cluster.create({ nodes: 3 });
  token = await cluster.node(1).token('node2');
  relay = await Relay.start(cluster.node(2), cluster.node(1));
});
afterAll(async () => {
  await cluster?.destroy();
});

const exited = (child: { exitCode: number | null; signalCode: string | null; once(e: 'exit', f: () => void): unknown }): Promise<void> =>
  child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((resolve) => child.once('exit', () => resolve()));

describe('a three-node cluster in network namespaces', () => {
  it('each node: its own namespace with lo and one veth, its address on it, no route beyond the bridge, its own certificate', async () => {
    const [n1, n2, n3] = cluster.nodes;
    expect(cluster.nodes.map((n) => n.name)).toEqual(['node1', 'node2', 'node3']);
    expect(new Set(cluster.nodes.map((n) => n.fingerprint)).size).toBe(3);
    for (const node of [n1!, n2!, n3!]) {
      const links = JSON.parse(await ip('-n', node.ns, '-j', 'link', 'show')) as Array<{ ifname: string }>;
      expect(links.map((l) => l.ifname).sort()).toEqual([node.veth, 'lo'].sort());
      const addrs = JSON.parse(await ip('-n', node.ns, '-j', '-4', 'addr', 'show', 'dev', node.veth)) as Array<{ addr_info: Array<{ local: string }> }>;
      expect(addrs.flatMap((a) => a.addr_info.map((i) => i.local))).toEqual([node.address]);
      const routes = JSON.parse(await ip('-n', node.ns, '-j', '-4', 'route', 'show')) as Array<{ dst: string }>;
      expect(routes.map((r) => r.dst)).toEqual([cluster.subnet]);
      expect(node.url).toBe(`https://${node.address}:8007`);
      expect(node.config()).toMatchObject({ node: node.name, datastores: { main: node.storeDir } });
    }
  });

  it("a node's commands run in its network namespace and share the host's mounts (a disk its serve mounts is seen by the test)", async () => {
    const n2 = cluster.node(2);
    const seen = await n2.exec('ip', ['-j', 'addr', 'show']);
    const links = JSON.parse(seen.stdout) as Array<{ ifname: string; addr_info: Array<{ family: string; local: string }> }>;
    expect(links.map((l) => l.ifname).sort()).toEqual([n2.veth, 'lo'].sort());
    expect(links.flatMap((l) => l.addr_info.filter((a) => a.family === 'inet').map((a) => a.local)).sort()).toEqual(['127.0.0.1', n2.address].sort());
    const dir = `${n2.root}/mnt`;
    mkdirSync(dir);
    const mounted = await n2.exec('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'cv-netns-test', dir]);
    expect(mounted.code, mounted.stderr).toBe(0);
    try {
      expect(readFileSync('/proc/self/mountinfo', 'utf8')).toContain(` ${dir} `);
    } finally {
      expect((await n2.exec('umount', [dir])).code).toBe(0);
    }
  });

  it("from node2's namespace, pinned HTTPS with node1's backup token for `main` reads that store, and nothing else", async () => {
    const versions = await relay.request('GET', VERSIONS, { token });
    expect([versions.status, versions.json()]).toEqual([200, []]);
    const status = await relay.request('GET', '/api/v1/status', { token });
    expect([status.status, status.code]).toEqual([403, 'FORBIDDEN']);
    const anonymous = await relay.request('GET', VERSIONS);
    expect([anonymous.status, anonymous.code]).toEqual([401, 'UNAUTHORIZED']);
  });

  it('a wrong fingerprint is refused before the token is sent: FINGERPRINT_MISMATCH naming both', async () => {
    const [n1, , n3] = cluster.nodes;
    const wrong = await Relay.start(cluster.node(2), { url: n1!.url, fingerprint: n3!.fingerprint });
    try {
      const res = await wrong.request('GET', VERSIONS, { token });
      expect([res.status, res.code]).toEqual([RELAY_FAILED, 'FINGERPRINT_MISMATCH']);
      const { message } = res.json<{ error: { message: string } }>().error;
      expect(message).toContain(n1!.fingerprint);
      expect(message).toContain(n3!.fingerprint);
    } finally {
      await wrong.stop();
    }
  });

  it('the root namespace has no route, address or interface of the run (its packets for node1 go to its own default route)', async () => {
    const n1 = cluster.node(1);
    expect((await rootPrefixes()).filter((p) => cidrOverlaps(p, cluster.subnet))).toEqual([]);
    const rootLinks = JSON.parse(await ip('-j', 'link', 'show')) as Array<{ ifname: string }>;
    expect(rootLinks.filter((l) => cluster.nodes.some((n) => l.ifname.startsWith(n.veth)))).toEqual([]);
    const route = await ip('-j', 'route', 'get', n1.address).then(
      (out) => (JSON.parse(out) as Array<{ dst: string; gateway?: string; dev?: string }>)[0],
      () => undefined, // no default route at all: unreachable
    );
    if (route) expect(route.gateway).toBeDefined(); // via the host's gateway, never on a link of the run
  });

  it('a cut link: node1 unreachable within the timeouts (a kept-alive connection and a new one), reachable again once restored', async () => {
    const n1 = cluster.node(1);
    await n1.cutLink();
    const fresh = await Relay.start(cluster.node(2), n1, { connectTimeoutMs: 2000 });
    try {
      const kept = await relay.request('GET', VERSIONS, { token }); // on the connection kept alive from the tests above
      expect([kept.status, kept.code]).toEqual([RELAY_FAILED, 'CONNECTION_FAILED']);
      expect(kept.json<{ error: { message: string } }>().error.message).toMatch(/no data for 5 s/);
      const connect = await fresh.request('GET', VERSIONS, { token });
      expect([connect.status, connect.code]).toEqual([RELAY_FAILED, 'CONNECTION_FAILED']);
      expect(connect.json<{ error: { message: string } }>().error.message).toMatch(/no answer within 2 s|EHOSTUNREACH/);
    } finally {
      await n1.restoreLink();
    }
    expect((await relay.request('GET', VERSIONS, { token })).status).toBe(200);
    expect((await fresh.request('GET', VERSIONS, { token })).status).toBe(200);
    await fresh.stop();
  });

  it("kill -9 of node1's serve: refused; started again: same certificate, reachable", async () => {
    const n1 = cluster.node(1);
    await n1.kill();
    const down = await relay.request('GET', VERSIONS, { token });
    expect([down.status, down.code]).toEqual([RELAY_FAILED, 'CONNECTION_FAILED']);
    const again = await n1.start(); // throws unless it prints the same URL and fingerprint
    expect(again.fingerprint).toBe(n1.fingerprint);
    expect((await relay.request('GET', VERSIONS, { token })).status).toBe(200);
  });

  it('a version pushed from node2 to node1 (upload protocol over pinned HTTPS) is restored byte-identical by `coldvault restore` on node1', async () => {
    const [n1, n2] = [cluster.node(1), cluster.node(2)];
    writeGuest(n2, '101', [{ key: 'scsi0', file: 'vm-101-disk-0.raw' }]);
    const image = imagePath(n2, '101', 'vm-101-disk-0.raw');
    writeImage(image, ['text', 'random', 'zero', 'random'], 12);
    const [backup] = await n2.cliJson<Array<{ ok: boolean; version: number }>>(['backup', '101', '--store', 'main']);
    expect(backup).toMatchObject({ ok: true, version: 1 });
    const source = await Datastore.open(n2.storeDir);
    const { version, sent } = await new Pusher(relay.send(token), 'main').push(source, await readSource(source, '101', 1), { guestId: '101', node: 'node2' });
    expect(sent).toBeGreaterThan(0);
    const listed = await relay.request('GET', VERSIONS, { token });
    expect(listed.json<Array<{ version: number }>>().map((v) => v.version)).toEqual([version]);
    const restored = await n1.cliJson<{ volumes: Record<string, string> }>([
      'restore',
      '101',
      '--version',
      String(version),
      '--new-id',
      '201',
      '--store',
      'main',
    ]);
    expect(sha256File(volumePath(n1, restored.volumes.scsi0!))).toBe(sha256File(image));
  });

  it('teardown leaves no namespace, veth, process or folder of the run', async () => {
    const pids = [...cluster.nodes.map((n) => n.serve?.child), relay.child];
    expect(cluster.namespaces()).toHaveLength(4);
    await cluster.destroy();
    expect(namespaces().filter((ns) => ns.startsWith(cluster.id))).toEqual([]);
    const links = await ip('-o', 'link', 'show');
    for (const node of cluster.nodes) expect(links).not.toContain(node.veth);
    for (const child of pids) expect([child?.exitCode, child?.signalCode].some((v) => v !== null)).toBe(true);
    expect(existsSync(cluster.root)).toBe(false);
  });
});

/** The pid of a process that has ended. */
async function deadPid(): Promise<number> {
  const child = spawn('true');
  await exited(child);
  return child.pid!;
}

describe('cleanup when a run did not end well', () => {
  it("a dead test process's run (namespaces, a process in one, its folder) is swept by the next Cluster.create", async () => {
    const stale = `cv-${await deadPid()}-abcdef`;
    await ip('netns', 'add', `${stale}-br`);
    await ip('netns', 'add', `${stale}-n1`);
    await ip('-n', `${stale}-br`, 'link', 'add', 'old-n1b', 'type', 'veth', 'peer', 'name', 'old-n1', 'netns', `${stale}-n1`);
    const sleeper = spawn('ip', ['netns', 'exec', `${stale}-n1`, 'sleep', '600'], { stdio: 'ignore' });
    mkdirSync(runFolder(stale));
    const next = await Cluster.create({ nodes: 2, start: false });
    try {
      expect(namespaces().filter((ns) => ns.startsWith(stale))).toEqual([]);
      await exited(sleeper); // killed by the sweep
      expect(existsSync(runFolder(stale))).toBe(false);
      expect(next.namespaces()).toHaveLength(3);
    } finally {
      await next.destroy();
    }
  });

  it('SIGTERM to the test process: the handler kills serve and removes the namespaces and folder, then leaves the signal to the other listeners', async () => {
    const listeners = process.listenerCount('SIGTERM');
    const small = await Cluster.create({ nodes: 2, start: false });
    const serve = await small.node(1).start();
    let keepAlive: () => void = () => undefined;
    const signalled = new Promise<void>((resolve) => (keepAlive = resolve));
    process.once('SIGTERM', keepAlive); // after the cluster's: this worker lives on
    try {
      expect(process.listenerCount('SIGTERM')).toBe(listeners + 2);
      process.kill(process.pid, 'SIGTERM');
      await signalled;
      await exited(serve.child);
      expect(small.namespaces()).toEqual([]);
      expect(existsSync(small.root)).toBe(false);
      expect(process.listenerCount('SIGTERM')).toBe(listeners); // the cluster's handler removed itself (and once() ours)
    } finally {
      process.off('SIGTERM', keepAlive);
      await small.destroy();
    }
  });
});
