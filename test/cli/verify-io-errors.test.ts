/**
 * Verify tells damage from trouble (issue 10, item 7), with REAL I/O errors: the datastore is on a
 * loop device (ext4, as root, as CI runs) whose size limit is cut while it is mounted, as a flaky USB
 * cable or a pulled disk does, so that reads of some chunks fail with EIO from the kernel.
 *
 * The cut must hit chunks, and only chunks: ext4 allocates big files roughly one after the other, so
 * the test moves the chunks of guest 102 to the end of what is allocated (it rewrites them, same
 * bytes), after a 16 MiB filler it then deletes (the free room any later small allocation, e.g. the
 * catalog's journal, takes). Then it reads the layout (filefrag, debugfs for the journal) and cuts
 * just below the highest of those chunks: every other file, folder and the journal lie below the cut.
 * A chunk of guest 101 is damaged by hand in the same run.
 *
 * Verify must then leave every unreadable chunk in place and report them unreadable, the version as
 * not fully checked (`incomplete`, not `failed`), exit 1 saying it is trouble with the disk or its
 * connection; the damaged chunk is still quarantined. Once the device is back (and the damaged chunk
 * healed by the next backup), verify is clean and nothing was lost.
 */
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, imagePath, makeLab, sha256File, writeGuest, writeImage, type Lab } from '../helpers/fixtures.js';
import { Loops, sh, type Loop } from '../jobs/helpers-devices.js';
import { backup, indexDigests, initStore, ok, restoreArgs, storeFlag } from './cli-lab.js';

interface VerifyJson {
  ok: boolean;
  versions: Array<{ guestId: string; version: number; state: string; ok: boolean }>;
  badChunks: Array<{ digest: string; trouble: string; versions: string[]; quarantined?: string }>;
  unreadableChunks: Array<{ digest: string; trouble: string; error: string; versions: string[] }>;
}

/** Physical extents of a file or folder, in bytes: [start, end). */
function extents(path: string): Array<[number, number]> {
  const out = sh('filefrag', ['-v', path]);
  const block = Number(/blocks? of (\d+) bytes/.exec(out)?.[1] ?? 4096);
  return [...out.matchAll(/^\s*\d+:\s+\d+\.\.\s*\d+:\s+(\d+)\.\.\s*(\d+):/gm)].map((m) => [Number(m[1]) * block, (Number(m[2]) + 1) * block]);
}

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    return e.isDirectory() ? [path, ...walk(path)] : [path];
  });
}

/** Rewrites a file with the same bytes: its data moves to where the filesystem allocates next. */
function rewrite(path: string): void {
  const data = readFileSync(path);
  const temp = `${path}.move`;
  const fd = openSync(temp, 'w', 0o600);
  writeSync(fd, data);
  fsyncSync(fd);
  closeSync(fd);
  renameSync(temp, path);
}

function flipByte(path: string, fromEnd: number): void {
  const fd = openSync(path, 'r+');
  const at = statSync(path).size - fromEnd;
  const buf = Buffer.alloc(1);
  readSync(fd, buf, 0, 1, at);
  buf[0] = (buf[0] ?? 0) ^ 0x5a;
  writeSync(fd, buf, 0, 1, at);
  fsyncSync(fd);
  closeSync(fd);
}

