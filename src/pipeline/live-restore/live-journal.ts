/**
 * The journal of a restore-on-the-fly: `<stateDir>/live-restores/<newId>.json` (mode 0600), written
 * before the guest starts and removed when the restore is complete or undone. It names what a later
 * process needs to finish the restore should this one die: the version, the NBD socket the guest's
 * overlays read from, the guest's QMP socket, each disk's target volume and overlay, the config to
 * write at the end, and the phase. Its `pid` tells whether a live process drives it.
 */
import { existsSync, readdirSync } from 'node:fs';
import { readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { ColdvaultError } from '../../core/index.js';
import { ensureDir, processAlive, writeFileDurable } from '../../datastore/index.js';

export interface LiveDisk {
  key: string;
  /** the volume id in the restored config (`local:200/vm-200-disk-0.raw`) */
  volume: string;
  /** the final volume's file, written by the mirror */
  path: string;
  /** the qcow2 overlay the guest runs on until the pivot (its writes), backed by the export */
  overlay: string;
  format: 'raw' | 'qcow2';
  virtualSize: number;
}

/**
 * - starting: volumes and overlays made, QEMU may or may not run
 * - mirroring: QEMU runs on the overlays, the mirrors copy
 * - pivoting: block-job-complete was sent: from here the final volumes may hold newer data than the overlays
 */
export type LivePhase = 'starting' | 'mirroring' | 'pivoting';

export interface LiveJournal {
  newId: string;
  guestId: string;
  version: number;
  /** the source, as `describe` says it (for messages) */
  source: string;
  /** the datastore as the caller named it (a configured name, a folder, an s3:// address), for resuming; none for another node's */
  store?: string;
  /** the copy's speed cap (bytes per second), kept by a resume unless it is given another */
  speed?: number;
  pid: number;
  /** the durable hold on the version (VersionSource.hold's reference: a lock file or object), see live-hold.ts */
  hold?: string;
  startedAt: string;
  phase: LivePhase;
  /** the private folder of the NBD socket */
  scratch: string;
  socket: string;
  qmpSocket: string;
  pidFile: string;
  configPath: string;
  config: string;
  disks: LiveDisk[];
}

export function journalDir(stateDir: string): string {
  return join(stateDir, 'live-restores');
}

export function journalPath(stateDir: string, newId: string): string {
  return join(journalDir(stateDir), `${newId}.json`);
}

export async function writeJournal(stateDir: string, journal: LiveJournal): Promise<void> {
  await ensureDir(journalDir(stateDir));
  await writeFileDurable(journalPath(stateDir, journal.newId), Buffer.from(`${JSON.stringify(journal, null, 2)}\n`));
}

export async function readJournal(stateDir: string, newId: string): Promise<LiveJournal | undefined> {
  const text = await readFile(journalPath(stateDir, newId), 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as LiveJournal;
  } catch (err) {
    throw new ColdvaultError('CONFIG_INVALID', `the live restore journal '${journalPath(stateDir, newId)}' is not valid JSON`, { cause: err });
  }
}

export async function removeJournal(stateDir: string, newId: string): Promise<void> {
  await unlink(journalPath(stateDir, newId)).catch(() => undefined);
}

/** The live restores whose process is gone (they wait for `restore --resume-live`). */
export async function pendingLiveRestores(stateDir: string): Promise<LiveJournal[]> {
  const dir = journalDir(stateDir);
  if (!existsSync(dir)) return [];
  const found: LiveJournal[] = [];
  for (const name of readdirSync(dir).filter((n) => n.endsWith('.json'))) {
    const journal = await readJournal(stateDir, name.slice(0, -'.json'.length)).catch(() => undefined);
    if (journal && !processAlive(journal.pid)) found.push(journal);
  }
  return found;
}

/** Refuses a second live restore to an ID while one is pending or running. */
export async function refusePending(stateDir: string, newId: string): Promise<void> {
  const journal = await readJournal(stateDir, newId);
  if (!journal) return;
  const who = processAlive(journal.pid) ? `running in process ${journal.pid}` : 'interrupted';
  throw new ColdvaultError(
    'GUEST_ID_TAKEN',
    `a live restore of guest ${journal.guestId} version ${journal.version} to ID ${newId} is ${who}; finish it with ${resumeCommand(journal)} (journal '${journalPath(stateDir, newId)}')`,
  );
}

/** The command that finishes a pending live restore. */
export function resumeCommand(journal: LiveJournal): string {
  return `coldvault restore --resume-live ${journal.newId}${journal.store ? ` --store ${journal.store}` : ` (with the store options of ${journal.source})`}`;
}
