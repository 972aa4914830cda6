/**
 * `coldvault cluster status`: the ring as this node sees it. For every node of `cluster.nodes`: its
 * place (this node, the one this node sends to, the one it receives from), whether it answers, and
 * whether the certificate it presents is the pinned one. For the node this node sends to, each store
 * that a cluster-mode job pushes to is asked for its guests with the token (so a wrong, expired or
 * out-of-scope token shows here, not at night), and what kind of datastore it is (a folder or an S3
 * bucket; unknown for a node that does not say). From the task list: the last push of this node's
 * cluster jobs, and the last push received from the next node; and where each job's disk is plugged.
 */
import { connect } from 'node:net';
import { describeError, sameFingerprint } from '../core/index.js';
import { type ClusterConfig, type ClusterNodeConfig, presentedFingerprint, RemoteStore, remoteStoreOptions, ringPlace } from '../targets/index.js';
import type { Job } from './job-model.js';
import type { TaskInfo } from './task-store.js';

export interface NodeStatus {
  name: string;
  url: string;
  role: 'self' | 'sends-to' | 'receives-from' | 'sends-to, receives-from' | 'other';
  reachable: boolean;
  /** the pinned fingerprint matches what the node presents (null: not checked: this node, plain HTTP, unreachable) */
  fingerprintOk: boolean | null;
  presented?: string;
  problem?: string;
}

export interface StoreCheck {
  store: string;
  ok: boolean;
  /** the kind of datastore on that node, when it says */
  kind?: 'folder' | 's3';
  jobs: string[];
  problem?: string;
}

export interface LastRun {
  task: string;
  time: string;
  status: string;
  summary: string | null;
}

export interface ClusterStatus {
  node: string;
  sendsTo: string;
  receivesFrom: string;
  nodes: NodeStatus[];
  /** the stores this node's cluster jobs push to, on the node it sends to, checked with the token */
  stores: StoreCheck[];
  lastPush: LastRun | null;
  lastReceived: LastRun | null;
  /** `plug disk X into node Y` for each cluster job with an external disk */
  disks: Array<{ job: string; device: string; node: string }>;
}

export async function clusterStatus(cluster: ClusterConfig | undefined, self: string, jobs: Job[], tasks: TaskInfo[]): Promise<ClusterStatus> {
  const place = ringPlace(cluster, self);
  const nodes = await Promise.all((cluster?.nodes ?? []).map((n) => probeNode(n, roleOf(n, place))));
  const pushing = jobs.filter((j) => j.mode === 'cluster' && j.kind !== 'sync');
  return {
    node: self,
    sendsTo: place.sendsTo.name,
    receivesFrom: place.receivesFrom.name,
    nodes,
    stores: await checkStores(place.sendsTo, pushing),
    lastPush: lastOf(tasks.filter((t) => t.type === 'backup' && pushing.some((j) => j.id === t.jobId))),
    lastReceived: lastOf(tasks.filter((t) => t.type === 'upload' && (t.summary ?? '').includes(`from node ${place.receivesFrom.name} `))),
    disks: pushing.filter((j) => j.device).map((j) => ({ job: j.id, device: j.device as string, node: place.sendsTo.name })),
  };
}

function roleOf(node: ClusterNodeConfig, place: ReturnType<typeof ringPlace>): NodeStatus['role'] {
  if (node.name === place.self.name) return 'self';
  const sends = node.name === place.sendsTo.name;
  const receives = node.name === place.receivesFrom.name;
  if (sends && receives) return 'sends-to, receives-from';
  return sends ? 'sends-to' : receives ? 'receives-from' : 'other';
}

async function probeNode(node: ClusterNodeConfig, role: NodeStatus['role']): Promise<NodeStatus> {
  const status: NodeStatus = { name: node.name, url: node.url, role, reachable: false, fingerprintOk: null };
  if (role === 'self') return { ...status, reachable: true };
  const url = new URL(node.url);
  try {
    if (url.protocol === 'http:') {
      await tcpConnect(url.hostname, Number(url.port || 80));
      return { ...status, reachable: true };
    }
    const presented = await presentedFingerprint(url, 5000);
    const fingerprintOk = node.fingerprint !== undefined && sameFingerprint(presented, node.fingerprint);
    const problem = fingerprintOk ? undefined : `presents ${presented}, pinned ${node.fingerprint ?? '(none)'}`;
    return { ...status, reachable: true, fingerprintOk, presented, problem };
  } catch (err) {
    return { ...status, problem: describeError(err) };
  }
}

async function checkStores(to: ClusterNodeConfig, jobs: Job[]): Promise<StoreCheck[]> {
  const stores = [...new Set(jobs.map((j) => j.store))];
  return Promise.all(
    stores.map(async (store) => {
      const owners = jobs.filter((j) => j.store === store).map((j) => j.id);
      let remote: RemoteStore | undefined;
      try {
        remote = new RemoteStore(remoteStoreOptions(to, store, { timeouts: { connectMs: 5000, idleMs: 10_000 }, retry: { attempts: 1 } }));
        await remote.listGuests();
        const kind = await remote.storeKind().catch(() => undefined); // a node before this question answers NOT_FOUND
        return { store, ok: true, jobs: owners, ...(kind ? { kind } : {}) };
      } catch (err) {
        return { store, ok: false, jobs: owners, problem: describeError(err) };
      } finally {
        remote?.close();
      }
    }),
  );
}

function lastOf(tasks: TaskInfo[]): LastRun | null {
  const last = [...tasks].sort((a, b) => b.start.localeCompare(a.start))[0];
  return last ? { task: last.id, time: last.end ?? last.start, status: last.status, summary: last.summary } : null;
}

function tcpConnect(host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, timeout: 5000 });
    socket.once('connect', () => {
      socket.destroy();
      resolve();
    });
    socket.once('timeout', () => {
      socket.destroy();
      reject(new Error(`connecting to ${host}:${port} timed out`));
    });
    socket.once('error', reject);
  });
}
