/**
 * Locks on a datastore, as files (they work on every filesystem a USB disk may carry, and across
 * processes): `locks/<name>.lock` created with O_EXCL and holding {pid, host, start}. A lock whose
 * holder died (same host, pid gone) is stale and taken over.
 *
 * Besides exclusive locks there are registrations, many at a time, each its own file
 * `locks/<kind>-<...>-<pid>-<rand>.json`: writers (running backups, `writer-*`) so that garbage
 * collection keeps the chunks they touch, and read leases (`read-<vmid>-<version>-*`) of restores
 * and exports so that prune keeps the version they read (see version-use.ts for the protocol). A
 * registration may name a `whileFile`: it then holds while that file exists on its host, not while
 * its process lives (a live restore's hold on its version, which must outlast a crash).
 *
 * What is locked when:
 *   guest-<vmid>            one backup of a guest at a time (held for the whole backup)
 *   prune-<vmid>            prune, keep-N rotation and protect of a guest, one at a time
 *   remove-<vmid>-<n>       held while prune decides on and removes one version
 *   restore-<new vmid>      one restore to a new guest id at a time
 *   gc                      one garbage collection at a time
 */
import { randomBytes } from 'node:crypto';
import { link, mkdir, open, readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { type Checkpoint, type Clock, ColdvaultError, errnoCode, ioError, systemClock } from '../core/index.js';
import { PRIVATE_DIR, PRIVATE_FILE } from './durable.js';
import { holderAlive, thisBoot, thisHost } from './pid.js';

export interface LockHolder {
  pid: number;
  host: string;
  /** the boot of `host` it was taken in: after a reboot its pid means nothing (pid.ts) */
  boot?: string;
  start: number;
  purpose: string;
  /** held while this file exists on `host`, whatever becomes of the process (a durable hold: pid.ts) */
  whileFile?: string;
}

export interface HeldLock {
  readonly path: string;
  release(): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class LockDir {
  constructor(
    readonly dir: string,
    /** the clock of writer registrations (which garbage collection compares with chunk times) and of waits */
    private readonly clock: Clock = systemClock,
    private readonly checkpoint?: Checkpoint,
  ) {}

  /** Takes lock `name`; waits up to `waitMs` for a live holder, then fails with LOCKED. */
  async acquire(name: string, purpose: string, waitMs = 0): Promise<HeldLock> {
    const path = join(this.dir, `${name}.lock`);
    const deadline = this.clock.now() + waitMs;
    for (let attempt = 0; ; attempt++) {
      const holder = await this.tryCreate(path, purpose);
      if (!holder) return { path, release: () => unlink(path).catch(() => undefined) };
      if (!holderAlive(holder)) {
        await unlink(path).catch(() => undefined);
        continue;
      }
      if (this.clock.now() >= deadline) throw new ColdvaultError('LOCKED', `${name} is locked by ${describeHolder(holder)}`);
      await this.pause(attempt, deadline);
    }
  }

  /** Waits before the next look at a lock: 10 ms, doubling up to 500 ms, never past the deadline. */
  async pause(attempt: number, deadline: number): Promise<void> {
    if (this.checkpoint) await this.checkpoint('lock:wait');
    await sleep(Math.min(500, 10 * 2 ** Math.min(attempt, 6), Math.max(1, deadline - this.clock.now())));
  }

  /** The live holder of lock `name`, or undefined when it is free (or its holder died). */
  async holder(name: string): Promise<LockHolder | undefined> {
    const path = join(this.dir, `${name}.lock`);
    const holder = await readHolder(path);
    if (holder) return holderAlive(holder) ? holder : undefined;
    const exists = await stat(path).then(
      () => true,
      () => false,
    );
    if (!exists) return undefined;
    const unreadable = await unreadableHolder(path, await this.hasHardLinks());
    return holderAlive(unreadable) ? unreadable : undefined;
  }

  /** Creates the lock file; returns undefined on success, or the current holder. */
  private async tryCreate(path: string, purpose: string): Promise<LockHolder | undefined> {
    await mkdir(this.dir, { recursive: true, mode: PRIVATE_DIR });
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
  registerWriter(purpose: string): Promise<HeldLock & { start: number }> {
    return this.register('writer-', purpose);
  }

  /** Live writers; stale registrations of dead processes are removed. */
  liveWriters(): Promise<LockHolder[]> {
    return this.liveRegistrations('writer-');
  }

  /**
   * Adds a registration `<prefix><pid>-<rand>.json`. Its start is taken before the file appears, and
   * the file is whole or absent (written aside, then renamed): nobody ever sees half of one.
   */
  async register(prefix: string, purpose: string, options: { whileFile?: string } = {}): Promise<HeldLock & { start: number }> {
    await mkdir(this.dir, { recursive: true, mode: PRIVATE_DIR });
    const start = this.clock.now();
    const path = join(this.dir, `${prefix}${process.pid}-${randomBytes(4).toString('hex')}.json`);
    const holder: LockHolder = { pid: process.pid, host: thisHost, boot: thisBoot, start, purpose, ...options };
    const temp = `${path}.tmp`;
    await writeFile(temp, JSON.stringify(holder), { mode: PRIVATE_FILE });
    await rename(temp, path);
    return { path, start, release: () => unlink(path).catch(() => undefined) };
  }

  /** Ends a registration made by another process (a durable hold, by the path it was given): nothing outside this folder. */
  async dropRegistration(path: string): Promise<void> {
    if (dirname(path) !== this.dir || !path.endsWith('.json')) {
      throw new ColdvaultError('USAGE', `'${path}' is not a registration in the lock folder '${this.dir}'`);
    }
    await unlink(path).catch(() => undefined);
  }

  /** The live registrations whose names start with `prefix`; those of dead processes are removed. */
  async liveRegistrations(prefix: string): Promise<LockHolder[]> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    const live: LockHolder[] = [];
    for (const name of names.filter((n) => n.startsWith(prefix) && n.endsWith('.json'))) {
      const holder = await readHolder(join(this.dir, name));
      if (holder && holderAlive(holder)) live.push(holder);
      else if (holder) await unlink(join(this.dir, name)).catch(() => undefined);
    }
    return live;
  }
}

export function describeHolder(holder: LockHolder): string {
  if (holder.whileFile) return `${holder.purpose} (held on ${holder.host} while '${holder.whileFile}' exists, since ${new Date(holder.start).toISOString()})`;
  const who = holder.pid > 0 ? ` (pid ${holder.pid} on ${holder.host}, since ${new Date(holder.start).toISOString()})` : '';
  return `${holder.purpose}${who}`;
}

/**
 * Creates `path` with `content` only if it does not exist, atomically: the content goes to a temp file
 * that is hard-linked to the lock name (link fails with EEXIST when the lock is held), so a lock file
 * is never seen empty. Filesystems without hard links (exFAT) fall back to O_EXCL create + write.
 */
async function createExclusive(path: string, content: string): Promise<void> {
  const temp = `${path}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(temp, content, { mode: PRIVATE_FILE });
  try {
    await link(temp, path);
    return;
  } catch (err) {
    const code = errnoCode(err);
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw err;
  } finally {
    await unlink(temp).catch(() => undefined);
  }
  const handle = await open(path, 'wx', PRIVATE_FILE);
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
  const age = await stat(path).then(
    (s) => Date.now() - s.mtimeMs,
    () => Infinity,
  );
  return age > 30_000 ? stale : { pid: -1, host: '?', start: 0, purpose: 'an unknown process (empty lock file; treated as stale after 30 s)' };
}

async function probeHardLinks(dir: string): Promise<boolean> {
  const a = join(dir, `.link-probe-${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
  const b = `${a}.2`;
  try {
    await writeFile(a, '', { mode: PRIVATE_FILE });
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
