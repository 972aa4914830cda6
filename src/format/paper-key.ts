/**
 * The paper key: the master key as text to print and keep away from the key file, typed back in
 * when the key file is lost. Four lines of 8 bytes in hex, each followed by a 4-digit check of that
 * line (SHA-256 of its number and bytes), so a mistyped digit is found on its line; then the whole
 * key must have the fingerprint printed above it. The passphrase is not on paper: import asks for a
 * new one.
 *
 *   coldvault paper key
 *   fingerprint: 1a:2b:...
 *   created: 2026-11-28T19:00:00.000Z
 *   1: 0123 4567 89ab cdef  3f0a
 *   ...
 */
import { createHash } from 'node:crypto';
import { ColdvaultError } from '../core/index.js';
import { keyFingerprint, MASTER_KEY_BYTES } from './key-file.js';

const LINE_BYTES = 8;
const LINES = MASTER_KEY_BYTES / LINE_BYTES;
const TITLE = 'coldvault paper key';

export interface PaperKey {
  master: Buffer;
  fingerprint: string;
  created: string;
}

export function paperKeyText(master: Uint8Array, created: string): string {
  const lines = [TITLE, `fingerprint: ${keyFingerprint(master)}`, `created: ${created}`];
  for (let i = 0; i < LINES; i++) {
    const bytes = Buffer.from(master.subarray(i * LINE_BYTES, (i + 1) * LINE_BYTES));
    lines.push(`${i + 1}: ${bytes.toString('hex').replace(/(.{4})(?!$)/g, '$1 ')}  ${lineCheck(i + 1, bytes)}`);
  }
  return `${lines.join('\n')}\n`;
}

/** The key typed back from a paper key: KEY_INVALID naming the line that does not check, or a fingerprint that differs. */
export function parsePaperKey(text: string, where: string): PaperKey {
  const bad = (why: string): never => {
    throw new ColdvaultError('KEY_INVALID', `paper key ${where}: ${why}`);
  };
  const fingerprint = /^\s*fingerprint:\s*([0-9a-f:]+)\s*$/im.exec(text)?.[1]?.toLowerCase();
  const created = /^\s*created:\s*(\S+)\s*$/im.exec(text)?.[1];
  const parts: Buffer[] = [];
  for (let n = 1; n <= LINES; n++) {
    const line = new RegExp(`^\\s*${n}\\s*:\\s*([0-9a-fA-F ]+?)\\s*$`, 'm').exec(text)?.[1];
    if (!line) bad(`line ${n} of the key is missing`);
    const digits = (line as string).replace(/\s+/g, '').toLowerCase();
    if (digits.length !== LINE_BYTES * 2 + 4) bad(`line ${n} has ${digits.length} hex digits, expected ${LINE_BYTES * 2} and a 4-digit check`);
    const bytes = Buffer.from(digits.slice(0, LINE_BYTES * 2), 'hex');
    if (lineCheck(n, bytes) !== digits.slice(LINE_BYTES * 2)) bad(`line ${n} does not match its check digits: a digit is mistyped on that line`);
    parts.push(bytes);
  }
  const master = Buffer.concat(parts);
  const actual = keyFingerprint(master);
  if (fingerprint && fingerprint !== actual) bad(`the key has fingerprint ${actual}, but the paper says ${fingerprint}`);
  if (!created || Number.isNaN(Date.parse(created))) bad('the "created:" line is missing or not a time');
  return { master, fingerprint: actual, created: created as string };
}

function lineCheck(n: number, bytes: Uint8Array): string {
  return createHash('sha256').update(`coldvault paper key line ${n}:`).update(bytes).digest('hex').slice(0, 4);
}
