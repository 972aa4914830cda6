/**
 * A tiny real Linux guest for hypervisor tests (DESIGN.md "A real guest for tests"): Debian's cloud
 * kernel and an initramfs of busybox-static plus the virtio/button/evdev modules, whose /init
 * (src/cli/demo/tiny-guest-init) mounts /dev/vda, increments /boots on it, writes the block /marker
 * (`boot N token T`, T random per boot), logs `coldvault-tiny-guest: boot N marker T` to the serial console and powers off on the ACPI power button
 * (unless the kernel command line has ignore_acpi=1). When QEMU gives it a guest agent channel
 * (virtio-serial port org.qemu.guest_agent.0) it answers each command there with `{"return": {}}`:
 * enough for a `guest-ping`, the one command the boot test's agent signal sends (a minimal agent, not qemu-ga).
 * Built once per recipe into /var/tmp/coldvault-tiny-guest/<hash>/ (built in a temp dir and renamed,
 * so parallel builders are safe). Needs: apt (with its lists updated), dpkg, busybox-static, cpio,
 * gzip, e2fsprogs, qemu-system-x86.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

export interface TinyGuest {
  kernel: string;
  initrd: string;
  /** the kernel package it came from, e.g. linux-image-6.1.0-56-cloud-amd64 */
  kernelPackage: string;
}

export interface GuestFiles {
  disk: string;
  qmp: string;
  log: string;
  pid: string;
}

const RECIPE_VERSION = '2';
const CACHE_ROOT = '/var/tmp/coldvault-tiny-guest';
const INIT_SCRIPT = fileURLToPath(new URL('./tiny-guest-init', import.meta.url)); // copied beside the compiled file by scripts/copy-ui.mjs
const MODULES = ['virtio_ring', 'virtio', 'virtio_pci_modern_dev', 'virtio_pci_legacy_dev', 'virtio_pci', 'virtio_blk', 'virtio_console', 'button', 'evdev'];

let building: Promise<TinyGuest> | undefined;

/** The kernel and initrd of the tiny guest, built on first use and cached. */
export function ensureTinyGuest(): Promise<TinyGuest> {
  building ??= buildOrReuse();
  return building;
}

async function buildOrReuse(): Promise<TinyGuest> {
  const kernelPackage = await cloudKernelPackage();
  const init = await readFile(INIT_SCRIPT);
  const key = createHash('sha256')
    .update(`${RECIPE_VERSION}\n${kernelPackage}\n${MODULES.join(',')}\n`)
    .update(init)
    .digest('hex')
    .slice(0, 16);
  const dir = join(CACHE_ROOT, key);
  const guest = { kernel: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.gz'), kernelPackage };
  if (existsSync(guest.initrd)) return guest;
  await mkdir(CACHE_ROOT, { recursive: true });
  const work = await mkdtemp(join(CACHE_ROOT, `.build-${key}-`));
  try {
    await build(work, kernelPackage);
    await rename(join(work, 'out'), dir).catch((err: unknown) => {
      if (!existsSync(guest.initrd)) throw err; // else another builder won the race
    });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return guest;
}

async function cloudKernelPackage(): Promise<string> {
  const { stdout } = await execa('apt-cache', ['depends', 'linux-image-cloud-amd64']);
  const name = /Depends:\s*(linux-image-\S+-cloud-amd64)/.exec(stdout)?.[1];
  if (!name) throw new Error(`apt-cache names no kernel for linux-image-cloud-amd64 (run apt-get update?): ${stdout}`);
  return name;
}

async function build(work: string, kernelPackage: string): Promise<void> {
  const [extracted, root, out] = ['x', 'root', 'out'].map((d) => join(work, d)) as [string, string, string];
  await mkdir(out);
  await execa('apt-get', ['download', '-q', kernelPackage], { cwd: work });
  const deb = (await readdir(work)).find((f) => f.endsWith('.deb'));
  if (!deb) throw new Error(`apt-get download ${kernelPackage} left no .deb`);
  await execa('dpkg', ['-x', join(work, deb), extracted]);
  const vmlinuz = (await readdir(join(extracted, 'boot'))).find((f) => f.startsWith('vmlinuz-'));
  if (!vmlinuz) throw new Error(`${kernelPackage} has no /boot/vmlinuz-*`);
  await copyFile(join(extracted, 'boot', vmlinuz), join(out, 'vmlinuz'));
  await makeRoot(root, join(extracted, 'lib/modules', vmlinuz.slice('vmlinuz-'.length)));
  await execa('sh', ['-c', 'find . | cpio -o -H newc -R 0:0 --quiet | gzip -9 > "$0"', join(out, 'initrd.gz')], { cwd: root });
}

async function makeRoot(root: string, moduleDir: string): Promise<void> {
  for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'proc', 'sys', 'dev', 'mnt', 'etc', 'lib/modules']) {
    await mkdir(join(root, d), { recursive: true });
  }
  await copyFile(await staticBusybox(), join(root, 'bin/busybox'));
  await copyFile(INIT_SCRIPT, join(root, 'init'));
  await chmod(join(root, 'bin/busybox'), 0o755);
  await symlink('busybox', join(root, 'bin/sh')); // the interpreter of /init; init installs the other applets
  await chmod(join(root, 'init'), 0o755);
  const order = await collectModules(moduleDir, join(root, 'lib/modules'));
  await writeFile(join(root, 'etc/modules'), `${order.map((m) => `${m}.ko`).join('\n')}\n`);
}

