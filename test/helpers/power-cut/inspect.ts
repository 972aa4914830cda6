/**
 * What a datastore and the restore targets must look like after a power cut, read straight from the
 * files (before any coldvault command runs, so that nothing is repaired or quarantined first):
 * - every chunk file under its final name decodes (magic, CRC-32, zstd) and its plain bytes hash to
 *   its name, referenced or not: a later backup dedups against any chunk it finds, so an empty or
 *   short one would poison the versions to come;
 * - every version folder is whole: manifest (with its checksum), a decodable index per disk, the
 *   archived config; and it is a version the harness started, whose disk digests are those of the
 *   source images at the time (computed here, independently of coldvault);
 * - a restored guest is all or nothing: `<id>.conf` only with every volume it names byte-identical to
 *   the backed-up disk; a volume under its final name without a config (a restore cut between its
 *   renames) is whole; temp files (`*.cvtmp-*`) may remain.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CHUNK_SIZE, decodeBlob, decodeFixedIndex, decodeManifest, MANIFEST_FILE, VERSION_CONFIG_FILE } from '../../../src/format/index.js';

/**
 * What a version's disk must be: coldvault's disk digest (SHA-256 over the SHA-256s of its 4 MiB
 * chunks: every byte and the size are in it), computed here from the source, and the size.
 */
export interface ExpectedDisk {
  chain: string;
  size: number;
}
export type ExpectedVersion = Record<string, ExpectedDisk>;
export const versionKey = (guestId: string, version: number): string => `${guestId}/${version}`;

const TEMP_MARK = '.cvtmp-';

export function chainDigest(chunkDigests: Buffer[]): string {
  const outer = createHash('sha256');
  for (const d of chunkDigests) outer.update(d);
  return outer.digest('hex');
}

/** The digest of an image file (a restored disk), the way coldvault's manifest records it. */
export function digestImage(path: string): ExpectedDisk {
  const data = readFileSync(path);
  const chunks: Buffer[] = [];
  for (let off = 0; off < data.length; off += CHUNK_SIZE)
    chunks.push(
      createHash('sha256')
        .update(data.subarray(off, off + CHUNK_SIZE))
        .digest(),
    );
  return { chain: chainDigest(chunks), size: data.length };
}

const sameDisk = (a: ExpectedDisk, b: ExpectedDisk | undefined): boolean => b !== undefined && a.chain === b.chain && a.size === b.size;

/** Every chunk file under its final name that is not whole and right. Returns problems and the count. */
export function inspectChunks(storeDir: string): { problems: string[]; chunks: number } {
  const root = join(storeDir, 'chunks');
  const problems: string[] = [];
  let chunks = 0;
  for (const prefix of existsSync(root) ? readdirSync(root).sort() : []) {
    for (const name of readdirSync(join(root, prefix))) {
      if (name.includes(TEMP_MARK)) continue;
      chunks++;
      const problem = chunkProblem(join(root, prefix, name), name);
      if (problem) problems.push(`chunk ${prefix}/${name}: ${problem}`);
    }
  }
  return { problems, chunks };
}

function chunkProblem(path: string, name: string): string | undefined {
  let blob: Buffer;
  try {
    blob = readFileSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined; // moved to quarantine by a verify running beside
    throw err;
  }
  if (blob.length === 0) return 'empty file';
  try {
    const plain = decodeBlob(blob, `chunk ${name}`);
    const hex = createHash('sha256').update(plain).digest('hex');
    return hex === name ? undefined : `holds data with SHA-256 ${hex} (${blob.length} bytes)`;
  } catch (err) {
    return `${(err as Error).message} (${blob.length} bytes)`;
  }
}

/** The version folders of each guest, checked whole and against what the harness backed up. */
export function inspectVersions(storeDir: string, expected: Map<string, ExpectedVersion>): { problems: string[]; folders: Map<string, number[]> } {
  const guestsDir = join(storeDir, 'guests');
  const problems: string[] = [];
  const folders = new Map<string, number[]>();
  for (const guestId of existsSync(guestsDir) ? readdirSync(guestsDir).filter((n) => /^\d+$/.test(n)) : []) {
    const versions = readdirSync(join(guestsDir, guestId))
      .filter((n) => /^\d+$/.test(n))
      .map(Number)
      .sort((a, b) => a - b);
    folders.set(guestId, versions);
    for (const version of versions)
      problems.push(...versionProblems(join(guestsDir, guestId, String(version)), guestId, version, expected.get(versionKey(guestId, version))));
  }
  return { problems, folders };
}

