// ProxmoxDriver, tested WITHOUT a Proxmox host: `qm` is the FAKE of fake-qm.ts, a shell script that
// appends its argv to calls.log, keeps each guest's state in a file and its lock in the guest's config
// file, and answers the way qm does as read from qemu-server's source (`status: running`, `VM is
// locked (backup)`, `VM quit/powerdown failed - got timeout`, exit 255 from a Perl die...).
// What this shows: the exact command lines (as vzdump's stop mode runs them), the parsing, the error
// mapping, the lock protocol against a qm that refuses a locked guest as the real one does, and that
// the real execa runner works. What it cannot show: real qm/QEMU behaviour.
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ColdvaultError } from '../../src/core/errors.js';
import { ProxmoxDriver, parseQmLock, parseQmStatus } from '../../src/guests/hypervisor/proxmox.js';
import type { CommandRunner } from '../../src/guests/hypervisor/run-command.js';
import { formatCommand, runCommand } from '../../src/guests/hypervisor/run-command.js';
import { makeFakeQm, type FakeQm } from './fake-qm.js';

const CONF_101 =
  'boot: order=scsi0\nmemory: 512\nname: web01\nparent: snap1\nscsi0: local-lvm:vm-101-disk-0,size=32G\n\n[snap1]\nmemory: 512\nname: web01\nscsi0: local-lvm:vm-101-disk-0,size=32G\nsnaptime: 1714557600\n';

let fake: FakeQm;
let dir: string;
let qm: string;

const setState = (vmid: string, s: 'running' | 'stopped' | 'paused'): Promise<void> => fake.setState(vmid, s);
const state = (vmid: string): Promise<string> => fake.state(vmid);
const calls = (): Promise<string[]> => fake.calls();

beforeAll(async () => {
  fake = await makeFakeQm();
  dir = fake.dir;
  qm = fake.qm;
});
afterAll(async () => {
  await fake.cleanup();
});
beforeEach(async () => {
  await writeFile(join(fake.confDir, '101.conf'), CONF_101);
  await fake.clearCalls();
  await rm(join(dir, 'ignore-acpi-101'), { force: true });
  await rm(join(dir, 'broken-101'), { force: true });
  await setState('101', 'running');
});

describe('parseQmStatus', () => {
  it('reads `status: X`', () => {
    expect(parseQmStatus('status: running\n')).toBe('running');
    expect(parseQmStatus('status: stopped\n')).toBe('stopped');
    expect(parseQmStatus('status: paused\n')).toBe('paused');
    expect(parseQmStatus('status: prelaunch\n')).toBe('unknown');
    expect(parseQmStatus('')).toBe('unknown');
  });
});

