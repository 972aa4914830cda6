// LibvirtDriver against the REAL virsh with libvirt's built-in test driver (no daemon, no VMs):
// `test:///default` (domain `test`, running, disk /guest/diskimage1) and a `test:///<abs>/node.xml`
// written here (a shut-off domain with a file disk, a cdrom with a medium and an empty cdrom).
// What the test driver CAN show: the exact virsh command lines and that we parse real virsh output
// (domstate, domblklist --details, error text and exit codes), state transitions within ONE virsh
// process (session mode), and that `--mode acpi` is passed.
// What it CANNOT show: state does not survive between virsh processes (each starts from the XML
// again, hence session mode, which replays the earlier state changes); its `shutdown` completes
// instantly and it has no guest OS, so a guest ignoring ACPI (the STOP_TIMEOUT path) and the polling
// are tested with an injected runner; and it rejects `shutdown --mode acpi` ("unsupported flags"),
// so real-virsh shutdowns run with `shutdownMode: null`. Real ACPI against QEMU/KVM is not tested here.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ColdvaultError } from '../../src/core/errors.js';
import { checkStillStopped } from '../../src/guests/hypervisor/index.js';
import { LibvirtDriver, parseDomblklist, parseDomstate } from '../../src/guests/hypervisor/libvirt.js';
import type { CommandRunner, RunOptions } from '../../src/guests/hypervisor/run-command.js';
import { runCommand } from '../../src/guests/hypervisor/run-command.js';

const NODE_XML = `<node>
  <domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>
    <name>vm-101</name>
    <memory>1048576</memory>
    <os><type>hvm</type></os>
    <devices>
      <disk type='file' device='disk'>
        <source file='/var/lib/coldvault-test/vm-101-disk-0.qcow2'/>
        <target dev='vda' bus='virtio'/>
      </disk>
      <disk type='file' device='cdrom'>
        <source file='/iso/debian 12.iso'/>
        <target dev='sda' bus='sata'/>
        <readonly/>
      </disk>
      <disk type='file' device='cdrom'>
        <target dev='sdb' bus='sata'/>
        <readonly/>
      </disk>
      <disk type='file' device='disk'>
        <source file='/var/lib/coldvault-test/vm 101 data.raw'/>
        <target dev='vdb' bus='virtio'/>
      </disk>
    </devices>
    <test:runstate>5</test:runstate>
  </domain>
  <domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>
    <name>vm-102</name>
    <memory>1048576</memory>
    <os><type>hvm</type></os>
    <test:runstate>3</test:runstate>
  </domain>
</node>
`;

let dir: string;
let nodeUri: string;

/** a runner that records the argv of every real virsh call */
function recording(): { run: CommandRunner; calls: string[][] } {
  const calls: string[][] = [];
  const run: CommandRunner = (argv: string[], opts?: RunOptions) => {
    calls.push(argv);
    return runCommand(argv, opts);
  };
  return { run, calls };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'coldvault-libvirt-'));
  await writeFile(join(dir, 'node.xml'), NODE_XML);
  nodeUri = `test://${join(dir, 'node.xml')}`;
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('virsh output parsing', () => {
  it('maps domstate lines', () => {
    expect(parseDomstate('running\n\n')).toBe('running');
    expect(parseDomstate('shut off (shutdown)\n')).toBe('stopped');
    expect(parseDomstate('shut off\n')).toBe('stopped');
    expect(parseDomstate('paused (user)\n')).toBe('paused');
    expect(parseDomstate('pmsuspended\n')).toBe('paused');
    expect(parseDomstate('in shutdown\n')).toBe('running');
    expect(parseDomstate('crashed (panicked)\n')).toBe('stopped');
    expect(parseDomstate('no state\n')).toBe('unknown');
  });

  it('keeps disk rows with a source from domblklist --details', () => {
    const out = ` Type    Device   Target   Source
---------------------------------------------------------
 file    disk     vda      /var/lib/libvirt/images/x.qcow2
 block   disk     vdb      /dev/vg0/x-data
 file    cdrom    sda      /iso/install.iso
 file    disk     vdc      -
`;
    expect(parseDomblklist(out)).toEqual(['/var/lib/libvirt/images/x.qcow2', '/dev/vg0/x-data']);
  });
});

