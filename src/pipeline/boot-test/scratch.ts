/**
 * A boot test's scratch folder: `$TMPDIR/coldvault-boot-<pid>-XXXXXX` (mode 0700: the export's and
 * QMP's sockets, the serial log, the guest agent's socket), short enough for socket paths. Removed when
 * the test ends; a folder left by a process that was killed hard (its pid no longer alive) is removed
 * by the next test.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { processAlive } from '../../datastore/index.js';

const PREFIX = 'coldvault-boot-';

export async function makeScratch(): Promise<string> {
  await removeOrphans();
  return mkdtemp(join(tmpdir(), `${PREFIX}${process.pid}-`));
}

async function removeOrphans(): Promise<void> {
  const names = await readdir(tmpdir()).catch(() => [] as string[]);
  for (const name of names) {
    const pid = Number(new RegExp(`^${PREFIX}(\\d+)-`).exec(name)?.[1]);
    if (pid && !processAlive(pid)) await rm(join(tmpdir(), name), { recursive: true, force: true }).catch(() => undefined);
  }
}
