/**
 * A FAKE `qm` (there is no Proxmox host here): a POSIX shell script in a temp dir that answers the
 * way qemu-server's qm does, as read from its source (PVE/CLI/qm.pm, PVE/API2/Qemu.pm, QemuServer.pm,
 * pve-guest-common AbstractConfig.pm); it was never compared with a real qm. It models:
 * - the guest config `<confDir>/<vmid>.conf` (the guests dir coldvault reads): missing -> exit 2
 *   "Configuration file 'nodes/pve/qemu-server/<vmid>.conf' does not exist";
 * - the run state in `state-<vmid>` (running|stopped|paused; none = stopped);
 * - the lock as Proxmox keeps it, a `lock: <name>` line in the config's main section:
 *   `qm set V --lock L` refuses a guest that has a lock ("VM is locked (X)", exit 255) unless
 *   `--skiplock`, else writes the line (update_vm: check_lock, then the option is written at once);
 *   `qm unlock V` deletes it whatever it is; `qm config V [--current]` prints the main section;
 *   `qm start|shutdown|stop V` refuse a locked guest without `--skiplock` ("VM is locked (X)", exit 255),
 *   as vm_start and _do_vm_stop do;
 * - `ignore-acpi-<vmid>`: shutdown dies "VM quit/powerdown failed - got timeout"; `broken-<vmid>`:
 *   start fails like a QEMU that cannot open its disk;
 * - `missed-presses-<vmid>` holding N: the next N shutdowns miss their one press (a guest still
 *   booting): each waits its `--timeout` seconds, then dies "... got timeout", as vm_stop does;
 * - every call appended to `calls.log` (its argv after `qm`).
 * Not modelled: the config file's flock (tests call it from one process at a time), pending changes,
 * the `digest:` line of `qm config`, real guests.
 */
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';

const script = (confDir: string): string => `#!/bin/sh
# fake qm, written by test/guests/fake-qm.ts: see there for what it models (no Proxmox host here)
dir=$(dirname "$0")
conf_dir='${confDir.replaceAll("'", `'\\''`)}'
printf '%s\\n' "$*" >> "$dir/calls.log"
cmd=$1; vmid=$2
[ $# -ge 2 ] && shift 2
conf="$conf_dir/$vmid.conf"
if [ ! -f "$conf" ]; then
  echo "Configuration file 'nodes/pve/qemu-server/$vmid.conf' does not exist" >&2
  exit 2
fi
state_file="$dir/state-$vmid"
state=$(cat "$state_file" 2>/dev/null || echo stopped)
lock=$(awk '/^\\[/ { exit } /^lock:/ { sub(/^lock:[ \\t]*/, ""); print }' "$conf")
skiplock=0
for a in "$@"; do [ "$a" = --skiplock ] && skiplock=1; done
check_lock() {
  if [ -n "$lock" ] && [ "$skiplock" = 0 ]; then echo "VM is locked ($lock)" >&2; exit 255; fi
}
# rewrites the main section's lock line: $1 = new lock, empty = none
write_lock() {
  awk -v lock="$1" '
    !done && /^\\[/ { if (lock != "") print "lock: " lock; done = 1 }
    !done && /^lock:/ { next }
    { print }
    END { if (!done && lock != "") print "lock: " lock }' "$conf" > "$conf.tmp.$$" && mv "$conf.tmp.$$" "$conf"
}
case "$cmd" in
  status) echo "status: $state" ;;
  config) awk '/^\\[/ { exit } { print }' "$conf" ;;
  set)
    if [ "$1" != --lock ] || [ -z "$2" ]; then echo "fake qm: only 'qm set <vmid> --lock <lock> [--skiplock]' is modelled" >&2; exit 255; fi
    check_lock
    write_lock "$2" ;;
  unlock) write_lock "" ;;
  shutdown)
    check_lock
    if [ -f "$dir/ignore-acpi-$vmid" ]; then
      echo "VM quit/powerdown failed - got timeout" >&2
      exit 255
    fi
    missed=$(cat "$dir/missed-presses-$vmid" 2>/dev/null || echo 0)
    if [ "$missed" -gt 0 ]; then
      echo $((missed - 1)) > "$dir/missed-presses-$vmid"
      wait_s=60; prev=
      for a in "$@"; do [ "$prev" = --timeout ] && wait_s=$a; prev=$a; done
      sleep "$wait_s"
      echo "VM quit/powerdown failed - got timeout" >&2
      exit 255
    fi
    echo stopped > "$state_file" ;;
  stop)
    check_lock
    echo stopped > "$state_file" ;;
  start)
    check_lock
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

export interface FakeQm {
  /** the temp dir: the script, calls.log, state files, marker files */
  dir: string;
  /** path of the fake `qm` */
  qm: string;
  confDir: string;
  setState(vmid: string, state: 'running' | 'stopped' | 'paused'): Promise<void>;
  state(vmid: string): Promise<string>;
  /** the `lock:` of the guest's config, or undefined */
  lock(vmid: string): Promise<string | undefined>;
  /** runs the fake qm as someone else would (an admin, the GUI, a migration) */
  runAsOther(args: string[]): Promise<{ exitCode: number; stderr: string }>;
  /** the calls so far, one `status 101`-style line each */
  calls(): Promise<string[]>;
  clearCalls(): Promise<void>;
  cleanup(): Promise<void>;
}

/** A fake qm in a fresh temp dir whose guest configs live in `confDir` (default: `<dir>/conf`). */
export async function makeFakeQm(confDir?: string): Promise<FakeQm> {
  const dir = await mkdtemp(join(tmpdir(), 'coldvault-fake-qm-'));
  const conf = confDir ?? join(dir, 'conf');
  await mkdir(conf, { recursive: true });
  const qm = join(dir, 'qm');
  await writeFile(qm, script(conf));
  await chmod(qm, 0o755);
  return {
    dir,
    qm,
    confDir: conf,
    setState: (vmid, state) => writeFile(join(dir, `state-${vmid}`), `${state}\n`),
    state: async (vmid) => (await readFile(join(dir, `state-${vmid}`), 'utf8').catch(() => 'stopped')).trim(),
    lock: async (vmid) => /^lock:\s*(\S+)/m.exec((await readFile(join(conf, `${vmid}.conf`), 'utf8')).split(/^\[/m)[0] ?? '')?.[1],
    runAsOther: async (args) => {
      const r = await execa(qm, args, { reject: false });
      return { exitCode: r.exitCode ?? -1, stderr: String(r.stderr) };
    },
    calls: async () => (await readFile(join(dir, 'calls.log'), 'utf8').catch(() => '')).split('\n').filter((l) => l !== ''),
    clearCalls: () => writeFile(join(dir, 'calls.log'), ''),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}
