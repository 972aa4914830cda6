#!/usr/bin/env node
// The README's first command: a demo on an embedded default. Under ./demo it makes a guests dir with
// a demo guest (101, two generated disks: zero, random and log-like regions), a `local` storage and a
// datastore, then runs the real CLI: backup, list, verify, and a restore under a new ID, and compares
// the restored disks with the originals. Then it starts `coldvault serve` (web UI and API on
// http://127.0.0.1:8080, a job "demo" ready for "Start now"), until Ctrl-C; `--no-serve` skips that.
// Where QEMU is installed (and as root), the served demo also boots guest 102, the tiny real Linux
// guest, so "Start now" shuts it down over ACPI, backs it up and starts it again.
// Run it again: the next backup only stores what changed.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, writeSync, closeSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = resolve(process.env.COLDVAULT_DEMO_DIR ?? 'demo');
const cli = resolve(new URL('../bin/coldvault.js', import.meta.url).pathname);
const MiB = 1024 * 1024;
const config = join(root, 'coldvault.json');
const run = (...args) => {
  console.log(`\n$ coldvault ${args.join(' ')}`);
  execFileSync(process.execPath, [cli, ...args, '--config', config], { stdio: 'inherit' });
};

function textRegion(size, seed) {
  const lines = [];
  let n = 0;
  for (let i = 0; n < size; i++) {
    const line = `2026-11-27 10:${String(i % 60).padStart(2, '0')}:00 demo sshd[${(seed * 7919 + i) % 30000}]: session opened for user u${i % 50}\n`;
    lines.push(line);
    n += line.length;
  }
  return Buffer.from(lines.join('')).subarray(0, size);
}

function makeDisk(path, regions) {
  const fd = openSync(path, 'w');
  regions.forEach((kind, i) => {
    const data = kind === 'random' ? randomBytes(4 * MiB) : kind === 'text' ? textRegion(4 * MiB, i) : undefined;
    if (data) writeSync(fd, data, 0, data.length, i * 4 * MiB);
  });
  writeSync(fd, Buffer.alloc(1), 0, 1, regions.length * 4 * MiB - 1);
  closeSync(fd);
}

function setup() {
  const images = join(root, 'vz', 'images', '101');
  mkdirSync(images, { recursive: true });
  mkdirSync(join(root, 'guests'), { recursive: true });
  writeFileSync(
    config,
    JSON.stringify(
      {
        node: 'demo',
        stateDir: join(root, 'state'),
        guestsDir: join(root, 'guests'),
        storages: { local: join(root, 'vz') },
        datastores: { demo: join(root, 'store') },
        hypervisor: { driver: 'none' },
        listen: process.env.COLDVAULT_DEMO_LISTEN ?? '127.0.0.1:8080',
      },
      null,
      2,
    ),
  );
  if (!existsSync(join(images, 'vm-101-disk-0.raw'))) {
    makeDisk(join(images, 'vm-101-disk-0.raw'), [
      'text',
      'zero',
      'random',
      'zero',
      'text',
      'zero',
      'zero',
      'random',
      'text',
      'zero',
      'zero',
      'zero',
      'text',
      'zero',
      'random',
      'zero',
    ]);
    makeDisk(join(images, 'vm-101-disk-1.raw'), ['random', 'zero', 'zero', 'text']);
    writeFileSync(
      join(root, 'guests', '101.conf'),
      [
        '# demo guest made by scripts/demo.mjs',
        'boot: order=scsi0',
        'cores: 1',
        'ide2: none,media=cdrom',
        'memory: 512',
        'name: demo',
        'net0: virtio=BC:24:11:2C:69:EC,bridge=vmbr0',
        'scsi0: local:101/vm-101-disk-0.raw,size=64M',
        'scsi1: local:101/vm-101-disk-1.raw,size=16M',
        'scsihw: virtio-scsi-pci',
        'smbios1: uuid=b3247ab1-1fe6-428e-965b-08a1b64a8746',
        '',
      ].join('\n'),
    );
  } else {
    const fd = openSync(join(images, 'vm-101-disk-0.raw'), 'r+'); // a night of changes: one region rewritten
    writeSync(fd, randomBytes(4 * MiB), 0, 4 * MiB, 2 * 4 * MiB);
    closeSync(fd);
  }
  if (!existsSync(join(root, 'store'))) run('datastore', 'init', join(root, 'store'));
}

const sha = (path) => createHash('sha256').update(readFileSync(path)).digest('hex');

function freeId() {
  const taken = new Set(readdirSync(join(root, 'guests')).map((n) => n.replace(/\.conf$/, '')));
  let id = 201;
  while (taken.has(String(id))) id++;
  return String(id);
}