describe('ProxmoxDriver against a fake qm (no Proxmox host here)', () => {
  it('status runs `qm status <vmid>` and parses it', async () => {
    const d = new ProxmoxDriver({ qm });
    expect(d.name).toBe('proxmox');
    expect(await d.status('101')).toBe('running');
    await setState('101', 'paused');
    expect(await d.status('101')).toBe('paused');
    expect(await calls()).toEqual(['status 101', 'status 101']);
  });

  it('shutdown (pressed once: buttonRepeatMs 0) and start use the command lines of vzdump stop mode; --skiplock only while it holds the backup lock', async () => {
    const d = new ProxmoxDriver({ qm, pollMs: 10, buttonRepeatMs: 0 });
    await d.lockBackup('101');
    await d.shutdown('101', 600_000); // vzdump: stopwait 10 min
    expect(await state('101')).toBe('stopped');
    await d.start('101');
    expect(await state('101')).toBe('running');
    await d.unlockBackup('101');
    await d.shutdown('101', 600_000);
    await d.start('101');
    expect(await calls()).toEqual([
      'set 101 --lock backup',
      'status 101',
      'shutdown 101 --skiplock --keepActive --timeout 600',
      'status 101',
      'start 101 --skiplock',
      'status 101',
      'config 101 --current',
      'unlock 101',
      'status 101',
      'shutdown 101 --keepActive --timeout 600',
      'status 101',
      'start 101',
      'status 101',
    ]);
  });

  it('is idempotent: shutdown/stop of a stopped guest and start of a running one only ask status', async () => {
    const d = new ProxmoxDriver({ qm });
    await setState('101', 'stopped');
    await d.shutdown('101', 5000);
    await d.stop('101');
    await setState('101', 'running');
    await d.start('101');
    expect(await calls()).toEqual(['status 101', 'status 101', 'status 101']);
  });

  it('stop is `qm stop <vmid>`, with --skiplock while it holds the backup lock', async () => {
    const d = new ProxmoxDriver({ qm });
    await d.stop('101');
    expect(await state('101')).toBe('stopped');
    await setState('101', 'running');
    await d.lockBackup('101');
    await d.stop('101');
    expect(await state('101')).toBe('stopped');
    expect(await calls()).toEqual(['status 101', 'stop 101', 'set 101 --lock backup', 'status 101', 'stop 101 --skiplock']);
  });

  it("qm's shutdown timeout is STOP_TIMEOUT and the guest stays running", async () => {
    await writeFile(join(dir, 'ignore-acpi-101'), '');
    const d = new ProxmoxDriver({ qm });
    const err = await d.shutdown('101', 1500).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ColdvaultError);
    expect((err as ColdvaultError).code).toBe('STOP_TIMEOUT');
    expect((err as ColdvaultError).message).toContain('guest 101');
    expect((err as ColdvaultError).message).toContain('shutdown 101 --keepActive --timeout 2');
    expect(((err as ColdvaultError).cause as Error).message).toContain('VM quit/powerdown failed - got timeout');
    expect(await state('101')).toBe('running');
  });

  it('a qm that outlives its own timeout is killed and reported as STOP_TIMEOUT, not run again (injected runner)', async () => {
    const seen: string[][] = [];
    const run: CommandRunner = async (argv, opts) => {
      seen.push(argv);
      if (argv[1] === 'status') return { stdout: 'status: running\n', stderr: '', exitCode: 0 };
      expect(opts?.timeoutMs).toBeGreaterThan(10_000); // qm's --timeout plus grace
      return { stdout: '', stderr: '', exitCode: -1, timedOut: true, signal: 'SIGTERM' };
    };
    const err = await new ProxmoxDriver({ run }).shutdown('101', 10_000).catch((e: unknown) => e);
    expect((err as ColdvaultError).code).toBe('STOP_TIMEOUT');
    // the first press waits the repeat interval (5 s by default), then qm is killed by us
    expect(seen.map((a) => a.join(' '))).toEqual(['qm status 101', 'qm shutdown 101 --keepActive --timeout 5']);
  });

  it('a non-zero exit is a HYPERVISOR error naming the command, its first stderr line and the exit code', async () => {
    const d = new ProxmoxDriver({ qm });
    const err = await d.status('999').catch((e: unknown) => e);
    expect((err as ColdvaultError).code).toBe('HYPERVISOR');
    expect((err as ColdvaultError).message).toBe(
      `command '${qm} status 999' failed: Configuration file 'nodes/pve/qemu-server/999.conf' does not exist (exit 2)`,
    );
  });

  it('a failing qm start is START_FAILED carrying the command and its error', async () => {
    await setState('101', 'stopped');
    await writeFile(join(dir, 'broken-101'), '');
    const err = await new ProxmoxDriver({ qm }).start('101').catch((e: unknown) => e);
    expect((err as ColdvaultError).code).toBe('START_FAILED');
    expect((err as ColdvaultError).message).toContain(`command '${qm} start 101' failed: kvm: -drive`);
    expect((err as ColdvaultError).message).toContain('(exit 255)');
    expect(((err as ColdvaultError).cause as ColdvaultError).code).toBe('HYPERVISOR');
  });

  it('start waits until qm reports running, else START_FAILED', async () => {
    let statusCalls = 0;
    const run: CommandRunner = async (argv) => {
      if (argv[1] === 'start') return { stdout: '', stderr: '', exitCode: 0 };
      statusCalls++;
      return { stdout: 'status: stopped\n', stderr: '', exitCode: 0 };
    };
    const err = await new ProxmoxDriver({ run, pollMs: 20 }).start('101', 100).catch((e: unknown) => e);
    expect((err as ColdvaultError).code).toBe('START_FAILED');
    expect((err as ColdvaultError).message).toContain('state: stopped');
    expect(statusCalls).toBeGreaterThan(2);
  });

  it('refuses a vmid that is not one (no argument injection into qm)', async () => {
    const err = await new ProxmoxDriver({ qm }).status('--help').catch((e: unknown) => e);
    expect((err as ColdvaultError).code).toBe('USAGE');
    expect(await calls()).toEqual([]);
  });
});

