/**
 * The target of a job in cluster mode: the datastore named by the job's `store` on the previous node
 * of the ring (config `cluster`, targets/remote/cluster.ts), reached over HTTPS with that node's
 * pinned certificate and the scoped token it issued for this node, at most `bwlimit` MB/s. One client
 * (kept-alive connections) serves every guest of the run; the hooks' DUMPDIR is `NODE:STORE`.
 */
import type { TaskLog } from '../core/index.js';
import { type BackupTarget, RemoteTarget } from '../pipeline/index.js';
import { type ClusterConfig, RemoteStore, remoteStoreOptions, ringPlace } from '../targets/index.js';
import type { Job } from './job-model.js';

export interface JobTarget {
  target: BackupTarget;
  dumpDir: string;
  close(): void;
}

export function openClusterTarget(
  job: Pick<Job, 'store' | 'bwlimit'>,
  env: { node: string; cluster?: ClusterConfig; signal?: AbortSignal },
  task: TaskLog,
): JobTarget {
  const { sendsTo } = ringPlace(env.cluster, env.node);
  const remote = new RemoteStore(remoteStoreOptions(sendsTo, job.store, { bwlimitMBps: job.bwlimit }));
  const limit = job.bwlimit ? `, at most ${job.bwlimit} MB/s` : '';
  task.info(
    `cluster mode: the backups of node ${env.node} go to datastore '${job.store}' on node ${sendsTo.name} (${sendsTo.url}), the previous node of the ring${limit}`,
  );
  return {
    target: new RemoteTarget({ remote, nodeName: sendsTo.name, self: env.node, signal: env.signal }),
    dumpDir: `${sendsTo.name}:${job.store}`,
    close: () => remote.close(),
  };
}
