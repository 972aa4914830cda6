/**
 * Which receiving store an upload gets: a configured folder datastore (opened with the server's
 * seams; a folder that is an external disk's takes uploads only while one is attached), or a
 * configured S3 datastore (opened by name with the config's credentials, its catalog cached in the
 * state dir).
 */
import { ColdvaultError, type TaskLog } from '../../core/index.js';
import type { Datastore, S3StoreSettings } from '../../datastore/index.js';
import type { KnownStore } from '../paths.js';
import type { HoldRequest, ReceivingStore } from './receiving.js';
import { receiveIntoFolder } from './receiving-folder.js';
import { receiveIntoS3 } from './receiving-s3.js';

export interface ReceivingOptions {
  /** opens a folder datastore (refusing one whose external disk is not attached) */
  openFolder: (dir: string) => Promise<Datastore>;
  /** a configured S3 datastore's settings by name */
  s3Settings: (name: string) => S3StoreSettings | undefined;
  /** where S3 datastores' catalog caches live */
  stateDir: string;
}

export function receivingStores(opts: ReceivingOptions): (ref: KnownStore, hold: HoldRequest, log: TaskLog) => Promise<ReceivingStore> {
  return async (ref, hold, log) => {
    if (ref.kind !== 's3') return receiveIntoFolder(await opts.openFolder(ref.dir), hold);
    const settings = opts.s3Settings(ref.name);
    if (!settings) throw new ColdvaultError('CONFIG_INVALID', `datastore '${ref.name}' is listed as an S3 datastore but has no settings`);
    return receiveIntoS3(settings, opts.stateDir, hold, log);
  };
}
