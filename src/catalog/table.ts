/**
 * The catalog's SQL, as prepared statements over one connection. Every write that touches more
 * than one row runs in a transaction, so another process never sees a version without its disks.
 */
import type Database from 'better-sqlite3';
import type { Manifest } from '../format/index.js';
import { diskRows, toVersion, versionKey, versionRow, type DiskRow, type StoredVersionRow } from './rows.js';
import type { BootTestRecord, CatalogVersion, StoreTotals, VerifyState } from './types.js';

const ORDER = 'ORDER BY CAST(guest_id AS INTEGER), guest_id, version';

/**
 * Insert or replace. Re-recording a version with the same backup time keeps its verify state, boot test
 * and protected flag (idempotent); a different time means a different backup under that number: all reset.
 */
const UPSERT = `
INSERT INTO versions (guest_id, version, time, name, node, logical_bytes, zero_bytes, new_bytes, stored_bytes, chunk_count, downtime_ms, key_fingerprint)
VALUES (@guest_id, @version, @time, @name, @node, @logical_bytes, @zero_bytes, @new_bytes, @stored_bytes, @chunk_count, @downtime_ms, @key_fingerprint)
ON CONFLICT (guest_id, version) DO UPDATE SET
  name = excluded.name, node = excluded.node, logical_bytes = excluded.logical_bytes,
  zero_bytes = excluded.zero_bytes, new_bytes = excluded.new_bytes, stored_bytes = excluded.stored_bytes,
  chunk_count = excluded.chunk_count, downtime_ms = excluded.downtime_ms, key_fingerprint = excluded.key_fingerprint,
  verify_state  = CASE WHEN time = excluded.time THEN verify_state  ELSE 'unverified' END,
  verified_at   = CASE WHEN time = excluded.time THEN verified_at   ELSE NULL END,
  verify_detail = CASE WHEN time = excluded.time THEN verify_detail ELSE NULL END,
  protected     = CASE WHEN time = excluded.time THEN protected     ELSE 0 END,
  boot_ok       = CASE WHEN time = excluded.time THEN boot_ok       ELSE NULL END,
  boot_seconds  = CASE WHEN time = excluded.time THEN boot_seconds  ELSE NULL END,
  boot_signal   = CASE WHEN time = excluded.time THEN boot_signal   ELSE NULL END,
  boot_at       = CASE WHEN time = excluded.time THEN boot_at       ELSE NULL END,
  boot_detail   = CASE WHEN time = excluded.time THEN boot_detail   ELSE NULL END,
  time = excluded.time`;

const INSERT_DISK = `
INSERT INTO disks (guest_id, version, position, key, volume, format, size, sha256, zero_bytes, chunk_count, zero_chunks)
VALUES (@guest_id, @version, @position, @key, @volume, @format, @size, @sha256, @zero_bytes, @chunk_count, @zero_chunks)`;

export class VersionTable {
  private readonly s;

  constructor(private readonly db: Database.Database) {
    this.s = {
      upsert: db.prepare(UPSERT),
      dropDisks: db.prepare('DELETE FROM disks WHERE guest_id = ? AND version = ?'),
      insertDisk: db.prepare(INSERT_DISK),
      remove: db.prepare('DELETE FROM versions WHERE guest_id = ? AND version = ?'),
      clear: db.prepare('DELETE FROM versions'),
      keys: db.prepare<[], { guest_id: string; version: number }>(`SELECT guest_id, version FROM versions`),
      all: db.prepare<[], StoredVersionRow>(`SELECT * FROM versions ${ORDER}`),
      ofGuest: db.prepare<[string], StoredVersionRow>(`SELECT * FROM versions WHERE guest_id = ? ${ORDER}`),
      one: db.prepare<[string, number], StoredVersionRow>('SELECT * FROM versions WHERE guest_id = ? AND version = ?'),
      disksAll: db.prepare<[], DiskRow>('SELECT * FROM disks ORDER BY guest_id, version, position'),
      disksOfGuest: db.prepare<[string], DiskRow>('SELECT * FROM disks WHERE guest_id = ? ORDER BY version, position'),
      disksOne: db.prepare<[string, number], DiskRow>('SELECT * FROM disks WHERE guest_id = ? AND version = ? ORDER BY position'),
      latest: db.prepare<[string], { v: number | null }>('SELECT MAX(version) AS v FROM versions WHERE guest_id = ?'),
      verify: db.prepare('UPDATE versions SET verify_state = ?, verified_at = ?, verify_detail = ? WHERE guest_id = ? AND version = ?'),
      protect: db.prepare('UPDATE versions SET protected = ? WHERE guest_id = ? AND version = ?'),
      bootTest: db.prepare(
        'UPDATE versions SET boot_ok = ?, boot_seconds = ?, boot_signal = ?, boot_at = ?, boot_detail = ? WHERE guest_id = ? AND version = ?',
      ),
      totals: db.prepare<[], StoreTotals>(
        `SELECT COUNT(*) AS versions, COALESCE(SUM(logical_bytes), 0) AS logicalBytes,
                COALESCE(SUM(stored_bytes), 0) AS storedBytes FROM versions`,
      ),
    };
  }