describe('LibvirtDriver against real virsh, test:/// URIs (virsh from libvirt-clients; CI installs it)', () => {
  it('status of the running `test` domain of test:///default, with the exact command line', async () => {
    const { run, calls } = recording();
    const d = new LibvirtDriver({ uri: 'test:///default', run });
    expect(d.name).toBe('libvirt');
    expect(await d.status('test')).toBe('running');
    expect(calls).toEqual([['virsh', '-c', 'test:///default', 'domstate', 'test']]);
  });

  it('diskPaths of test:///default', async () => {
    const d = new LibvirtDriver({ uri: 'test:///default' });
    expect(await d.diskPaths('test')).toEqual(['/guest/diskimage1']);
  });

  it('status and diskPaths from node.xml: shut off, paused, cdroms excluded, domain template applied', async () => {
    const { run, calls } = recording();
    const d = new LibvirtDriver({ uri: nodeUri, domain: 'vm-{vmid}', run });
    expect(await d.status('101')).toBe('stopped');
    expect(await d.status('102')).toBe('paused');
    expect(await d.diskPaths('101')).toEqual(['/var/lib/coldvault-test/vm-101-disk-0.qcow2', '/var/lib/coldvault-test/vm 101 data.raw']);
    expect(calls[2]).toEqual(['virsh', '-c', nodeUri, 'domblklist', 'vm-101', '--details']);
  });

  it('an unknown domain is a HYPERVISOR error naming it and the command', async () => {
    const d = new LibvirtDriver({ uri: 'test:///default', domain: 'vm-{vmid}' });
    const err = await d.status('999').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ColdvaultError);
    expect((err as ColdvaultError).code).toBe('HYPERVISOR');
    expect((err as ColdvaultError).message).toBe("command 'virsh -c test:///default domstate vm-999' failed: error: failed to get domain 'vm-999' (exit 1)");
  });

  it('the test driver rejects `shutdown --mode acpi` (what we send by default): reported as HYPERVISOR', async () => {
    const { run, calls } = recording();
    const d = new LibvirtDriver({ uri: 'test:///default', run, pollMs: 10 });
    const err = await d.shutdown('test', 5000).catch((e: unknown) => e);
    expect((err as ColdvaultError).code).toBe('HYPERVISOR');
    expect((err as ColdvaultError).message).toContain("command 'virsh -c test:///default shutdown test --mode acpi' failed");
    expect((err as ColdvaultError).message).toContain("Failed to shutdown domain 'test'");
    expect(calls.map((a) => a.slice(3).join(' '))).toEqual(['domstate test', 'shutdown test --mode acpi']);
  });

  it('without session mode a state change is lost: the next virsh process starts from the XML again', async () => {
    const d = new LibvirtDriver({ uri: 'test:///default', shutdownMode: null, pollMs: 10 });
    // shutdown succeeds, but the polling domstate runs in a fresh process that sees `running` again
    const err = await d.shutdown('test', 300).catch((e: unknown) => e);
    expect((err as ColdvaultError).code).toBe('STOP_TIMEOUT');
  });

  it('session mode: shutdown -> start -> stop -> start of test:///default in one virsh invocation each', async () => {
    const { run, calls } = recording();
    const d = new LibvirtDriver({ uri: 'test:///default', run, session: true, shutdownMode: null, pollMs: 10 });
    expect(await d.status('test')).toBe('running');
    await d.shutdown('test', 5000);
    expect(await d.status('test')).toBe('stopped');
    await d.start('test', 5000);
    expect(await d.status('test')).toBe('running');
    await d.stop('test');
    expect(await d.status('test')).toBe('stopped');
    await d.shutdown('test', 5000); // already off: only a status call
    await d.start('test', 5000);
    expect(await d.status('test')).toBe('running');
    const mark = 'echo @@coldvault-session@@';
    expect(calls.map((a) => a.slice(0, 3))).toEqual(calls.map(() => ['virsh', '-c', 'test:///default']));
    expect(calls.map((a) => a[3])).toEqual([
      `${mark}; domstate test`,
      `${mark}; domstate test`,
      `${mark}; shutdown test`,
      `shutdown test; ${mark}; domstate test`, // poll: shut off at once in the test driver
      `shutdown test; ${mark}; domstate test`,
      `shutdown test; ${mark}; domstate test`,
      `shutdown test; ${mark}; start test`,
      `shutdown test; start test; ${mark}; domstate test`,
      `shutdown test; start test; ${mark}; domstate test`,
      `shutdown test; start test; ${mark}; domstate test`,
      `shutdown test; start test; ${mark}; destroy test`,
      `shutdown test; start test; destroy test; ${mark}; domstate test`, // status
      `shutdown test; start test; destroy test; ${mark}; domstate test`, // shutdown: already off
      `shutdown test; start test; destroy test; ${mark}; domstate test`, // start: is it running?
      `shutdown test; start test; destroy test; ${mark}; start test`,
      `shutdown test; start test; destroy test; start test; ${mark}; domstate test`,
      `shutdown test; start test; destroy test; start test; ${mark}; domstate test`,
    ]);
  });

  it('session mode on node.xml: start the shut-off domain, with a quoted domain template', async () => {
    const d = new LibvirtDriver({ uri: nodeUri, domain: 'vm-{vmid}', session: true, pollMs: 10 });
    expect(await d.status('101')).toBe('stopped');
    await d.start('101', 5000);
    expect(await d.status('101')).toBe('running');
    await d.stop('101');
    expect(await d.status('101')).toBe('stopped');
    // a failing command in a session names the whole invocation and is not replayed later
    const err = await d.diskPaths('999').catch((e: unknown) => e);
    expect((err as ColdvaultError).code).toBe('HYPERVISOR');
    expect((err as ColdvaultError).message).toContain("failed to get domain 'vm-999'");
    expect(await d.status('101')).toBe('stopped');
  });

  it('session mode is refused for a real hypervisor URI', () => {
    expect(() => new LibvirtDriver({ uri: 'qemu:///system', session: true })).toThrow(/only for test:\/\/\//);
  });
});

