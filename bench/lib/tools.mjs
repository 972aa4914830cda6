/**
 * The backup tools under test, each driven through its own command line the way an admin would:
 * a fresh repository per round, a full backup, a nightly backup of the changed image at the same
 * path, a restore of the nightly version to an empty folder, and a full read-back check.
 * Every step returns the measurement from exec.measure (seconds, rssKiB).
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { measure, sh } from './exec.mjs';

export const VMID = '101';
export const NEW_ID = '201';

/** The site: a guests dir with 101.conf and a storage dir whose image path the bench links images to. */
export function makeSite(root) {
  const guests = join(root, 'guests');
  const vz = join(root, 'vz');
  mkdirSync(guests, { recursive: true });
  mkdirSync(join(vz, 'images', VMID), { recursive: true });
  writeFileSync(join(guests, `${VMID}.conf`), `name: bench\nscsi0: local:${VMID}/vm-${VMID}-disk-0.raw\n`);
  return { root, guests, vz, source: join(vz, 'images', VMID, `vm-${VMID}-disk-0.raw`) };
}

/** Points the site's disk at `image` (a hard link: same bytes, no copy). */
export function linkSource(site, image) {
  rmSync(site.source, { force: true });
  sh('ln', [image, site.source]);
}

export class Coldvault {
  constructor({ cli, site, tmp }) {
    this.name = 'coldvault';
    this.cli = cli;
    this.site = site;
    this.tmp = tmp;
    this.versions = 0;
  }

  run(args, opts = {}) {
    return measure(process.execPath, [this.cli, ...args], { tmp: this.tmp, ...opts });
  }

  async init(store) {
    this.store = store;
    this.versions = 0;
    rmSync(store, { recursive: true, force: true });
    await this.run(['datastore', 'init', store]);
  }

  siteArgs() {
    return ['--store', this.store, '--guests-dir', this.site.guests, '--storage', `local=${this.site.vz}`];
  }

  async backup(opts = {}) {
    const m = await this.run(['backup', VMID, ...this.siteArgs(), '--json'], opts);
    const [r] = JSON.parse(m.stdout);
    if (!r?.ok) throw new Error(`coldvault backup did not report ok: ${m.stdout}`);
    this.versions = r.version;
    m.info = r;
    return m;
  }

  clearRestore() {
    rmSync(join(this.site.guests, `${NEW_ID}.conf`), { force: true });
    rmSync(join(this.site.vz, 'images', NEW_ID), { recursive: true, force: true });
  }

  /** Restores `version` as guest 201; m.file is the restored disk image. */
  async restore(version, opts = {}) {
    this.clearRestore();
    const m = await this.run(['restore', VMID, '--version', String(version), '--new-id', NEW_ID, ...this.siteArgs(), '--json'], opts);
    const r = JSON.parse(m.stdout);
    const volume = r.volumes?.scsi0;
    const match = /^local:(\d+)\/(.+)$/.exec(volume ?? '');
    if (!match) throw new Error(`coldvault restore: unexpected volume '${volume}' in ${m.stdout}`);
    m.file = join(this.site.vz, 'images', match[1], match[2]);
    return m;
  }

  async verify(opts = {}) {
    const m = await this.run(['verify', '--store', this.store, '--json'], opts);
    const r = JSON.parse(m.stdout);
    if (!r.ok) throw new Error(`coldvault verify reported bad chunks: ${m.stdout}`);
    m.info = r;
    return m;
  }
}

export class Restic {
  constructor({ site, tmp, work }) {
    this.name = 'restic';
    this.site = site;
    this.tmp = tmp;
    this.work = work;
  }

  run(args) {
    return measure('restic', ['-r', this.repo, ...args], { tmp: this.tmp, env: this.env });
  }

  async init(repo) {
    this.repo = repo;
    const cache = `${repo}-cache`;
    rmSync(repo, { recursive: true, force: true });
    rmSync(cache, { recursive: true, force: true });
    this.env = { RESTIC_PASSWORD: 'coldvault-bench', RESTIC_CACHE_DIR: cache };
    // repository format 2: compressed (the default compression, 'auto', is zstd)
    await this.run(['init', '--repository-version', '2']);
  }

  cleanup() {
    rmSync(this.repo, { recursive: true, force: true });
    rmSync(`${this.repo}-cache`, { recursive: true, force: true });
  }

  backup() {
    return this.run(['backup', '--quiet', '--host', 'bench', this.site.source]);
  }

  async restore(target) {
    rmSync(target, { recursive: true, force: true });
    const m = await this.run(['restore', 'latest', '--quiet', '--target', target]);
    m.file = join(target, this.site.source);
    return m;
  }

  verify() {
    return this.run(['check', '--read-data']);
  }
}

export class Borg {
  constructor({ site, tmp, work }) {
    this.name = 'borg';
    this.site = site;
    this.tmp = tmp;
    this.work = work;
    this.archives = 0;
  }

  run(args, cwd) {
    return measure('borg', args, { tmp: this.tmp, env: this.env, cwd });
  }

  async init(repo) {
    this.repo = repo;
    this.archives = 0;
    const base = `${repo}-base`;
    rmSync(repo, { recursive: true, force: true });
    rmSync(base, { recursive: true, force: true });
    this.env = {
      BORG_BASE_DIR: base,
      BORG_PASSPHRASE: '',
      BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK: 'yes',
      BORG_RELOCATED_REPO_ACCESS_IS_OK: 'yes',
    };
    // no encryption, as coldvault (ids are still SHA-256 of the chunks)
    await this.run(['init', '--encryption', 'none', repo]);
  }

  cleanup() {
    rmSync(this.repo, { recursive: true, force: true });
    rmSync(`${this.repo}-base`, { recursive: true, force: true });
  }

  backup() {
    this.archives++;
    // fixed 4 MiB chunks as coldvault's; --sparse skips holes in the input as coldvault does
    return this.run([
      'create',
      '--chunker-params',
      'fixed,4194304',
      '--compression',
      'zstd,3',
      '--sparse',
      `${this.repo}::a${this.archives}`,
      this.site.source,
    ]);
  }

  async restore(target) {
    rmSync(target, { recursive: true, force: true });
    mkdirSync(target, { recursive: true });
    // --sparse: all-zero chunks become holes, as coldvault's restore does
    const m = await this.run(['extract', '--sparse', `${this.repo}::a${this.archives}`], target);
    m.file = join(target, this.site.source.replace(/^\/+/, ''));
    return m;
  }

  verify() {
    return this.run(['check', '--verify-data', this.repo]);
  }
}