  /** Runs `fn` in one write transaction (BEGIN IMMEDIATE: takes the write lock up front). */
  inTransaction<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  /** Inserts or replaces a version and its disks; `protectedFlag` undefined keeps the stored flag. */
  upsert(manifest: Manifest, protectedFlag?: boolean): void {
    this.inTransaction(() => {
      this.s.upsert.run(versionRow(manifest));
      this.s.dropDisks.run(manifest.guestId, manifest.version);
      for (const disk of diskRows(manifest)) this.s.insertDisk.run(disk);
      if (protectedFlag !== undefined) this.setProtected(manifest.guestId, manifest.version, protectedFlag);
    });
  }

  /** Deletes a version (its disks go by cascade); returns whether a row existed. */
  remove(guestId: string, version: number): boolean {
    return this.s.remove.run(guestId, version).changes > 0;
  }

  clear(): void {
    this.s.clear.run();
  }

  keys(): Set<string> {
    return new Set(this.s.keys.all().map((row) => versionKey(row.guest_id, row.version)));
  }

  list(guestId?: string): CatalogVersion[] {
    const rows = guestId === undefined ? this.s.all.all() : this.s.ofGuest.all(guestId);
    const disks = groupDisks(guestId === undefined ? this.s.disksAll.all() : this.s.disksOfGuest.all(guestId));
    return rows.map((row) => toVersion(row, disks.get(versionKey(row.guest_id, row.version)) ?? []));
  }

  get(guestId: string, version: number): CatalogVersion | undefined {
    const row = this.s.one.get(guestId, version);
    return row === undefined ? undefined : toVersion(row, this.s.disksOne.all(guestId, version));
  }

  latest(guestId: string): number | undefined {
    return this.s.latest.get(guestId)?.v ?? undefined;
  }

  /** Returns whether the version exists. */
  setVerify(guestId: string, version: number, state: VerifyState, at: string, detail: string | null): boolean {
    return this.s.verify.run(state, at, detail, guestId, version).changes > 0;
  }

  /** Returns whether the version exists. */
  setProtected(guestId: string, version: number, value: boolean): boolean {
    return this.s.protect.run(value ? 1 : 0, guestId, version).changes > 0;
  }

  /** Returns whether the version exists. */
  setBootTest(guestId: string, version: number, r: BootTestRecord): boolean {
    return this.s.bootTest.run(r.ok ? 1 : 0, r.seconds, r.signal, r.at, r.detail, guestId, version).changes > 0;
  }

  totals(): StoreTotals {
    return this.s.totals.get() ?? { versions: 0, logicalBytes: 0, storedBytes: 0 };
  }
}

function groupDisks(rows: DiskRow[]): Map<string, DiskRow[]> {
  const byVersion = new Map<string, DiskRow[]>();
  for (const row of rows) {
    const key = versionKey(row.guest_id, row.version);
    const list = byVersion.get(key) ?? [];
    list.push(row);
    byVersion.set(key, list);
  }
  return byVersion;
}
