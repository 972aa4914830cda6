/**
 * A datastore in a bucket of a REAL Ceph radosgw (one for the file), through the real CLI: init,
 * backup, list, restore byte for byte, dedup counted in objects, verify finding an object overwritten
 * through the S3 API, kill -9 mid-backup leaving nothing visible, keep-N rotation, a lost catalog
 * cache rebuilt from the bucket, and the errors a user meets first. No mock S3 server.
 */
import { chmodSync, copyFileSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Client } from '../../src/targets/index.js';
import { cli, imagePath, makeLab, rewriteRegion, sha256File, spawnCli, writeGuest, writeImage, type Lab, type Region } from '../helpers/fixtures.js';
import { expectExportIdentical } from '../helpers/export-process.js';
import { freshBucket, startRadosgw, type Radosgw } from '../helpers/radosgw.js';
import { sleep, waitExit } from './cli-lab.js';

const REGIONS: Region[] = ['random', 'zero', 'text', 'random', 'zero', 'text', 'random', 'text'];

let rgw: Radosgw;
let lab: Lab;
let bucket: string;
let s3: S3Client;
let env: Record<string, string>;
/** a bucket made with Object Lock (30 days) by the --object-lock-days test */
let lockedBucket: string;

const url = (prefix = 'site-a'): string => `s3://${bucket}/${prefix}`;
const s3Flags = (prefix = 'site-a'): string[] => ['--store', url(prefix), '--endpoint', rgw.endpoint, '--state-dir', join(lab.root, 'state')];
const run = (args: string[], extraEnv: Record<string, string> = {}) => cli(args, { env: { ...env, ...extraEnv } });

async function ok(args: string[]): Promise<string> {
  const r = await run(args);
  if (r.code !== 0) throw new Error(`coldvault ${args.join(' ')} exited ${r.code}:\n${r.stderr}`);
  return r.stdout;
}

async function backup(extra: string[] = []): Promise<{ version: number; pruned: number[] }> {
  const [r] = JSON.parse(await ok(['backup', '101', ...s3Flags(), '--guests-dir', lab.guestsDir, '--storage', `local=${lab.storageDir}`, '--json', ...extra]));
  return r;
}

async function keys(prefix: string): Promise<string[]> {
  const found = [];
  for await (const o of s3.list(prefix)) found.push(o.key);
  return found;
}

beforeAll(async () => {
  rgw = await startRadosgw();
  lab = makeLab('cv-s3-');
  bucket = freshBucket('store');
  env = { AWS_ACCESS_KEY_ID: rgw.accessKeyId, AWS_SECRET_ACCESS_KEY: rgw.secretAccessKey };
  Object.assign(process.env, env); // spawnCli's children too
  s3 = new S3Client({
    endpoint: rgw.endpoint,
    region: rgw.region,
    bucket,
    credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey },
  });
  writeGuest(lab, '101', [{ key: 'scsi0', file: 'vm-101-disk-0.raw' }]);
  writeImage(imagePath(lab, '101', 'vm-101-disk-0.raw'), REGIONS, 7);
  await ok(['datastore', 'init', url(), '--endpoint', rgw.endpoint]);
}, 600_000);

afterAll(() => {
  s3?.close();
  rgw?.stop();
  lab?.cleanup();
});