setup();
run('backup', '101', '--store', 'demo', '--keep', '3');
run('list', '--store', 'demo');
run('verify', '101', '--store', 'demo');
const versions = JSON.parse(execFileSync(process.execPath, [cli, 'list', '101', '--store', 'demo', '--json', '--config', config]).toString());
const latest = versions[versions.length - 1].version;
const newId = freeId();
run('restore', '101', '--version', String(latest), '--new-id', newId, '--store', 'demo', '--unique');
console.log(`\n$ cat ${join(root, 'guests', `${newId}.conf`)}\n${readFileSync(join(root, 'guests', `${newId}.conf`), 'utf8')}`);
for (const [from, to] of [
  ['vm-101-disk-0.raw', `vm-${newId}-disk-0.raw`],
  ['vm-101-disk-1.raw', `vm-${newId}-disk-1.raw`],
]) {
  const same = sha(join(root, 'vz', 'images', '101', from)) === sha(join(root, 'vz', 'images', newId, to));
  console.log(`${from} -> ${newId}/${to}: ${same ? 'identical' : 'DIFFERENT'}`);
  if (!same) process.exitCode = 1;
}
console.log(`\nAll demo files are under ${root}; run 'npm run demo' again for a second night (only the changed region is stored).`);
if (!process.argv.includes('--no-serve')) await serve();

/** The web UI and API on the demo's state, with a job ready for "Start now". */
async function serve() {
  const tiny = await tinyGuest();
  const quiet = (...args) => execFileSync(process.execPath, [cli, ...args, '--config', config], { stdio: 'pipe' });
  const jobs = JSON.parse(quiet('job', 'list', '--json').toString());
  if (!jobs.some((j) => j.id === 'demo')) {
    quiet(
      'job',
      'add',
      'demo',
      '--store',
      join(root, 'store'),
      '--vmid',
      '101',
      '--days',
      'mon,tue,wed,thu,fri',
      '--at',
      '22:00',
      '--keep',
      '3',
      '--stop-timeout',
      '60',
    );
  }
  if (tiny) quiet('job', 'edit', 'demo', '--vmid', '101,102');
  const passwordFile = join(root, 'admin-password');
  if (!existsSync(passwordFile)) writeFileSync(passwordFile, `${randomBytes(9).toString('base64url')}\n`, { mode: 0o600 });
  const password = readFileSync(passwordFile, 'utf8').trim();
  const url = `http://${JSON.parse(readFileSync(config, 'utf8')).listen}`;
  console.log(`\n$ coldvault serve\nOpen ${url} and log in with the password ${password} (kept in ${passwordFile}).`);
  console.log('Backup -> Jobs -> "Start now" backs up the demo guest; Restore brings it back under a new ID. Ctrl-C stops.');
  const child = spawn(process.execPath, [cli, 'serve', '--config', config], { stdio: 'inherit', env: { ...process.env, COLDVAULT_ADMIN_PASSWORD: password } });
  const stop = () => child.kill('SIGTERM');
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  child.on('exit', async (code) => {
    if (tiny) await tiny.stop();
    process.exit(code ?? 0);
  });
}

/**
 * Guest 102: the tiny real Linux guest (Debian's cloud kernel, a busybox initramfs; QEMU with TCG),
 * booted and waiting for the ACPI power button. Only where qemu-system-x86_64 exists and we are root
 * (building it downloads the kernel package with apt-get); otherwise the demo has guest 101 only.
 */
async function tinyGuest() {
  const hasQemu = spawnSync('sh', ['-c', 'command -v qemu-system-x86_64']).status === 0;
  if (!hasQemu || process.getuid?.() !== 0 || process.argv.includes('--no-qemu')) return undefined;
  const t = await import('../dist/cli/demo/tiny-guest.js');
  const dir = join(root, 'vz', 'images', '102');
  mkdirSync(dir, { recursive: true });
  console.log('\nbooting guest 102, the tiny real Linux guest (QEMU, TCG) ...');
  const guest = await t.ensureTinyGuest();
  const files = t.guestFiles(dir, '102');
  if (!existsSync(files.disk)) await t.makeGuestDisk(files.disk);
  const { script } = await t.startScript({ dir, guest });
  writeFileSync(
    join(root, 'guests', '102.conf'),
    ['# the tiny real guest of the demo', 'memory: 256', 'name: tiny', 'scsi0: local:102/102.raw,size=16M', ''].join('\n'),
  );
  const cfg = JSON.parse(readFileSync(config, 'utf8'));
  cfg.hypervisor = { driver: 'qemu', qmpSocket: join(root, 'vz', 'images', '{vmid}', '{vmid}.qmp'), startCommand: `${script} {vmid}` };
  writeFileSync(config, JSON.stringify(cfg, null, 2));
  await t.killGuest(dir, '102');
  rmSync(files.log, { force: true });
  execFileSync(script, ['102']);
  await t.waitForSerial(dir, '102', 'power button', 60_000);
  console.log('guest 102 is running and listens for the ACPI power button');
  return { stop: () => t.killGuest(dir, '102') };
}
