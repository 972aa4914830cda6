/** Whether a process that left a lock or a temp file behind is still alive (on this host). */
import { hostname } from 'node:os';
import { errnoCode } from '../core/errors.js';

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

/** A holder on another host is assumed alive; on this host we can check. */
export function holderAlive(holder: { pid: number; host: string }): boolean {
  return holder.host !== thisHost || processAlive(holder.pid);
}
