/** Guest ids (Proxmox VMIDs: 100 .. 999999999) and version numbers. */
import { ColdvaultError } from './errors.js';

export type GuestId = string;

const VMID = /^[1-9][0-9]{2,8}$/;

export function isGuestId(value: string): boolean {
  return VMID.test(value);
}

/** Parses a guest id, refusing anything that Proxmox would not accept as a VMID. */
export function parseGuestId(value: string, what = 'guest id'): GuestId {
  if (!isGuestId(value)) {
    throw new ColdvaultError('USAGE', `invalid ${what} '${value}': expected a number from 100 to 999999999`);
  }
  return value;
}

/** Parses a positive integer option (version number, keep count...). */
export function parsePositiveInt(value: string, what: string, min = 1): number {
  if (!/^[0-9]+$/.test(value) || Number(value) < min || !Number.isSafeInteger(Number(value))) {
    throw new ColdvaultError('USAGE', `invalid ${what} '${value}': expected an integer >= ${min}`);
  }
  return Number(value);
}
