/**
 * `systemd-analyze verify` of a unit file's text, as the packaging tests run it: written as
 * `coldvault.service` in a temp folder, checked without man page lookups (`--man=no`; no systemd as
 * PID 1 is needed). The tool exits 0 also for an unknown key or a value it cannot parse (it prints a
 * line and ignores it), so a unit passes only with exit 0 and no output at all.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Verified {
  code: number;
  /** what the tool printed (stdout and stderr), trimmed; '' for a clean unit */
  output: string;
}

export async function verifyUnit(text: string): Promise<Verified> {
  const dir = mkdtempSync(join(tmpdir(), 'cv-unit-'));
  const file = join(dir, 'coldvault.service');
  writeFileSync(file, text);
  try {
    return await new Promise<Verified>((resolve) => {
      execFile('systemd-analyze', ['verify', '--man=no', file], (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
        resolve({ code, output: `${stdout}${stderr}`.replaceAll(dir, '<dir>').trim() });
      });
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
