/**
 * Cluster: N coldvault nodes for the cluster tests, each a real `coldvault serve` in its own network
 * namespace (root only; `ip` from iproute2). The layout of one run (names: netns-ip.ts):
 *
 *   <run>-br   a namespace holding only the bridge `br0` (no address: a switch)
 *   <run>-nK   node K: `lo` up and one veth `<tag>-nK` with 198.x.y.K/24; its peer `<tag>-nKb`
 *              is a port of br0. No default route, no forwarding: nothing beyond the bridge.
 *
 * The /24 is picked per run from 198.18.0.0/15 where the root namespace has no route or address,
 * and nothing is made in the root namespace, so the host's interfaces and routes never change.
 * Each node has its own folder (state dir, guests dir, storage `local`, datastore `main`, config file
 * `coldvault.json` that `COLDVAULT_CONFIG` points at for every command it runs), listens on
 * https://<its address>:8007 with the certificate serve makes in its state dir; the fingerprint is
 * known before serve starts (`coldvault cert fingerprint` makes the certificate), so other nodes'
 * configs can pin it.
 *
 * Teardown: `destroy()` (await it in afterAll) stops every serve, kills what else runs in the
 * namespaces, deletes them (their veths go with them) and removes the folder. A test process that is
 * interrupted (SIGINT, SIGTERM) or exits without it runs the same cleanup synchronously from its
 * handlers; one that was killed (-9) is swept by the next `Cluster.create` (runs whose pid is dead).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { ip, killNamespace, pickSubnet, runFolder, runNamespaces, sweepStale } from './netns-ip.js';
import { ClusterNode, type NodeOptions } from './netns-node.js';

export { ClusterNode } from './netns-node.js';

export interface ClusterOptions {
  /** how many nodes (node1 .. nodeN); the cluster tests use 2 or 3 */
  nodes: number;
  /** every node's serve port (default 8007, PBS's) */
  port?: number;
  /** start serve on every node (default true); false: call `node.start()` after changing configs */
  start?: boolean;
  /** extra keys of a node's config file (e.g. `cluster`, `hypervisor`); written before serve starts */
  config?: (name: string, index: number) => Record<string, unknown>;
}

const BRIDGE = 'br0';

export class Cluster {
  readonly nodes: ClusterNode[] = [];
  private destroyed = false;
  private readonly onSignal = (signal: NodeJS.Signals): void => this.interrupted(signal);
  private readonly onExit = (): void => this.destroySync();

  private constructor(
    /** `cv-<pid>-<6 hex>`: the prefix of every namespace of this run */
    readonly id: string,
    /** 198.x.y.0/24 */
    readonly subnet: string,
    readonly root: string,
  ) {}

  /** Sweeps stale runs, then builds the namespaces, bridge and nodes (and starts serve on each unless `start: false`). */
  static async create(opts: ClusterOptions): Promise<Cluster> {
    sweepStale();
    const tag = randomBytes(3).toString('hex');
    const id = `cv-${process.pid}-${tag}`;
    const cluster = new Cluster(id, await pickSubnet(), runFolder(id));
    cluster.guard();
    try {
      await cluster.build(tag, opts);
      if (opts.start ?? true) await Promise.all(cluster.nodes.map((n) => n.start()));
      return cluster;
    } catch (err) {
      await cluster.destroy();
      throw err;
    }
  }

  get bridgeNs(): string {
    return `${this.id}-br`;
  }

  /** node1 is `node(1)` or `node('node1')` */
  node(which: number | string): ClusterNode {
    const found = this.nodes.find((n) => n.name === which || n.index === which);
    if (!found) throw new Error(`cluster ${this.id} has no node ${which}`);
    return found;
  }

  /** Every namespace of this run that exists now (after destroy: none). */
  namespaces(): string[] {
    return runNamespaces(this.id);
  }

  /** Stops every serve (SIGTERM, then SIGKILL), kills the rest, deletes the namespaces and the folder. Idempotent. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    await Promise.allSettled(this.nodes.map((n) => n.stop()));
    this.destroySync();
  }

  /** The synchronous cleanup the signal and exit handlers run: SIGKILL, delete namespaces, remove the folder. */
  destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const ns of new Set([...this.nodes.map((n) => n.ns), this.bridgeNs, ...runNamespaces(this.id)])) killNamespace(ns);
    rmSync(this.root, { recursive: true, force: true });
    process.off('SIGINT', this.onSignal).off('SIGTERM', this.onSignal).off('exit', this.onExit);
  }

  private guard(): void {
    process.on('SIGINT', this.onSignal).on('SIGTERM', this.onSignal).on('exit', this.onExit);
  }

  /** Cleans up, then lets the signal do what it would have done without this handler. */
  private interrupted(signal: NodeJS.Signals): void {
    this.destroySync();
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  }

  private async build(tag: string, opts: ClusterOptions): Promise<void> {
    mkdirSync(this.root, { recursive: true, mode: 0o700 });
    await ip('netns', 'add', this.bridgeNs);
    await ip('-n', this.bridgeNs, 'link', 'add', BRIDGE, 'type', 'bridge');
    await ip('-n', this.bridgeNs, 'link', 'set', BRIDGE, 'up');
    const prefix = this.subnet.replace(/\.0\/24$/, '');
    for (let index = 1; index <= opts.nodes; index++) {
      const options: NodeOptions = {
        index,
        ns: `${this.id}-n${index}`,
        bridgeNs: this.bridgeNs,
        veth: `cv${tag}-n${index}`,
        address: `${prefix}.${index}`,
        port: opts.port ?? 8007,
        root: `${this.root}/node${index}`,
        config: opts.config?.(`node${index}`, index) ?? {},
      };
      this.nodes.push(await ClusterNode.create(options, BRIDGE));
    }
  }
}
