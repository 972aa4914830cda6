/**
 * A QEMU command line built from a guest's Proxmox config, as `qm showcmd` builds one, for the guests
 * coldvault starts itself (boot tests; restore-on-the-fly): name, memory, sockets x cores, cpu type,
 * bios (SeaBIOS, or OVMF when the host has it: the code read-only, of the size the config's efidisk0
 * `efitype` names (4m, or 2m by default, as Proxmox); the EFI variables from `efiVars` (the guest's
 * efidisk0, e.g. from an export, snapshot=on) or else a throwaway copy of OVMF's template), the disks
 * on their buses (virtio-blk, virtio-scsi / LSI, SATA/AHCI, IDE) in the config's boot order, a VGA
 * display (none shown; QMP `screendump` reads it), the QMP socket, a guest agent channel when asked, and `args:` appended as Proxmox
 * passes them (split like a shell would). What a disk reads from is the caller's (`drives`: an NBD
 * export, an overlay, a file). Network: none (`-nic none`: a boot test runs in isolation), or the
 * config's NICs on a bridge (`-netdev bridge`, needs qemu-bridge-helper's allow list). Cdroms are left
 * out (their media may not be on this host).
 */
import { copyFileSync, existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ColdvaultError } from '../core/index.js';
import { configValue, mainSection } from './config-parse.js';
import type { GuestConfig } from './config-model.js';
import { isCdrom, isDriveKey, option, parseDrive } from './drives.js';
import { splitPropertyString } from './property-string.js';

export interface QemuDrive {
  /** what QEMU opens: a path, or `nbd:unix:SOCK:exportname=KEY`, or a qcow2 overlay */
  file: string;
  format: string;
  /** snapshot=on: writes go to a temporary overlay QEMU throws away */
  snapshot?: boolean;
  readOnly?: boolean;
}

export interface QemuCommandRequest {
  vmid: string;
  config: GuestConfig;
  /** by drive key (virtio0, scsi1, ...): the disks to attach; config drives not named here are left out */
  drives: ReadonlyMap<string, QemuDrive>;
  qmpSocket: string;
  /** the guest's first serial port to this file (the boot test reads it) */
  serialLog?: string;
  network: 'none' | 'bridge';
  /** 'kvm:tcg' (default: KVM when the host has it) or 'tcg' */
  accel?: string;
  /** a folder for throwaway files (the OVMF vars copy) */
  scratchDir?: string;
  /** a guest agent channel (virtio-serial port org.qemu.guest_agent.0) served on this unix socket */
  guestAgentSocket?: string;
  /** a guest that powers off stays there, its screen readable, until QEMU is told to quit (`-no-shutdown`) */
  noShutdown?: boolean;
  /** where OVMF's firmware is looked for; default Proxmox's pve-edk2-firmware folder, then Debian's ovmf */
  firmwareDirs?: readonly string[];
  /** OVMF guests: their EFI variables (the efidisk0 volume); without it a copy of OVMF's template in scratchDir */
  efiVars?: QemuDrive;
  /** QEMU forks into the background once it runs (`-daemonize` with a pidfile) */
  daemonize?: { pidFile: string };
}

const FIRMWARE_DIRS = ['/usr/share/pve-edk2-firmware', '/usr/share/OVMF'];

export function qemuCommand(req: QemuCommandRequest): string[] {
  const c = (key: string): string | undefined => configValue(req.config, key);
  const args = ['-name', `${c('name') ?? `vm${req.vmid}`},debug-threads=on`, '-nodefaults', '-no-user-config'];
  args.push(...acceleration(req.accel ?? 'kvm:tcg'));
  args.push('-m', String(memoryMiB(c('memory'))), ...smp(c('sockets'), c('cores')), ...cpu(c('cpu')), ...bios(req));
  args.push('-qmp', `unix:${req.qmpSocket},server=on,wait=off`, '-display', 'none', ...vga(c('vga')));
  if (req.serialLog) args.push('-serial', `file:${req.serialLog}`);
  args.push(...drives(req), ...network(req), ...guestAgent(req.guestAgentSocket));
  if (req.noShutdown) args.push('-no-shutdown');
  if (req.daemonize) args.push('-daemonize', '-pidfile', req.daemonize.pidFile);
  const extra = c('args');
  if (extra) args.push(...splitArgs(extra));
  return args;
}

