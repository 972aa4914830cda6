/**
 * The rotation view: which external disk a job used on which day, read back from the task logs, where
 * every run with a device names the disk it found (device.ts attachedLine: `external device SPEC: PATH
 * (FSTYPE, label L, UUID U)`; a cluster-mode job logs the receiving node's line as `node NAME: ...`).
 * One entry per run that attached a disk; the disk is named by its label, else its UUID, else the
 * spec the job gave.
 */
import { dayKey } from './days.js';
import { parseAttachedLine } from '../device.js';

export interface LogLineRef {
  taskId: string;
  /** ISO 8601 */
  time: string;
  message: string;
}

export interface RotationEntry {
  day: string;
  time: string;
  /** the disk: its label, else its UUID, else the job's spec for it */
  device: string;
  label: string | null;
  uuid: string | null;
  spec: string;
  /** the device node it had then (`/dev/sdb1`) */
  path: string;
  job: string;
  taskId: string;
  /** the node the disk was plugged into (cluster mode); null: this node */
  node: string | null;
}

/** Entries for the lines of job tasks (`jobOfTask`: task id -> job id) since `since`, oldest first. */
export function rotationEntries(lines: readonly LogLineRef[], jobOfTask: ReadonlyMap<string, string>, since: Date): RotationEntry[] {
  const seen = new Set<string>();
  const out: RotationEntry[] = [];
  for (const line of [...lines].sort((a, b) => a.time.localeCompare(b.time))) {
    const job = jobOfTask.get(line.taskId);
    const disk = parseAttachedLine(line.message);
    const at = new Date(line.time);
    if (!job || !disk || seen.has(line.taskId) || !(at.getTime() >= since.getTime())) continue;
    seen.add(line.taskId);
    out.push({ day: dayKey(at), time: line.time, device: disk.label || disk.uuid || disk.spec, ...disk, job, taskId: line.taskId });
  }
  return out;
}
