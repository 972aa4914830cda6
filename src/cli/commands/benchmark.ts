/** `coldvault benchmark [--store <dir>] [--seconds N] [--zstd-level N] [--json]` */
import { runBenchmark } from '../../pipeline/index.js';
import { intOption, str, type OptionSpec } from '../args.js';
import type { CommandContext } from '../context.js';

export const benchmarkOptions: OptionSpec = { store: { type: 'string' }, seconds: { type: 'string' }, 'zstd-level': { type: 'string' } };
export const benchmarkHelp = `coldvault benchmark [--store <dir>] [--seconds N] [--zstd-level N] [--json]
  Measures SHA-256, zstd, chunk verify, AES-256-GCM and the encrypted encode, and (with --store) the
  target's durable write speed on this machine, and the backup throughput to expect, plain and encrypted.`;

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
      row(
        'AES-256-GCM, one core',
        r.aes256GcmSingleCoreMBps,
        `4 MiB chunks as --encrypt seals them: ${r.aes256GcmWith === 'native' ? 'in place (native addon, OpenSSL)' : 'node:crypto (OpenSSL; no native addon: not built, or COLDVAULT_NATIVE=off)'}`,
      ),
      row('encrypted encode, worker pool', r.encryptedEncodeMBps, 'zstd, then AES-256-GCM; plain bytes in (without the HMAC name)'),
      row('target durable write', r.targetWriteMBps, target ? `'${target}', 4 MiB chunk files, O_DIRECT + fdatasync` : 'give --store to measure'),
      row('expected backup, compressible', r.expectedBackupMBps, `non-zero data that compresses like the sample (${r.compressionRatio.toFixed(1)}x)`),
      row('expected backup, incompressible', r.expectedIncompressibleMBps, 'media, encrypted disks; zero chunks and holes cost almost nothing'),
      row('expected backup, --encrypt', r.expectedEncryptedBackupMBps, 'compressible as the sample, HMAC-SHA-256 names (as fast as SHA-256), sealed'),
    ].join('\n'),
  );
  return 0;
}
