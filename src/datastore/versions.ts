/**
 * Version folders: `guests/<vmid>/<version>/`. A version is written in a staging folder
 * (`guests/<vmid>/.staging-<pid>-<rand>/`, with an `.owner` file) and renamed to its number only
 * when every file in it is durable, so a version exists whole or not at all. Removal renames the
 * folder to `.trash-*` first (atomic disappearance), then deletes it. Numbers are never reused:
 * `guests/<vmid>/last-version` remembers the highest one handed out.
 */
import { randomBytes } from 'node:crypto';
import { readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ColdvaultError, errnoCode, ioError } from '../core/index.js';
import { decodeFixedIndex, decodeManifest, MANIFEST_FILE, type FixedIndex, type Manifest } from '../format/index.js';
import { ensureDir, fsyncDir, PRIVATE_FILE, removeTree, writeFileDurable } from './durable.js';
import { holderAlive, thisBoot, thisHost } from './pid.js';

export interface Staging {
  readonly dir: string;
  readonly guestId: string;
  /** Writes a file into the staging folder, fsynced (the folder is synced at publish). */
  writeFile(name: string, data: Uint8Array | string): Promise<void>;
}

const OWNER_FILE = '.owner';
const LAST_VERSION_FILE = 'last-version';

export class VersionFolders {
  constructor(readonly guestsDir: string) {}

  guestDir(guestId: string): string {
    return join(this.guestsDir, guestId);
  }

  versionDir(guestId: string, version: number): string {
    return join(this.guestsDir, guestId, String(version));
  }

  async listGuestIds(): Promise<string[]> {
    const names = await readdir(this.guestsDir).catch((err: unknown) => absentAsEmpty(err, this.guestsDir));
    return names.filter((n) => /^[1-9][0-9]*$/.test(n)).sort((a, b) => Number(a) - Number(b));
  }

  async listVersionNumbers(guestId: string): Promise<number[]> {
    const names = await readdir(this.guestDir(guestId)).catch((err: unknown) => absentAsEmpty(err, this.guestDir(guestId)));
    return names
      .filter((n) => /^[1-9][0-9]*$/.test(n))
      .map(Number)
      .sort((a, b) => a - b);
  }

  async readManifest(guestId: string, version: number): Promise<Manifest> {
    const path = join(this.versionDir(guestId, version), MANIFEST_FILE);
    return decodeManifest(await this.readOrMissing(path, guestId, version), `of guest ${guestId} version ${version}`);
  }

  async readIndex(guestId: string, version: number, indexName: string): Promise<FixedIndex> {
    const path = join(this.versionDir(guestId, version), indexName);
    return decodeFixedIndex(await this.readOrMissing(path, guestId, version), `'${path}'`);
  }

  async readVersionFile(guestId: string, version: number, name: string): Promise<Buffer> {
    return this.readOrMissing(join(this.versionDir(guestId, version), name), guestId, version);
  }