function versionProblems(dir: string, guestId: string, version: number, want: ExpectedVersion | undefined): string[] {
  const label = `version ${guestId}/${version}`;
  if (!want) return [`${label} exists, but no backup that could have made it was started`];
  const problems: string[] = [];
  try {
    const manifest = decodeManifest(readFileSync(join(dir, MANIFEST_FILE)), label);
    if (manifest.guestId !== guestId || manifest.version !== version) problems.push(`${label}: its manifest names ${manifest.guestId}/${manifest.version}`);
    if (!existsSync(join(dir, VERSION_CONFIG_FILE))) problems.push(`${label}: no ${VERSION_CONFIG_FILE}`);
    const keys = manifest.disks.map((d) => d.key).sort();
    if (keys.join() !== Object.keys(want).sort().join()) problems.push(`${label}: disks ${keys.join()} instead of ${Object.keys(want).sort().join()}`);
    for (const disk of manifest.disks) {
      const index = decodeFixedIndex(readFileSync(join(dir, disk.index)), `${label} ${disk.index}`);
      if (index.size !== want[disk.key]?.size || disk.sha256 !== want[disk.key]?.chain)
        problems.push(`${label}: disk ${disk.key} is not the image that was backed up`);
    }
  } catch (err) {
    problems.push(`${label}: ${(err as Error).message}`);
  }
  return problems;
}

export interface RestoreLayout {
  guestsDir: string;
  /** the `local` storage: volumes are images/<id>/<file> */
  storageDir: string;
}

/** Volumes a restored config names, by disk key. */
export function configVolumes(text: string): Map<string, string> {
  const volumes = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^((?:scsi|virtio|sata|ide)\d+): ([^,\s]+)/.exec(line);
    if (m && !line.includes('media=cdrom') && m[2] !== 'none') volumes.set(m[1] as string, m[2] as string);
  }
  return volumes;
}

const volumePath = (layout: RestoreLayout, volume: string): string => {
  const m = /^local:(\d+)\/(.+)$/.exec(volume);
  return m ? join(layout.storageDir, 'images', m[1] as string, m[2] as string) : volume;
};

/**
 * A restore to `newId` of a version whose disks are `want`: all or nothing. Returns the problems and
 * whether the guest is restored (its config exists).
 */
export function inspectRestore(layout: RestoreLayout, newId: string, want: ExpectedVersion): { problems: string[]; restored: boolean } {
  const label = `restore to ${newId}`;
  const configPath = join(layout.guestsDir, `${newId}.conf`);
  const problems: string[] = [];
  const restored = existsSync(configPath);
  const named = new Set<string>();
  if (restored) {
    const volumes = configVolumes(readFileSync(configPath, 'utf8'));
    if ([...volumes.keys()].sort().join() !== Object.keys(want).sort().join())
      problems.push(`${label}: ${newId}.conf names disks ${[...volumes.keys()].join()} (expected ${Object.keys(want).join()})`);
    for (const [key, volume] of volumes) {
      const path = volumePath(layout, volume);
      named.add(path);
      if (!existsSync(path)) problems.push(`${label}: ${newId}.conf names ${volume}, which does not exist`);
      else if (!sameDisk(digestImage(path), want[key]))
        problems.push(`${label}: ${volume} (${key}) is not byte-identical to the backed-up disk (${statSync(path).size} bytes)`);
    }
  }
  const imageDir = join(layout.storageDir, 'images', newId);
  const wholeDisks = Object.values(want);
  for (const name of existsSync(imageDir) ? readdirSync(imageDir) : []) {
    const path = join(imageDir, name);
    if (name.includes(TEMP_MARK) || named.has(path)) continue;
    // a final name without a config: the restore was cut between its renames; it must hold a whole disk
    const disk = digestImage(path);
    if (!wholeDisks.some((d) => sameDisk(disk, d)))
      problems.push(`${label}: '${name}' is under its final name but holds no whole disk (${statSync(path).size} bytes)`);
  }
  return { problems, restored };
}

/** Files of a restore that a finished restore must not leave behind: temp files and volumes no config names. */
export function restoreLeftovers(layout: RestoreLayout, newId: string): string[] {
  const imageDir = join(layout.storageDir, 'images', newId);
  const configPath = join(layout.guestsDir, `${newId}.conf`);
  const named = existsSync(configPath)
    ? new Set([...configVolumes(readFileSync(configPath, 'utf8')).values()].map((v) => volumePath(layout, v)))
    : new Set<string>();
  const leftovers = (existsSync(imageDir) ? readdirSync(imageDir) : []).map((n) => join(imageDir, n)).filter((p) => !named.has(p));
  const tempConfigs = readdirSync(layout.guestsDir)
    .filter((n) => n.startsWith(`${newId}.conf${TEMP_MARK}`))
    .map((n) => join(layout.guestsDir, n));
  return [...leftovers, ...tempConfigs];
}
