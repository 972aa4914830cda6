/**
 * The power button pressed again while a driver waits for a shutdown (issue 11 item 6), for the
 * drivers that cannot run a real guest here:
 * - proxmox against the FAKE `qm` of fake-qm.ts (no Proxmox host here): a guest that misses its first
 *   presses (`missed-presses-<vmid>`: each such `qm shutdown` waits its --timeout and dies "got
 *   timeout", as qemu-server's vm_stop does) is shut down by running `qm shutdown` again;
 * - libvirt with an injected runner: libvirt's test driver (test:///) shuts a domain off at the first
 *   `virsh shutdown`, so real virsh cannot show a missed press (libvirt-driver.test.ts runs real virsh);
 * - the config key `hypervisor.buttonRepeatSeconds` and the log line.
 * The real QEMU guest is in qemu-button-repeat.test.ts and test/jobs/job-button-repeat.test.ts.
 */
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { TaskLog } from '../../src/core/log.js';
import { isColdvaultError } from '../../src/core/errors.js';
import { createDriver } from '../../src/guests/hypervisor/index.js';
import { LibvirtDriver } from '../../src/guests/hypervisor/libvirt.js';
import { pressAgainMessage } from '../../src/guests/hypervisor/power-button.js';
import { ProxmoxDriver } from '../../src/guests/hypervisor/proxmox.js';
import type { CommandRunner } from '../../src/guests/hypervisor/run-command.js';
import { makeFakeQm, type FakeQm } from './fake-qm.js';

const PRESSED_AGAIN = /^guest 101 did not react to the ACPI button yet; pressing it again \((\d+)(st|nd|rd|th) press after \d+ s\)$/;

function collectingLog(): { log: TaskLog; lines: string[] } {
  const lines: string[] = [];
  const push = (m: string): void => void lines.push(m);
  return { log: { info: push, warn: push, error: push }, lines };
}

/** The press numbers in `lines`, which must all be the pressing-again line. */
function pressNumbers(lines: string[]): number[] {
  return lines.map((l) => {
    const m = PRESSED_AGAIN.exec(l);
    expect(m, l).not.toBeNull();
    return Number(m?.[1]);
  });
}

