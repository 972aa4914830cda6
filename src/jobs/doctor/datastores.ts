/**
 * Folder datastores (folder-stores.ts): the folder is there, holds a coldvault datastore this
 * coldvault can open, and takes a new file. A job's folder that is missing or empty is only a
 * warning: the job makes its datastore there at its next run.
 */
import { readdir } from 'node:fs/promises';
import { describeError, isColdvaultError } from '../../core/index.js';
import { Datastore } from '../../datastore/index.js';
import { type FolderStore, folderStores } from './folder-stores.js';
import { cannotWrite, pathKind, within } from './probe.js';
import { type DoctorCheck, type Finding, fail, ok, warn } from './types.js';

const LOOK_MS = 20_000;

export const datastoresCheck: DoctorCheck = {
  name: 'datastores',
  run: async (setup) =>
    Promise.all(
      folderStores(setup).map((store) => within(checkStore(store), LOOK_MS, `the folder '${store.dir}'`).catch((err: unknown) => broken(store, err))),
    ),
};

async function checkStore(store: FolderStore): Promise<Finding> {
  const kind = await pathKind(store.dir);
  if (kind === 'missing') return missing(store);
  if (kind !== 'folder') return fail(store.label, `'${store.dir}' is not a folder`, `point ${where(store)} at the datastore's folder`);
  let opened: Datastore;
  try {
    opened = await Datastore.open(store.dir);
  } catch (err) {
    return notOpened(store, err);
  }
  const why = await cannotWrite(store.dir);
  if (why) return fail(store.label, `datastore ${opened.identity.id} in '${store.dir}' takes no new file: ${why}`, writableFix(store));
  const guests = (await opened.listGuestIds()).length;
  return ok(store.label, `datastore ${opened.identity.id} in '${store.dir}': ${guests} guest(s), writable`);
}

function missing(store: FolderStore): Finding {
  if (!store.configured) {
    return warn(
      store.label,
      `'${store.dir}' does not exist: the job creates a new datastore there at its next run`,
      `if a disk belongs there, mount it (or give the job --device); if the path is wrong, correct it with 'coldvault job edit'`,
    );
  }
  return fail(
    store.label,
    `the folder '${store.dir}' does not exist`,
    `mount the disk that holds the datastore on '${store.dir}', create a new one with 'coldvault datastore init ${store.dir}', or correct ${where(store)}`,
  );
}

async function notOpened(store: FolderStore, err: unknown): Promise<Finding> {
  if (!isColdvaultError(err, 'NOT_A_DATASTORE')) {
    return fail(store.label, `'${store.dir}' cannot be opened: ${describeError(err)}`, 'see the error; a newer datastore needs a newer coldvault');
  }
  const empty = (await readdir(store.dir)).every((e) => e === 'lost+found');
  if (empty && store.disks.length > 0) return ok(store.label, `'${store.dir}' is empty: no disk attached now (it takes ${store.disks.join(', ')})`);
  if (empty && !store.configured) return ok(store.label, `'${store.dir}' is empty: the job creates its datastore there at its next run`);
  return fail(
    store.label,
    `'${store.dir}' holds no coldvault datastore${empty ? ' (it is empty)' : ''}`,
    `mount the disk that holds the datastore there, create one with 'coldvault datastore init ${store.dir}', or correct ${where(store)}`,
  );
}

function broken(store: FolderStore, err: unknown): Finding {
  return fail(
    store.label,
    `looking at '${store.dir}' failed: ${describeError(err)}`,
    `check the filesystem of '${store.dir}' (a hung network mount, a failing disk)`,
  );
}

const where = (store: FolderStore): string =>
  store.configured ? `'${store.label.replace(/^datastore /, 'datastores.')}' in the config` : `the job's store ('coldvault job edit')`;

const writableFix = (store: FolderStore): string =>
  `make '${store.dir}' writable for this user (root): a read-only mount is remounted read-write (mount -o remount,rw), a full or failing disk replaced; or correct ${where(store)}`;