function guestAgent(socket: string | undefined): string[] {
  if (!socket) return [];
  return [
    ...['-chardev', `socket,path=${socket},server=on,wait=off,id=qga0`],
    ...['-device', 'virtio-serial,id=qga-serial0', '-device', 'virtserialport,chardev=qga0,name=org.qemu.guest_agent.0'],
  ];
}

function acceleration(accel: string): string[] {
  return accel.split(':').flatMap((a) => ['-accel', a]);
}

function memoryMiB(value: string | undefined): number {
  const parts = value ? splitPropertyString(value) : [];
  const current = Array.isArray(parts) ? (parts.find((p) => p.key === null || p.key === 'current')?.value ?? '512') : '512';
  const n = Number(current);
  if (!Number.isInteger(n) || n < 16) throw new ColdvaultError('CONFIG_INVALID', `memory '${value}' is not a size in MiB`);
  return n;
}

function smp(sockets: string | undefined, cores: string | undefined): string[] {
  const s = Number(sockets ?? 1);
  const k = Number(cores ?? 1);
  return ['-smp', `${s * k},sockets=${s},cores=${k},maxcpus=${s * k}`];
}

function cpu(value: string | undefined): string[] {
  if (!value) return [];
  const parts = splitPropertyString(value);
  const type = Array.isArray(parts) ? parts.find((p) => p.key === null || p.key === 'cputype')?.value : undefined;
  return type && /^[\w.-]+$/.test(type) ? ['-cpu', type] : [];
}

function bios(req: QemuCommandRequest): string[] {
  if (configValue(req.config, 'bios') !== 'ovmf') return [];
  const efidisk = configValue(req.config, 'efidisk0');
  const suffix = efidisk && /(?:^|,)efitype=4m(?:,|$)/.test(efidisk) ? '_4M' : '';
  const dir = (req.firmwareDirs ?? FIRMWARE_DIRS).find((d) => existsSync(join(d, `OVMF_CODE${suffix}.fd`)) && existsSync(join(d, `OVMF_VARS${suffix}.fd`)));
  if (!dir) {
    throw new ColdvaultError(
      'NOT_SUPPORTED',
      `the guest boots with OVMF (bios: ovmf), whose OVMF_CODE${suffix}.fd is not installed on this host (Debian: ovmf)`,
    );
  }
  const template = join(dir, `OVMF_VARS${suffix}.fd`);
  const args = ['-drive', `if=pflash,unit=0,format=raw,readonly=on,file=${join(dir, `OVMF_CODE${suffix}.fd`)}`];
  const vars = req.efiVars;
  if (vars) {
    const size = vars.format === 'raw' ? `,size=${statSync(template).size}` : ''; // the volume may be rounded up; the flash is the template's size
    args.push('-drive', `if=pflash,unit=1,format=${vars.format},file=${vars.file}${size}${vars.snapshot ? ',snapshot=on' : ''}`);
  } else if (req.scratchDir) {
    copyFileSync(template, join(req.scratchDir, 'ovmf-vars.fd')); // the builder's one side effect: a throwaway vars flash
    args.push('-drive', `if=pflash,unit=1,format=raw,file=${join(req.scratchDir, 'ovmf-vars.fd')}`);
  }
  return args;
}

function vga(value: string | undefined): string[] {
  const type = value?.split(',')[0];
  if (type === 'none' || type?.startsWith('serial')) return [];
  return ['-device', 'VGA,id=vga'];
}

/** The drives in the config's boot order first (bootindex), each on its bus's controller. */
function drives(req: QemuCommandRequest): string[] {
  const order = bootOrder(configValue(req.config, 'boot'));
  const scsihw = configValue(req.config, 'scsihw') ?? 'lsi';
  const args: string[] = [];
  const controllers = new Set<string>();
  for (const [key, value] of mainSection(req.config).values) {
    if (!isDriveKey(key)) continue;
    const drive = parseDrive(value);
    const given = req.drives.get(key);
    if (typeof drive === 'string' || isCdrom(drive) || !given) continue;
    const id = `drive-${key}`;
    const opts = [`file=${given.file}`, 'if=none', `id=${id}`, `format=${given.format}`, `cache=${option(drive.parts, 'cache') ?? 'none'}`];
    if (given.snapshot) opts.push('snapshot=on');
    if (given.readOnly) opts.push('readonly=on');
    args.push('-drive', opts.join(','));
    const boot = order.indexOf(key);
    args.push(...device(key, id, boot >= 0 ? 100 + boot : undefined, scsihw, controllers));
  }
  return args;
}

