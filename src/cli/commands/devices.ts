/** `coldvault devices [--json] [--all] [DEV...]`: attached, unmounted filesystems and the datastore each holds. */
import { formatBytes } from '../../core/index.js';
import { listDevices, type DiscoveredDevice } from '../../targets/index.js';
import { flag, type OptionSpec } from '../args.js';
import type { CommandContext } from '../context.js';

export const devicesOptions: OptionSpec = { all: { type: 'boolean' } };
export const devicesHelp = `coldvault devices [--json] [--all] [DEV...]
  Lists attached, unmounted USB / removable filesystems (--all: also loop devices and fixed disks; DEV
  (/dev/..., UUID=..., LABEL=...): only those) with size, filesystem, label, UUID, model and the coldvault
  datastore each holds (each mounted read-only for a moment, without journal replay; root).`;

const COLUMNS = ['DEVICE', 'SIZE', 'FS', 'LABEL', 'UUID', 'MODEL', 'DATASTORE'];

function row(d: DiscoveredDevice): string[] {
  const model = [d.model, d.serial].filter((v) => v !== null).join(' ');
  const datastore = d.datastore?.id ?? (d.probeError ? '? (not mountable)' : '-');
  return [d.path, formatBytes(d.size), d.fstype ?? '-', d.label ?? '-', d.uuid ?? '-', model || '-', datastore];
}

export function devicesTable(devices: DiscoveredDevice[]): string {
  const rows = [COLUMNS, ...devices.map(row)];
  const widths = COLUMNS.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map((r) =>
      r
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export async function devicesCommand(ctx: CommandContext): Promise<number> {
  const only = ctx.args.positionals.length > 0 ? ctx.args.positionals : undefined;
  const devices = await listDevices({ all: flag(ctx.args, 'all'), only });
  if (ctx.json) ctx.printJson(devices);
  else ctx.print(devices.length === 0 ? 'no attached, unmounted devices found (--all also lists loop devices and fixed disks)' : devicesTable(devices));
  for (const d of devices) if (d.probeError) ctx.log.warn(`${d.path}: ${d.probeError}`);
  return 0;
}
