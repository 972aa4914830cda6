/** Guest configs on disk: `<guestsDir>/<vmid>.conf` (on Proxmox: /etc/pve/qemu-server). Read-only. */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ColdvaultError, errnoCode, ioError, isGuestId } from '../core/index.js';
import type { GuestConfig } from './config-model.js';
import { parseGuestConfig } from './config-parse.js';

export const DEFAULT_GUESTS_DIR = '/etc/pve/qemu-server';

export function guestConfigPath(guestsDir: string, vmid: string): string {
  if (!isGuestId(vmid)) {
    throw new ColdvaultError('USAGE', `invalid guest id '${vmid}': expected a number from 100 to 999999999`);
  }
  return join(guestsDir, `${vmid}.conf`);
}

/** Reads and parses a guest's config; GUEST_NOT_FOUND when the file does not exist. */
export async function readGuestConfig(guestsDir: string, vmid: string): Promise<{ path: string; text: string; config: GuestConfig }> {
  const path = guestConfigPath(guestsDir, vmid);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') {
      throw new ColdvaultError('GUEST_NOT_FOUND', `guest ${vmid} not found: no config ${path}`, { cause: err });
    }
    throw ioError(`reading config of guest ${vmid} (${path})`, err);
  }
  return { path, text, config: parseGuestConfig(text, `guest ${vmid} (${path})`) };
}

/** The ids of all `<vmid>.conf` files (not folders) in the folder, sorted numerically. */
export async function listGuestIds(guestsDir: string): Promise<string[]> {
  let names: string[];
  try {
    names = (await readdir(guestsDir, { withFileTypes: true })).filter((e) => !e.isDirectory()).map((e) => e.name);
  } catch (err) {
    throw ioError(`listing guest configs in ${guestsDir}`, err);
  }
  const ids = names.flatMap((n) => /^(\d+)\.conf$/.exec(n)?.[1] ?? []).filter(isGuestId);
  return ids.sort((a, b) => Number(a) - Number(b));
}
