/**
 * The vocabulary of `coldvault doctor`: a check looks at one part of a node's setup and answers
 * findings; each finding says what was found and, when it is not ok, what to do about it.
 */
import type { HypervisorConfig } from '../../core/index.js';
import type { S3StoreSettings } from '../../datastore/index.js';
import type { ClusterConfig } from '../../targets/index.js';
import type { Job } from '../job-model.js';
import type { MailConfig } from '../mail.js';
import type { TaskInfo } from '../task-store.js';

/** ok: nothing to do; warn: worth a look, nothing fails because of it yet; fail: something will fail until it is fixed */
export type FindingStatus = 'ok' | 'warn' | 'fail';

export interface Finding {
  /** the check and what it looked at: `datastore usb1`, `hypervisor`, `mail` */
  check: string;
  status: FindingStatus;
  /** what was found, naming the path, host:port, guest or store */
  found: string;
  /** what to do about it; absent when the finding is ok */
  fix?: string;
}

/** What the checks look at: the node's config as loaded, and what the state database holds. */
export interface DoctorSetup {
  node: string;
  stateDir: string;
  guestsDir: string;
  storages: Record<string, string>;
  /** folder datastores by name (config `datastores`) */
  datastores: Record<string, string>;
  /** per folder datastore, the external disks other nodes may have mounted on it (config `storeDevices`) */
  diskStores: Record<string, string[]>;
  /** S3 datastores by name; the settings are read when asked (credentials may be missing: CONFIG_INVALID) */
  s3Datastores: Record<string, () => S3StoreSettings>;
  hypervisor?: HypervisorConfig;
  mail?: MailConfig;
  cluster?: ClusterConfig;
  /** the jobs of the state database (none when it does not exist yet) */
  jobs: Job[];
  /** the newest tasks of the state database */
  tasks: TaskInfo[];
}

/**
 * One check. `run` never throws on purpose: what it finds wrong is a finding (runDoctor turns a throw
 * or a hang into a failed finding of the check all the same).
 */
export interface DoctorCheck {
  /** short name, used for a finding when the check itself broke */
  name: string;
  run(setup: DoctorSetup): Promise<Finding[]>;
}

export const ok = (check: string, found: string): Finding => ({ check, status: 'ok', found });
export const warn = (check: string, found: string, fix: string): Finding => ({ check, status: 'warn', found, fix });
export const fail = (check: string, found: string, fix: string): Finding => ({ check, status: 'fail', found, fix });
