/**
 * The TLS rule for the job mail, end to end: `coldvault job run` (built CLI, driver 'none') with a mail
 * config that has a user and password, against a REAL SMTP server on loopback that offers AUTH but no
 * STARTTLS. The backup succeeds; the mail is refused before any password is sent, and the job's log
 * says why.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeImage } from '../helpers/fixtures.js';
import { cv, diskPath, makeJobLab, startSmtpSink, taskIdOf, versions, writeGuestConf, type JobLab } from './helpers-jobs.js';

let lab: JobLab;
let sink: Awaited<ReturnType<typeof startSmtpSink>>;
const logins: string[] = [];

beforeAll(async () => {
  sink = await startSmtpSink({
    authMethods: ['PLAIN', 'LOGIN'],
    authOptional: true,
    allowInsecureAuth: true,
    disabledCommands: ['STARTTLS'],
    onAuth(auth, _session, callback) {
      logins.push(auth.username ?? '');
      callback(null, { user: auth.username ?? '' });
    },
  });
  lab = await makeJobLab('cv-mail-tls-', {
    mail: { transport: 'smtp', host: '127.0.0.1', port: sink.port, user: 'backup', pass: 's3cret', from: 'backup@pve.example.com' },
  });
  mkdirSync(join(lab.storageDir, 'images', '101'), { recursive: true });
  writeImage(diskPath(lab, '101'), ['random', 'text'], 11);
  writeGuestConf(lab, '101', 'web01');
});

afterAll(async () => {
  await sink?.close();
  await lab?.cleanup();
});

describe('job mail with a password, to a server without STARTTLS', () => {
  it('the backup succeeds; the mail fails with the TLS rule in the log; no password was sent', async () => {
    expect((await cv(lab, ['job', 'add', 'tls', '--store', lab.storeDir, '--vmid', '101', '--mailto', 'admin@example.com'])).code).toBe(0);
    const run = await cv(lab, ['job', 'run', 'tls']);
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect((await versions(lab, '101')).map((v) => v.version)).toEqual([1]);
    const log = (await cv(lab, ['task', 'log', taskIdOf(run.stdout)])).stdout;
    expect(log).toMatch(
      /ERROR: sending mail '.*' via SMTP server 127\.0\.0\.1:\d+ failed: the server does not offer STARTTLS, and coldvault sends a password only over TLS/,
    );
    expect(log).not.toMatch(/sent the report/);
    expect(logins).toEqual([]);
    expect(sink.got).toEqual([]);
  });
});
