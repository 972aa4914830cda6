/**
 * Network devices (`net0: virtio=BC:24:11:2C:69:EC,bridge=vmbr0`, qemu-server Network.pm) and MAC
 * addresses made as PVE::Tools::random_ether_addr makes them: random bytes, the first octet made
 * unicast and locally administered (`& 0xFE | 0x02`), uppercase, then the datacenter's mac_prefix
 * written over the start. Note that the default prefix BC:24:11 (Proxmox's own OUI) turns the
 * locally-administered bit off again: such addresses are unicast, not locally administered.
 */
import { randomBytes } from 'node:crypto';
import { ColdvaultError } from '../core/index.js';
import type { GuestConfig } from './config-model.js';
import { mainSection } from './config-parse.js';
import { splitPropertyString, type PropertyPart } from './property-string.js';

export const DEFAULT_MAC_PREFIX = 'BC:24:11';

export const NET_MODELS: ReadonlySet<string> = new Set([
  'e1000',
  'e1000-82540em',
  'e1000-82544gc',
  'e1000-82545em',
  'e1000e',
  'i82551',
  'i82557b',
  'i82559er',
  'ne2k_isa',
  'ne2k_pci',
  'pcnet',
  'rtl8139',
  'virtio',
  'vmxnet3',
]);

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;
const NET_KEY = /^net(\d+)$/;

export function isNetKey(key: string): boolean {
  return NET_KEY.test(key);
}

/** Index of the part holding the MAC (`virtio=<mac>` or `macaddr=<mac>`), or -1. */
export function macPartIndex(parts: readonly PropertyPart[]): number {
  return parts.findIndex((p) => p.key !== null && (p.key === 'macaddr' || NET_MODELS.has(p.key)) && MAC.test(p.value));
}

/** The MAC of a net value, uppercase, or undefined. */
export function macOfNet(value: string): string | undefined {
  const parts = splitPropertyString(value);
  if (typeof parts === 'string') return undefined;
  return parts[macPartIndex(parts)]?.value.toUpperCase();
}

/** All netN MACs of the main section, uppercase, in netN order. */
export function macAddressesOf(config: GuestConfig): string[] {
  const nets = [...mainSection(config).values].filter(([key]) => isNetKey(key));
  nets.sort(([a], [b]) => netNumber(a) - netNumber(b));
  return nets.flatMap(([, value]) => macOfNet(value) ?? []);
}

function netNumber(key: string): number {
  return Number(NET_KEY.exec(key)?.[1] ?? 0);
}

export type RandomSource = (n: number) => Buffer;

export function checkMacPrefix(prefix: string): string {
  const ok = prefix === '' || /^[0-9a-f]{2}(:[0-9a-f]{2}){0,4}:?$/i.test(prefix);
  if (!ok || (prefix !== '' && (parseInt(prefix.slice(0, 2), 16) & 1) === 1)) {
    throw new ColdvaultError('USAGE', `invalid MAC prefix '${prefix}': expected up to 5 hex octets like BC:24:11, unicast`);
  }
  return prefix.toUpperCase();
}

/** One random MAC with the (checked) prefix. */
export function randomMac(prefix: string, random: RandomSource = randomBytes): string {
  const bytes = Buffer.from(random(6).subarray(0, 6));
  bytes[0] = ((bytes[0] ?? 0) & 0xfe) | 0x02;
  const addr = [...bytes].map((b) => b.toString(16).padStart(2, '0').toUpperCase()).join(':');
  return prefix + addr.slice(prefix.length);
}
