/**
 * Lock objects of an S3 datastore (src/datastore/s3/s3-locks.ts) on a REAL Ceph radosgw: one holder at
 * a time, also when many race for the lock at once; writers shared among themselves and exclusive
 * with gc; a dead holder of this host and a stale one of another host ignored, a fresh one of another
 * host named in the refusal; a holder that lost its lock while held up refuses to act; a durable hold
 * (whileFile) counts while its file exists, however old, and not after.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isColdvaultError } from '../../src/core/errors.js';
import { S3Locks } from '../../src/datastore/index.js';
import { S3Client } from '../../src/targets/index.js';
import { freshBucket, startRadosgw, type Radosgw } from '../helpers/radosgw.js';

let rgw: Radosgw;
let client: S3Client;

beforeAll(async () => {
  rgw = await startRadosgw();
  client = new S3Client({
    endpoint: rgw.endpoint,
    region: rgw.region,
    bucket: freshBucket('locks'),
    credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey },
  });
  await client.createBucket(rgw.region, false);
}, 600_000);

afterAll(() => {
  client?.close();
  rgw?.stop();
});

const guestLock = (purpose: string, waitMs = 0) => ({ name: 'guest-101', excludedBy: [], purpose, waitMs });

async function planted(prefix: string, name: string, body: object): Promise<string> {
  const key = `${prefix}locks/${name}/planted-${Math.random().toString(36).slice(2)}.json`;
  await client.put(key, Buffer.from(JSON.stringify(body)));
  return key;
}

describe('S3 lock objects', () => {
  it('one holder at a time; the refusal names the holder; after release the next one gets it', async () => {
    const locks = new S3Locks(client, 'a/');
    const first = await locks.acquire(guestLock('backup of guest 101'));
    const err = await locks.acquire(guestLock('prune of guest 101')).catch((e: unknown) => e);
    expect(isColdvaultError(err, 'LOCKED')).toBe(true);
    expect(String(err)).toMatch(new RegExp(`prune of guest 101: held by backup of guest 101 on .* \\(pid ${process.pid}\\)`));
    await first.release();
    const second = await locks.acquire(guestLock('prune of guest 101'));
    await second.release();
    expect(await locks.fresh('guest-101', new Date())).toEqual([]);
  });

  it('of many that race for the lock at once, never two hold it', async () => {
    const locks = new S3Locks(client, 'race/');
    for (let round = 0; round < 8; round++) {
      const tries = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => locks.acquire(guestLock(`racer ${i}`))));
      const held = tries.filter((t) => t.status === 'fulfilled');
      expect(held.length).toBeLessThanOrEqual(1);
      for (const t of tries) if (t.status === 'rejected') expect(isColdvaultError(t.reason, 'LOCKED')).toBe(true);
      for (const t of held) await t.value.release();
    }
  });

  it('writers share their registration; gc is refused while one is fresh, and a writer while gc holds', async () => {
    const locks = new S3Locks(client, 'w/');
    const writer = (purpose: string) => ({ name: 'writers', shared: true, excludedBy: ['gc'], purpose, waitMs: 0 });
    const gc = { name: 'gc', excludedBy: ['writers'], purpose: 'gc', waitMs: 0 };
    const a = await locks.acquire(writer('backup of guest 1'));
    const b = await locks.acquire(writer('backup of guest 2'));
    await expect(locks.acquire(gc)).rejects.toMatchObject({ code: 'LOCKED' });
    await a.release();
    await b.release();
    const held = await locks.acquire(gc);
    const refused = await locks.acquire(writer('backup of guest 3')).catch((e: unknown) => e);
    expect(String(refused)).toMatch(/held by gc/);
    await held.release();
  });

  it('waits for a holder that releases within lockWaitMs', async () => {
    const locks = new S3Locks(client, 'wait/');
    const first = await locks.acquire(guestLock('first'));
    setTimeout(() => void first.release(), 1500);
    const second = await locks.acquire(guestLock('second', 20_000));
    await second.release();
  });

  it('ignores a dead process of this host at once, and a silent holder of another host only once it is stale', async () => {
    const locks = new S3Locks(client, 'dead/', { staleMs: 4000 });
    const { thisHost, thisBoot } = await import('../../src/datastore/index.js');
    await planted('dead/', 'guest-101', { purpose: 'backup killed -9', host: thisHost, boot: thisBoot, pid: 2 ** 22 + 17, created: new Date().toISOString() });
    const mine = await locks.acquire(guestLock('after a crash'));
    await mine.release();
    await planted('dead/', 'guest-101', { purpose: 'backup on pve2', host: 'pve2', pid: 4242, created: new Date().toISOString() });
    const refused = await locks.acquire(guestLock('here')).catch((e: unknown) => e);
    expect(String(refused)).toMatch(/held by backup on pve2 on pve2 \(pid 4242\)/);
    await new Promise((r) => setTimeout(r, 5500));
    const later = await locks.acquire(guestLock('here, an hour later'));
    await later.release();
  });

  it("a durable hold (a live restore's) outlives its process and any staleness while its file exists, then is dead; a later process ends it", async () => {
    const locks = new S3Locks(client, 'hold/', { staleMs: 3000 });
    const { thisHost, thisBoot } = await import('../../src/datastore/index.js');
    const journal = join(mkdtempSync(join(tmpdir(), 'cv-hold-')), '202.json');
    writeFileSync(journal, '{}');
    // as a process killed -9 left it: its pid gone, never refreshed
    const key = await planted('hold/', 'read-101-1', {
      purpose: 'live restore to 202',
      host: thisHost,
      boot: thisBoot,
      pid: 2 ** 22 + 17,
      created: new Date().toISOString(),
      whileFile: journal,
    });
    await new Promise((r) => setTimeout(r, 4000)); // older than staleMs
    expect(await locks.fresh('read-101-1', await client.serverTime())).toEqual([key]);
    expect(await locks.describe(key)).toContain(`while '${journal}' exists there`);
    rmSync(journal);
    expect(await locks.fresh('read-101-1', await client.serverTime())).toEqual([]);
    writeFileSync(journal, '{}');
    await locks.drop(key);
    expect(await locks.fresh('read-101-1', await client.serverTime())).toEqual([]);
    const outside = await locks.drop('other/locks/x.json').catch((e: unknown) => e);
    expect(isColdvaultError(outside, 'USAGE')).toBe(true);
  });

  it('a holder whose lock went to another meanwhile refuses to act (actWithin)', async () => {
    // the other holder must stay fresh through the holder's confirm looks (about 3 s; a loaded CI lane more)
    const locks = new S3Locks(client, 'lost/', { staleMs: 60_000 });
    const frozen = await locks.acquire(guestLock('frozen backup'));
    await client.delete(frozen.key); // as if it had gone stale and been cleared while the process was stopped
    const other = await locks.acquire(guestLock('the next backup'));
    let acted = false;
    const err = await frozen
      .actWithin(async () => {
        acted = true;
      })
      .catch((e: unknown) => e);
    expect(acted).toBe(false);
    expect(isColdvaultError(err, 'LOCKED')).toBe(true);
    expect(String(err)).toMatch(/lock was lost .*held by the next backup/);
    await other.release();
    await frozen.release();
  });
});
