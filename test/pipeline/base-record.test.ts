/**
 * Base records (src/pipeline/base-record.ts): written durably and private (0600) next to the base
 * snapshot; read back only when every field is as written and the snapshot is still the very file
 * the record was written for. Anything else is a reason, never a throw: the backup then reads
 * everything. Real files in /tmp.
 */
import { appendFileSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readBaseRecord, sourceIdentity, writeBaseRecord, type NewBaseRecord } from '../../src/pipeline/base-record.js';

let dir: string;
let snapshot: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cv-base-record-'));
  snapshot = join(dir, 'scsi0.base-3f0c9a57-1c2e-4d4f-9a0b-0123456789ab');
  writeFileSync(snapshot, 'the disk at shutdown');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function newRecord(): Promise<NewBaseRecord> {
  return {
    datastoreId: '3f0c9a57-1c2e-4d4f-9a0b-0123456789ab',
    guestId: '101',
    disk: 'scsi0',
    version: 4,
    index: 'scsi0.fidx',
    source: await sourceIdentity(snapshot),
    snapshotPath: snapshot,
    created: '2026-11-27T22:00:00.000Z',
    lastFullRead: '2026-11-25T22:00:00.000Z',
  };
}

describe('base records', () => {
  it('are written 0600 and read back as written', async () => {
    const written = await writeBaseRecord(await newRecord());
    expect(statSync(`${snapshot}.base.json`).mode & 0o777).toBe(0o600);
    expect(await readBaseRecord(snapshot)).toEqual({ record: written });
    expect(written.snapshot.ino).toBe(String(statSync(snapshot, { bigint: true }).ino));
  });

  it('answer a reason for a record that is missing, not JSON, incomplete, with unknown fields or about another file', async () => {
    expect((await readBaseRecord(snapshot)).reason).toMatch(/^the base snapshot has no record \('.*\.base\.json' is missing\)$/);
    const path = `${snapshot}.base.json`;
    writeFileSync(path, '{');
    expect((await readBaseRecord(snapshot)).reason).toMatch(/is damaged: not JSON$/);
    const good = JSON.parse(JSON.stringify(await writeBaseRecord(await newRecord()))) as Record<string, unknown>;
    const damaged = async (value: unknown): Promise<string | undefined> => {
      writeFileSync(path, JSON.stringify(value));
      return (await readBaseRecord(snapshot)).reason;
    };
    expect(await damaged({ ...good, index: '../x.fidx' })).toMatch(/is damaged: index must be an index file name$/);
    expect(await damaged({ ...good, version: undefined })).toMatch(/is damaged: version is missing; version must be a version number$/);
    expect(await damaged({ ...good, extra: 1 })).toMatch(/is damaged: extra is not a field of a base record$/);
    expect(await damaged({ ...good, source: { dev: '1', ino: 'x', size: 1 } })).toMatch(/is damaged: source\.ino is not valid$/);
    expect(await damaged({ ...good, snapshotPath: '/elsewhere' })).toMatch(/is damaged: it names the snapshot '\/elsewhere'/);
  });

  it('answer a reason when the snapshot was replaced by another file, written to, or is gone', async () => {
    await writeBaseRecord(await newRecord());
    appendFileSync(snapshot, '!');
    expect((await readBaseRecord(snapshot)).reason).toMatch(/was written to since it was recorded$/);
    await writeBaseRecord(await newRecord());
    writeFileSync(`${snapshot}.other`, 'the disk at shutdown');
    renameSync(`${snapshot}.other`, snapshot);
    expect((await readBaseRecord(snapshot)).reason).toMatch(/^the base snapshot '.*' was replaced \(inode \d+, recorded \d+\)$/);
    expect(readFileSync(`${snapshot}.base.json`, 'utf8')).toContain('"snapshotPath"');
    rmSync(snapshot);
    expect((await readBaseRecord(snapshot)).reason).toMatch(/cannot be read \(ENOENT\)$/);
  });
});