function device(key: string, id: string, bootindex: number | undefined, scsihw: string, controllers: Set<string>): string[] {
  const n = Number(/\d+$/.exec(key)?.[0]);
  const boot = bootindex === undefined ? '' : `,bootindex=${bootindex}`;
  const controller = (name: string, spec: string): string[] => {
    if (controllers.has(name)) return [];
    controllers.add(name);
    return ['-device', spec];
  };
  if (key.startsWith('virtio')) return ['-device', `virtio-blk-pci,drive=${id},id=${key}${boot}`];
  if (key.startsWith('scsi')) {
    const hw = scsihw.startsWith('virtio-scsi') ? 'virtio-scsi-pci' : scsihw === 'megasas' ? 'megasas' : 'lsi53c895a';
    return [...controller('scsihw0', `${hw},id=scsihw0`), '-device', `scsi-hd,bus=scsihw0.0,scsi-id=${n},drive=${id},id=${key}${boot}`];
  }
  if (key.startsWith('sata')) return [...controller('ahci0', 'ahci,id=ahci0'), '-device', `ide-hd,bus=ahci0.${n},drive=${id},id=${key}${boot}`];
  if (key.startsWith('ide'))
    return [...controller('ide', 'piix3-ide,id=ide'), '-device', `ide-hd,bus=ide.${Math.floor(n / 2)},unit=${n % 2},drive=${id},id=${key}${boot}`];
  throw new ColdvaultError('NOT_SUPPORTED', `disk ${key} cannot be attached by coldvault's QEMU command (efidisk, tpmstate)`);
}

/** `boot: order=scsi0;ide2;net0` (or the legacy `boot: cdn` + `bootdisk: scsi0`, read as the disk first). */
function bootOrder(value: string | undefined): string[] {
  const m = value ? /(?:^|,)order=([^,]+)/.exec(value) : null;
  return m?.[1]?.split(';') ?? [];
}

function network(req: QemuCommandRequest): string[] {
  if (req.network === 'none') return ['-nic', 'none'];
  const args: string[] = [];
  for (const [key, value] of mainSection(req.config).values) {
    if (!/^net\d+$/.test(key)) continue;
    const parts = splitPropertyString(value);
    if (!Array.isArray(parts)) continue;
    const model = parts.find((p) => p.key !== null && /^(virtio|e1000|rtl8139|vmxnet3)/.test(p.key));
    const bridge = parts.find((p) => p.key === 'bridge')?.value ?? 'vmbr0';
    args.push('-netdev', `bridge,id=${key},br=${bridge}`);
    const nic = model?.key === 'virtio' ? 'virtio-net-pci' : (model?.key ?? 'e1000');
    args.push('-device', `${nic},netdev=${key}${model?.value ? `,mac=${model.value}` : ''},id=${key}`);
  }
  return args;
}

/** `args:` split as a shell splits words (quotes and backslashes), as Proxmox's split_args does. */
export function splitArgs(text: string): string[] {
  const out: string[] = [];
  let word: string | undefined;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i] as string;
    if (quote) {
      if (ch === quote) quote = undefined;
      else if (ch === '\\' && quote === '"' && i + 1 < text.length) word = `${word ?? ''}${text[++i] ?? ''}`;
      else word = `${word ?? ''}${ch}`;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      word ??= '';
    } else if (ch === '\\' && i + 1 < text.length) {
      word = (word ?? '') + text[++i];
    } else if (/\s/.test(ch)) {
      if (word !== undefined) out.push(word);
      word = undefined;
    } else {
      word = (word ?? '') + ch;
    }
  }
  if (quote) throw new ColdvaultError('CONFIG_INVALID', `args: an unclosed ${quote} in '${text}'`);
  if (word !== undefined) out.push(word);
  return out;
}
