/** `coldvault benchmark [--store <dir>] [--seconds N] [--zstd-level N] [--json]` */
import { runBenchmark } from '../../pipeline/index.js';
import { intOption, str, type OptionSpec } from '../args.js';
import type { CommandContext } from '../context.js';

export const benchmarkOptions: OptionSpec = { store: { type: 'string' }, seconds: { type: 'string' }, 'zstd-level': { type: 'string' } };
export const benchmarkHelp = `coldvault benchmark [--store <dir>] [--seconds N] [--zstd-level N] [--json]
  Measures SHA-256, zstd, chunk verify and (with --store) the target's durable write speed on this
  machine, and the backup throughput to expect.`;

export async function benchmarkCommand(ctx: CommandContext): Promise<number> {
  const target = str(ctx.args, 'store') ? ctx.storeDir() : undefined;
  const r = await runBenchmark(ctx.pool(), {
    seconds: intOption(ctx.args, 'seconds', 1),
    zstdLevel: intOption(ctx.args, 'zstd-level', 1) ?? ctx.config.zstdLevel,
    targetDir: target,
  });
  if (ctx.json) {
    ctx.printJson(r);
    return 0;
  }
  const row = (name: string, value: number | undefined, note = ''): string =>
    `${name.padEnd(34)} ${value === undefined ? '-' : `${value.toFixed(0).padStart(6)} MB/s`}  ${note}`;
  ctx.print(
    [
      `coldvault benchmark (${r.workers} worker threads, zstd level ${r.zstdLevel}; log-like data compresses ${r.compressionRatio.toFixed(1)}x)`,
      row('SHA-256, one core', r.sha256SingleCoreMBps, 'node:crypto (OpenSSL)'),
      row('SHA-256, worker pool', r.sha256PoolMBps),
      row('zstd compress, worker pool', r.zstdCompressMBps, 'plain bytes in (without SHA-256)'),
      row('chunk verify (CRC, zstd, SHA-256)', r.verifyMBps, 'plain bytes out; restore and verify'),
      row('target durable write', r.targetWriteMBps, target ? `'${target}', 4 MiB chunk files, O_DIRECT + fdatasync` : 'give --store to measure'),
      row('expected backup, compressible', r.expectedBackupMBps, `non-zero data that compresses like the sample (${r.compressionRatio.toFixed(1)}x)`),
      row('expected backup, incompressible', r.expectedIncompressibleMBps, 'media, encrypted disks; zero chunks and holes cost almost nothing'),
    ].join('\n'),
  );
  return 0;
}
