/**
 * An S3 datastore through the API (issue 14): a REAL Ceph radosgw (one for the file) behind a
 * configured datastore `offsite`. The store routes treat it as they treat a folder: status lists it
 * (its address and endpoint, never its credentials), a job made through the API backs up into it by
 * name and runs, the versions list (by name or by its s3:// address), verify finds a chunk object
 * overwritten through the S3 API, prune rotates, restore brings the disk back byte for byte, the
 * metrics count it, and a token scoped to it sees it alone. A bucket the config does not name is
 * refused, as is an external device with it. No mock S3 server.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imagePath, rewriteRegion, sha256File } from '../helpers/fixtures.js';
import { freshBucket, startRadosgw, type Radosgw } from '../helpers/radosgw.js';
import { S3Datastore, type S3StoreSettings } from '../../dist/datastore/index.js';
import { S3Client } from '../../dist/targets/index.js';
import { errorCode, makeServerLab, waitTask, type ServerLab } from './helpers-server.js';

let rgw: Radosgw;
let lab: ServerLab;
let settings: S3StoreSettings;
let s3: S3Client;
let url: string;

async function runTask(res: { statusCode: number; body: string; json(): { taskId: string } }): Promise<{ status: string; result?: unknown }> {
  expect(res.statusCode, res.body).toBe(202);
  return waitTask(lab, res.json().taskId, 120_000) as Promise<{ status: string; result?: unknown }>;
}

async function taskLog(taskId: string): Promise<string> {
  const log = (await lab.api('GET', `/api/v1/tasks/${taskId}/log`)).json() as Array<{ message: string }>;
  return log.map((l) => l.message).join('\n');
}

const versions = async (store: string): Promise<number[]> => {
  const res = await lab.api('GET', `/api/v1/backups?store=${encodeURIComponent(store)}&guest=101`);
  expect(res.statusCode, res.body).toBe(200);
  return (res.json() as Array<{ version: number }>).map((v) => v.version);
};

beforeAll(async () => {
  rgw = await startRadosgw();
  const bucket = freshBucket('api');
  settings = {
    endpoint: rgw.endpoint,
    region: rgw.region,
    bucket,
    prefix: 'pve1/',
    pathStyle: true,
    credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey },
  };
  (await S3Datastore.init(settings)).close();
  url = `s3://${bucket}/pve1/`;
  s3 = new S3Client({ endpoint: rgw.endpoint, region: rgw.region, bucket, credentials: settings.credentials });
  lab = await makeServerLab({
    config: { s3Stores: (name) => (name === 'offsite' ? settings : undefined), s3StoreUrls: { offsite: url } },
  });
}, 600_000);

afterAll(async () => {
  await lab?.close();
  s3?.close();
  rgw?.stop();
});

describe('an S3 datastore in the API', () => {
  it('status lists it beside the folders: address, endpoint, totals; never its credentials', async () => {
    const res = await lab.api('GET', '/api/v1/status');
    expect(res.statusCode).toBe(200);
    const offsite = res.json().datastores.find((d: { name: string }) => d.name === 'offsite');
    expect(offsite).toMatchObject({ name: 'offsite', dir: url, kind: 's3', endpoint: rgw.endpoint, versions: 0 });
    expect(offsite.error).toBeUndefined();
    expect(res.body).not.toContain(rgw.secretAccessKey);
    expect(res.body).not.toContain(rgw.accessKeyId);
  });

  it('a job made through the API backs up into it by name (given by its address), and runs', async () => {
    const refused = await lab.api('POST', '/api/v1/jobs', { id: 'usb', store: 'offsite', vmid: ['101'], days: ['mon'], at: '22:30', device: '/dev/sdz1' });
    expect([refused.statusCode, errorCode(refused)]).toEqual([400, 'INVALID_REQUEST']);
    expect(refused.json().error.message).toMatch(/'offsite' is an S3 datastore: device does not go with it/);
    const created = await lab.api('POST', '/api/v1/jobs', { id: 'offsite-nightly', store: url, vmid: ['101'], days: ['mon'], at: '22:30', keep: 5 });
    expect(created.statusCode, created.body).toBe(201);
    expect(created.json().store).toBe('offsite');
    const done = await runTask(await lab.api('POST', '/api/v1/jobs/offsite-nightly/run'));
    expect(done.status).toBe('ok');
    expect(await versions('offsite')).toEqual([1]);
    expect(await versions(url)).toEqual([1]);
    const all = (await lab.api('GET', '/api/v1/backups')).json() as Array<{ store: string; version: number }>;
    expect(all.filter((v) => v.store === url).map((v) => v.version)).toEqual([1]);
    const onFolder = await lab.api('POST', '/api/v1/jobs', { id: 'locked', store: 'main', vmid: ['101'], days: ['mon'], at: '22:30', objectLockDays: 30 });
    expect([onFolder.statusCode, errorCode(onFolder)]).toEqual([400, 'INVALID_REQUEST']);
    expect(onFolder.json().error.message).toMatch(/objectLockDays goes with an S3 datastore/);
    const locked = await lab.api('POST', '/api/v1/jobs', { id: 'locked', store: 'offsite', vmid: ['101'], days: ['mon'], at: '22:30', objectLockDays: 30 });
    expect(locked.statusCode, locked.body).toBe(201);
    expect(locked.json().objectLockDays).toBe(30);
    expect((await lab.api('DELETE', '/api/v1/jobs/locked')).statusCode).toBe(204);
    const jobs = (await lab.api('GET', '/api/v1/status')).json().datastores.map((d: { name: string }) => d.name);
    expect(jobs).not.toContain('job:offsite-nightly'); // the job's store is the configured bucket, not a folder of its own
  });

  it('restore from it brings the disk back byte for byte under the new id', async () => {
    const res = await lab.api('POST', '/api/v1/restore', { fromPath: 'offsite', id: '101', version: 1, newId: '201' });
    const done = await runTask(res);
    expect(done.status, await taskLog(res.json().taskId)).toBe('ok');
    expect(sha256File(imagePath(lab, '201', 'vm-201-disk-0.raw'))).toBe(sha256File(imagePath(lab, '101', 'vm-101-disk-0.raw')));
    const withDevice = await lab.api('POST', '/api/v1/restore', { fromPath: 'offsite', fromDevice: '/dev/sdz1', id: '101', version: 1, newId: '202' });
    expect([withDevice.statusCode, errorCode(withDevice)]).toEqual([400, 'INVALID_REQUEST']);
  });

  it('verify reads it: ok, then a chunk object overwritten through the S3 API fails it, naming the chunk', async () => {
    expect((await runTask(await lab.api('POST', '/api/v1/verify', { store: 'offsite' }))).status).toBe('ok');
    const chunks: string[] = [];
    for await (const o of s3.list('pve1/chunks/')) chunks.push(o.key);
    const victim = chunks[0] as string;
    const original = await s3.get(victim);
    const damaged = Buffer.from(original);
    damaged.writeUInt8((damaged.at(-1) ?? 0) ^ 0xff, damaged.length - 1);
    await s3.put(victim, damaged);
    const res = await lab.api('POST', '/api/v1/verify', { store: 'offsite' });
    expect((await runTask(res)).status).toBe('failed');
    expect(await taskLog(res.json().taskId)).toContain(`chunk ${victim.split('/').pop()} is damaged`);
    // the next backup heals it (verify marked it): the version verifies again
    expect((await runTask(await lab.api('POST', '/api/v1/jobs/offsite-nightly/run'))).status).toBe('ok');
    expect((await runTask(await lab.api('POST', '/api/v1/verify', { store: 'offsite' }))).status).toBe('ok');
  });

  it('prune rotates its versions; the metrics count what it holds', async () => {
    rewriteRegion(imagePath(lab, '101', 'vm-101-disk-0.raw'), 1, 'random', 5);
    expect((await runTask(await lab.api('POST', '/api/v1/jobs/offsite-nightly/run'))).status).toBe('ok');
    expect(await versions('offsite')).toEqual([1, 2, 3]);
    const pruned = await lab.api('POST', '/api/v1/prune', { store: 'offsite', guest: '101', keepLast: 1 });
    expect(pruned.statusCode, pruned.body).toBe(200);
    expect(pruned.json().removed).toEqual([1, 2]);
    expect(await versions('offsite')).toEqual([3]);
    const metrics = (await lab.api('GET', '/metrics')).body;
    expect(metrics).toMatch(/coldvault_backup_bytes_total\{guest="101",store="offsite"\} [1-9]/);
    expect(metrics).not.toMatch(/coldvault_datastore_free_bytes\{store="offsite"\}/);
  });

  it('a sync job made through the API pulls from it into a folder; its source is a configured datastore or refused', async () => {
    const base = { store: 'main', kind: 'sync', vmid: ['101'], days: ['mon'], at: '22:30' };
    const made = await lab.api('POST', '/api/v1/jobs', { ...base, id: 'to-main', from: url });
    expect(made.statusCode, made.body).toBe(201);
    expect(made.json().from).toBe('offsite'); // stored by name: the job names no endpoint or keys
    const done = await runTask(await lab.api('POST', '/api/v1/jobs/to-main/run'));
    expect(done.status).toBe('ok');
    expect(await versions('main')).toEqual(await versions('offsite'));
    const outside = await lab.api('POST', '/api/v1/jobs', { ...base, id: 'outside', from: '/etc' });
    expect([outside.statusCode, errorCode(outside)]).toEqual([400, 'PATH_NOT_ALLOWED']);
    const back = await lab.api('POST', '/api/v1/jobs', { ...base, id: 'back', store: 'offsite', from: 'main' });
    expect(back.statusCode, back.body).toBe(201);
    expect(back.json().from).toBe(lab.storeDir); // a configured folder: stored as its folder, as the CLI does
  });

  it('a token scoped to it lists its versions and no other store; a bucket the config does not name is refused', async () => {
    const { token } = lab.tokens.create('offsite-reader', { role: 'backup', store: 'offsite' });
    const as = { authorization: `Bearer ${token}` };
    const own = await lab.api('GET', '/api/v1/backups', undefined, as);
    expect(own.statusCode, own.body).toBe(200);
    expect(new Set((own.json() as Array<{ store: string }>).map((v) => v.store))).toEqual(new Set([url]));
    const byAddress = await lab.api('GET', `/api/v1/backups?store=${encodeURIComponent(url)}`, undefined, as);
    expect(byAddress.statusCode, byAddress.body).toBe(200);
    const other = await lab.api('GET', '/api/v1/backups?store=main', undefined, as);
    expect(other.statusCode).toBe(403);
    const foreign = await lab.api('GET', `/api/v1/backups?store=${encodeURIComponent(`s3://${settings.bucket}/elsewhere/`)}`);
    expect([foreign.statusCode, errorCode(foreign)]).toEqual([400, 'PATH_NOT_ALLOWED']);
    const job = await lab.api('POST', '/api/v1/jobs', { id: 'elsewhere', store: 's3://other-bucket/x', vmid: ['101'], days: ['mon'], at: '22:30' });
    expect([job.statusCode, errorCode(job)]).toEqual([400, 'PATH_NOT_ALLOWED']);
    expect(existsSync(join(lab.stateDir, 'catalogs'))).toBe(true); // its catalog: the state dir's cache
  });
});
