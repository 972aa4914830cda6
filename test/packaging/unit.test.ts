/**
 * packaging/coldvault.service: `systemd-analyze verify` passes on it (ExecStart pointed at this
 * checkout's bin/coldvault.js, since the tool checks that the command exists), and the same run fails
 * a copy with a misspelt option or a bad value, so the check has teeth. The unit keeps to what
 * coldvault must be able to do (README "Run as a service"): no option that gives the service a mount
 * namespace of its own (mounts of external disks must reach the host), no device allow-list, guests
 * it started survive a restart (KillMode=process), logs to the journal, the README's config path,
 * and every directive of [Service] under a comment that says why.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, REPO } from '../helpers/fixtures.js';
import { verifyUnit } from './unit-verify.js';

const UNIT = readFileSync(join(REPO, 'packaging', 'coldvault.service'), 'utf8');
const withCli = (text: string): string => text.replace(/^ExecStart=coldvault /m, `ExecStart=${CLI} `);

/** `[Service]` directives as [key, value], comments and blank lines left out. */
function directives(text: string, section: string): Array<[string, string]> {
  const body = text.split(/^\[/m).find((s) => s.startsWith(`${section}]`)) ?? '';
  return body
    .split('\n')
    .slice(1)
    .filter((l) => /^[A-Za-z]+=/.test(l))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]);
}

/** systemd.exec(5): each sets up a mount namespace whose mounts do not propagate to the host, or limits devices */
const HIDES_MOUNTS_OR_DEVICES = [
  'PrivateMounts',
  'PrivateTmp',
  'PrivateDevices',
  'ProtectSystem',
  'ProtectHome',
  'ReadOnlyPaths',
  'ReadWritePaths',
  'InaccessiblePaths',
  'ExecPaths',
  'NoExecPaths',
  'BindPaths',
  'BindReadOnlyPaths',
  'TemporaryFileSystem',
  'ProtectKernelTunables',
  'ProtectKernelModules',
  'ProtectKernelLogs',
  'ProtectControlGroups',
  'ProtectProc',
  'ProcSubset',
  'MountFlags',
  'RootDirectory',
  'RootImage',
  'DynamicUser',
  'PrivateNetwork',
  'PrivateIPC',
  'ProtectClock',
  'DevicePolicy',
  'DeviceAllow',
  'User',
];

describe('packaging/coldvault.service', () => {
  it('passes systemd-analyze verify without a word', async () => {
    expect(await verifyUnit(withCli(UNIT))).toEqual({ code: 0, output: '' });
  });

  it('the same check reports a misspelt option and a bad value', async () => {
    const broken = withCli(UNIT)
      .replace(/^RestrictSUIDSGID=yes$/m, 'RestrictSUIDSGD=yes')
      .replace(/^KillMode=process$/m, 'KillMode=proces');
    const { output } = await verifyUnit(broken);
    expect(output).toMatch(/coldvault\.service:\d+: Unknown key 'RestrictSUIDSGD' in section \[Service\]/);
    expect(output).toMatch(/coldvault\.service:\d+: Failed to parse kill mode specification, ignoring: proces/);
  });

  it('and a command that does not exist', async () => {
    const { code, output } = await verifyUnit(UNIT.replace(/^ExecStart=coldvault /m, 'ExecStart=/nonexistent/coldvault '));
    expect(code).not.toBe(0);
    expect(output).toMatch(/Command \/nonexistent\/coldvault is not executable/);
  });

  it('runs coldvault serve with the README config path, restarts on failure, logs to the journal, keeps guests through a restart', () => {
    const service = Object.fromEntries(directives(UNIT, 'Service'));
    expect(service.ExecStart).toBe('coldvault serve --config /etc/coldvault/config.json');
    expect(readFileSync(join(REPO, 'README.md'), 'utf8')).toContain('/etc/coldvault/config.json');
    expect(service).toMatchObject({ Restart: 'on-failure', StandardOutput: 'journal', StandardError: 'journal', KillMode: 'process' });
    expect(service).toMatchObject({ StateDirectoryMode: '0700', ConfigurationDirectoryMode: '0700' });
  });

  it('has no option that hides its mounts from the host or limits the devices it may open', () => {
    const keys = directives(UNIT, 'Service').map(([k]) => k);
    expect(keys.filter((k) => HIDES_MOUNTS_OR_DEVICES.includes(k))).toEqual([]);
    expect(keys).toEqual(expect.arrayContaining(['NoNewPrivileges', 'RestrictSUIDSGID', 'LockPersonality', 'RestrictRealtime', 'SystemCallArchitectures']));
  });

  it('says why for every directive of [Service]: each block of them sits under a comment', () => {
    const lines = UNIT.slice(UNIT.indexOf('[Service]'), UNIT.indexOf('[Install]')).split('\n');
    const uncommented = lines.filter((line, i) => {
      if (!/^[A-Za-z]+=/.test(line)) return false;
      let j = i - 1;
      while (j >= 0 && /^[A-Za-z]+=/.test(lines[j] ?? '')) j--;
      return !(lines[j] ?? '').startsWith('#');
    });
    expect(uncommented).toEqual([]);
  });
});