describe('the log line and the config key', () => {
  it('names the guest, the press and the time since the first press', () => {
    expect(pressAgainMessage('101', 2, 5_000)).toBe('guest 101 did not react to the ACPI button yet; pressing it again (2nd press after 5 s)');
    const ordinals = [3, 4, 11, 12, 13, 21, 22, 23, 101, 111].map((n) => /\((\d+\w+) press/.exec(pressAgainMessage('1', n, 0))?.[1]);
    expect(ordinals).toEqual(['3rd', '4th', '11th', '12th', '13th', '21st', '22nd', '23rd', '101st', '111th']);
  });

  it('hypervisor.buttonRepeatSeconds takes 0 (press once) or >= 1 s; anything else is CONFIG_INVALID naming it', () => {
    for (const ok of [0, 1, 2.5, 30]) expect(() => createDriver({ driver: 'qemu', buttonRepeatSeconds: ok })).not.toThrow();
    for (const bad of [-1, 0.5, Number.NaN, '5']) {
      let err: unknown;
      try {
        createDriver({ driver: 'libvirt', buttonRepeatSeconds: bad as number });
      } catch (e) {
        err = e;
      }
      expect(isColdvaultError(err, 'CONFIG_INVALID'), String(bad)).toBe(true);
      expect((err as Error).message).toMatch(/hypervisor\.buttonRepeatSeconds must be 0 .* or a number of seconds >= 1, not /);
    }
  });
});

describe('ProxmoxDriver presses again by running `qm shutdown` again (FAKE qm: no Proxmox host here)', () => {
  let fake: FakeQm;
  beforeAll(async () => {
    fake = await makeFakeQm();
  });
  afterAll(async () => {
    await fake.cleanup();
  });
  beforeEach(async () => {
    await writeFile(join(fake.confDir, '101.conf'), 'memory: 512\nname: web01\nscsi0: local-lvm:vm-101-disk-0,size=32G\n');
    await rm(join(fake.dir, 'ignore-acpi-101'), { force: true });
    await fake.setState('101', 'running');
    await fake.clearCalls();
  });

  it('a guest that misses its first two presses powers off at the third, each press after the first logged', async () => {
    await writeFile(join(fake.dir, 'missed-presses-101'), '2\n');
    const { log, lines } = collectingLog();
    await new ProxmoxDriver({ qm: fake.qm, buttonRepeatMs: 1_000 }).shutdown('101', 120_000, { log });
    expect(await fake.state('101')).toBe('stopped');
    const press = 'shutdown 101 --keepActive --timeout 1';
    expect(await fake.calls()).toEqual(['status 101', press, press, press]);
    expect(pressNumbers(lines)).toEqual([2, 3]);
  });

  it('a guest that ignores every press: STOP_TIMEOUT after the stop timeout, pressed more than once, left running', async () => {
    await writeFile(join(fake.dir, 'ignore-acpi-101'), '');
    const { log, lines } = collectingLog();
    const err = await new ProxmoxDriver({ qm: fake.qm, buttonRepeatMs: 1_000 }).shutdown('101', 2_500, { log }).catch((e: unknown) => e);
    expect(isColdvaultError(err, 'STOP_TIMEOUT')).toBe(true);
    expect((err as Error).message).toMatch(
      /^shutting down guest 101 timed out after 3 s; it is still running \(command '.*shutdown 101 --keepActive --timeout 1'\)$/,
    );
    expect(await fake.state('101')).toBe('running');
    const presses = (await fake.calls()).filter((c) => c.startsWith('shutdown'));
    expect(presses.length).toBeGreaterThanOrEqual(2);
    expect(pressNumbers(lines)).toEqual(presses.slice(1).map((_, i) => i + 2));
  });

  it('with buttonRepeatMs 0 a missed press is not repeated: one `qm shutdown --timeout <stop timeout>`, then STOP_TIMEOUT', async () => {
    await writeFile(join(fake.dir, 'missed-presses-101'), '1\n');
    const { log, lines } = collectingLog();
    const err = await new ProxmoxDriver({ qm: fake.qm, buttonRepeatMs: 0 }).shutdown('101', 1_000, { log }).catch((e: unknown) => e);
    expect(isColdvaultError(err, 'STOP_TIMEOUT')).toBe(true);
    expect(await fake.calls()).toEqual(['status 101', 'shutdown 101 --keepActive --timeout 1']);
    expect(lines).toEqual([]);
    expect(await fake.state('101')).toBe('running');
  });

  it('a guest agent that is not up yet (`VM quit/powerdown failed`, injected runner) is asked again; other failures are not', async () => {
    const seen: string[] = [];
    let agentUp = 2;
    const run: CommandRunner = async (argv) => {
      seen.push(argv.slice(1).join(' '));
      if (argv[1] === 'status') return { stdout: 'status: running\n', stderr: '', exitCode: 0 };
      if (agentUp-- > 0) return { stdout: '', stderr: 'VM quit/powerdown failed\n', exitCode: 255 };
      return { stdout: '', stderr: '', exitCode: 0 };
    };
    const { log, lines } = collectingLog();
    await new ProxmoxDriver({ run, buttonRepeatMs: 1_000 }).shutdown('101', 60_000, { log });
    expect(seen).toEqual(['status 101', ...Array<string>(3).fill('shutdown 101 --keepActive --timeout 1')]);
    expect(pressNumbers(lines)).toEqual([2, 3]);

    const locked: CommandRunner = async (argv) =>
      argv[1] === 'status' ? { stdout: 'status: running\n', stderr: '', exitCode: 0 } : { stdout: '', stderr: 'VM is locked (migrate)\n', exitCode: 255 };
    const err = await new ProxmoxDriver({ run: locked, buttonRepeatMs: 1_000 }).shutdown('101', 60_000).catch((e: unknown) => e);
    expect(isColdvaultError(err, 'HYPERVISOR')).toBe(true);
    expect((err as Error).message).toContain('VM is locked (migrate)');
  });
});

describe('LibvirtDriver sends `virsh shutdown --mode acpi` again (injected runner: the test driver shuts down at once)', () => {
  /** a domain that ignores its first `missed` shutdown requests */
  function fakeVirsh(missed: number): { run: CommandRunner; calls: string[] } {
    const calls: string[] = [];
    let state = 'running';
    let shutdowns = 0;
    const run: CommandRunner = async (argv) => {
      const cmd = argv.slice(3);
      calls.push(cmd.join(' '));
      if (cmd[0] === 'domstate') return { stdout: `${state}\n\n`, stderr: '', exitCode: 0 };
      if (cmd[0] !== 'shutdown') return { stdout: '', stderr: `error: unexpected ${cmd.join(' ')}\n`, exitCode: 1 };
      if (++shutdowns > missed) state = 'shut off';
      return { stdout: "Domain 'vm-101' is being shutdown\n\n", stderr: '', exitCode: 0 };
    };
    return { run, calls };
  }

  it('a domain that misses two requests is shut off by the third, each repeat logged', async () => {
    const { run, calls } = fakeVirsh(2);
    const { log, lines } = collectingLog();
    await new LibvirtDriver({ uri: 'qemu:///system', domain: 'vm-{vmid}', run, pollMs: 10, buttonRepeatMs: 60 }).shutdown('101', 60_000, { log });
    expect(calls.filter((c) => c.startsWith('shutdown'))).toEqual(Array<string>(3).fill('shutdown vm-101 --mode acpi'));
    expect(calls.at(-1)).toBe('domstate vm-101');
    expect(pressNumbers(lines)).toEqual([2, 3]);
  });

  it('a repeat refused because the domain went off meanwhile is no error; a refused first request is', async () => {
    const calls: string[] = [];
    let state = 'running';
    let looks = 0;
    const run: CommandRunner = async (argv) => {
      const cmd = argv.slice(3);
      calls.push(cmd.join(' '));
      if (cmd[0] === 'shutdown' && state !== 'running') {
        return { stdout: '', stderr: 'error: Requested operation is not valid: domain is not running\n', exitCode: 1 };
      }
      if (cmd[0] === 'shutdown') return { stdout: "Domain 'vm-101' is being shutdown\n\n", stderr: '', exitCode: 0 };
      await new Promise((r) => setTimeout(r, 20)); // a slow domstate: the repeat is due when it answers
      const answer = state;
      if (++looks === 2) state = 'shut off'; // the guest goes off right after the look that saw it running
      return { stdout: `${answer}\n\n`, stderr: '', exitCode: 0 };
    };
    await new LibvirtDriver({ uri: 'qemu:///system', domain: 'vm-{vmid}', run, pollMs: 10, buttonRepeatMs: 5 }).shutdown('101', 60_000);
    expect(calls).toEqual([
      'domstate vm-101',
      'shutdown vm-101 --mode acpi',
      'domstate vm-101',
      'shutdown vm-101 --mode acpi',
      'domstate vm-101',
      'domstate vm-101',
    ]);

    state = 'paused'; // not running, not off: the first request fails as before
    looks = 10;
    const err = await new LibvirtDriver({ uri: 'qemu:///system', run, buttonRepeatMs: 5 }).shutdown('101', 60_000).catch((e: unknown) => e);
    expect(isColdvaultError(err, 'HYPERVISOR')).toBe(true);
    expect((err as Error).message).toContain('domain is not running');
  });
});
