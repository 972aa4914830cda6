/**
 * Which folder datastores this node uses: the config's `datastores`, and the folders of the enabled
 * local jobs (a folder path, or a datastore name) that are not one of those. A job with an external
 * disk (`--device`) is left out: its folder holds the disk only while the job runs. Cluster-mode jobs
 * push to another node (the cluster check) and S3 names are the S3 check's.
 */
import { resolve } from 'node:path';
import type { DoctorSetup } from './types.js';

export interface FolderStore {
  /** `datastore usb1`, `job nightly` */
  label: string;
  dir: string;
  /** named in the config (a missing or empty folder fails); else a job's folder (the job makes the datastore) */
  configured: boolean;
  /** the external disks other nodes may mount on it (`storeDevices`): it may stand empty between pushes */
  disks: string[];
}

export function folderStores(setup: DoctorSetup): FolderStore[] {
  const byDir = new Map<string, FolderStore>();
  for (const [name, dir] of Object.entries(setup.datastores)) {
    byDir.set(resolve(dir), { label: `datastore ${name}`, dir: resolve(dir), configured: true, disks: setup.diskStores[name] ?? [] });
  }
  for (const job of setup.jobs) {
    if (!job.enabled || job.mode === 'cluster' || job.device || Object.hasOwn(setup.s3Datastores, job.store)) continue;
    const dir = resolve(setup.datastores[job.store] ?? job.store);
    if (!byDir.has(dir)) byDir.set(dir, { label: `job ${job.id}`, dir, configured: false, disks: [] });
  }
  return [...byDir.values()];
}
