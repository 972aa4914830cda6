/** Command-line parsing on node:util parseArgs, with coldvault's errors (USAGE, exit code 2). */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ColdvaultError } from '../core/index.js';

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;

export interface Parsed {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

export const COMMON_OPTIONS: OptionSpec = {
  config: { type: 'string' },
  'state-dir': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
};

export function parse(argv: string[], options: OptionSpec, command: string): Parsed {
  try {
    const { values, positionals } = parseArgs({ args: argv, options: { ...COMMON_OPTIONS, ...options }, allowPositionals: true, strict: true });
    return { values: values as Parsed['values'], positionals };
  } catch (err) {
    const message = err instanceof Error ? err.message.split('\n')[0] : String(err);
    throw new ColdvaultError('USAGE', `coldvault ${command}: ${message}; see 'coldvault ${command} --help'`, { cause: err });
  }
}

export function str(p: Parsed, name: string): string | undefined {
  const v = p.values[name];
  return typeof v === 'string' ? v : undefined;
}

export function flag(p: Parsed, name: string): boolean {
  return p.values[name] === true;
}

export function list(p: Parsed, name: string): string[] {
  const v = p.values[name];
  return Array.isArray(v) ? v : typeof v === 'string' ? [v] : [];
}

export function required(p: Parsed, name: string, command: string): string {
  const v = str(p, name);
  if (v === undefined || v === '') throw new ColdvaultError('USAGE', `coldvault ${command}: --${name} is required`);
  return v;
}

export function intOption(p: Parsed, name: string, min = 0): number | undefined {
  const v = str(p, name);
  if (v === undefined) return undefined;
  if (!/^[0-9]+$/.test(v) || Number(v) < min) throw new ColdvaultError('USAGE', `--${name} '${v}': expected an integer >= ${min}`);
  return Number(v);
}
