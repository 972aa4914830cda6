/**
 * What coldvault saw on external disks: one row per filesystem UUID in the state database
 * (`device_sightings`, made by this class when missing), written whenever coldvault itself had the
 * disk mounted and read its datastore: a job's run (once mounted, and again after the backup), a
 * restore from the disk, a cluster attach, an explicit probe (POST /api/v1/devices/probe). It holds
 * the datastore id, the folder it was mounted on, the guests and their version numbers as they were
 * then, when and by what. Discovery (disk-discovery.ts) reads it to say which attached disk holds
 * which datastore WITHOUT mounting anything: a disk coldvault never had mounted is not in it.
 *
 * A disk is recognised by its filesystem UUID, which anyone can copy onto another disk: a sighting
 * is a hint for the Restore tab, never trusted for writing. Every mount still checks the datastore's
 * identity file on the disk (jobs/device.ts, the restore's open).
 */
import { join } from 'node:path';
import { VersionFolders } from '../datastore/index.js';
import type { StateDb } from './state-db.js';

export interface DiskGuest {
  id: string;
  versions: number[];
}

export interface DeviceSighting {
  /** the filesystem's UUID (lower case) */
  uuid: string;
  label: string | null;
  fstype: string | null;
  size: number;
  datastoreId: string;
  /** the folder it was mounted on (a job's store, a datastore's folder); null for a probe in a temp dir */
  dir: string | null;
  /** the guests and their versions on it then; null when not looked at (a probe reads the identity only) */
  guests: DiskGuest[] | null;
  /** ISO time */
  seen: string;
  /** `job nightly`, `restore`, `probe`, `attach for node pve2` */
  by: string;
}

/** The parts of a block device a sighting keeps. */
export interface SeenDevice {
  uuid: string | null;
  label: string | null;
  fstype: string | null;
  size: number;
}

export class DeviceSightings {
  constructor(private readonly db: StateDb) {
    db.exec('CREATE TABLE IF NOT EXISTS device_sightings (uuid TEXT PRIMARY KEY, json TEXT NOT NULL, seen TEXT NOT NULL)');
  }

  /**
   * Records what was seen on `device` (nothing without a UUID). Guests not looked at (null) keep the
   * ones seen before of the same datastore; `dir` null keeps the folder seen before.
   */
  record(device: SeenDevice, seen: { datastoreId: string; dir: string | null; guests: DiskGuest[] | null; by: string }): void {
    if (!device.uuid) return;
    const uuid = device.uuid.toLowerCase();
    const before = this.get(uuid);
    const same = before?.datastoreId === seen.datastoreId;
    const row: DeviceSighting = {
      uuid,
      label: device.label,
      fstype: device.fstype,
      size: device.size,
      datastoreId: seen.datastoreId,
      dir: seen.dir ?? (same ? (before?.dir ?? null) : null),
      guests: seen.guests ?? (same ? (before?.guests ?? null) : null),
      seen: new Date().toISOString(),
      by: seen.by,
    };
    this.db
      .prepare('INSERT INTO device_sightings (uuid, json, seen) VALUES (?, ?, ?) ON CONFLICT (uuid) DO UPDATE SET json = excluded.json, seen = excluded.seen')
      .run(uuid, JSON.stringify(row), row.seen);
  }

  get(uuid: string): DeviceSighting | undefined {
    const row = this.db.prepare('SELECT json FROM device_sightings WHERE uuid = ?').get(uuid.toLowerCase()) as { json: string } | undefined;
    return row ? (JSON.parse(row.json) as DeviceSighting) : undefined;
  }

  list(): DeviceSighting[] {
    const rows = this.db.prepare('SELECT json FROM device_sightings ORDER BY seen DESC').all() as Array<{ json: string }>;
    return rows.map((r) => JSON.parse(r.json) as DeviceSighting);
  }
}

/** The guests and version numbers of the datastore mounted on `dir` (folder names only: nothing is decoded). */
export async function diskGuests(dir: string): Promise<DiskGuest[]> {
  const folders = new VersionFolders(join(dir, 'guests'));
  const guests: DiskGuest[] = [];
  for (const id of await folders.listGuestIds()) {
    const versions = await folders.listVersionNumbers(id);
    if (versions.length > 0) guests.push({ id, versions });
  }
  return guests;
}