async function staticBusybox(): Promise<string> {
  const path = ['/bin/busybox', '/usr/bin/busybox'].find((p) => existsSync(p));
  if (!path) throw new Error('busybox not found: install busybox-static');
  const head = (await readFile(path)).subarray(0, 8192).toString('latin1');
  if (head.includes('/lib64/ld-linux')) throw new Error(`${path} is dynamically linked: install busybox-static`);
  return path;
}

/** Copies MODULES (plus ext4 if it is not built in) and their dependencies; returns them in load order. */
async function collectModules(moduleDir: string, target: string): Promise<string[]> {
  const files = new Map<string, string>();
  await walk(join(moduleDir, 'kernel'), (p) => {
    const m = /^(.+)\.ko(\.xz|\.zst)?$/.exec(basename(p));
    if (m?.[1]) files.set(m[1].replaceAll('-', '_'), p);
  });
  const builtin = await readFile(join(moduleDir, 'modules.builtin'), 'utf8');
  const wanted = builtin.includes('/ext4.ko') ? MODULES : [...MODULES, 'ext4'];
  const order: string[] = [];
  const visit = async (name: string): Promise<void> => {
    if (order.includes(name)) return;
    const source = files.get(name);
    if (!source) throw new Error(`kernel module ${name} not found under ${moduleDir}`);
    const copy = join(target, `${name}.ko`);
    await copyModule(source, copy);
    for (const dep of moduleDepends(await readFile(copy))) await visit(dep);
    if (!order.includes(name)) order.push(name);
  };
  for (const name of wanted) await visit(name);
  return order;
}

async function copyModule(source: string, target: string): Promise<void> {
  if (source.endsWith('.ko')) return copyFile(source, target);
  const tool = source.endsWith('.xz') ? 'xz' : 'zstd';
  await execa('sh', ['-c', `${tool} -dc "$0" > "$1"`, source, target]);
}

/** The `depends=` of a module's .modinfo section. */
function moduleDepends(ko: Buffer): string[] {
  const at = ko.indexOf('\0depends=');
  if (at < 0) return [];
  const end = ko.indexOf(0, at + 1);
  const value = ko.subarray(at + '\0depends='.length, end).toString('latin1');
  return value
    .split(',')
    .filter(Boolean)
    .map((d) => d.replaceAll('-', '_'));
}

async function walk(dir: string, onFile: (path: string) => void): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await walk(path, onFile);
    else onFile(path);
  }
}

/** A raw disk of sizeMiB with an empty ext4 file system. */
export async function makeGuestDisk(path: string, sizeMiB = 16): Promise<void> {
  await execa('truncate', ['-s', `${sizeMiB}M`, path]);
  await execa('mkfs.ext4', ['-F', '-q', path]);
}

/** The guest's boot counter, read from the disk without mounting it (0 before the first boot). */
export async function readBootCount(diskPath: string): Promise<number> {
  const { stdout } = await execa('debugfs', ['-R', 'cat /boots', diskPath], { reject: false });
  const n = Number.parseInt(stdout.trim(), 10);
  return Number.isNaN(n) ? 0 : n;
}

