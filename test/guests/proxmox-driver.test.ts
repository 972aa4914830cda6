// ProxmoxDriver, tested WITHOUT a Proxmox host: `qm` is a fake shell script in a temp dir that
// appends its argv to calls.log, keeps each guest's state in a file and answers the way qm does
// (`status: running`, `VM quit/powerdown failed - got timeout`, exit 255 from a Perl die...).
// What this shows: the exact command lines (as vzdump's stop mode runs them), the parsing, the error
// mapping, and that the real execa runner works. What it cannot show: real qm/QEMU behaviour.
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ColdvaultError } from '../../src/core/errors.js';
import { ProxmoxDriver, parseQmStatus } from '../../src/guests/hypervisor/proxmox.js';
import type { CommandRunner } from '../../src/guests/hypervisor/run-command.js';
import { formatCommand, runCommand } from '../../src/guests/hypervisor/run-command.js';

const FAKE_QM = `#!/bin/sh
# fake qm: state files state-<vmid> hold running|stopped|paused; ignore-acpi-<vmid> makes shutdown time out
dir=$(dirname "$0")
printf '%s\\n' "$*" >> "$dir/calls.log"
cmd=$1; vmid=$2
state_file="$dir/state-$vmid"
if [ ! -f "$state_file" ]; then
  echo "Configuration file 'nodes/pve/qemu-server/$vmid.conf' does not exist" >&2
  exit 2
fi
state=$(cat "$state_file")
case "$cmd" in
  status) echo "status: $state" ;;
  shutdown)
    if [ -f "$dir/ignore-acpi-$vmid" ]; then
      echo "VM quit/powerdown failed - got timeout" >&2
      exit 255
    fi
    echo stopped > "$state_file" ;;
  stop) echo stopped > "$state_file" ;;
  start)
    if [ -f "$dir/broken-$vmid" ]; then
      echo "kvm: -drive file=/dev/pve/vm-$vmid-disk-0: Could not open '/dev/pve/vm-$vmid-disk-0': No such file or directory" >&2
      echo "start failed: QEMU exited with code 1" >&2
      exit 255
    fi
    if [ "$state" = running ]; then echo "VM $vmid already running" >&2; exit 255; fi
    echo running > "$state_file" ;;
  *) echo "unknown command 'qm $cmd'" >&2; exit 255 ;;
esac
`;

let dir: string;
let qm: string;

async function setState(vmid: string, state: string): Promise<void> {
  await writeFile(join(dir, `state-${vmid}`), `${state}\n`);
}
async function state(vmid: string): Promise<string> {
  return (await readFile(join(dir, `state-${vmid}`), 'utf8')).trim();
}
async function calls(): Promise<string[]> {
  const text = await readFile(join(dir, 'calls.log'), 'utf8').catch(() => '');
  return text.split('\n').filter((l) => l !== '');
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'coldvault-fake-qm-'));
  qm = join(dir, 'qm');
  await writeFile(qm, FAKE_QM);
  await chmod(qm, 0o755);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  await writeFile(join(dir, 'calls.log'), '');
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

  it('shutdown and start use the command lines of vzdump stop mode', async () => {
    const d = new ProxmoxDriver({ qm, pollMs: 10 });
    await d.shutdown('101', 600_000); // vzdump: stopwait 10 min
    expect(await state('101')).toBe('stopped');
    await d.start('101');
    expect(await state('101')).toBe('running');
    expect(await calls()).toEqual([
      'status 101',
      'shutdown 101 --skiplock --keepActive --timeout 600',
      'status 101',
      'start 101 --skiplock',
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

  it('stop is `qm stop <vmid> --skiplock`', async () => {
    const d = new ProxmoxDriver({ qm });
    await d.stop('101');
    expect(await state('101')).toBe('stopped');
    expect(await calls()).toEqual(['status 101', 'stop 101 --skiplock']);
  });

  it("qm's shutdown timeout is STOP_TIMEOUT and the guest stays running", async () => {
    await writeFile(join(dir, 'ignore-acpi-101'), '');
    const d = new ProxmoxDriver({ qm });
    const err = await d.shutdown('101', 1500).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ColdvaultError);
    expect((err as ColdvaultError).code).toBe('STOP_TIMEOUT');
    expect((err as ColdvaultError).message).toContain('guest 101');
    expect((err as ColdvaultError).message).toContain('shutdown 101 --skiplock --keepActive --timeout 2');
    expect(((err as ColdvaultError).cause as Error).message).toContain('VM quit/powerdown failed - got timeout');
    expect(await state('101')).toBe('running');
  });

  it('a qm that outlives its own timeout is killed and reported as STOP_TIMEOUT (injected runner)', async () => {
    const seen: string[][] = [];
    const run: CommandRunner = async (argv, opts) => {
      seen.push(argv);
      if (argv[1] === 'status') return { stdout: 'status: running\n', stderr: '', exitCode: 0 };
      expect(opts?.timeoutMs).toBeGreaterThan(10_000); // qm's --timeout plus grace
      return { stdout: '', stderr: '', exitCode: -1, timedOut: true, signal: 'SIGTERM' };
    };
    const err = await new ProxmoxDriver({ run }).shutdown('101', 10_000).catch((e: unknown) => e);
    expect((err as ColdvaultError).code).toBe('STOP_TIMEOUT');
    expect(seen.map((a) => a.join(' '))).toEqual(['qm status 101', 'qm shutdown 101 --skiplock --keepActive --timeout 10']);
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
    expect((err as ColdvaultError).message).toContain(`command '${qm} start 101 --skiplock' failed: kvm: -drive`);
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
