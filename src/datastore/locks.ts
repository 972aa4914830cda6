/**
 * Locks on a datastore, as files (they work on every filesystem a USB disk may carry, and across
 * processes): `locks/<name>.lock` created with O_EXCL and holding {pid, host, start}. A lock whose
 * holder died (same host, pid gone) is stale and taken over. Writers (running backups) also
 * register in `locks/writer-*.json` so that garbage collection can keep the chunks they touch.
 */
import { randomBytes } from 'node:crypto';
import { link, mkdir, open, readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ColdvaultError, errnoCode, ioError } from '../core/errors.js';
import { holderAlive, thisBoot, thisHost } from './pid.js';

export interface LockHolder {
  pid: number;
  host: string;
  /** the boot of `host` it was taken in: after a reboot its pid means nothing (pid.ts) */
  boot?: string;
  start: number;
  purpose: string;
}

export interface HeldLock {
  readonly path: string;
  release(): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class LockDir {
  constructor(readonly dir: string) {}

  /** Takes lock `name`; waits up to `waitMs` for a live holder, then fails with LOCKED. */
  async acquire(name: string, purpose: string, waitMs = 0): Promise<HeldLock> {
    const path = join(this.dir, `${name}.lock`);
    const deadline = Date.now() + waitMs;
    for (;;) {
      const holder = await this.tryCreate(path, purpose);
      if (!holder) return { path, release: () => unlink(path).catch(() => undefined) };
      if (!holderAlive(holder)) {
        await unlink(path).catch(() => undefined);
        continue;
      }
      if (Date.now() >= deadline) {
        const who = holder.pid > 0 ? ` (pid ${holder.pid} on ${holder.host}, since ${new Date(holder.start).toISOString()})` : '';
        throw new ColdvaultError('LOCKED', `${name} is locked by ${holder.purpose}${who}`);
      }
      await sleep(Math.min(500, Math.max(10, deadline - Date.now())));
    }
  }

  /** Creates the lock file; returns undefined on success, or the current holder. */
  private async tryCreate(path: string, purpose: string): Promise<LockHolder | undefined> {
    await mkdir(this.dir, { recursive: true });
    const holder: LockHolder = { pid: process.pid, host: thisHost, boot: thisBoot, start: Date.now(), purpose };
    try {
      await createExclusive(path, JSON.stringify(holder));
      return undefined;
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw ioError(`creating lock '${path}'`, err);
    }
    return (await readHolder(path)) ?? (await unreadableHolder(path, await this.hasHardLinks()));
  }

  private hardLinks: Promise<boolean> | undefined;

  /** Whether this folder's filesystem has hard links (then a live holder's lock file is never empty). */
  private hasHardLinks(): Promise<boolean> {
    this.hardLinks ??= probeHardLinks(this.dir);
    return this.hardLinks;
  }

  /** Registers a running writer; its start time bounds what GC may sweep. */
  async registerWriter(purpose: string): Promise<HeldLock & { start: number }> {
    await mkdir(this.dir, { recursive: true });
    const start = Date.now();
    const path = join(this.dir, `writer-${process.pid}-${randomBytes(4).toString('hex')}.json`);
    const holder: LockHolder = { pid: process.pid, host: thisHost, boot: thisBoot, start, purpose };
    const temp = `${path}.tmp`;
    await writeFile(temp, JSON.stringify(holder));
    await rename(temp, path); // a writer file is whole or absent: GC never sees half of one
    return { path, start, release: () => unlink(path).catch(() => undefined) };
  }

  /** Live writers; stale registrations of dead processes are removed. */
  async liveWriters(): Promise<LockHolder[]> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    const live: LockHolder[] = [];
    for (const name of names.filter((n) => n.startsWith('writer-') && n.endsWith('.json'))) {
      const holder = await readHolder(join(this.dir, name));
      if (holder && holderAlive(holder)) live.push(holder);
      else if (holder) await unlink(join(this.dir, name)).catch(() => undefined);
    }
    return live;
  }
}

/**
 * Creates `path` with `content` only if it does not exist, atomically: the content goes to a temp file
 * that is hard-linked to the lock name (link fails with EEXIST when the lock is held), so a lock file
 * is never seen empty. Filesystems without hard links (exFAT) fall back to O_EXCL create + write.
 */
async function createExclusive(path: string, content: string): Promise<void> {
  const temp = `${path}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(temp, content);
  try {
    await link(temp, path);
    return;
  } catch (err) {
    const code = errnoCode(err);
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw err;
  } finally {
    await unlink(temp).catch(() => undefined);
  }
  const handle = await open(path, 'wx');
  try {
    await handle.writeFile(content);
  } finally {
    await handle.close();
  }
}

/**
 * A lock file without content. Where the filesystem has hard links, a lock is linked in whole, so an
 * empty one was left by a crash or a disk pulled before its content reached the disk: stale at once.
 * Without hard links (exFAT) it may be being written: young, it counts as held; older than 30 s, stale.
 */
async function unreadableHolder(path: string, hardLinks: boolean): Promise<LockHolder> {
  const stale = { pid: 0, host: thisHost, start: 0, purpose: 'a crashed process (empty lock file)' }; // pid 0 on this host: dead
  if (hardLinks) return stale;
  const age = await stat(path).then((s) => Date.now() - s.mtimeMs, () => Infinity);
  return age > 30_000 ? stale : { pid: -1, host: '?', start: 0, purpose: 'an unknown process (empty lock file; treated as stale after 30 s)' };
}

async function probeHardLinks(dir: string): Promise<boolean> {
  const a = join(dir, `.link-probe-${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
  const b = `${a}.2`;
  try {
    await writeFile(a, '');
    await link(a, b);
    return true;
  } catch {
    return false;
  } finally {
    await unlink(a).catch(() => undefined);
    await unlink(b).catch(() => undefined);
  }
}

async function readHolder(path: string): Promise<LockHolder | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as LockHolder;
  } catch {
    return undefined;
  }
}
