/**
 * Encrypted versions through the built CLI (issue 13): `backup --encrypt KEYFILE`, `restore`,
 * `verify` and `list` with `--keyfile`, on real files. What an admin relies on:
 * - raw and qcow2 disks come back byte-identical, and the restored config is the guest's;
 * - one key dedups across versions (the store grows by the changed chunk only); two keys, and
 *   encrypted and plain versions, never share a chunk;
 * - the wrong key, a wrong passphrase, a missing key file: exit 1, a message naming what is wrong
 *   (both fingerprints for the wrong key), nothing written; no key: restore refused naming the key,
 *   verify checks what it can and says the content was not checked;
 * - a paper key typed back, and a changed passphrase, still open the old versions;
 * - a 64-byte marker written in the guest's disk appears in no file of the encrypted store (and in
 *   the plain control store it does, so the scan can find it);
 * - gc needs no key and keeps every chunk the encrypted versions use.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, imagePath, makeLab, REGION, regionBytes, rewriteRegion, writeGuest, writeImage, type Lab } from '../helpers/fixtures.js';
import { ageChunks, chunkBytes, chunkDigestOf, filesUnder, indexDigests, initStore, ok, okJson, restoreArgs, sha256, volumePath } from './cli-lab.js';

let lab: Lab;
const PW = 'correct horse battery staple';
const noPassphrase = { COLDVAULT_KEY_PASSPHRASE: '' };
const at = (name: string): string => join(lab.root, name);
const raw = (): string => imagePath(lab, '101', 'vm-101-disk-0.raw');
const qcow = (): string => imagePath(lab, '101', 'vm-101-disk-1.qcow2');
/** 64 bytes no image region holds by chance */
const MARKER = Buffer.from('coldvault-issue-13-marker:' + 'b5e1f0c2d9a84e3f7a6b'.repeat(2)).subarray(0, 64);

const fingerprintOf = async (file: string): Promise<string> => (await okJson<{ fingerprint: string }>(['key', 'show', file])).fingerprint;
const encBackup = (key: string, env: Record<string, string> = noPassphrase) =>
  cli(['backup', '101', ...lab.flags, '--snapshot', 'off', '--encrypt', key, '--json'], { env });
const versionDigests = (v: number): string[] =>
  ['scsi0', 'scsi1'].flatMap((d) => indexDigests(join(lab.storeDir, 'guests', '101', String(v), `${d}.fidx`)).filter((x): x is string => x !== null));
const manifestOf = (v: number): { encryption?: { fingerprint: string }; config: string } =>
  JSON.parse(readFileSync(join(lab.storeDir, 'guests', '101', String(v), 'manifest.json'), 'utf8')) as { encryption?: { fingerprint: string }; config: string };

let fpA: string;
let fpB: string;

beforeAll(async () => {
  lab = makeLab('cv-encrypted-');
  writeGuest(lab, '101', [
    { key: 'scsi0', file: 'vm-101-disk-0.raw' },
    { key: 'scsi1', file: 'vm-101-disk-1.qcow2', format: 'qcow2' },
  ]);
  writeImage(raw(), ['random', 'text', 'zero', 'random', 'text'], 1301, 12345);
  const withMarker = regionBytes('random', 1302);
  MARKER.copy(withMarker, 1000);
  const image = readFileSync(raw());
  withMarker.copy(image, 0);
  writeFileSync(raw(), image); // the marker in the first (random, so stored uncompressed when plain) region
  const src = at('q.raw');
  writeImage(src, ['text', 'random', 'zero', 'zero', 'text'], 1303);
  execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', src, qcow()]);
  await initStore(lab);
  await ok(['key', 'create', at('a.key'), '--kdf', 'none']);
  const b = await cli(['key', 'create', at('b.key')], { env: { COLDVAULT_KEY_PASSPHRASE: PW } });
  expect(b.code, b.stderr).toBe(0);
  fpA = await fingerprintOf(at('a.key'));
  fpB = await fingerprintOf(at('b.key'));
});
afterAll(() => lab?.cleanup());