describe('an s3:// datastore on radosgw', () => {
  it('init made the bucket and the identity; a second init, and one on a prefix that holds anything, are refused', async () => {
    expect(await keys('site-a/')).toEqual(['site-a/coldvault-datastore.json']);
    const again = await run(['datastore', 'init', url(), '--endpoint', rgw.endpoint]);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/already holds a coldvault datastore/);
    await s3.put('other/file.txt', Buffer.from('x'));
    const busy = await run(['datastore', 'init', url('other'), '--endpoint', rgw.endpoint]);
    expect(busy.code).not.toBe(0);
    expect(busy.stderr).toMatch(/not empty \(other\/file\.txt\)/);
  });

  it('backs up, lists and restores byte for byte; a nightly uploads only the changed chunk', async () => {
    const first = await backup();
    expect(first.version).toBe(1);
    const chunksAfterFirst = (await keys('site-a/chunks/')).length;
    expect(chunksAfterFirst).toBe(6); // 8 regions of one chunk each, 2 of them zero (not stored)
    rewriteRegion(imagePath(lab, '101', 'vm-101-disk-0.raw'), 3, 'random', 99);
    const second = await backup();
    expect(second.version).toBe(2);
    expect((await keys('site-a/chunks/')).length).toBe(chunksAfterFirst + 1);
    const listed = JSON.parse(await ok(['list', '101', ...s3Flags(), '--json']));
    expect(listed.map((v: { version: number }) => v.version)).toEqual([1, 2]);
    await ok(['restore', '101', '--version', '2', '--new-id', '201', ...s3Flags(), '--guests-dir', lab.guestsDir, '--storage', `local=${lab.storageDir}`]);
    expect(sha256File(imagePath(lab, '201', 'vm-201-disk-0.raw'))).toBe(sha256File(imagePath(lab, '101', 'vm-101-disk-0.raw')));
  });

  it('export serves a version from the bucket over NBD: qemu-img compare finds it identical to the disk', async () => {
    await expectExportIdentical(['101', '--version', '2', ...s3Flags()], join(lab.root, 's3-export.sock'), 'scsi0', imagePath(lab, '101', 'vm-101-disk-0.raw'));
  });

  it('verify finds a chunk object overwritten through the S3 API and one deleted there, names them, and the next backup heals both', async () => {
    expect((await run(['verify', ...s3Flags()])).code).toBe(0);
    const manifest = JSON.parse((await s3.get('site-a/guests/101/2/manifest.json')).toString());
    const index = await s3.get(`site-a/guests/101/2/${manifest.disks[0].index}`);
    const used = new Set<string>();
    for (let at = 64; at < index.length; at += 32) used.add(index.subarray(at, at + 32).toString('hex'));
    used.delete('0'.repeat(64));
    const [damagedHex, deletedHex] = [...used];
    const damagedKey = `site-a/chunks/${damagedHex?.slice(0, 4)}/${damagedHex}`;
    const original = await s3.get(damagedKey);
    const damaged = Buffer.from(original);
    damaged.writeUInt8((damaged.at(-1) ?? 0) ^ 0xff, damaged.length - 1);
    await s3.put(damagedKey, damaged);
    await s3.delete(`site-a/chunks/${deletedHex?.slice(0, 4)}/${deletedHex}`);
    const r = await run(['verify', ...s3Flags(), '--json']);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(damagedHex);
    expect(r.stdout).toContain(deletedHex);
    expect(r.stderr).toMatch(new RegExp(`chunk ${damagedHex} is damaged .*moved to quarantine`));
    const aside = await keys('site-a/quarantine/');
    expect(aside).toHaveLength(1);
    expect((await s3.get(aside[0] as string)).equals(damaged)).toBe(true); // the bad bytes kept for a look
    const healing = await backup();
    expect(healing.version).toBe(3);
    expect(await keys('site-a/heal/')).toEqual([]);
    expect((await s3.get(damagedKey)).equals(original)).toBe(true);
    expect((await run(['verify', ...s3Flags()])).code).toBe(0); // versions 1 and 2 are whole again
  });

  it("a clone's first backup uploads nothing its twin stored (this machine's chunk cache); after a gc the cache is not trusted", async () => {
    const chunksBefore = (await keys('site-a/chunks/')).length;
    for (const clone of ['102', '103']) {
      writeGuest(lab, clone, [{ key: 'scsi0', file: `vm-${clone}-disk-0.raw` }]);
      copyFileSync(imagePath(lab, '101', 'vm-101-disk-0.raw'), imagePath(lab, clone, `vm-${clone}-disk-0.raw`));
    }
    const twin = await run(['backup', '102', ...s3Flags(), '--guests-dir', lab.guestsDir, '--storage', `local=${lab.storageDir}`]);
    expect(twin.code, twin.stderr).toBe(0);
    expect(twin.stderr).toMatch(/\d+ more chunk\(s\) are known stored from this machine's chunk cache/);
    expect((await keys('site-a/chunks/')).length).toBe(chunksBefore); // not one chunk uploaded
    await ok(['gc', ...s3Flags()]);
    const afterGc = await run(['backup', '103', ...s3Flags(), '--guests-dir', lab.guestsDir, '--storage', `local=${lab.storageDir}`]);
    expect(afterGc.code, afterGc.stderr).toBe(0);
    expect(afterGc.stderr).toMatch(/chunk cache of the datastore was dropped: a garbage collection ran/);
    expect((await run(['verify', ...s3Flags()])).code).toBe(0);
  });

  it("kill -9 mid-backup: nothing visible; the next backup removes the dead run's files and succeeds", async () => {
    writeImage(imagePath(lab, '101', 'vm-101-disk-0.raw'), [...REGIONS, ...REGIONS, ...REGIONS, ...REGIONS], 8);
    const child = spawnCli(['backup', '101', ...s3Flags(), '--guests-dir', lab.guestsDir, '--storage', `local=${lab.storageDir}`]);
    for (let i = 0; i < 300 && (await keys('site-a/chunks/')).length < 9; i++) await sleep(20);
    child.kill('SIGKILL');
    await waitExit(child);
    const listed = JSON.parse(await ok(['list', '101', ...s3Flags(), '--json']));
    expect(listed.map((v: { version: number }) => v.version)).toEqual([1, 2, 3]);
    // what a run killed after its first index upload leaves: files of a version without its manifest
    await s3.put('site-a/guests/101/4/drive-scsi0.img.fidx', Buffer.from('half'));
    const next = await backup();
    expect(next.version).toBe(5); // 4 was handed to the killed run: numbers are never reused
    const versionFolders = new Set((await keys('site-a/guests/101/')).map((k) => k.split('/')[3]).filter((v) => /^\d+$/.test(v as string)));
    expect([...versionFolders].sort()).toEqual(['1', '2', '3', '5']);
  });

  it('--keep N rotates old versions out of the bucket (manifest and files)', async () => {
    const r = await backup(['--keep', '2']);
    expect(r.pruned.length).toBeGreaterThan(0);
    const listed = JSON.parse(await ok(['list', '101', ...s3Flags(), '--json']));
    expect(listed).toHaveLength(2);
    for (const v of r.pruned) expect(await keys(`site-a/guests/101/${v}/`)).toEqual([]);
  });

  it('a lost catalog cache is rebuilt from the bucket', async () => {
    const before = JSON.parse(await ok(['list', ...s3Flags(), '--json']));
    rmSync(join(lab.root, 'state', 'catalogs'), { recursive: true, force: true });
    const after = JSON.parse(await ok(['list', ...s3Flags(), '--json']));
    expect(after.map((v: { version: number }) => v.version)).toEqual(before.map((v: { version: number }) => v.version));
    expect(existsSync(join(lab.root, 'state', 'catalogs'))).toBe(true);
  });

  it('--object-lock-days: a new bucket is made with Object Lock; a bucket without it, or a folder, is refused', async () => {
    lockedBucket = freshBucket('locked');
    const made = JSON.parse(await ok(['datastore', 'init', `s3://${lockedBucket}/x`, '--endpoint', rgw.endpoint, '--object-lock-days', '30', '--json']));
    expect(made.objectLockDays).toBe(30);
    const probe = new S3Client({
      endpoint: rgw.endpoint,
      region: rgw.region,
      bucket: lockedBucket,
      credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey },
    });
    expect((await probe.lockConfiguration()).enabled).toBe(true);
    probe.close();
    const unlocked = await run(['datastore', 'init', url('locked-here'), '--endpoint', rgw.endpoint, '--object-lock-days', '30']);
    expect(unlocked.code).not.toBe(0);
    expect(unlocked.stderr).toMatch(new RegExp(`bucket ${bucket} was created without Object Lock.*use a new bucket`));
    expect(await keys('locked-here/')).toEqual([]);
    const folder = await run(['datastore', 'init', join(lab.root, 'folder-store'), '--object-lock-days', '30']);
    expect(folder.stderr).toMatch(/--object-lock-days goes with an s3:\/\/ datastore/);
    // a backup asking for Object Lock on a datastore made without it: refused before anything is uploaded
    const before = JSON.parse(await ok(['list', '101', ...s3Flags(), '--json'])).length;
    const unlockedBackup = await run([
      'backup',
      '101',
      ...s3Flags(),
      '--guests-dir',
      lab.guestsDir,
      '--storage',
      `local=${lab.storageDir}`,
      '--object-lock-days',
      '5',
    ]);
    expect(unlockedBackup.code).not.toBe(0);
    expect(unlockedBackup.stderr).toMatch(/was made without Object Lock: 5 day\(s\) of Object Lock need a datastore made with/);
    expect(JSON.parse(await ok(['list', '101', ...s3Flags(), '--json'])).length).toBe(before);
  });

  it('datastore undelete: versions hidden by a DELETE without a version id (any S3 tool) in an Object Lock bucket come back', async () => {
    const locked = ['--store', `s3://${lockedBucket}/x`, '--endpoint', rgw.endpoint, '--state-dir', join(lab.root, 'state')];
    const guestFlags = ['--guests-dir', lab.guestsDir, '--storage', `local=${lab.storageDir}`];
    const [made] = JSON.parse(await ok(['backup', '101', ...locked, ...guestFlags, '--json']));
    const probe = new S3Client({
      endpoint: rgw.endpoint,
      region: rgw.region,
      bucket: lockedBucket,
      credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey },
    });
    const [chunk] = (await (async () => {
      const found: string[] = [];
      for await (const o of probe.list('x/chunks/')) found.push(o.key);
      return found;
    })()) as string[];
    await probe.delete(`x/guests/101/${made.version}/manifest.json`); // no version id: a delete marker on top, the retained version stays
    await probe.delete(chunk as string);
    expect(JSON.parse(await ok(['list', '101', ...locked, '--json']))).toEqual([]);
    const dry = JSON.parse(await ok(['datastore', 'undelete', ...locked, '--dry-run', '--json']));
    expect(dry.keys.sort()).toEqual([chunk, `x/guests/101/${made.version}/manifest.json`].sort());
    expect(JSON.parse(await ok(['list', '101', ...locked, '--json']))).toEqual([]); // a dry run changes nothing
    const done = JSON.parse(await ok(['datastore', 'undelete', ...locked, '--json']));
    expect(done.keys).toHaveLength(2);
    expect(done.keys.some((k: string) => k.includes('/locks/'))).toBe(false); // released lock objects stay gone
    expect(JSON.parse(await ok(['list', '101', ...locked, '--json'])).map((v: { version: number }) => v.version)).toEqual([made.version]);
    await ok(['restore', '101', '--version', String(made.version), '--new-id', '203', ...locked, ...guestFlags]);
    expect(sha256File(imagePath(lab, '203', 'vm-203-disk-0.raw'))).toBe(sha256File(imagePath(lab, '101', 'vm-101-disk-0.raw')));
    probe.close();
  });

  it('names missing credentials, a wrong secret and a missing datastore', async () => {
    const none = await cli(['list', ...s3Flags()], { env: { AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '' } });
    expect(none.code).not.toBe(0);
    expect(none.stderr).toMatch(/AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/);
    const wrong = await run(['list', ...s3Flags()], { AWS_SECRET_ACCESS_KEY: 'z'.repeat(40) });
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toMatch(/secret access key is wrong/);
    expect(wrong.stderr).not.toContain('z'.repeat(40));
    const empty = await run(['list', ...s3Flags('nothing-here')]);
    expect(empty.code).not.toBe(0);
    expect(empty.stderr).toMatch(/is not a coldvault datastore; create one with 'coldvault datastore init s3:\/\//);
  });
  it('radosgw killed mid-backup (and started again): the backup fails, nothing is visible; the next one succeeds; gc removes the leftovers and nothing else', async () => {
    const before = JSON.parse(await ok(['list', '101', ...s3Flags(), '--json'])).map((v: { version: number }) => v.version);
    writeImage(
      imagePath(lab, '101', 'vm-101-disk-0.raw'),
      Array.from({ length: 24 }, () => 'random' as Region),
      31,
    );
    const chunksBefore = new Set(await keys('site-a/chunks/'));
    const child = spawnCli(['backup', '101', ...s3Flags(), '--guests-dir', lab.guestsDir, '--storage', `local=${lab.storageDir}`]);
    const exited = waitExit(child);
    for (let i = 0; i < 500 && (await keys('site-a/chunks/')).length < chunksBefore.size + 3; i++) await sleep(10);
    rgw.killGateway();
    const failed = await exited; // its requests are retried, then it gives up
    await rgw.restartGateway();
    expect(failed.code).not.toBe(0);
    expect(failed.stderr).toMatch(/did not answer/);
    const leftovers = (await keys('site-a/chunks/')).filter((k) => !chunksBefore.has(k));
    expect(leftovers.length).toBeGreaterThan(0);
    expect(JSON.parse(await ok(['list', '101', ...s3Flags(), '--json'])).map((v: { version: number }) => v.version)).toEqual(before);
    // the next night's disk is another one: the leftovers are nobody's
    writeImage(imagePath(lab, '101', 'vm-101-disk-0.raw'), REGIONS, 32);
    const next = await backup();
    expect(next.version).toBeGreaterThan(Math.max(...before));
    const referencedBefore = new Set(await keys('site-a/chunks/'));
    const gc = JSON.parse(await ok(['gc', ...s3Flags(), '--json']));
    const after = new Set(await keys('site-a/chunks/'));
    const removed = [...referencedBefore].filter((k) => !after.has(k));
    for (const k of leftovers) expect(after.has(k), `leftover ${k}`).toBe(false);
    expect(gc.removedChunks).toBe(removed.length);
    expect((await run(['verify', ...s3Flags()])).code).toBe(0); // every version still whole
    await ok([
      'restore',
      '101',
      '--version',
      String(next.version),
      '--new-id',
      '202',
      ...s3Flags(),
      '--guests-dir',
      lab.guestsDir,
      '--storage',
      `local=${lab.storageDir}`,
    ]);
    expect(sha256File(imagePath(lab, '202', 'vm-202-disk-0.raw'))).toBe(sha256File(imagePath(lab, '101', 'vm-101-disk-0.raw')));
  });
  it('a config file names an S3 datastore: its secret in a file only its owner may read; commands and jobs use it by name', async () => {
    const secret = join(lab.root, 's3-secret');
    writeFileSync(secret, `${rgw.secretAccessKey}\n`, { mode: 0o600 });
    const config = join(lab.root, 'coldvault-s3.json');
    const offsite = { type: 's3', endpoint: rgw.endpoint, bucket, prefix: 'by-name', accessKeyId: rgw.accessKeyId, secretAccessKeyFile: secret };
    writeFileSync(
      config,
      JSON.stringify({ stateDir: join(lab.root, 'state'), guestsDir: lab.guestsDir, storages: { local: lab.storageDir }, datastores: { offsite } }),
    );
    const noEnv = { AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '' };
    const init = await cli(['datastore', 'init', 'offsite', '--config', config], { env: noEnv });
    expect(init.code, init.stderr).toBe(0);
    expect(init.stdout).toContain(`s3://${bucket}/by-name/`);
    const made = await cli(['backup', '101', '--store', 'offsite', '--config', config, '--json'], { env: noEnv });
    expect(made.code, made.stderr).toBe(0);
    expect(await keys('by-name/guests/101/1/')).toContain('by-name/guests/101/1/manifest.json');
    const listed = await cli(['list', '--store', 'offsite', '--config', config, '--json'], { env: noEnv });
    expect(JSON.parse(listed.stdout).map((v: { version: number }) => v.version)).toEqual([1]);
    chmodSync(secret, 0o644);
    const open = await cli(['list', '--store', 'offsite', '--config', config], { env: noEnv });
    expect(open.code).not.toBe(0);
    expect(open.stderr).toMatch(/secretAccessKeyFile '.*s3-secret' may be read by others \(mode 644\): chmod 600 it/);
    chmodSync(secret, 0o600);
    // a job backs up into it by name, and rotates there
    writeFileSync(config, JSON.stringify({ ...JSON.parse(readFileSync(config, 'utf8')), hypervisor: { driver: 'none' } }));
    const add = await cli(['job', 'add', 'nightly', '--store', 'offsite', '--vmid', '101', '--keep', '1', '--config', config], { env: noEnv });
    expect(add.code, add.stderr).toBe(0);
    const withDisk = await cli(['job', 'add', 'usb', '--store', 'offsite', '--vmid', '101', '--device', 'LABEL=x', '--config', config], { env: noEnv });
    expect(withDisk.stderr).toMatch(/S3 datastore: --device .* does not go with it/);
    const jobRun = await cli(['job', 'run', 'nightly', '--config', config], { env: noEnv });
    expect(jobRun.code, jobRun.stdout + jobRun.stderr).toBe(0);
    expect(jobRun.stdout).toContain(`creating archive 's3://${bucket}/by-name/guests/101/2'`);
    const rotated = await cli(['list', '--store', 'offsite', '--config', config, '--json'], { env: noEnv });
    expect(JSON.parse(rotated.stdout).map((v: { version: number }) => v.version)).toEqual([2]);
    // a job's own Object Lock days: shown; refused on a folder; a run on a datastore made without Object Lock fails, naming why
    const lockedJob = await cli(['job', 'add', 'locked', '--store', 'offsite', '--vmid', '101', '--object-lock-days', '30', '--config', config], {
      env: noEnv,
    });
    expect(lockedJob.code, lockedJob.stderr).toBe(0);
    expect(lockedJob.stdout).toContain('immutable 30 day(s)');
    const onFolder = await cli(['job', 'add', 'on-folder', '--store', join(lab.root, 'f'), '--vmid', '101', '--object-lock-days', '3', '--config', config], {
      env: noEnv,
    });
    expect(onFolder.stderr).toMatch(/--object-lock-days goes with an S3 datastore of the config/);
    const lockedRun = await cli(['job', 'run', 'locked', '--config', config], { env: noEnv });
    expect(lockedRun.code).not.toBe(0);
    expect(lockedRun.stdout + lockedRun.stderr).toMatch(/was made without Object Lock: 30 day\(s\)/);
    const unlocked = await cli(['job', 'edit', 'locked', '--no-object-lock-days', '--config', config], { env: noEnv });
    expect(unlocked.stdout).not.toContain('immutable');
    writeFileSync(config, JSON.stringify({ datastores: { offsite: { ...offsite, bucket: 'Bad_Name' } } }));
    const bad = await cli(['list', '--store', 'offsite', '--config', config], { env: noEnv });
    expect(bad.stderr).toMatch(/'Bad_Name' is not a valid bucket name/);
  });
});
