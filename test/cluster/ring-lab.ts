/**
 * A ring of real `coldvault serve` nodes in network namespaces (test/helpers/netns.ts), set up as the
 * README tells an admin to: each node issues a scoped backup token (store `main`) for the node after
 * it in the ring, which sends its backups there; every node's config lists all nodes in ring order
 * with their URL and pinned fingerprint, and the token of the node it sends to.
 * Short timeouts (cluster.timeoutSeconds, uploadIdleSeconds) keep the fault tests short.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { QemuDriver } from '../../src/guests/hypervisor/qemu.js';
import { ensureTinyGuest, startScript } from '../helpers/tiny-guest.js';
import { Cluster, type ClusterNode } from '../helpers/netns.js';
import type { JobLab } from '../jobs/helpers-jobs.js';

export interface RingOptions {
  nodes: number;
  /** seconds a request to a node may go without a byte (config cluster.timeoutSeconds) */
  timeoutSeconds?: number;
  /** seconds after which a node aborts an idle upload */
  uploadIdleSeconds?: number;
  /** extra config per node */
  config?: (node: ClusterNode) => Record<string, unknown>;
}

/** The previous node of `node` in the ring: where its backups land. */
export function previous(cluster: Cluster, node: ClusterNode): ClusterNode {
  const n = cluster.nodes.length;
  return cluster.nodes[(node.index - 2 + n) % n] as ClusterNode;
}

export async function makeRing(opts: RingOptions): Promise<Cluster> {
  const cluster = await Cluster.create({ nodes: opts.nodes, start: false });
  try {
    const tokens = new Map<string, string>();
    for (const node of cluster.nodes) tokens.set(node.name, await previous(cluster, node).token(node.name));
    for (const node of cluster.nodes) {
      const to = previous(cluster, node);
      const nodes = cluster.nodes.map((m) => ({ name: m.name, url: m.url, fingerprint: m.fingerprint, ...(m === to ? { token: tokens.get(node.name) } : {}) }));
      node.updateConfig({
        cluster: { nodes, timeoutSeconds: opts.timeoutSeconds ?? 5 },
        uploadIdleSeconds: opts.uploadIdleSeconds ?? 8,
        ...opts.config?.(node),
      });
    }
    await Promise.all(cluster.nodes.map((n) => n.start()));
    return cluster;
  } catch (err) {
    await cluster.destroy();
    throw err;
  }
}

/** Makes `node` run tiny QEMU guests (driver qemu): a JobLab view of it for test/jobs/helpers-jobs.ts. */
export async function qemuOn(node: ClusterNode): Promise<JobLab & { driver: QemuDriver }> {
  const qemuDir = join(node.root, 'q');
  mkdirSync(qemuDir, { recursive: true });
  const { startCommand } = await startScript({ dir: qemuDir, guest: await ensureTinyGuest() });
  const qmpSocket = join(qemuDir, '{vmid}.qmp');
  node.updateConfig({ hypervisor: { driver: 'qemu', qmpSocket, startCommand } });
  const driver = new QemuDriver({ qmpSocket, startCommand });
  return {
    root: node.root,
    guestsDir: node.guestsDir,
    storageDir: node.storageDir,
    storeDir: node.storeDir,
    stateDir: node.stateDir,
    qemuDir,
    configPath: node.configPath,
    driver,
    startCommand,
    vmids: new Set(),
    cleanup: () => Promise.resolve(),
  };
}
