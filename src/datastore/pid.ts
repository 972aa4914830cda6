/** Whether a process that left a lock or a temp file behind is still alive (on this host). */
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { errnoCode } from '../core/index.js';

export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoCode(err) === 'EPERM';
  }
}

export const thisHost = hostname();

/**
 * This boot of this host (Linux's boot_id; undefined elsewhere). Recorded beside a pid, because after
 * a power cut and a reboot the pid of a dead holder may belong to any process.
 */
export const thisBoot = readBootId();

function readBootId(): string | undefined {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * A holder on another host is assumed alive; on this host, one from an earlier boot is dead, else we
 * check its pid. A holder that names a `whileFile` outlives its process and reboots: it is alive
 * while that file exists on its host (a live restore's journal holds its version until the restore
 * is finished, whoever finishes it and however often the host restarts meanwhile).
 */
export function holderAlive(holder: { pid: number; host: string; boot?: string; whileFile?: string }): boolean {
  if (holder.host !== thisHost) return true;
  if (holder.whileFile !== undefined) return existsSync(holder.whileFile);
  if (holder.boot !== undefined && thisBoot !== undefined && holder.boot !== thisBoot) return false;
  return processAlive(holder.pid);
}
