/**
 * Whose datastore a mounted disk (or a folder) holds: the id in `coldvault-datastore.json` at its root.
 * A job is bound to an id, so a wrong disk is recognised before anything is written to it.
 */
import { readdir, readFile } from 'node:fs/promises';
import { ColdvaultError, errnoCode } from '../core/index.js';
import { decodeIdentity } from '../format/index.js';

export const IDENTITY_FILE = 'coldvault-datastore.json';
/** What a fresh filesystem may hold and still count as empty (as the datastore's own rule). */
const IGNORABLE_ENTRIES = new Set(['lost+found', 'System Volume Information', '$RECYCLE.BIN', '.Trash-0']);

/** The datastore id in the identity file at `dir`, null when there is none. */
export async function readDatastoreId(dir: string): Promise<string | null> {
  let file: Buffer;
  try {
    file = await readFile(`${dir}/${IDENTITY_FILE}`);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return null;
    throw err;
  }
  return decodeIdentity(file, dir).id;
}

/**
 * Whose datastore is mounted at `mountpoint`: its id; 'empty' for an empty filesystem (the caller
 * decides about --init-device); WRONG_DATASTORE when it is not `expected`; NOT_A_DATASTORE when it
 * holds other files.
 */
export async function checkIdentity(mountpoint: string, expected: string | undefined): Promise<string> {
  const found = await readDatastoreId(mountpoint);
  if (found === null) {
    const others = (await readdir(mountpoint)).filter((n) => !IGNORABLE_ENTRIES.has(n));
    if (others.length === 0) return 'empty';
    throw new ColdvaultError(
      'NOT_A_DATASTORE',
      `the device mounted on '${mountpoint}' holds no coldvault datastore but other files (${others.slice(0, 3).join(', ')})`,
    );
  }
  if (expected !== undefined && found !== expected) {
    throw new ColdvaultError(
      'WRONG_DATASTORE',
      `the device mounted on '${mountpoint}' holds datastore ${found}, not the expected datastore ${expected}; nothing was written to it`,
    );
  }
  return found;
}
