/** `coldvault snapshots [--json]`: the base snapshots kept for changed-extent nightlies, and what each costs. */
import { dirname } from 'node:path';
import { formatBytes } from '../../core/index.js';
import { listGuestIds, readGuestConfig, resolveBackupDisk, selectBackupDisks } from '../../guests/index.js';
import { listBases, type BaseListing } from '../../pipeline/index.js';
import type { OptionSpec } from '../args.js';
import type { CliConfig } from '../config.js';
import type { CommandContext } from '../context.js';

export const snapshotsOptions: OptionSpec = {
  'guests-dir': { type: 'string' },
  storage: { type: 'string', multiple: true },
};

export const snapshotsHelp = `coldvault snapshots [--guests-dir <dir>] [--storage <id>=<dir>]... [--json]
  Lists the base snapshots kept for changed-extent nightly backups (guest, disk, datastore, version, when
  made) and the space each costs: the bytes only the base still holds, i.e. the blocks the guest rewrote
  since (FIEMAP: its extents not shared). Bases are looked for in <storage>/.coldvault-snapshots and next
  to each guest's disks.`;

export async function snapshotsCommand(ctx: CommandContext): Promise<number> {
  const bases = await listBases(await snapshotParents(ctx.config));
  if (ctx.json) ctx.printJson(bases);
  else ctx.print(bases.length === 0 ? 'no base snapshots' : table(bases));
  return 0;
}

/** Where snapshot folders may be: the storages, and the folders of the guests' disks (a storage on another filesystem). */
async function snapshotParents(config: CliConfig): Promise<string[]> {
  const parents = Object.values(config.storages);
  for (const id of await listGuestIds(config.guestsDir).catch(() => [] as string[])) {
    try {
      const { config: guest } = await readGuestConfig(config.guestsDir, id);
      for (const disk of selectBackupDisks(guest).included) {
        const path = await resolveBackupDisk(disk, id, config).catch(() => undefined);
        if (path) parents.push(dirname(path));
      }
    } catch {
      // a guest whose config cannot be read has no disk folder to look in; the storages are still searched
    }
  }
  return parents;
}

function table(bases: BaseListing[]): string {
  const rows = bases.map((b) => [
    b.guestId,
    b.disk,
    b.datastoreId,
    b.version === undefined ? '-' : String(b.version),
    b.created.slice(0, 19).replace('T', ' '),
    b.exclusiveBytes === null ? '?' : formatBytes(b.exclusiveBytes),
    b.snapshotPath + (b.problem ? ` (not used: ${b.problem})` : ''),
  ]);
  const head = ['GUEST', 'DISK', 'DATASTORE', 'VERSION', 'CREATED', 'ONLY IN BASE', 'PATH'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  return [head, ...rows].map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i] as number))).join('  ')).join('\n');
}
