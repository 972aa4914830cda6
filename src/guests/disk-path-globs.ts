/**
 * The patterns of `allowDiskPaths`: absolute paths with three wildcards. `*` matches any characters
 * of one path segment (never `/`), `?` one character of a segment, `**` any characters across
 * segments (so `/dev/zvol/**` covers every zvol, however deep). Everything else matches itself.
 * A pattern must be absolute and normal (no `.` or `..` segments, no `//`, no trailing `/`), and is
 * matched against normal paths only: `/dev/zvol/../sda` is `/dev/sda` before anything is matched.
 */
import { posix } from 'node:path';
import { ColdvaultError } from '../core/index.js';

/** Throws CONFIG_INVALID naming `where` unless `pattern` is an absolute, normal path pattern. */
export function checkDiskPathPattern(pattern: unknown, where: string): string {
  if (typeof pattern !== 'string' || !pattern.startsWith('/') || pattern === '/') {
    throw new ColdvaultError('CONFIG_INVALID', `${where}: disk path pattern ${JSON.stringify(pattern)} must be an absolute path such as "/dev/disk/by-id/*"`);
  }
  if (posix.normalize(pattern) !== pattern || pattern.endsWith('/')) {
    throw new ColdvaultError('CONFIG_INVALID', `${where}: disk path pattern '${pattern}' must be a normal path (no '.', '..', '//' or trailing '/')`);
  }
  return pattern;
}

/** The first pattern that matches the normalised `path`, or undefined. */
export function matchingPattern(path: string, patterns: readonly string[]): string | undefined {
  const normal = posix.normalize(path);
  return patterns.find((pattern) => globRegExp(pattern).test(normal));
}

function globRegExp(pattern: string): RegExp {
  const parts = pattern.split(/(\*\*|\*|\?)/).map((part) => WILDCARDS.get(part) ?? part.replace(/[\\^$.|+()[\]{}]/g, '\\$&'));
  return new RegExp(`^${parts.join('')}$`);
}

const WILDCARDS = new Map([
  ['**', '.*'],
  ['*', '[^/]*'],
  ['?', '[^/]'],
]);
