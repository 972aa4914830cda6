/**
 * `coldvault export` (issue 15): a version's disks over NBD, read with REAL clients: qemu-img
 * (info, compare) and qemu-io through nbd+unix:// and nbd:// URIs, nbdinfo and nbdcopy (libnbd-bin),
 * and the tiny real QEMU guest booting from the export (snapshot=on). A raw disk holding the guest's
 * ext4 file system and a qcow2 disk (served as the file it is); an encrypted version with and without
 * its key; a corrupted chunk fails the read with an I/O error (never wrong data) and is reported;
 * the all-zero chunks are holes in base:allocation (nbdinfo --map, qemu-img map); writes are refused;
 * no QEMU process or socket is left behind.
 */
import { type ChildProcess, execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startExportProcess, type ExportProcess } from '../helpers/export-process.js';
import { cli, imagePath, makeLab, REGION, sha256File, writeGuest, writeImage, type Lab } from '../helpers/fixtures.js';
import { ensureTinyGuest, makeGuestDisk, readBootCount, type TinyGuest } from '../helpers/tiny-guest.js';
import { waitExit } from './cli-lab.js';

let lab: Lab;
let guest: TinyGuest;
const running = new Set<ChildProcess>();
const socketAt = (name: string): string => join(lab.root, `${name}.sock`);
const nbd = (socket: string, disk: string): string => `nbd+unix:///${disk}?socket=${socket}`;

async function ok(args: string[]): Promise<string> {
  const r = await cli(args);
  if (r.code !== 0) throw new Error(`coldvault ${args.join(' ')} exited ${r.code}:\n${r.stderr}`);
  return r.stdout;
}

/** An export that afterEach stops (SIGKILL) when a test left it running. */
async function startExport(args: string[], lines = 1): Promise<ExportProcess> {
  const ex = await startExportProcess(args, lines);
  running.add(ex.child);
  return {
    ...ex,
    stop: async () => {
      const code = await ex.stop();
      running.delete(ex.child);
      return code;
    },
  };
}

beforeAll(async () => {
  lab = makeLab('cv-export-');
  guest = await ensureTinyGuest();
  writeGuest(lab, '101', [
    { key: 'virtio0', file: 'vm-101-disk-0.raw' },
    { key: 'scsi1', file: 'vm-101-disk-1.qcow2', format: 'qcow2' },
  ]);
  await makeGuestDisk(imagePath(lab, '101', 'vm-101-disk-0.raw'), 24);
  const qcow = imagePath(lab, '101', 'vm-101-disk-1.qcow2');
  await execa('qemu-img', ['create', '-q', '-f', 'qcow2', qcow, '64M']);
  await execa('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0x5a 1M 3M', '-c', 'write -P 0xa5 40M 1M', qcow]);
  await ok(['datastore', 'init', lab.storeDir]);
  await ok(['backup', '101', ...lab.flags]);
  await ok(['key', 'create', join(lab.root, 'k.key'), '--kdf', 'none']);
  await ok(['backup', '101', ...lab.flags, '--encrypt', join(lab.root, 'k.key')]);
}, 600_000);

afterEach(async () => {
  for (const child of running) {
    child.kill('SIGKILL');
    await waitExit(child);
  }
  running.clear();
});

afterAll(() => lab?.cleanup());

