/**
 * `coldvault benchmark`: the figures a user sizes a backup window with. The sums over concurrent lanes
 * must count every run (a `total += await run()` lost the other lanes' runs and made the pool figures
 * 4x too low), the estimates must follow from the measured parts (the encrypted one too: HMAC names
 * as fast as SHA-256, then zstd and the seal on the same workers), the AES-256-GCM and encrypted
 * encode rows must be there (issue 13), and the target probe must leave nothing behind. No speed is
 * asserted (speeds are measured by bench/, not by tests).
 */
import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { sumConcurrently } from '../../src/pipeline/benchmark.js';
import { cli, makeLab, type Lab } from '../helpers/fixtures.js';

let lab: Lab | undefined;
afterEach(() => lab?.cleanup());

describe('benchmark', () => {
  it('sumConcurrently counts every run of every lane', async () => {
    let calls = 0;
    const total = await sumConcurrently(
      4,
      () => calls++ < 100,
      async () => {
        await new Promise((r) => setImmediate(r));
        return 3;
      },
    );
    expect(total).toBe(300);
  });

  it('the CLI reports every figure, estimates that follow from them, and leaves the target clean', async () => {
    lab = makeLab('cv-bench-');
    const target = join(lab.root, 'target');
    mkdirSync(target);
    const r = await cli(['benchmark', '--store', target, '--seconds', '1', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const b = JSON.parse(r.stdout) as Record<string, number>;
    for (const key of [
      'sha256SingleCoreMBps',
      'sha256PoolMBps',
      'zstdCompressMBps',
      'verifyMBps',
      'aes256GcmSingleCoreMBps',
      'encryptedEncodeMBps',
      'targetWriteMBps',
      'expectedBackupMBps',
      'expectedIncompressibleMBps',
      'expectedEncryptedBackupMBps',
    ]) {
      expect(b[key], key).toBeGreaterThan(0);
    }
    expect(b.workers).toBeGreaterThanOrEqual(1);
    expect(['native', 'node:crypto']).toContain((JSON.parse(r.stdout) as { aes256GcmWith: string }).aes256GcmWith);
    expect(b.compressionRatio).toBeGreaterThan(2); // the log-like sample compresses
    const cpu = 1 / (1 / b.sha256PoolMBps! + 1 / b.zstdCompressMBps!);
    expect(b.expectedBackupMBps).toBeCloseTo(Math.min(cpu, b.targetWriteMBps! * b.compressionRatio!), 6);
    expect(b.expectedIncompressibleMBps).toBeCloseTo(Math.min(b.sha256PoolMBps!, b.targetWriteMBps!), 6);
    const encryptedCpu = 1 / (1 / b.sha256PoolMBps! + 1 / b.encryptedEncodeMBps!);
    expect(b.expectedEncryptedBackupMBps).toBeCloseTo(Math.min(encryptedCpu, b.targetWriteMBps! * b.compressionRatio!), 6);
    expect(readdirSync(target)).toEqual([]);
  });
});
