/**
 * The target of a job in cluster mode: the datastore named by the job's `store` on the previous node
 * of the ring (config `cluster`, targets/remote/cluster.ts), reached over HTTPS with that node's
 * pinned certificate and the scoped token it issued for this node, at most `bwlimit` MB/s. One client
 * (kept-alive connections) serves every guest of the run; the hooks' DUMPDIR is `NODE:STORE`.
 * The job's external disk sits at that node (the seed: "a guest backed up on the first node of a
 * two-node cluster lands on the disk of the second node"): before any guest is stopped, that node is
 * asked to mount it on the store (its config `storeDevices` must allow the disk; identity checks,
 * init and rotation as for a local job: server/store-devices.ts); a missing or wrong disk there fails
 * the job then, naming the node and the disk. After the last guest the node unmounts it.
 */
import type { TaskLog } from '../core/index.js';
import { type BackupTarget, RemoteTarget } from '../pipeline/index.js';
import { type ClusterConfig, clusterTimeouts, RemoteStore, remoteStoreOptions, ringPlace } from '../targets/index.js';
import type { BootSource } from './boot-tests.js';
import { type AttachedDevice, bindDevice } from './device.js';
import type { JobStore } from './job-store.js';
import { boundDatastores, type Job } from './job-model.js';

export interface JobTarget {
  target: BackupTarget;
  dumpDir: string;
  /** where the job's boot tests read the new versions (none: a push to another node) */
  boot?: BootSource;
  close(): void;
}

export interface ClusterJobTarget extends JobTarget {
  remote: RemoteStore;
  /** the receiving node's name */
  nodeName: string;
}

export function openClusterTarget(
  job: Pick<Job, 'store' | 'bwlimit'>,
  env: { node: string; cluster?: ClusterConfig; signal?: AbortSignal },
  task: TaskLog,
): ClusterJobTarget {
  const { sendsTo } = ringPlace(env.cluster, env.node);
  const remote = new RemoteStore(remoteStoreOptions(sendsTo, job.store, { bwlimitMBps: job.bwlimit, timeouts: clusterTimeouts(env.cluster) }));
  const limit = job.bwlimit ? `, at most ${job.bwlimit} MB/s` : '';
  task.info(
    `cluster mode: the backups of node ${env.node} go to datastore '${job.store}' on node ${sendsTo.name} (${sendsTo.url}), the previous node of the ring${limit}`,
  );
  return {
    target: new RemoteTarget({ remote, nodeName: sendsTo.name, self: env.node, signal: env.signal }),
    dumpDir: `${sendsTo.name}:${job.store}`,
    close: () => remote.close(),
    remote,
    nodeName: sendsTo.name,
  };
}

/** Has the receiving node mount the job's disk on the store; undefined when the job has no disk. */
export async function attachClusterDevice(job: Job, at: ClusterJobTarget, task: TaskLog, jobs?: JobStore): Promise<AttachedDevice | undefined> {
  if (!job.device) return undefined;
  const { remote, nodeName } = at;
  task.info(`asking node ${nodeName} to mount the external disk ${job.device} on its datastore '${job.store}'`);
  const disk = await remote.attachDevice({ device: job.device, init: job.initDevice, datastoreIds: boundDatastores(job) });
  for (const line of disk.log) task.info(`node ${nodeName}: ${line}`);
  try {
    bindDevice(job, disk.datastoreId, task, jobs);
  } catch (err) {
    await remote.detachDevice(disk.attachment).catch(() => undefined);
    throw err;
  }
  return {
    diagnose: () => Promise.resolve(undefined), // the node's own checks fail its writes; its errors name it
    detach: async () => {
      await remote.detachDevice(disk.attachment);
      task.info(`node ${nodeName} unmounted ${disk.device}: the disk may now be removed there`);
    },
  };
}