describe("the backup lock, vzdump's `lock: backup`, against the fake qm", () => {
  const confPath = (): string => join(fake.confDir, '101.conf');
  const lockedBy = async (lock: string): Promise<void> => {
    await writeFile(confPath(), CONF_101.replace('name: web01\n', `lock: ${lock}\nname: web01\n`));
  };

  it('parseQmLock reads the lock line of `qm config`', () => {
    expect(parseQmLock('boot: order=scsi0\nlock: backup\nmemory: 512\n')).toBe('backup');
    expect(parseQmLock('lock: snapshot-delete\n')).toBe('snapshot-delete');
    expect(parseQmLock('boot: order=scsi0\nmemory: 512\n')).toBeUndefined();
  });

  it('is set in the config before the shutdown and keeps anyone else from starting the guest; the driver itself passes; unlock restores the config', async () => {
    const d = new ProxmoxDriver({ qm, pollMs: 10 });
    await d.lockBackup('101');
    expect(await fake.lock('101')).toBe('backup');
    const locked = await readFile(confPath(), 'utf8');
    expect(locked.slice(locked.indexOf('[snap1]'))).toBe(CONF_101.slice(CONF_101.indexOf('[snap1]'))); // main section only
    await d.shutdown('101', 60_000);
    expect(await state('101')).toBe('stopped');

    const other = await fake.runAsOther(['start', '101']); // the GUI, an admin, HA: no --skiplock
    expect(other.exitCode).toBe(255);
    expect(other.stderr).toContain('VM is locked (backup)');
    expect(await state('101')).toBe('stopped');

    await d.start('101');
    expect(await state('101')).toBe('running');
    await d.unlockBackup('101');
    expect(await fake.lock('101')).toBeUndefined();
    expect(await readFile(confPath(), 'utf8')).toBe(CONF_101);
  });

  for (const lock of ['migrate', 'snapshot', 'backup']) {
    it(`a guest that holds 'lock: ${lock}' already is refused with GUEST_LOCKED naming it, and is not touched`, async () => {
      await lockedBy(lock);
      const d = new ProxmoxDriver({ qm });
      const err = await d.lockBackup('101').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ColdvaultError);
      expect((err as ColdvaultError).code).toBe('GUEST_LOCKED');
      expect((err as ColdvaultError).message).toContain(`guest 101 is locked by another Proxmox operation ('lock: ${lock}' in its config)`);
      expect(await fake.lock('101')).toBe(lock);
      expect(await calls()).toEqual(['set 101 --lock backup']);
      // and the driver does not pass over that lock afterwards
      const stop = await d.shutdown('101', 60_000).catch((e: unknown) => e);
      expect((stop as ColdvaultError).code).toBe('HYPERVISOR');
      expect((stop as ColdvaultError).message).toContain(`VM is locked (${lock})`);
      expect(await state('101')).toBe('running');
    });
  }

  it('unlock by another driver (a recovery after a crash) removes a backup lock; no lock: only asks; another lock: left in place', async () => {
    await new ProxmoxDriver({ qm }).lockBackup('101');
    await new ProxmoxDriver({ qm }).unlockBackup('101');
    expect(await fake.lock('101')).toBeUndefined();
    await new ProxmoxDriver({ qm }).unlockBackup('101');
    expect(await calls()).toEqual(['set 101 --lock backup', 'config 101 --current', 'unlock 101', 'config 101 --current']);

    await lockedBy('migrate');
    const err = await new ProxmoxDriver({ qm }).unlockBackup('101').catch((e: unknown) => e);
    expect((err as ColdvaultError).code).toBe('GUEST_LOCKED');
    expect((err as ColdvaultError).message).toContain("guest 101 holds 'lock: migrate', not the 'lock: backup' coldvault set: left in place");
    expect(await fake.lock('101')).toBe('migrate');
  });
});

describe('runCommand', () => {
  it('runs argv without a shell, with LC_ALL=C, and reports exit codes and timeouts', async () => {
    const r = await runCommand(['/bin/sh', '-c', 'echo "$LC_ALL"; echo oops >&2; exit 3']);
    expect(r).toMatchObject({ stdout: 'C\n', stderr: 'oops\n', exitCode: 3 });
    const literal = await runCommand(['/bin/echo', '$HOME;', '`id`']);
    expect(literal.stdout).toBe('$HOME; `id`\n');
    const slow = await runCommand(['/bin/sleep', '5'], { timeoutMs: 100 });
    expect(slow.timedOut).toBe(true);
  });

  it('a missing program is HYPERVISOR naming the command', async () => {
    const err = await runCommand(['/nonexistent/qm', 'status', '101']).catch((e: unknown) => e);
    expect((err as ColdvaultError).code).toBe('HYPERVISOR');
    expect((err as ColdvaultError).message).toContain("command '/nonexistent/qm status 101' failed");
    expect((err as ColdvaultError).message).toContain('ENOENT');
  });

  it('formatCommand quotes what needs quoting', () => {
    expect(formatCommand(['qm', 'start', '101', '--skiplock'])).toBe('qm start 101 --skiplock');
    expect(formatCommand(['virsh', '-c', 'test:///default', "shutdown 'a b'; domstate x"])).toBe(
      `virsh -c test:///default 'shutdown '\\''a b'\\''; domstate x'`,
    );
  });
});
