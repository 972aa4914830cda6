/**
 * The machine a bench runs on, and how busy the rest of it was: machineInfo() for the report's header,
 * busySeconds() (CPU seconds the whole machine spent busy so far, from /proc/stat) to tell, around a
 * measured step, how much CPU others used while it ran (the machine is shared).
 */
import { readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { sh } from './exec.mjs';

const HZ = 100; // USER_HZ on Linux

export function busySeconds() {
  const all = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return (all.reduce((s, x) => s + x, 0) - all[3] - all[4]) / HZ;
}

/** Share of the machine's CPUs others used during a step of `wallSeconds` whose own processes used `ownCpuSeconds`. */
export function othersShare(busyBefore, busyAfter, ownCpuSeconds, wallSeconds) {
  const others = Math.max(0, busyAfter - busyBefore - (Number.isFinite(ownCpuSeconds) ? ownCpuSeconds : 0));
  return others / (wallSeconds * cpus().length);
}

/** Share of the machine's CPUs busy over the next `ms` (sampled, blocking). */
export function busyShareNow(ms = 2000) {
  const a = busySeconds();
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  return (busySeconds() - a) / ((ms / 1000) * cpus().length);
}

export const loadAverage = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

const fsType = (dir) => sh('df', ['--output=fstype', dir]).split('\n').pop().trim();
const freeGiB = (dir) => Number(sh('df', ['--output=avail', '-B1', dir]).split('\n').pop().trim()) / 2 ** 30;

export function machineInfo(dir) {
  const model = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown';
  const os = /PRETTY_NAME="(.*)"/.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? 'unknown';
  return {
    cpu: `${model}, ${cpus().length} cores`,
    memory: `${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
    os,
    kernel: sh('uname', ['-r']),
    'scratch folder': `${dir} (${fsType(dir)}, ${freeGiB(dir).toFixed(0)} GiB free at the start)`,
    'load before': `load average ${loadAverage()}, CPUs ${(100 * busyShareNow()).toFixed(0)}% busy over 2 s just before the run`,
  };
}

export { freeGiB };
