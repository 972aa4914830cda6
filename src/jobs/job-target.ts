/**
 * Where a job's backups land, in words for the job list, the API and the web UI: a local folder
 * (with its external disk), or, in cluster mode, the datastore on the previous node of the ring
 * (with the disk to plug in there). A ring this node is not in is named as such, not thrown.
 */
import { describeError } from '../core/index.js';
import { type ClusterConfig, ringPlace } from '../targets/index.js';
import type { Job } from './job-model.js';

export interface JobLanding {
  /** `/mnt/usb1`, or `node1:ring` */
  target: string;
  /** cluster mode: the receiving node */
  node?: string;
  /** the external disk, and the node it must be plugged into */
  device?: { spec: string; node: string };
  /** the ring does not name a receiving node for this one (config) */
  problem?: string;
}

export function jobLanding(job: Pick<Job, 'mode' | 'store' | 'device'>, cluster: ClusterConfig | undefined, self: string): JobLanding {
  if (job.mode !== 'cluster') return { target: job.store, device: job.device ? { spec: job.device, node: self } : undefined };
  try {
    const { sendsTo } = ringPlace(cluster, self);
    return { target: `${sendsTo.name}:${job.store}`, node: sendsTo.name, device: job.device ? { spec: job.device, node: sendsTo.name } : undefined };
  } catch (err) {
    return { target: `?:${job.store}`, problem: describeError(err) };
  }
}

/** One line: `node1:ring (plug disk UUID=... into node1)`. */
export function describeLanding(landing: JobLanding): string {
  const disk = landing.device ? ` (disk ${landing.device.spec} at node ${landing.device.node})` : '';
  return `${landing.target}${disk}${landing.problem ? ` [${landing.problem}]` : ''}`;
}
