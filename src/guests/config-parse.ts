/**
 * parse_vm_config, line-preserving. Rules (qemu-server QemuServer.pm):
 * - blank lines are skipped; `#text` is a description line; `key: value` matches
 *   `^([a-z][a-z_-]*\d*):\s*(.+?)\s*$` (so `boot: ` has the value ' ', as in Perl);
 * - `[PENDING]`, `[special:cloudinit]`, `[special:fleecing]` and `[snapname]` open sections; any other
 *   `[..]` is skipped with a warning, and of two sections with the same name the later one wins;
 * - where Proxmox would drop a line (no `key: value`, a drive without a volume) we refuse the config:
 *   a backup must not silently miss a disk;
 * - a key Proxmox does not know in its section (config-keys.ts), and a line over 1 MiB, are kept but
 *   warned about (`warnings`, each naming the line and the key), never silent.
 */
import { ColdvaultError } from '../core/index.js';
import type { ConfigLine, ConfigSection, GuestConfig, PropertyLine, SectionKind } from './config-model.js';
import { isKnownKey } from './config-keys.js';
import { decodeText } from './description.js';
import { isDriveKey, parseDrive } from './drives.js';

const KEY_VALUE = /^([a-z][a-z_-]*\d*):\s*(.+?)\s*$/;
const BLANK = /^\s*$/;
const HEADER = /^\[(.*)\]\s*$/;
const SNAPSHOT = /^\[([a-z][a-z0-9_-]+)\]\s*$/i;
const SPECIAL = /^\[special:(cloudinit|fleecing)\]\s*$/i;
/** A line longer than this is warned about (Proxmox's longest value, the description, is 8 KiB). */
export const MAX_LINE_BYTES = 1024 * 1024;

interface SectionBuilder {
  kind: SectionKind;
  name: string;
  lines: ConfigLine[];
}

interface Context {
  what: string;
  warnings: string[];
}

export function parseGuestConfig(text: string, what: string): GuestConfig {
  const finalNewline = text.endsWith('\n');
  const rawLines = text === '' ? [] : (finalNewline ? text.slice(0, -1) : text).split('\n');
  const ctx: Context = { what, warnings: [] };
  const builders: SectionBuilder[] = [{ kind: 'main', name: '', lines: [] }];
  rawLines.forEach((lineText, i) => {
    const lineNo = i + 1;
    checkLength(lineText, lineNo, ctx);
    const header = HEADER.test(lineText) ? openSection(lineText, lineNo, ctx) : undefined;
    if (header) builders.push(header);
    else addLine(builders[builders.length - 1] as SectionBuilder, lineText, lineNo, ctx);
  });
  const sections = markDuplicates(builders.map(finishSection), ctx);
  return { sections, finalNewline, warnings: ctx.warnings };
}

export function printGuestConfig(config: GuestConfig): string {
  const text = config.sections.flatMap((s) => s.lines.map((l) => l.text)).join('\n');
  return config.finalNewline ? `${text}\n` : text;
}

/** A value of the main section (`cdrom` is found as `ide2`). */
export function configValue(config: GuestConfig, key: string): string | undefined {
  return mainSection(config).values.get(key);
}

export function guestName(config: GuestConfig): string {
  return configValue(config, 'name') ?? '';
}

export function mainSection(config: GuestConfig): ConfigSection {
  const main = config.sections[0];
  if (!main || main.kind !== 'main') throw new Error('internal error: guest config without main section');
  return main;
}

