/**
 * The QEMU command coldvault builds from a Proxmox config (boot tests, restore-on-the-fly): memory,
 * sockets x cores, cpu, disks on their buses in boot order, no network for an isolated guest, the
 * config's NICs on a bridge otherwise, `args:` split as a shell splits, cdroms left out.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseGuestConfig, qemuCommand, splitArgs, type QemuDrive } from '../../dist/guests/index.js';

const CONFIG = `boot: order=scsi0;ide2;net0
cores: 2
cpu: x86-64-v2-AES
ide2: local:iso/debian.iso,media=cdrom,size=600M
memory: 2048
name: web1
net0: virtio=BC:24:11:00:00:01,bridge=vmbr1
scsi0: local-lvm:vm-101-disk-0,iothread=1,size=32G
scsi1: local-lvm:vm-101-disk-1,size=8G
scsihw: virtio-scsi-single
sockets: 1
virtio0: local:101/vm-101-disk-2.qcow2,size=4G
args: -kernel /boot/vmlinuz -append "console=ttyS0 root=/dev/vda" -smbios 'type=1,serial=a b'
`;

const drive = (file: string, format = 'raw'): QemuDrive => ({ file, format, snapshot: true });
const drives = new Map([
  ['scsi0', drive('nbd:unix:/run/x.sock:exportname=scsi0')],
  ['virtio0', drive('nbd:unix:/run/x.sock:exportname=virtio0', 'qcow2')],
]);

describe('qemuCommand', () => {
  const args = qemuCommand({ vmid: '101', config: parseGuestConfig(CONFIG, 'test'), drives, qmpSocket: '/run/q.sock', network: 'none', accel: 'tcg' });
  const after = (flag: string): string[] => args.flatMap((a, i) => (a === flag ? [args[i + 1] ?? ''] : []));

  it('takes memory, sockets x cores and the cpu type from the config', () => {
    expect(after('-m')).toEqual(['2048']);
    expect(after('-smp')).toEqual(['2,sockets=1,cores=2,maxcpus=2']);
    expect(after('-cpu')).toEqual(['x86-64-v2-AES']);
    expect(after('-accel')).toEqual(['tcg']);
    expect(after('-qmp')).toEqual(['unix:/run/q.sock,server=on,wait=off']);
  });

  it('attaches the given disks on their buses, the boot disk first; leaves out cdroms and disks it was not given', () => {
    expect(after('-drive')).toEqual([
      'file=nbd:unix:/run/x.sock:exportname=scsi0,if=none,id=drive-scsi0,format=raw,cache=none,snapshot=on',
      'file=nbd:unix:/run/x.sock:exportname=virtio0,if=none,id=drive-virtio0,format=qcow2,cache=none,snapshot=on',
    ]);
    const devices = after('-device');
    expect(devices).toContain('virtio-scsi-pci,id=scsihw0');
    expect(devices).toContain('scsi-hd,bus=scsihw0.0,scsi-id=0,drive=drive-scsi0,id=scsi0,bootindex=100');
    expect(devices).toContain('virtio-blk-pci,drive=drive-virtio0,id=virtio0');
    expect(args.join(' ')).not.toMatch(/debian\.iso|disk-1/);
  });

  it('an isolated guest has no network; otherwise the NICs of the config on their bridges', () => {
    expect(after('-nic')).toEqual(['none']);
    const wired = qemuCommand({ vmid: '101', config: parseGuestConfig(CONFIG, 'test'), drives, qmpSocket: '/q', network: 'bridge' });
    expect(wired.join(' ')).toContain('-netdev bridge,id=net0,br=vmbr1 -device virtio-net-pci,netdev=net0,mac=BC:24:11:00:00:01,id=net0');
  });

  it('appends args: as Proxmox passes them, split as a shell splits', () => {
    expect(args.slice(-6)).toEqual(['-kernel', '/boot/vmlinuz', '-append', 'console=ttyS0 root=/dev/vda', '-smbios', 'type=1,serial=a b']);
    expect(splitArgs(`a\\ b "c \\"d\\"" ''`)).toEqual(['a b', 'c "d"', '']);
    expect(() => splitArgs('-append "open')).toThrow(/unclosed "/);
  });

  it('adds a guest agent channel on a unix socket and -no-shutdown when asked', () => {
    const config = parseGuestConfig('memory: 256\n', 'test');
    const plain = qemuCommand({ vmid: '1', config, drives: new Map(), qmpSocket: '/q', network: 'none' });
    expect(plain.join(' ')).not.toMatch(/qga0|-no-shutdown/);
    const agent = qemuCommand({ vmid: '1', config, drives: new Map(), qmpSocket: '/q', network: 'none', guestAgentSocket: '/run/a.sock', noShutdown: true });
    const line = agent.join(' ');
    expect(line).toContain('-chardev socket,path=/run/a.sock,server=on,wait=off,id=qga0');
    expect(line).toContain('-device virtserialport,chardev=qga0,name=org.qemu.guest_agent.0');
    expect(agent).toContain('-no-shutdown');
  });

  it('refuses OVMF when the host has none, naming the package', () => {
    const ovmf = parseGuestConfig('bios: ovmf\nmemory: 512\n', 'test');
    const none = mkdtempSync(join(tmpdir(), 'cv-no-ovmf-'));
    expect(() => qemuCommand({ vmid: '1', config: ovmf, drives: new Map(), qmpSocket: '/q', network: 'none', firmwareDirs: [none] })).toThrow(
      /OVMF.*OVMF_CODE\.fd is not installed.*ovmf/,
    );
    rmSync(none, { recursive: true });
  });

  it("OVMF: the code of the efidisk's efitype, its variables from the given efidisk (snapshot=on, the flash size), else a throwaway copy of the template", () => {
    const scratch = mkdtempSync(join(tmpdir(), 'cv-ovmf-'));
    const fourM = parseGuestConfig('bios: ovmf\nmemory: 512\nefidisk0: local:1/vm-1-disk-1.raw,efitype=4m,size=528K\n', 'test');
    const withVars = qemuCommand({
      ...{ vmid: '1', config: fourM, drives: new Map(), qmpSocket: '/q', network: 'none' },
      efiVars: { file: 'nbd:unix:/s:exportname=efidisk0', format: 'raw', snapshot: true },
    }).join(' ');
    expect(withVars).toMatch(/if=pflash,unit=0,format=raw,readonly=on,file=\S+\/OVMF_CODE_4M\.fd/);
    expect(withVars).toContain('if=pflash,unit=1,format=raw,file=nbd:unix:/s:exportname=efidisk0,size=540672,snapshot=on');
    const legacy = parseGuestConfig('bios: ovmf\nmemory: 512\n', 'test');
    const copied = qemuCommand({ vmid: '1', config: legacy, drives: new Map(), qmpSocket: '/q', network: 'none', scratchDir: scratch }).join(' ');
    expect(copied).toMatch(/file=\S+\/OVMF_CODE\.fd /);
    expect(copied).toContain(`if=pflash,unit=1,format=raw,file=${join(scratch, 'ovmf-vars.fd')}`);
    expect(readdirSync(scratch)).toEqual(['ovmf-vars.fd']);
    rmSync(scratch, { recursive: true });
  });
});
