/**
 * Restore-on-the-fly through the API (issue 15): POST /api/v1/restore with `live: true` starts the
 * restored guest at once with QEMU on overlays over the version's NBD export, and QEMU copies its
 * disks to their final volumes (`bwlimit` MB/s caps the copy), then moves it onto them; the task ends
 * when the guest runs on its final volumes (pipeline restoreGuestLive). The same for `remote: NODE`.
 *
 * Checked before the task starts (400): `bwlimit` without `live`, `live` with `force` (a live restore
 * goes to an unused ID), a driver other than qemu (guests/hypervisor liveRestoreSocket: the one
 * table of why, shared with the CLI); 409 GUEST_ID_TAKEN while a live restore to that ID is
 * pending. The driver is made from the config's `hypervisor` (the one `coldvault serve` runs with).
 * The QEMU command is built from the restored config, so a principal whose `args:` / `hookscript:`
 * are dropped (restore.privileged-config) starts the guest without them. The task's abort is serve
 * stopping (a restart, an upgrade), so once the guest runs it is left running with its journal, as a
 * crash of serve leaves it, and the next start finishes the copy (server/live-resume.ts); an abort
 * before the guest started removes what the restore made.
 */
import type { Static } from '@sinclair/typebox';
import { ColdvaultError, isColdvaultError } from '../../core/index.js';
import { createDriver, liveRestoreSocket } from '../../guests/hypervisor/index.js';
import { readLiveJournal, restoreGuest, restoreGuestLive, resumeCommand, type RestoreRequest } from '../../pipeline/index.js';
import type { RouteContext } from '../context.js';
import { ApiError } from '../errors.js';
import type { RestoreBody } from '../schemas.js';

/** What a live restore needs beyond a plain restore's request. */
export interface LiveSettings {
  qmpSocket: string;
  stateDir: string;
  accel?: string;
  /** bytes per second */
  speed?: number;
}

/** The live settings of a restore body (undefined: a plain restore), refused at once when they cannot work. */
export async function liveSettingsOf(ctx: RouteContext, body: Static<typeof RestoreBody>): Promise<LiveSettings | undefined> {
  if (!body.live) {
    if (body.bwlimit !== undefined)
      throw new ApiError('INVALID_REQUEST', 'restore: bwlimit caps the copy of a live restore; set live: true or leave bwlimit out');
    return undefined;
  }
  if (body.force) throw new ApiError('INVALID_REQUEST', 'restore: live does not go with force: a live restore goes to an unused guest ID');
  const qmpSocket = socketFor(ctx, body.newId);
  const pending = await readLiveJournal(ctx.config.stateDir, body.newId);
  if (pending) {
    throw new ColdvaultError(
      'GUEST_ID_TAKEN',
      `a live restore of guest ${pending.guestId} version ${pending.version} to ID ${body.newId} is under way or pending; it is finished by its task, or with ${resumeCommand(pending)}`,
    );
  }
  const speed = body.bwlimit === undefined ? undefined : Math.round(body.bwlimit * 1_000_000);
  return { qmpSocket, stateDir: ctx.config.stateDir, accel: ctx.config.hypervisor?.accel, speed };
}

function socketFor(ctx: RouteContext, newId: string): string {
  try {
    return liveRestoreSocket(createDriver(ctx.config.hypervisor), newId, { asked: 'a live restore (live: true)', instead: 'restore without live' });
  } catch (err) {
    if (isColdvaultError(err, 'NOT_SUPPORTED')) throw new ApiError('NOT_SUPPORTED', err.message);
    throw err;
  }
}

/** The restore's task result beyond what every restore reports: when the guest started, whether it still runs. */
export interface RestoreOutcome {
  configPath: string;
  volumes: Map<string, string>;
  live?: { startedAfter: number; running: boolean };
}

/** A plain restore, or with live settings a restore-on-the-fly (`abort`: serve stopping; the guest is kept for the next start; `storeName` goes to its journal, for resuming). */
export async function runRestore(
  req: RestoreRequest,
  live: LiveSettings | undefined,
  extras: { abort: AbortSignal; storeName?: string },
): Promise<RestoreOutcome> {
  if (!live) return restoreGuest(req);
  const r = await restoreGuestLive({ ...req, ...live, abort: extras.abort, onAbort: 'keep', storeName: extras.storeName });
  return { configPath: r.configPath, volumes: r.volumes, live: { startedAfter: r.startedAfter, running: r.running } };
}