describe('checkStillStopped with the libvirt driver (real virsh, test:/// URIs)', () => {
  const during = { during: 'while its disks were being read', outcome: 'this version is discarded' };

  it('passes for a shut-off domain; a running or paused one is GUEST_STARTED naming its status', async () => {
    const d = new LibvirtDriver({ uri: nodeUri, domain: 'vm-{vmid}' });
    await checkStillStopped(d, '101', during);
    const paused = await checkStillStopped(d, '102', during).catch((e: unknown) => e);
    expect((paused as ColdvaultError).code).toBe('GUEST_STARTED');
    expect((paused as ColdvaultError).message).toBe('guest 102 was started while its disks were being read (status: paused); this version is discarded');
    const running = await checkStillStopped(new LibvirtDriver({ uri: 'test:///default', domain: 'test' }), '101', during).catch((e: unknown) => e);
    expect((running as ColdvaultError).message).toBe('guest 101 was started while its disks were being read (status: running); this version is discarded');
  });

  it('a status that cannot be read is not "still stopped": HYPERVISOR naming the check and the cause', async () => {
    const d = new LibvirtDriver({ uri: nodeUri, domain: 'vm-{vmid}' });
    const err = await checkStillStopped(d, '999', { during: 'before its snapshot was taken', outcome: 'the snapshot is dropped' }).catch((e: unknown) => e);
    expect((err as ColdvaultError).code).toBe('HYPERVISOR');
    expect((err as ColdvaultError).message).toMatch(
      /^checking that guest 999 stayed stopped before its snapshot was taken failed: command 'virsh .* domstate vm-999' failed: .*; the snapshot is dropped$/,
    );
  });
});

describe('LibvirtDriver polling (injected runner: the test driver shuts down instantly)', () => {
  /** a fake virsh whose domain ignores ACPI for `ignoreFor` domstate polls */
  function fakeVirsh(ignoreFor: number): { run: CommandRunner; calls: string[] } {
    const calls: string[] = [];
    let state = 'running';
    let polls = 0;
    let shutdownAsked = false;
    const run: CommandRunner = async (argv) => {
      const cmd = argv.slice(3);
      calls.push(cmd.join(' '));
      if (cmd[0] === 'domstate') {
        if (shutdownAsked && ++polls > ignoreFor) state = 'shut off';
        return { stdout: `${state === 'shut off' && shutdownAsked ? 'shut off (shutdown)' : state}\n\n`, stderr: '', exitCode: 0 };
      }
      if (cmd[0] === 'shutdown') {
        shutdownAsked = true;
        return { stdout: "Domain 'vm-101' is being shutdown\n\n", stderr: '', exitCode: 0 };
      }
      return { stdout: '', stderr: `error: unexpected ${cmd.join(' ')}\n`, exitCode: 1 };
    };
    return { run, calls };
  }

  it('polls domstate until shut off', async () => {
    const { run, calls } = fakeVirsh(3);
    await new LibvirtDriver({ uri: 'qemu:///system', domain: 'vm-{vmid}', run, pollMs: 5 }).shutdown('101', 5000);
    expect(calls).toEqual(['domstate vm-101', 'shutdown vm-101 --mode acpi', 'domstate vm-101', 'domstate vm-101', 'domstate vm-101', 'domstate vm-101']);
  });

  it('a guest that ignores ACPI: STOP_TIMEOUT, and no destroy is sent', async () => {
    const { run, calls } = fakeVirsh(Number.POSITIVE_INFINITY);
    const started = Date.now();
    const err = await new LibvirtDriver({ uri: 'qemu:///system', domain: 'vm-{vmid}', run, pollMs: 20 }).shutdown('101', 200).catch((e: unknown) => e);
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    expect((err as ColdvaultError).code).toBe('STOP_TIMEOUT');
    expect((err as ColdvaultError).message).toContain("guest 101 (libvirt domain 'vm-101') timed out");
    expect(calls.filter((c) => !c.startsWith('domstate'))).toEqual(['shutdown vm-101 --mode acpi']);
  });
});
