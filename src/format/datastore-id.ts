/**
 * The datastore's identity file `coldvault-datastore.json` at its root: format number, a random id
 * (jobs bind to it, so a wrong USB disk is recognised), and the creation time.
 */
import { ColdvaultError } from '../core/index.js';
import { DATASTORE_FORMAT } from './constants.js';

export interface DatastoreIdentity {
  format: number;
  id: string;
  created: string;
  chunkSize: number;
}

export function encodeIdentity(identity: DatastoreIdentity): Buffer {
  return Buffer.from(JSON.stringify({ coldvault: 'datastore', ...identity }, null, 2) + '\n');
}

export function decodeIdentity(file: Buffer, dir: string): DatastoreIdentity {
  let parsed: Partial<DatastoreIdentity> & { coldvault?: string };
  try {
    parsed = JSON.parse(file.toString('utf8')) as typeof parsed;
  } catch (cause) {
    throw new ColdvaultError('DATASTORE_CORRUPT', `datastore '${dir}' has an unreadable identity file`, { cause });
  }
  if (parsed.coldvault !== 'datastore' || typeof parsed.format !== 'number' || typeof parsed.id !== 'string') {
    throw new ColdvaultError('DATASTORE_CORRUPT', `datastore '${dir}' has an invalid identity file`);
  }
  if (parsed.format > DATASTORE_FORMAT) {
    throw new ColdvaultError(
      'DATASTORE_TOO_NEW',
      `datastore '${dir}' has format ${parsed.format}, newer than this coldvault (reads up to ${DATASTORE_FORMAT}); upgrade coldvault`,
    );
  }
  return { format: parsed.format, id: parsed.id, created: String(parsed.created), chunkSize: Number(parsed.chunkSize) };
}