function openSection(text: string, lineNo: number, ctx: Context): SectionBuilder {
  const lines: ConfigLine[] = [{ kind: 'header', lineNo, text }];
  if (/^\[PENDING\]\s*$/i.test(text)) return { kind: 'pending', name: 'pending', lines };
  const special = SPECIAL.exec(text);
  if (special) return { kind: 'special', name: (special[1] ?? '').toLowerCase(), lines };
  const snapshot = /^\[special:/i.test(text) ? null : SNAPSHOT.exec(text);
  if (snapshot) return { kind: 'snapshot', name: snapshot[1] ?? '', lines };
  const name = HEADER.exec(text)?.[1] ?? '';
  ctx.warnings.push(`${ctx.what} line ${lineNo}: skipping unknown section '${name}'`);
  return { kind: 'unknown', name, lines };
}

function addLine(section: SectionBuilder, text: string, lineNo: number, ctx: Context): void {
  if (section.kind === 'unknown') section.lines.push({ kind: 'ignored', lineNo, text });
  else if (BLANK.test(text)) section.lines.push({ kind: 'blank', lineNo, text });
  else if (text.startsWith('#')) section.lines.push({ kind: 'description', lineNo, text, comment: decodeText(text.slice(1)) });
  else section.lines.push(propertyLine(section, text, lineNo, ctx));
}

function propertyLine(section: SectionBuilder, text: string, lineNo: number, ctx: Context): PropertyLine {
  const match = KEY_VALUE.exec(text);
  if (!match) throw malformed(ctx, lineNo, `expected 'key: value', got '${clip(text)}'`);
  const line: PropertyLine = { kind: 'property', lineNo, text, key: match[1] ?? '', value: match[2] ?? '' };
  if (!isKnownKey(line.key, section.kind, section.name)) {
    ctx.warnings.push(`${ctx.what} line ${lineNo}: unknown key '${line.key}' in ${sectionLabel(section)} (Proxmox ignores it; kept as written)`);
  }
  if (section.kind !== 'special' && isDriveKey(canonicalKey(line.key))) {
    const drive = parseDrive(line.value);
    if (typeof drive === 'string') throw malformed(ctx, lineNo, `drive ${line.key}: ${drive}`);
  }
  return line;
}

function finishSection(b: SectionBuilder): ConfigSection {
  const values = new Map<string, string>();
  const description: string[] = [];
  for (const line of b.lines) {
    if (line.kind === 'description') description.push(line.comment);
    if (line.kind !== 'property') continue;
    values.set(canonicalKey(line.key), line.value);
    if (line.key === 'description') description.push(decodeText(line.value));
  }
  const base = { kind: b.kind, name: b.name, lines: b.lines, values, description: description.join('\n') };
  return { ...base, skipped: b.kind === 'unknown' };
}

/** Of sections with the same kind and name, Proxmox keeps the last. */
function markDuplicates(sections: ConfigSection[], ctx: Context): ConfigSection[] {
  const last = new Map<string, number>();
  sections.forEach((s, i) => last.set(`${s.kind}:${s.name}`, i));
  return sections.map((s, i) => {
    if (s.kind === 'unknown' || last.get(`${s.kind}:${s.name}`) === i) return s;
    const lineNo = s.lines[0]?.lineNo ?? 0;
    ctx.warnings.push(`${ctx.what} line ${lineNo}: duplicate section '${s.name}', the later one wins`);
    return { ...s, skipped: true };
  });
}

/** Warns about a line over MAX_LINE_BYTES, naming its key (never quoting the line). */
function checkLength(text: string, lineNo: number, ctx: Context): void {
  if (text.length * 3 <= MAX_LINE_BYTES) return; // UTF-8: at most 3 bytes per UTF-16 unit
  const bytes = Buffer.byteLength(text);
  if (bytes <= MAX_LINE_BYTES) return;
  const key = KEY_VALUE.exec(text.slice(0, 200))?.[1];
  const what = key ? `key '${key}'` : `starting '${clip(text.slice(0, 40))}'`;
  ctx.warnings.push(`${ctx.what} line ${lineNo} (${what}) is ${bytes} bytes long, over the 1 MiB a config line should hold`);
}

function sectionLabel(section: SectionBuilder): string {
  if (section.kind === 'main') return 'the main section';
  if (section.kind === 'pending') return '[PENDING]';
  return section.kind === 'special' ? `[special:${section.name}]` : `snapshot [${section.name}]`;
}

export function canonicalKey(key: string): string {
  return key === 'cdrom' ? 'ide2' : key;
}

function malformed(ctx: Context, lineNo: number, detail: string): ColdvaultError {
  return new ColdvaultError('GUEST_CONFIG_MALFORMED', `cannot parse ${ctx.what} line ${lineNo}: ${detail}`);
}

function clip(text: string): string {
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
