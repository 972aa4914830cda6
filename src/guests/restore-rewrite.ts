/**
 * qmrestore's config rewrite (QemuServer.pm restore_update_config_line), line by line, over the
 * archived config. Only the lines named below change; every other line keeps its text and place:
 * - dropped: `#qmdump#...`, `#vzdump#...`, `lock:`, `unusedN:`, `parent:`, and every section after
 *   the main one; trailing blank lines; the result ends with exactly one '\n';
 * - a drive with backup=0 becomes `#<line>` (a description line);
 * - a drive in `volumes` gets the new volume in place of the old one, `format=` removed, the other
 *   options left in their order (Proxmox re-sorts them; we do not);
 * - `vmgenid` gets a new UUID unless it is `0`;
 * - with `unique`: each netN gets a new MAC (different from every MAC of the config and from each
 *   other), smbios1 a new `uuid=` (its other options kept).
 * - with `dropKeys`: those keys' lines are dropped (the API leaves out `args:` and `hookscript:` for
 *   a restore by someone other than an admin); `onDropped` hears which of them were there.
 * The legacy 1.x `vlanN:` conversion is not done (such a line is kept as it is).
 */
import { randomBytes } from 'node:crypto';
import { ColdvaultError } from '../core/index.js';
import { isBackupDisabled, parseDrive } from './drives.js';
import { checkMacPrefix, DEFAULT_MAC_PREFIX, isNetKey, macOfNet, macPartIndex, NET_MODELS, randomMac, type RandomSource } from './nets.js';
import { joinPropertyString, splitPropertyString, type PropertyPart } from './property-string.js';

export interface RestoreRewriteOptions {
  volumes: Map<string, string>;
  unique: boolean;
  macPrefix?: string;
  random?: (n: number) => Buffer;
  /** keys whose lines are left out of the restored config */
  dropKeys?: readonly string[];
  /** called once with the keys of `dropKeys` that the config had (none: not called) */
  onDropped?: (keys: string[]) => void;
}

const DROPPED = /^(#qmdump#|#vzdump#|lock:|unused\d+:|parent:)/;
const KEY_VALUE = /^([a-z][a-z_-]*\d*):\s*(.+?)\s*$/;
const DRIVE_LINE_KEY = /^(ide|scsi|virtio|sata|efidisk|tpmstate)\d+$/;

interface Rewrite {
  opts: RestoreRewriteOptions;
  random: RandomSource;
  prefix: string;
  /** MACs not to hand out: all old ones and the new ones so far. */
  macs: Set<string>;
  mapped: Set<string>;
  dropped: Set<string>;
}

export function rewriteConfigForRestore(text: string, opts: RestoreRewriteOptions): string {
  const lines = mainLines(text);
  const rw: Rewrite = {
    opts,
    random: opts.random ?? randomBytes,
    prefix: checkMacPrefix(opts.macPrefix ?? DEFAULT_MAC_PREFIX),
    macs: new Set(lines.flatMap((l) => oldMac(l) ?? [])),
    mapped: new Set(),
    dropped: new Set(),
  };
  const out = lines.flatMap((line) => rewriteLine(line, rw));
  if (rw.dropped.size > 0) opts.onDropped?.([...rw.dropped]);
  const missing = [...opts.volumes.keys()].filter((k) => !rw.mapped.has(k));
  if (missing.length > 0) {
    throw new ColdvaultError('USAGE', `rewriting the config for restore failed: no drive line for ${missing.join(', ')}`);
  }
  while (out.length > 0 && /^\s*$/.test(out[out.length - 1] ?? '')) out.pop();
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}

/** The lines before the first section header. */
function mainLines(text: string): string[] {
  const lines = text.split('\n');
  const header = lines.findIndex((l) => /^\[.*\]\s*$/.test(l));
  return header < 0 ? lines : lines.slice(0, header);
}

function oldMac(line: string): string | undefined {
  const kv = KEY_VALUE.exec(line);
  return kv && isNetKey(kv[1] ?? '') ? macOfNet(kv[2] ?? '') : undefined;
}

function rewriteLine(line: string, rw: Rewrite): string[] {
  if (DROPPED.test(line)) return [];
  const kv = KEY_VALUE.exec(line);
  const key = kv?.[1] ?? '';
  const value = kv?.[2] ?? '';
  if (!kv) return [line];
  if (rw.opts.dropKeys?.includes(key)) {
    rw.dropped.add(key);
    return [];
  }
  if (DRIVE_LINE_KEY.test(key)) return [rewriteDrive(line, key, value, rw)];
  if (key === 'vmgenid') return [value === '0' ? line : `vmgenid: ${uuid(rw.random)}`];
  if (!rw.opts.unique) return [line];
  if (isNetKey(key)) return [rewriteNet(line, key, value, rw)];
  if (key === 'smbios1') return [rewriteSmbios(line, value, rw)];
  return [line];
}

function rewriteDrive(line: string, key: string, value: string, rw: Rewrite): string {
  const drive = parseDrive(value);
  if (typeof drive === 'string') return line;
  if (isBackupDisabled(drive)) return `#${line}`;
  const volume = rw.opts.volumes.get(key);
  if (volume === undefined) return line;
  rw.mapped.add(key);
  const parts = drive.parts.map((p, i) => (i === drive.volumeIndex ? { key: p.key, value: volume } : p));
  return `${key}: ${joinPropertyString(parts.filter((p) => p.key !== 'format'))}`;
}

function rewriteNet(line: string, key: string, value: string, rw: Rewrite): string {
  const parts = splitPropertyString(value);
  if (typeof parts === 'string') return line;
  let index = macPartIndex(parts);
  if (index < 0) index = parts.findIndex((p) => isModelPart(p));
  const part = parts[index];
  if (part === undefined) return line;
  const newPart = { key: part.key === null || part.key === 'model' ? part.value : part.key, value: newMac(key, rw) };
  return `${key}: ${joinPropertyString(parts.map((p, i) => (i === index ? newPart : p)))}`;
}

/** `virtio` or `model=virtio` without a MAC: Proxmox's parse_net gives it one, which unique renews. */
function isModelPart(p: PropertyPart): boolean {
  return (p.key === null || p.key === 'model') && NET_MODELS.has(p.value);
}

function newMac(key: string, rw: Rewrite): string {
  for (let attempt = 0; attempt < 8; attempt++) {
    const mac = randomMac(rw.prefix, rw.random);
    if (rw.macs.has(mac)) continue;
    rw.macs.add(mac);
    return mac;
  }
  throw new ColdvaultError('USAGE', `generating a new MAC address for ${key} failed: the random source keeps repeating`);
}

function rewriteSmbios(line: string, value: string, rw: Rewrite): string {
  const parts = splitPropertyString(value);
  if (typeof parts === 'string') return line;
  const id = uuid(rw.random);
  const hasUuid = parts.some((p) => p.key === 'uuid');
  const next = hasUuid ? parts.map((p) => (p.key === 'uuid' ? { key: 'uuid', value: id } : p)) : [...parts, { key: 'uuid', value: id }];
  return `smbios1: ${joinPropertyString(next)}`;
}

/** A random (version 4) UUID, lowercase. */
function uuid(random: RandomSource): string {
  const b = Buffer.from(random(16).subarray(0, 16));
  b[6] = ((b[6] ?? 0) & 0x0f) | 0x40;
  b[8] = ((b[8] ?? 0) & 0x3f) | 0x80;
  const hex = b.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