/** The marker block the guest wrote at its last boot (read without mounting); undefined before the first boot. */
export async function readMarker(diskPath: string): Promise<{ boot: number; token: string } | undefined> {
  const { stdout } = await execa('debugfs', ['-R', 'cat /marker', diskPath], { reject: false });
  const m = /^boot (\d+) token ([0-9a-f]+)$/m.exec(stdout);
  return m ? { boot: Number(m[1]), token: m[2] as string } : undefined;
}

/** The token the guest said on its console at boot `n` (`coldvault-tiny-guest: boot N marker T`). */
export function markerOnConsole(serialLog: string, n: number): string | undefined {
  return new RegExp(`coldvault-tiny-guest: boot ${n} marker ([0-9a-f]+)`).exec(serialLog)?.[1];
}

/** Where guest `vmid` of a startScript in `dir` keeps its disk, QMP socket, serial log and pidfile. */
export function guestFiles(dir: string, vmid: string): GuestFiles {
  return { disk: join(dir, `${vmid}.raw`), qmp: join(dir, `${vmid}.qmp`), log: join(dir, `${vmid}.log`), pid: join(dir, `${vmid}.pid`) };
}

export interface StartScriptOptions {
  /** where the script goes and the guests' files live (see guestFiles); keep it short (socket paths < 108 bytes) */
  dir: string;
  guest: TinyGuest;
  /** the guest ignores the ACPI power button */
  ignoreAcpi?: boolean;
  /** script file name, default start-guest.sh */
  name?: string;
}

/**
 * Writes an executable script `SCRIPT VMID` that starts the tiny guest VMID under QEMU (TCG) with the
 * files of guestFiles(dir, VMID) and returns once QEMU runs (-daemonize). Returns the script path and
 * a `startCommand` (`SCRIPT {vmid}`) for the qemu driver; the disk must exist (makeGuestDisk).
 */
export async function startScript(opts: StartScriptOptions): Promise<{ script: string; startCommand: string }> {
  const script = join(opts.dir, opts.name ?? 'start-guest.sh');
  const append = `console=ttyS0 panic=-1 quiet${opts.ignoreAcpi ? ' ignore_acpi=1' : ''}`;
  const q = (s: string): string => `'${s.replaceAll("'", `'\\''`)}'`;
  const body = `#!/bin/sh
# starts coldvault's tiny test guest "$1" (written by test/helpers/tiny-guest.ts)
set -e
vmid="$1"
dir=${q(opts.dir)}
exec qemu-system-x86_64 -accel tcg -nodefaults -display none -m 256 \\
  -kernel ${q(opts.guest.kernel)} -initrd ${q(opts.guest.initrd)} -append ${q(append)} \\
  -serial "file:$dir/$vmid.log" -drive "file=$dir/$vmid.raw,format=raw,if=virtio" \\
  -qmp "unix:$dir/$vmid.qmp,server=on,wait=off" -no-reboot -daemonize -pidfile "$dir/$vmid.pid"
`;
  await writeFile(script, body, { mode: 0o755 });
  return { script, startCommand: `${script} {vmid}` };
}

/** Resolves once the guest's serial log contains `text`; rejects after timeoutMs. */
export async function waitForSerial(dir: string, vmid: string, text: string, timeoutMs = 30_000): Promise<string> {
  const { log } = guestFiles(dir, vmid);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const content = await readFile(log, 'utf8').catch(() => '');
    if (content.includes(text)) return content;
    if (content.includes('Kernel panic')) throw new Error(`guest ${vmid} panicked:\n${content}`);
    if (Date.now() > deadline) throw new Error(`guest ${vmid}: no "${text}" on its serial console within ${timeoutMs} ms:\n${content}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** SIGKILLs the QEMU of guest `vmid` (by its pidfile, if it is still a QEMU) and waits until it is gone. */
export async function killGuest(dir: string, vmid: string): Promise<void> {
  const pid = Number.parseInt(await readFile(guestFiles(dir, vmid).pid, 'utf8').catch(() => ''), 10);
  if (!pid) return;
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  if (!cmdline.includes('qemu-system') || !cmdline.includes(guestFiles(dir, vmid).qmp)) return;
  process.kill(pid, 'SIGKILL');
  const alive = async (): Promise<boolean> => !/^\d+ \(.*\) Z/.test(await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '0 () Z'));
  for (let i = 0; i < 100 && (await alive()); i++) await new Promise((resolve) => setTimeout(resolve, 50));
}