describe('encrypted backup and restore', () => {
  it('round trips raw and qcow2 disks byte-identical; the config is sealed in the store and restored in the clear', async () => {
    const r = await encBackup(at('a.key'));
    expect(r.code, r.stderr).toBe(0);
    expect(manifestOf(1).encryption?.fingerprint).toBe(fpA);
    expect(manifestOf(1).config).not.toContain('memory');
    expect(readFileSync(join(lab.storeDir, 'guests', '101', '1', 'qemu-server.conf'), 'utf8')).not.toContain('memory');
    const restored = await ok([...restoreArgs(lab, '101', 1, '201'), '--keyfile', at('a.key')]);
    expect(restored.stderr).toContain(`encrypted with key ${fpA}`);
    expect(sha256(volumePath(lab, 'local:201/vm-201-disk-0.raw'))).toBe(sha256(raw()));
    expect(sha256(volumePath(lab, 'local:201/vm-201-disk-1.qcow2'))).toBe(sha256(qcow()));
    execFileSync('qemu-img', ['check', volumePath(lab, 'local:201/vm-201-disk-1.qcow2')]);
    const config = readFileSync(join(lab.guestsDir, '201.conf'), 'utf8');
    expect(config).toContain('memory: 256');
    expect(config).toContain('scsi0: local:201/vm-201-disk-0.raw');
  });

  it('dedups across versions of one key: the store grows by the changed chunk only', async () => {
    const before = chunkBytes(lab.storeDir);
    rewriteRegion(raw(), 3, 'random', 1399);
    const r = await encBackup(at('a.key'));
    expect(r.code, r.stderr).toBe(0);
    const grown = chunkBytes(lab.storeDir) - before;
    expect(grown).toBeGreaterThan(REGION); // the changed region, sealed
    expect(grown).toBeLessThan(REGION + 4096);
    const shared = versionDigests(1).filter((d) => versionDigests(2).includes(d));
    expect(shared.length).toBe(new Set(versionDigests(1)).size - 1);
  });

  it('two keys never share a chunk, nor do encrypted and plain versions; plain names are SHA-256, encrypted ones are not', async () => {
    const b = await encBackup(at('b.key'), { COLDVAULT_KEY_PASSPHRASE: PW });
    expect(b.code, b.stderr).toBe(0);
    const plain = await cli(['backup', '101', ...lab.flags, '--snapshot', 'off', '--json']);
    expect(plain.code, plain.stderr).toBe(0);
    const [a2, b3, p4] = [new Set(versionDigests(2)), new Set(versionDigests(3)), new Set(versionDigests(4))];
    expect(b3.size).toBe(a2.size);
    for (const d of b3) expect(a2.has(d)).toBe(false);
    for (const d of p4) expect(a2.has(d) || b3.has(d)).toBe(false);
    expect(versionDigests(4)[0]).toBe(chunkDigestOf(raw(), 0));
    expect(versionDigests(2)[0]).not.toBe(chunkDigestOf(raw(), 0));
    const listed = await okJson<Array<{ version: number; encrypted: boolean; keyFingerprint: string | null }>>(['list', '101', '--store', lab.storeDir]);
    expect(listed.map((v) => [v.version, v.keyFingerprint])).toEqual([
      [1, fpA],
      [2, fpA],
      [3, fpB],
      [4, null],
    ]);
  });

  it('the wrong key, a wrong passphrase, a missing key file: exit 1, a clear message, nothing written', async () => {
    const nothingFor = (id: string): void => {
      expect(existsSync(join(lab.guestsDir, `${id}.conf`))).toBe(false);
      expect(existsSync(join(lab.storageDir, 'images', id)) ? readdirSync(join(lab.storageDir, 'images', id)) : []).toEqual([]);
    };
    const wrong = await cli([...restoreArgs(lab, '101', 3, '202'), '--keyfile', at('a.key')]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain(`version 3 of guest 101 is encrypted with key ${fpB}, but the key given is ${fpA}`);
    nothingFor('202');
    const badPass = await cli([...restoreArgs(lab, '101', 3, '202'), '--keyfile', at('b.key')], { env: { COLDVAULT_KEY_PASSPHRASE: 'wrong' } });
    expect(badPass.code).toBe(1);
    expect(badPass.stderr).toContain(`the passphrase does not open key file '${at('b.key')}'`);
    nothingFor('202');
    const missing = await cli([...restoreArgs(lab, '101', 3, '202'), '--keyfile', at('nope.key')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`cannot read key file '${at('nope.key')}'`);
    nothingFor('202');
    const backupMissing = await encBackup(at('nope.key'));
    expect(backupMissing.code).toBe(1);
    expect(JSON.parse(readFileSync(join(lab.storeDir, 'coldvault-datastore.json'), 'utf8'))).toBeTruthy();
    expect(readdirSync(join(lab.storeDir, 'guests', '101')).filter((n) => /^\d+$/.test(n))).toEqual(['1', '2', '3', '4']);
  });

  it('without the key: restore is refused naming the key; verify checks what it can, says so, and exits 0', async () => {
    const refused = await cli(restoreArgs(lab, '101', 2, '203'));
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`version 2 of guest 101 is encrypted with key ${fpA}: give its key file (--keyfile FILE)`);
    expect(existsSync(join(lab.guestsDir, '203.conf'))).toBe(false);
    const verified = await cli(['verify', '--store', lab.storeDir]);
    expect(verified.code, verified.stderr).toBe(0);
    expect(verified.stdout).toContain('3 encrypted version(s) checked without their key');
    expect(verified.stdout).toContain('their content was not checked');
    const withA = await cli(['verify', '--store', lab.storeDir, '--keyfile', at('a.key')]);
    expect(withA.code, withA.stderr).toBe(0);
    expect(withA.stdout).toContain(`1 encrypted version(s) checked without their key (${fpB})`);
  });

  it('list --keyfile shows the config of the versions of that key, and says why for the others', async () => {
    const listed = await okJson<Array<{ version: number; config: string }>>(['list', '101', '--store', lab.storeDir, '--keyfile', at('a.key')]);
    expect(listed[1]?.config).toContain('memory: 256');
    expect(listed[2]?.config).toContain(`encrypted with key ${fpB}, but the key given is ${fpA}`);
    expect(listed[3]?.config).toContain('memory: 256');
    const text = await ok(['list', '101', '--store', lab.storeDir]);
    expect(text.stdout).toContain(`encrypted (key ${fpA})`);
    expect(text.stdout).not.toContain('memory');
  });

  it('a paper key typed back and a changed passphrase still open the old versions', async () => {
    const paper = await cli(['key', 'paperkey', at('b.key')], { env: { COLDVAULT_KEY_PASSPHRASE: PW } });
    expect(paper.code, paper.stderr).toBe(0);
    writeFileSync(at('paper.txt'), paper.stdout);
    const imported = await cli(['key', 'import', at('paper.txt'), at('b2.key')], { env: { COLDVAULT_KEY_NEW_PASSPHRASE: 'another one' } });
    expect(imported.code, imported.stderr).toBe(0);
    const r1 = await cli([...restoreArgs(lab, '101', 3, '204'), '--keyfile', at('b2.key')], { env: { COLDVAULT_KEY_PASSPHRASE: 'another one' } });
    expect(r1.code, r1.stderr).toBe(0);
    expect(sha256(volumePath(lab, 'local:204/vm-204-disk-1.qcow2'))).toBe(sha256(qcow()));
    const changed = await cli(['key', 'change-passphrase', at('b.key')], { env: { COLDVAULT_KEY_PASSPHRASE: PW, COLDVAULT_KEY_NEW_PASSPHRASE: 'third' } });
    expect(changed.code, changed.stderr).toBe(0);
    const r2 = await cli([...restoreArgs(lab, '101', 3, '205'), '--keyfile', at('b.key')], { env: { COLDVAULT_KEY_PASSPHRASE: 'third' } });
    expect(r2.code, r2.stderr).toBe(0);
  });

  it('a marker written in the guest disk is in no file of the encrypted store; the plain control store holds it', async () => {
    const control = makeLab('cv-encrypted-control-');
    try {
      await initStore(control);
      await ok(['backup', '101', '--store', control.storeDir, '--guests-dir', lab.guestsDir, '--storage', `local=${lab.storageDir}`, '--snapshot', 'off']);
      const holds = (dir: string): string[] => filesUnder(dir).filter((f) => statSync(join(dir, f)).isFile() && readFileSync(join(dir, f)).includes(MARKER));
      expect(holds(control.storeDir).length).toBeGreaterThan(0);
      const encrypted = makeLab('cv-encrypted-scan-');
      try {
        await initStore(encrypted);
        const r = await cli([
          'backup',
          '101',
          '--store',
          encrypted.storeDir,
          '--guests-dir',
          lab.guestsDir,
          '--storage',
          `local=${lab.storageDir}`,
          '--snapshot',
          'off',
          '--encrypt',
          at('a.key'),
        ]);
        expect(r.code, r.stderr).toBe(0);
        expect(holds(encrypted.storeDir)).toEqual([]);
        expect(holds(lab.storeDir).length).toBeGreaterThan(0); // the plain version 4 lives there too
      } finally {
        encrypted.cleanup();
      }
    } finally {
      control.cleanup();
    }
  });

  it('damage found without the key is quarantined, and the next encrypted backup heals it', async () => {
    const hex = versionDigests(2)[0] as string;
    const file = join(lab.storeDir, 'chunks', hex.slice(0, 4), hex);
    const bytes = readFileSync(file);
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 0x40;
    writeFileSync(file, bytes);
    const found = await cli(['verify', '101', '--version', '2', '--store', lab.storeDir]);
    expect(found.code).toBe(1);
    expect(found.stderr).toContain(`chunk ${hex} is damaged`);
    expect(found.stderr).toContain('CRC mismatch');
    expect(existsSync(file)).toBe(false);
    const healed = await encBackup(at('a.key'));
    expect(healed.code, healed.stderr).toBe(0);
    const again = await cli(['verify', '101', '--version', '2', '--store', lab.storeDir, '--keyfile', at('a.key')]);
    expect(again.code, again.stdout + again.stderr).toBe(0);
  });

  it('gc needs no key and keeps every chunk of the encrypted versions', async () => {
    ageChunks(lab.storeDir);
    const gc = await cli(['gc', '--store', lab.storeDir]);
    expect(gc.code, gc.stderr).toBe(0);
    const verified = await cli(['verify', '--store', lab.storeDir, '--keyfile', at('a.key'), '--json']);
    expect(verified.code, verified.stderr).toBe(0);
    expect((JSON.parse(verified.stdout) as { ok: boolean; badChunks: unknown[] }).badChunks).toEqual([]);
  });
});