describe('verify on a disk with I/O errors (loop device, ext4, size limit cut)', () => {
  let lab: Lab;
  let loops: Loops;
  let loop: Loop;
  /** the chunks only guest 102 uses: the ones the cut may hit */
  let candidates: string[];
  let damaged: string;
  let sha101: string;

  const chunkPath = (hex: string): string => join(lab.storeDir, 'chunks', hex.slice(0, 4), hex);

  beforeAll(async () => {
    lab = makeLab('cv-verify-io-');
    loops = new Loops(mkdtempSync(join(tmpdir(), 'cv-verify-io-loops-')));
    loop = loops.make('store', '128M', (dev) => sh('mkfs.ext4', ['-q', '-F', '-m', '0', '-b', '4096', dev]));
    mkdirSync(lab.storeDir);
    sh('mount', [loop.path, lab.storeDir]);
    writeGuest(lab, '101', [{ key: 'scsi0', file: 'vm-101-disk-0.raw' }]);
    writeGuest(lab, '102', [{ key: 'scsi0', file: 'vm-102-disk-0.raw' }]);
    writeImage(imagePath(lab, '101', 'vm-101-disk-0.raw'), ['random', 'text', 'random'], 71);
    writeImage(imagePath(lab, '102', 'vm-102-disk-0.raw'), ['random', 'random', 'text'], 72);
    sha101 = sha256File(imagePath(lab, '101', 'vm-101-disk-0.raw'));
    await initStore(lab);
    await backup(lab, '101');
    await backup(lab, '102');
    candidates = indexDigests(join(lab.storeDir, 'guests', '102', '1', 'scsi0.fidx'))
      .filter((d): d is string => d !== null)
      .sort();
    damaged = indexDigests(join(lab.storeDir, 'guests', '101', '1', 'scsi0.fidx'))[0]!;
    expect(candidates).toHaveLength(3);
    expect(candidates).not.toContain(damaged);
    // the filler, then guest 102's chunks at the end of what is allocated, then the filler freed
    const filler = join(lab.storeDir, 'filler');
    const fd = openSync(filler, 'w');
    for (let i = 0; i < 4; i++) writeSync(fd, Buffer.alloc(4 * 1024 * 1024, 1));
    fsyncSync(fd);
    closeSync(fd);
    for (const hex of candidates) rewrite(chunkPath(hex));
    rmSync(filler);
    flipByte(chunkPath(damaged), 100);
    sh('sync', []);
  });

  /**
   * Where to cut: below the highest extents of the disk, as long as they are guest 102's chunks. The
   * victims are the chunks with data above the cut; every other file, folder and the journal lies
   * below it. Guest 102's chunks are moved to the end again (at most 3 times) until one is on top.
   */
  function arrangeCut(): { cut: number; victims: string[] } {
    const paths = new Map(candidates.map((hex) => [chunkPath(hex), hex]));
    for (let attempt = 0; attempt < 3; attempt++) {
      const journal = sh('debugfs', ['-R', 'blocks <8>', loop.path])
        .split(/\s+/)
        .filter(Boolean)
        .map((b) => ({ p: 'journal', s: Number(b) * 4096, e: (Number(b) + 1) * 4096 }));
      const all = [...journal, ...walk(lab.storeDir).flatMap((p) => extents(p).map(([s, e]) => ({ p, s, e })))].sort((a, b) => b.s - a.s);
      let cut = Infinity;
      for (const x of all) {
        if (!paths.has(x.p)) break;
        cut = x.s;
      }
      const victims = [...new Set(all.filter((x) => x.s >= cut).map((x) => paths.get(x.p)!))].sort();
      expect(all.filter((x) => x.s < cut && x.e > cut)).toEqual([]);
      if (victims.length > 0) return { cut, victims };
      for (const hex of candidates) rewrite(chunkPath(hex));
      sh('sync', []);
    }
    throw new Error("guest 102's chunks never came to lie at the end of the disk");
  }

  afterAll(async () => {
    await loops?.cleanup([lab.storeDir]);
    lab?.cleanup();
  });

  it('leaves unreadable chunks in place and reports them as trouble, not damage; a damaged chunk is still quarantined', async () => {
    const { cut, victims } = arrangeCut();
    loops.setLimit(loop, cut); // reads beyond `cut` now fail: EIO from the kernel
    const r = await cli(['verify', '--json', ...storeFlag(lab)]);
    const list = await cli(['list', '--json', ...storeFlag(lab)]);
    loops.setLimit(loop, 0); // the device is back
    for (const hex of victims) expect(existsSync(chunkPath(hex)), `chunk ${hex} left in place`).toBe(true);
    expect(readdirSync(join(lab.storeDir, 'quarantine'))).toEqual([expect.stringMatching(new RegExp(`^${damaged}\\.`))]);
    expect(existsSync(chunkPath(damaged))).toBe(false);
    expect(r.code, r.stderr).toBe(1);
    const result = JSON.parse(r.stdout) as VerifyJson;
    expect(result.unreadableChunks.map((c) => c.digest)).toEqual(victims);
    for (const c of result.unreadableChunks) {
      expect(c).toMatchObject({ trouble: 'unreadable', versions: ['102/1'] });
      expect(c.error).toMatch(/EIO|ENXIO|ENODEV|ENOMEM/);
    }
    expect(result.badChunks).toMatchObject([{ digest: damaged, trouble: 'damaged', versions: ['101/1'] }]);
    expect(result.badChunks[0]?.quarantined).toBeTruthy();
    expect(result.versions.map((v) => [`${v.guestId}/${v.version}`, v.state])).toEqual([
      ['101/1', 'failed'],
      ['102/1', 'incomplete'],
    ]);
    expect(r.stderr).toMatch(/verify INCOMPLETE: \d chunk\(s\) could not be read .*trouble with the disk or its connection.*not damage/);
    expect(r.stderr).toMatch(new RegExp(`chunk ${damaged} is damaged .*moved to quarantine`));
    expect(list.code, list.stderr).toBe(0);
    const listed = JSON.parse(list.stdout) as Array<{ id: string; verifyState: string }>;
    expect(listed.map((v) => [v.id, v.verifyState])).toEqual([
      ['101', 'failed'],
      ['102', 'incomplete'],
    ]);
  });

  it('once the device is back and the damaged chunk healed, verify is clean and nothing was lost', async () => {
    await backup(lab, '101'); // writes the quarantined chunk afresh
    const r = await cli(['verify', '--json', ...storeFlag(lab)]);
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout) as VerifyJson;
    expect(result).toMatchObject({ ok: true, badChunks: [], unreadableChunks: [] });
    expect(result.versions.map((v) => v.state)).toEqual(['ok', 'ok', 'ok']);
    await ok(restoreArgs(lab, '101', 1, '201'));
    expect(sha256File(imagePath(lab, '201', 'vm-201-disk-0.raw'))).toBe(sha101);
    const list = JSON.parse((await ok(['list', '--json', ...storeFlag(lab)])).stdout) as Array<{ verifyState: string }>;
    expect(list.map((v) => v.verifyState)).toEqual(['ok', 'ok', 'ok']);
  });
});
