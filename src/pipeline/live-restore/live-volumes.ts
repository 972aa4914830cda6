/**
 * The files of a restore-on-the-fly, made with qemu-img: each disk's final volume (claimed with an
 * exclusive create, so nothing existing is ever overwritten; raw sparse, or an empty qcow2 of the
 * disk's virtual size), and its qcow2 overlay beside it (`<volume>.live-overlay.qcow2`) whose backing
 * is the disk's NBD export, opened with a reconnect delay: should the exporting process die, the
 * guest's reads of data not yet copied wait for a new export on the same socket (`--resume-live`)
 * instead of failing. `copyOffline` finishes a disk without QEMU (the guest was powered off, or
 * QEMU died): `qemu-img convert` of the overlay (with its backing) into the final volume.
 */
import { open, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { execa } from 'execa';
import { ColdvaultError } from '../../core/index.js';
import { fsyncDir } from '../../datastore/index.js';
import type { LiveDisk } from './live-journal.js';

/** how long the guest's reads wait for the export to come back after it went away (QEMU nbd reconnect-delay) */
export const RECONNECT_DELAY_SECONDS = 3600;

export function overlayPathFor(volumePath: string): string {
  return `${volumePath}.live-overlay.qcow2`;
}

function exportUri(socket: string, key: string): string {
  return `nbd+unix:///${encodeURIComponent(key)}?socket=${socket}`;
}

/** The size the guest sees of each exported disk (a qcow2 disk's virtual size, a raw disk's bytes). */
export async function virtualSize(socket: string, key: string, format: string): Promise<number> {
  const out = await qemuImg(['info', '--output=json', '-f', format, exportUri(socket, key)], `reading the size of disk '${key}' from the export`);
  const size = (JSON.parse(out) as { 'virtual-size'?: number })['virtual-size'];
  if (typeof size !== 'number') throw new ColdvaultError('LIVE_RESTORE_FAILED', `qemu-img info of disk '${key}' names no virtual size`);
  return size;
}

/** The final volume, created exclusively (EEXIST when the name is taken), empty and of the disk's size. */
export async function createTarget(disk: LiveDisk): Promise<void> {
  const handle = await open(disk.path, 'wx', 0o600);
  try {
    if (disk.format === 'raw') await handle.truncate(disk.virtualSize);
  } finally {
    await handle.close();
  }
  if (disk.format === 'qcow2') await qemuImg(['create', '-q', '-f', 'qcow2', disk.path, String(disk.virtualSize)], `creating '${disk.path}'`);
}

/** The overlay the guest runs on: qcow2, its backing the disk's export (the archived format over NBD). */
export async function createOverlay(disk: LiveDisk, socket: string): Promise<void> {
  const backing = {
    driver: disk.format,
    file: { driver: 'nbd', server: { type: 'unix', path: socket }, export: disk.key, 'reconnect-delay': RECONNECT_DELAY_SECONDS },
  };
  const handle = await open(disk.overlay, 'wx', 0o600);
  await handle.close();
  await qemuImg(
    ['create', '-q', '-f', 'qcow2', '-u', '-F', disk.format, '-b', `json:${JSON.stringify(backing)}`, disk.overlay, String(disk.virtualSize)],
    `creating the overlay '${disk.overlay}'`,
  );
}

/** The overlay's content (the guest's writes over the export) into the existing final volume. */
export async function copyOffline(disk: LiveDisk): Promise<void> {
  await qemuImg(['convert', '-n', '-f', 'qcow2', '-O', disk.format, disk.overlay, disk.path], `copying '${disk.overlay}' into '${disk.path}'`);
  await syncVolumes([disk.path]);
}

/** Each volume's data (written by QEMU or qemu-img through the page cache) durable, then the folders' entries. */
export async function syncVolumes(paths: readonly string[]): Promise<void> {
  for (const path of paths) {
    const handle = await open(path, 'r+');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }
  for (const dir of new Set(paths.map((p) => dirname(p)))) await fsyncDir(dir);
}

export async function removeFiles(paths: readonly string[]): Promise<void> {
  await Promise.all(paths.map((p) => unlink(p).catch(() => undefined)));
}

async function qemuImg(args: string[], doing: string): Promise<string> {
  const r = await execa('qemu-img', args, { reject: false, stdin: 'ignore' });
  if (r.exitCode === 0) return r.stdout;
  const why = r.failed && r.exitCode === undefined ? r.message : r.stderr.trim() || `exit code ${r.exitCode}`;
  throw new ColdvaultError('LIVE_RESTORE_FAILED', `${doing}: qemu-img ${args[0]} failed: ${why}`);
}