describe('coldvault export (NBD, read-only)', () => {
  it('nbdinfo lists the disks by key with their sizes; qemu-img compare finds the raw and the qcow2 disk identical; nbdcopy copies byte for byte', async () => {
    const sock = socketAt('a');
    const ex = await startExport(['101', '--version', '1', '--store', lab.storeDir, '--socket', sock], 2);
    const listed = JSON.parse((await execa('nbdinfo', ['--list', '--json', `nbd+unix:///?socket=${sock}`])).stdout) as {
      exports: Array<{ 'export-name': string; 'export-size': number; is_read_only: boolean }>;
    };
    const sizes = Object.fromEntries(listed.exports.map((e) => [e['export-name'], e['export-size']]));
    expect(sizes).toEqual({
      virtio0: readFileSync(imagePath(lab, '101', 'vm-101-disk-0.raw')).length,
      scsi1: readFileSync(imagePath(lab, '101', 'vm-101-disk-1.qcow2')).length,
    });
    expect(listed.exports.every((e) => e.is_read_only)).toBe(true);
    const raw = await execa('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', nbd(sock, 'virtio0'), imagePath(lab, '101', 'vm-101-disk-0.raw')]);
    expect(raw.stdout).toContain('Images are identical');
    const qcow = await execa('qemu-img', ['compare', '-f', 'qcow2', '-F', 'qcow2', nbd(sock, 'scsi1'), imagePath(lab, '101', 'vm-101-disk-1.qcow2')]);
    expect(qcow.stdout).toContain('Images are identical');
    expect((await execa('qemu-img', ['info', '--output=json', nbd(sock, 'scsi1')])).stdout).toContain('"format": "qcow2"');
    const copy = join(lab.root, 'copy.raw');
    await execa('nbdcopy', [nbd(sock, 'virtio0'), copy]);
    expect(sha256File(copy)).toBe(sha256File(imagePath(lab, '101', 'vm-101-disk-0.raw')));
    const write = await execa('qemu-io', ['-f', 'raw', '-c', 'write 0 512', nbd(sock, 'virtio0')], { reject: false });
    expect(write.exitCode !== 0 || /read-only|Operation not permitted/i.test(write.stderr + write.stdout)).toBe(true);
    expect(await ex.stop()).toBe(0);
    expect(existsSync(sock)).toBe(false);
  });

  it('--disk and --listen: one disk on a loopback TCP port; a non-loopback address and a file in the way are refused', async () => {
    const ex = await startExport(['101', '--version', '1', '--store', lab.storeDir, '--disk', 'virtio0', '--listen', '127.0.0.1:0', '--json']);
    const { exports } = JSON.parse(ex.stdout()) as { exports: Array<{ name: string; uri: string }> };
    expect(exports[0]?.uri).toMatch(/^nbd:\/\/127\.0\.0\.1:\d+\/virtio0$/);
    expect(exports.map((e) => e.name)).toEqual(['virtio0']);
    const same = await execa('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', exports[0]?.uri ?? '', imagePath(lab, '101', 'vm-101-disk-0.raw')]);
    expect(same.stdout).toContain('Images are identical');
    await ex.stop();
    const wide = await cli(['export', '101', '--version', '1', '--store', lab.storeDir, '--listen', '0.0.0.0:10809']);
    expect(wide.stderr).toMatch(/no authentication; listen on a loopback address/);
    writeFileSync(join(lab.root, 'not-a-socket'), 'x');
    const inTheWay = await cli(['export', '101', '--version', '1', '--store', lab.storeDir, '--socket', join(lab.root, 'not-a-socket')]);
    expect(inTheWay.stderr).toMatch(/exists and is not a socket/);
    const noDisk = await cli(['export', '101', '--version', '1', '--store', lab.storeDir, '--disk', 'ide9', '--socket', socketAt('x')]);
    expect(noDisk.stderr).toMatch(/has no disk ide9 \(it has (virtio0, scsi1|scsi1, virtio0)\)/);
  });

  it('the tiny guest boots from the export (snapshot=on) and prints its boot line; the store and the disk are untouched', async () => {
    const sock = socketAt('boot');
    const ex = await startExport(['101', '--version', '1', '--store', lab.storeDir, '--socket', sock, '--disk', 'virtio0']);
    const serial = join(lab.root, 'boot.log');
    const qemu = execa('qemu-system-x86_64', [
      ...['-accel', 'tcg', '-nodefaults', '-display', 'none', '-m', '256', '-no-reboot'],
      ...['-kernel', guest.kernel, '-initrd', guest.initrd, '-append', 'console=ttyS0 panic=-1 quiet'],
      ...['-serial', `file:${serial}`, '-drive', `file=nbd:unix:${sock}:exportname=virtio0,format=raw,if=virtio,snapshot=on`],
    ]);
    try {
      const deadline = Date.now() + 90_000;
      while (!/coldvault-tiny-guest: boot 1 marker/.test(existsSync(serial) ? readFileSync(serial, 'utf8') : '')) {
        if (Date.now() > deadline || qemu.exitCode !== null) throw new Error(`no boot line:\n${existsSync(serial) ? readFileSync(serial, 'utf8') : ''}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    } finally {
      qemu.kill('SIGKILL');
      await qemu.catch(() => undefined);
    }
    expect(await ex.stop()).toBe(0);
    expect(await readBootCount(imagePath(lab, '101', 'vm-101-disk-0.raw'))).toBe(0); // its writes went to QEMU's temporary overlay
    expect((await cli(['verify', '--store', lab.storeDir])).code).toBe(0);
  }, 180_000);

  it('an encrypted version: refused without its key, naming the fingerprint; served with it', async () => {
    const noKey = await cli(['export', '101', '--version', '2', '--store', lab.storeDir, '--socket', socketAt('e')]);
    expect(noKey.code).not.toBe(0);
    expect(noKey.stderr).toMatch(/KEY_REQUIRED|encrypted with key/);
    const sock = socketAt('k');
    const ex = await startExport(['101', '--version', '2', '--store', lab.storeDir, '--socket', sock, '--keyfile', join(lab.root, 'k.key')], 2);
    const same = await execa('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', nbd(sock, 'virtio0'), imagePath(lab, '101', 'vm-101-disk-0.raw')]);
    expect(same.stdout).toContain('Images are identical');
    expect(await ex.stop()).toBe(0);
  });

  it('base:allocation: nbdinfo --map and qemu-img map see the all-zero chunks as holes that read as zeros; nbdcopy copies byte for byte', async () => {
    writeGuest(lab, '103', [{ key: 'virtio0', file: 'vm-103-disk-0.raw' }]);
    const layout = ['random', 'zero', 'zero', 'text', 'zero', 'random', 'zero', 'zero'] as const;
    writeImage(imagePath(lab, '103', 'vm-103-disk-0.raw'), [...layout], 7);
    await ok(['backup', '103', ...lab.flags]);
    const sock = socketAt('m');
    const ex = await startExport(['103', '--version', '1', '--store', lab.storeDir, '--socket', sock]);
    // the runs of the layout: data, hole, data, hole, data, hole (each run of zero regions one hole)
    const runs: Array<{ offset: number; length: number; type: number }> = [];
    layout.forEach((kind, i) => {
      const type = kind === 'zero' ? 3 : 0; // 3: hole + zero
      const last = runs.at(-1);
      if (last && last.type === type) last.length += REGION;
      else runs.push({ offset: i * REGION, length: REGION, type });
    });
    const map = JSON.parse((await execa('nbdinfo', ['--map', '--json', nbd(sock, 'virtio0')])).stdout) as Array<{
      offset: number;
      length: number;
      type: number;
    }>;
    expect(map.map(({ offset, length, type }) => ({ offset, length, type }))).toEqual(runs);
    const qmap = JSON.parse((await execa('qemu-img', ['map', '--output=json', '-f', 'raw', nbd(sock, 'virtio0')])).stdout) as Array<{
      start: number;
      zero: boolean;
    }>;
    expect(qmap.filter((e) => e.zero).map((e) => e.start)).toEqual(runs.filter((r) => r.type === 3).map((r) => r.offset));
    const out = join(lab.root, 'map-copy.raw');
    await execa('nbdcopy', [nbd(sock, 'virtio0'), out]);
    expect(sha256File(out)).toBe(sha256File(imagePath(lab, '103', 'vm-103-disk-0.raw')));
    expect(await ex.stop()).toBe(0);
  });

  it('a corrupted chunk: the read fails with an I/O error (never wrong data), the export names the chunk and exits 1', async () => {
    const store = join(lab.root, 'damaged-store');
    execFileSync('cp', ['-a', lab.storeDir, store]);
    // a chunk of version 1's virtio0 (its index: a 64-byte header, then one 32-byte digest per chunk; zero: a hole)
    const manifest = JSON.parse(readFileSync(join(store, 'guests', '101', '1', 'manifest.json'), 'utf8')) as { disks: Array<{ key: string; index: string }> };
    const index = readFileSync(join(store, 'guests', '101', '1', manifest.disks.find((d) => d.key === 'virtio0')?.index ?? ''));
    let hex = '';
    for (let at = 64; at < index.length && !hex; at += 32) if (index.subarray(at, at + 32).some((b) => b !== 0)) hex = index.toString('hex', at, at + 32);
    const victim = join(store, 'chunks', hex.slice(0, 4), hex);
    const bytes = readFileSync(victim);
    bytes[bytes.length - 1] = (bytes.at(-1) ?? 0) ^ 0xff;
    writeFileSync(victim, bytes);
    const sock = socketAt('d');
    const ex = await startExport(['101', '--version', '1', '--store', store, '--socket', sock], 2);
    const outs = await Promise.all(
      ['virtio0', 'scsi1'].map((disk) =>
        execa('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', nbd(sock, disk), join(lab.root, `${disk}.out`)], { reject: false }),
      ),
    );
    const failed = outs.filter((o) => o.exitCode !== 0);
    expect(failed).toHaveLength(1);
    expect(failed[0]?.stderr).toMatch(/Input\/output error/);
    expect(await ex.stop()).toBe(1);
    expect(ex.out()).toContain(`chunk ${victim.split('/').pop()} is damaged`);
  });

  it('leaves no QEMU process and no socket behind', async () => {
    const qemus = (await execa('pgrep', ['-af', 'qemu-system'], { reject: false })).stdout.split('\n');
    expect(qemus.filter((l) => l.includes(lab.root))).toEqual([]);
    expect(readdirSync(lab.root).filter((n) => n.endsWith('.sock'))).toEqual([]);
  });
});