  private async readOrMissing(path: string, guestId: string, version: number): Promise<Buffer> {
    try {
      return await readFile(path);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') {
        const exists = (await this.listVersionNumbers(guestId)).includes(version);
        if (!exists) throw new ColdvaultError('VERSION_NOT_FOUND', `guest ${guestId} has no version ${version} in '${this.guestsDir}'`);
      }
      throw ioError(`reading '${path}'`, err);
    }
  }

  async isProtected(guestId: string, version: number): Promise<boolean> {
    const names = await readdir(this.versionDir(guestId, version)).catch(() => [] as string[]);
    return names.includes('protected');
  }

  async setProtected(guestId: string, version: number, value: boolean): Promise<void> {
    const path = join(this.versionDir(guestId, version), 'protected');
    if (value) await writeFileDurable(path, Buffer.from('protected\n'));
    else await removeTree(path);
  }

  /** The number the next version of this guest gets (never one used before). */
  /** The number the next version would get (a look: nothing is recorded). */
  async nextVersionNumber(guestId: string): Promise<number> {
    const existing = await this.listVersionNumbers(guestId);
    const last = await readFile(join(this.guestDir(guestId), LAST_VERSION_FILE), 'utf8').then(Number, () => 0);
    return Math.max(last || 0, ...existing, 0) + 1;
  }

  /**
   * Hands out the next version number and records it in `last-version` first (durably), so a run that
   * is discarded or dies never has its number given to another version. Call with the guest's lock.
   */
  async takeVersionNumber(guestId: string): Promise<number> {
    const version = await this.nextVersionNumber(guestId);
    await ensureDir(this.guestDir(guestId));
    await writeFileDurable(join(this.guestDir(guestId), LAST_VERSION_FILE), Buffer.from(`${version}\n`));
    return version;
  }

  async createStaging(guestId: string): Promise<Staging> {
    const dir = join(this.guestDir(guestId), `.staging-${process.pid}-${randomBytes(4).toString('hex')}`);
    await ensureDir(dir);
    await writeFile(join(dir, OWNER_FILE), JSON.stringify({ pid: process.pid, host: thisHost, boot: thisBoot, start: Date.now() }), { mode: PRIVATE_FILE });
    return {
      dir,
      guestId,
      writeFile: (name, data) => writeFileDurable(join(dir, name), typeof data === 'string' ? Buffer.from(data) : data, { syncDir: false }),
    };
  }

  /** Makes the staged version visible as `version`: fsync folder, rename, fsync the guest folder. */
  async publish(staging: Staging, version: number): Promise<string> {
    const guestDir = this.guestDir(staging.guestId);
    await writeFileDurable(join(guestDir, LAST_VERSION_FILE), Buffer.from(`${version}\n`));
    await removeTree(join(staging.dir, OWNER_FILE));
    await fsyncDir(staging.dir);
    const target = this.versionDir(staging.guestId, version);
    try {
      await rename(staging.dir, target);
    } catch (err) {
      throw ioError(`publishing version ${version} of guest ${staging.guestId} as '${target}'`, err);
    }
    await fsyncDir(guestDir);
    return target;
  }

  async discardStaging(staging: Staging): Promise<void> {
    await removeTree(staging.dir);
  }

  /** Removes a version: it disappears at once (rename), then its folder is deleted. */
  async removeVersion(guestId: string, version: number): Promise<void> {
    const trash = join(this.guestDir(guestId), `.trash-${version}-${randomBytes(4).toString('hex')}`);
    try {
      await rename(this.versionDir(guestId, version), trash);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') throw new ColdvaultError('VERSION_NOT_FOUND', `guest ${guestId} has no version ${version}`);
      throw ioError(`removing version ${version} of guest ${guestId}`, err);
    }
    await fsyncDir(this.guestDir(guestId));
    await removeTree(trash);
  }

  /** Removes staging folders of dead writers and leftover trash; returns how many. */
  async cleanupStale(guestId: string): Promise<number> {
    const names = await readdir(this.guestDir(guestId)).catch(() => [] as string[]);
    let removed = 0;
    for (const name of names) {
      const path = join(this.guestDir(guestId), name);
      if (name.startsWith('.trash-') || (name.startsWith('.staging-') && !(await stagingAlive(path)))) {
        await removeTree(path);
        removed++;
      }
    }
    return removed;
  }
}

/** A folder that is not there lists empty; any other error (EIO on a failing disk) is no empty list. */
function absentAsEmpty(err: unknown, dir: string): string[] {
  if (errnoCode(err) === 'ENOENT') return [];
  throw ioError(`listing '${dir}'`, err);
}

async function stagingAlive(dir: string): Promise<boolean> {
  try {
    const owner = JSON.parse(await readFile(join(dir, OWNER_FILE), 'utf8')) as { pid: number; host: string; boot?: string };
    return holderAlive(owner);
  } catch {
    return false; // no owner file: a crash right at creation, or a published rename that failed
  }
}
