/**
 * The hold of a live restore on its version: from the moment its journal exists until the restore
 * is finished or undone, prune keeps the version (and so gc its chunks), also while no process
 * drives the restore (after a crash, until `--resume-live` or the next serve start). It is a durable
 * read lease (VersionSource.hold) that lives while the journal file exists on this host, so it cannot
 * outlive the restore: whoever removes the journal has ended it, and a hold left behind by a crash
 * between its taking and the journal's update is ended with the journal too.
 * Order: the journal is written first (a hold on a file that does not exist is dead at once), then
 * the hold taken, then its reference recorded in the journal. The export's own read lease covers the
 * version meanwhile, so prune cannot remove it between the two.
 * A remote source has no durable hold: its node keeps the version only while this process keeps its
 * lease alive (said in the log).
 */
import { resolve } from 'node:path';
import type { TaskLog } from '../../core/index.js';
import type { VersionSource } from '../version-source.js';
import { journalPath, type LiveJournal, writeJournal } from './live-journal.js';

/** Takes a hold for `journal` (again, on a resume: a new one, the old one dropped) and records it. */
export async function holdVersion(source: VersionSource, journal: LiveJournal, stateDir: string, log: TaskLog): Promise<void> {
  if (!source.hold) {
    log.warn(
      `the version is held against prune by ${source.describe} only while this process runs: should it die, resume the restore within the node's lease time (uploadIdleSeconds)`,
    );
    return;
  }
  const previous = journal.hold;
  const purpose = `live restore of guest ${journal.guestId} version ${journal.version} to ${journal.newId}`;
  journal.hold = await source.hold(journal.guestId, journal.version, purpose, resolve(journalPath(stateDir, journal.newId)));
  await writeJournal(stateDir, journal);
  if (previous && previous !== journal.hold) await source.dropHold?.(previous).catch(() => undefined);
}

/** Ends the hold (before the journal goes; a hold whose journal is gone is dead anyway). */
export async function releaseHold(source: VersionSource, journal: LiveJournal): Promise<void> {
  if (journal.hold) await source.dropHold?.(journal.hold).catch(() => undefined);
}
