/**
 * QemuDriver and QmpClient against real QEMU (TCG) running the tiny test guest (test/helpers/tiny-guest.ts):
 * ACPI shutdown, restart, the stop timeout of a guest that ignores the button, hard stop, idempotence.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isColdvaultError } from '../../src/core/errors.js';
import { QemuDriver } from '../../src/guests/hypervisor/qemu.js';
import { QmpClient } from '../../src/guests/hypervisor/qmp.js';
import { ensureTinyGuest, guestFiles, killGuest, makeGuestDisk, readBootCount, startScript, waitForSerial } from '../helpers/tiny-guest.js';

const READY = 'coldvault-tiny-guest: waiting for the power button';

let dir: string;
let driver: QemuDriver;
let stubborn: QemuDriver;
const used = new Set<string>();

async function newGuest(vmid: string): Promise<string> {
  used.add(vmid);
  const { disk } = guestFiles(dir, vmid);
  await makeGuestDisk(disk);
  return disk;
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => expect.fail('expected a rejection'),
    (err: unknown) => err,
  );
}

beforeAll(async () => {
  const guest = await ensureTinyGuest();
  dir = await mkdtemp(join(tmpdir(), 'cv-qemu-'));
  const qmpSocket = join(dir, '{vmid}.qmp');
  driver = new QemuDriver({ qmpSocket, startCommand: (await startScript({ dir, guest })).startCommand });
  const ignoring = await startScript({ dir, guest, ignoreAcpi: true, name: 'start-stubborn.sh' });
  stubborn = new QemuDriver({ qmpSocket, startCommand: ignoring.startCommand });
});

afterEach(async () => {
  for (const vmid of used) await killGuest(dir, vmid);
  used.clear();
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('QemuDriver with a real guest', () => {
  it('boots, powers off on the ACPI request, boots again', async () => {
    const disk = await newGuest('101');
    await driver.start('101');
    expect(await driver.status('101')).toBe('running');
    await driver.start('101'); // idempotent
    await waitForSerial(dir, '101', READY);
    expect(await readBootCount(disk)).toBe(1);

    await driver.shutdown('101', 30_000);
    expect(await driver.status('101')).toBe('stopped');
    await driver.shutdown('101', 1_000); // idempotent
    await driver.stop('101');

    await driver.start('101');
    await waitForSerial(dir, '101', READY);
    // the raw client: the guest's own power-off is a SHUTDOWN event with guest: true
    const qmp = await QmpClient.connect(guestFiles(dir, '101').qmp);
    expect(await qmp.execute('query-status')).toMatchObject({ status: 'running', running: true });
    await qmp.execute('system_powerdown');
    const shutdown = await qmp.waitForEvent('SHUTDOWN', 30_000);
    expect(shutdown.data).toMatchObject({ guest: true, reason: 'guest-shutdown' });
    await qmp.closed;
    expect(qmp.events.map((e) => e.event)).toContain('POWERDOWN');
    expect(await readBootCount(disk)).toBe(2);
  });

  it('rejects STOP_TIMEOUT for a guest that ignores the button, which stop() then kills', async () => {
    await newGuest('102');
    await stubborn.start('102');
    await waitForSerial(dir, '102', 'coldvault-tiny-guest: ignoring the power button');
    const started = Date.now();
    const err = await rejection(stubborn.shutdown('102', 3_000));
    expect(Date.now() - started).toBeGreaterThanOrEqual(2_900);
    expect(isColdvaultError(err, 'STOP_TIMEOUT')).toBe(true);
    expect((err as Error).message).toMatch(/guest 102 did not power off within 3 s/);
    expect(await stubborn.status('102')).toBe('running');

    await stubborn.stop('102');
    expect(await stubborn.status('102')).toBe('stopped');
  });

  it('reports an unknown guest as stopped; shutdown and stop of it resolve', async () => {
    expect(await driver.status('999')).toBe('stopped');
    await driver.shutdown('999', 1_000);
    await driver.stop('999');
  });

  it('fails to start without a startCommand, or when it fails', async () => {
    const bare = new QemuDriver({ qmpSocket: join(dir, '{vmid}.qmp') });
    const err = await rejection(bare.start('103'));
    expect(isColdvaultError(err, 'START_FAILED')).toBe(true);
    expect((err as Error).message).toMatch(/hypervisor\.startCommand/);

    const failing = new QemuDriver({ qmpSocket: join(dir, '{vmid}.qmp'), startCommand: 'echo "no disk for {vmid}" >&2; exit 3' });
    const err2 = await rejection(failing.start('103'));
    expect(isColdvaultError(err2, 'START_FAILED')).toBe(true);
    expect((err2 as Error).message).toMatch(/exited with 3: no disk for 103/);
  });
});
