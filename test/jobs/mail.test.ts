// Job status mail: composed here, sent through a REAL SMTP server on loopback (smtp-server, port 0),
// received raw and decoded by test/helpers/smtp.ts (multipart/alternative, quoted-printable/base64).
// The sendmail transport runs a fake `sendmail` script that keeps its argv and stdin.
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SMTPServerOptions } from 'smtp-server';
import { part, startSmtpSink as startServer, type Received } from '../helpers/smtp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ColdvaultError } from '../../src/core/errors.js';
import { composeJobMail, sendMail, type GuestReport, type MailConfig } from '../../src/jobs/mail.js';

const GUESTS: GuestReport[] = [
  { vmid: '101', name: 'web01', status: 'ok', seconds: 75, bytes: 2.5 * 1024 ** 3, downtimeMs: 14_123 },
  { vmid: '102', name: 'db <primary> & co', status: 'failed', seconds: 3, bytes: 0, error: "disk 'scsi0' missing: /dev/pve/vm-102-disk-0" },
];
const LOG = [
  '2024-05-01 10:00:00 INFO: Starting Backup of VM 101 (qemu)',
  '2024-05-01 10:00:00 INFO: backup mode: stop',
  "2024-05-01 10:00:01 INFO: include disk 'scsi0' 'local-lvm:vm-101-disk-0' 32G",
  '2024-05-01 10:01:15 INFO: Finished Backup of VM 101 (00:01:15)',
  '2024-05-01 10:01:15 ERROR: Backup of VM 102 failed - <script>alert("x")</script> & more',
].join('\n');

function jobMail(ok: boolean) {
  return composeJobMail({
    node: 'pve1',
    jobId: 'nightly',
    ok,
    guests: GUESTS,
    log: LOG,
    to: ['admin@example.com'],
    from: 'coldvault@pve1.example.com',
  });
}

describe('composeJobMail', () => {
  it('subject says coldvault, node, job id and the result, like vzdump', () => {
    expect(jobMail(true).subject).toBe('coldvault backup status (pve1, job nightly): backup successful');
    expect(jobMail(false).subject).toBe('coldvault backup status (pve1, job nightly): backup failed');
  });

  it('text: the guest table with time, size, rate and downtime (`-`: not stopped), errors, then the whole log', () => {
    const { text } = jobMail(false);
    const lines = text.split('\n');
    expect(lines[0]).toBe("coldvault backup job 'nightly' on pve1: backup failed (2 guest(s): 1 ok, 1 failed)");
    // no Wire column: nothing of this job went to another node
    expect(lines[2]).toMatch(/^VMID\s+Name\s+Status\s+Time\s+Size\s+Rate\s+Downtime$/);
    expect(lines[3]).toMatch(/^101\s+web01\s+ok\s+00:01:15\s+2\.50 GiB\s+34\.1 MiB\/s\s+00:00:14$/);
    expect(lines[4]).toMatch(/^102\s+db <primary> & co\s+failed\s+00:00:03\s+0 B\s+0\.0 MiB\/s\s+-$/);
    expect(lines[5]).toMatch(/^TOTAL\s+00:01:18\s+2\.50 GiB\s+32\.8 MiB\/s\s+00:00:14$/);
    // columns line up
    expect(lines[3]!.indexOf('00:01:15')).toBe(lines[2]!.indexOf('Time'));
    expect(lines[3]!.indexOf('00:00:14')).toBe(lines[2]!.indexOf('Downtime'));
    expect(text).toContain("Errors:\n102: disk 'scsi0' missing: /dev/pve/vm-102-disk-0");
    expect(text).toContain(`Detailed backup log:\n\n${LOG}\n`);
  });

  it('a cluster-mode push: bytes on the wire per guest and in total, next to the size', () => {
    const pushed = composeJobMail({
      node: 'pve2',
      jobId: 'ring',
      ok: true,
      guests: [
        { ...GUESTS[0]!, wireBytes: 3 * 1024 * 1024 },
        { vmid: '103', name: 'db', status: 'ok', seconds: 2, bytes: 0, wireBytes: 1024 * 1024 },
      ],
      log: '',
      to: [],
      from: 'a@b',
    });
    const lines = pushed.text.split('\n');
    expect(lines[2]).toMatch(/^VMID\s+Name\s+Status\s+Time\s+Size\s+Rate\s+Downtime\s+Wire$/);
    expect(lines[3]).toMatch(/^101\s+web01\s+ok\s+.*\s+3\.00 MiB$/);
    expect(lines[5]).toMatch(/^TOTAL\s+.*\s+4\.00 MiB$/);
    expect(lines[3]!.indexOf('3.00 MiB')).toBe(lines[2]!.indexOf('Wire'));
  });

  it('html: a table and the log, everything escaped', () => {
    const { html } = jobMail(false);
    expect(html).toContain('<tr><th>VMID</th><th>Name</th><th>Status</th><th>Time</th><th>Size</th><th>Rate</th><th>Downtime</th></tr>');
    expect(html).toContain('<tr><td>101</td><td>web01</td><td>ok</td><td>00:01:15</td><td>2.50 GiB</td><td>34.1 MiB/s</td><td>00:00:14</td></tr>');
    expect(html).toContain('<td>db &#60;primary&#62; &#38; co</td>');
    expect(html).toContain('&#60;script&#62;alert(&#34;x&#34;)&#60;/script&#62; &#38; more');
    expect(html).not.toContain('<script>');
    expect(html).not.toContain('<primary>');
  });

  it('newlines in node or job id cannot reach the subject header', () => {
    const m = composeJobMail({ node: 'pve1\r\nBcc: x@evil', jobId: 'j', ok: true, guests: [], log: '', to: [], from: 'a@b' });
    expect(m.subject).not.toMatch(/[\r\n]/);
  });
});

describe('sendMail over a real SMTP server on loopback', () => {
  let open: { port: number; got: Received[]; close: () => Promise<void> };
  beforeAll(async () => {
    open = await startServer({ authOptional: true, disabledCommands: ['STARTTLS'] });
  });
  afterAll(async () => {
    await open.close();
  });

  it('delivers the job mail: envelope, subject, table and log lines arrive', async () => {
    const mail = jobMail(false);
    await sendMail(
      { transport: 'smtp', host: '127.0.0.1', port: open.port },
      { to: ['admin@example.com', 'ops@example.com'], from: 'coldvault@pve1.example.com', ...mail },
    );
    expect(open.got).toHaveLength(1);
    const msg = open.got[0]!;
    expect(msg.from).toBe('coldvault@pve1.example.com');
    expect(msg.to).toEqual(['admin@example.com', 'ops@example.com']);
    expect(msg.secure).toBe(false);
    expect(msg.raw).toMatch(/^Subject: coldvault backup status \(pve1, job nightly\): backup failed$/m);
    expect(msg.raw).toMatch(/^Content-Type: multipart\/alternative/m);
    const text = part(msg.raw, 'text/plain');
    expect(text).toContain('backup failed (2 guest(s): 1 ok, 1 failed)');
    expect(text).toMatch(/^101\s+web01\s+ok\s+00:01:15\s+2\.50 GiB\s+34\.1 MiB\/s\s+00:00:14$/m);
    for (const line of LOG.split('\n')) expect(text).toContain(line);
    const html = part(msg.raw, 'text/html');
    expect(html).toContain('<td>failed</td>');
    expect(html).toContain('&#60;script&#62;');
  });

  it('uses config.from when the mail has none', async () => {
    const before = open.got.length;
    await sendMail({ transport: 'smtp', host: '127.0.0.1', port: open.port, from: 'root@pve1' }, { to: ['admin@example.com'], from: '', ...jobMail(true) });
    expect(open.got[before]!.from).toBe('root@pve1');
    expect(open.got[before]!.raw).toMatch(/^Subject: .*backup successful$/m);
  });
});

describe('sendMail with auth required (STARTTLS offered by the server)', () => {
  let srv: { port: number; got: Received[]; close: () => Promise<void> };
  beforeAll(async () => {
    srv = await startServer({
      authMethods: ['PLAIN', 'LOGIN'],
      onAuth(auth, session, callback) {
        if (auth.username === 'backup' && auth.password === 's3cret p@ss') return callback(null, { user: auth.username });
        return callback(new Error('Invalid username or password'));
      },
    });
  });
  afterAll(async () => {
    await srv.close();
  });
  const base = (): MailConfig => ({ transport: 'smtp', host: '127.0.0.1', port: srv.port, user: 'backup', pass: 's3cret p@ss' });
  const mail = () => ({ to: ['admin@example.com'], from: 'coldvault@pve1', ...jobMail(true) });

  it('upgrades with STARTTLS, then authenticates and delivers', async () => {
    // the server's built-in certificate is self-signed: only this test turns the check off
    await sendMail({ ...base(), tlsRejectUnauthorized: false }, mail());
    expect(srv.got).toHaveLength(1);
    expect(srv.got[0]!.secure).toBe(true);
    expect(srv.got[0]!.user).toBe('backup');
    expect(srv.got[0]!.raw).toMatch(/^Subject: coldvault backup status \(pve1, job nightly\): backup successful$/m);
  });

  it('a wrong password is MAIL_FAILED naming the server', async () => {
    const err = await sendMail({ ...base(), pass: 'wrong', tlsRejectUnauthorized: false }, mail()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ColdvaultError);
    expect((err as ColdvaultError).code).toBe('MAIL_FAILED');
    expect((err as ColdvaultError).message).toContain(`via SMTP server 127.0.0.1:${srv.port} failed`);
    expect((err as ColdvaultError).message).toMatch(/Invalid (login|username)/i);
  });

  it('an untrusted certificate is refused by default: MAIL_FAILED', async () => {
    const err = await sendMail(base(), mail()).catch((e: unknown) => e);
    expect((err as ColdvaultError).code).toBe('MAIL_FAILED');
    expect((err as ColdvaultError).message).toContain(`127.0.0.1:${srv.port}`);
  });
});

describe('sendMail: a password only over TLS', () => {
  let plain: { port: number; got: Received[]; close: () => Promise<void> };
  let implicit: { port: number; got: Received[]; close: () => Promise<void> };
  const logins: string[] = [];
  const onAuth: SMTPServerOptions['onAuth'] = (auth, _session, callback) => {
    logins.push(`${auth.username}:${auth.password ?? ''}`);
    callback(null, { user: auth.username });
  };
  beforeAll(async () => {
    // a server that offers AUTH (optional, as a relay for its network does) but no STARTTLS: a password would cross in clear
    plain = await startServer({ authMethods: ['PLAIN', 'LOGIN'], authOptional: true, allowInsecureAuth: true, disabledCommands: ['STARTTLS'], onAuth });
    // TLS from the first byte (port 465 style), with the server's self-signed certificate
    implicit = await startServer({ secure: true, authMethods: ['PLAIN', 'LOGIN'], onAuth });
  });
  afterAll(async () => {
    await plain.close();
    await implicit.close();
  });
  const mail = () => ({ to: ['admin@example.com'], from: 'coldvault@pve1', ...jobMail(true) });

  it('a server without STARTTLS gets neither the password nor the mail: MAIL_FAILED says why and what to do', async () => {
    const err = await sendMail({ transport: 'smtp', host: '127.0.0.1', port: plain.port, user: 'backup', pass: 's3cret' }, mail()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ColdvaultError);
    expect((err as ColdvaultError).code).toBe('MAIL_FAILED');
    expect((err as ColdvaultError).message).toContain(
      `via SMTP server 127.0.0.1:${plain.port} failed: the server does not offer STARTTLS, and coldvault sends a password only over TLS`,
    );
    expect((err as ColdvaultError).message).toContain('leave out user and pass for a relay that needs no login');
    expect(logins).toEqual([]);
    expect(plain.got).toEqual([]);
  });

  it('a password alone (no user) is held to the same rule', async () => {
    const err = await sendMail({ transport: 'smtp', host: '127.0.0.1', port: plain.port, pass: 's3cret' }, mail()).catch((e: unknown) => e);
    expect((err as ColdvaultError).code).toBe('MAIL_FAILED');
    expect(logins).toEqual([]);
  });

  it('without credentials (a local relay that needs no login) the same server delivers in plain text: the opt-out', async () => {
    await sendMail({ transport: 'smtp', host: '127.0.0.1', port: plain.port }, mail());
    expect(plain.got).toHaveLength(1);
    expect(plain.got[0]!.secure).toBe(false);
    expect(logins).toEqual([]);
  });

  it('secure: true (TLS from the first byte) authenticates and delivers', async () => {
    await sendMail(
      { transport: 'smtp', host: '127.0.0.1', port: implicit.port, secure: true, user: 'backup', pass: 's3cret', tlsRejectUnauthorized: false },
      mail(),
    );
    expect(implicit.got).toHaveLength(1);
    expect(implicit.got[0]!.secure).toBe(true);
    expect(implicit.got[0]!.user).toBe('backup');
    expect(logins).toEqual(['backup:s3cret']);
  });
});

describe('sendMail failures and sendmail', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'coldvault-mail-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('connection refused is MAIL_FAILED naming host and port', async () => {
    // a port that was free a moment ago: nothing listens there
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
    const port = (probe.address() as { port: number }).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const err = await sendMail({ transport: 'smtp', host: '127.0.0.1', port }, { to: ['admin@example.com'], from: 'coldvault@pve1', ...jobMail(true) }).catch(
      (e: unknown) => e,
    );
    expect((err as ColdvaultError).code).toBe('MAIL_FAILED');
    expect((err as ColdvaultError).message).toContain(`via SMTP server 127.0.0.1:${port} failed`);
    expect((err as ColdvaultError).message).toContain('ECONNREFUSED');
  });

  it('sendmail transport pipes the message to the configured binary', async () => {
    const sendmail = join(dir, 'sendmail');
    await writeFile(sendmail, `#!/bin/sh\nprintf '%s\\n' "$@" > "${dir}/args"\ncat > "${dir}/message"\n`);
    await chmod(sendmail, 0o755);
    await sendMail({ transport: 'sendmail', sendmailPath: sendmail }, { to: ['admin@example.com'], from: 'root@pve1', ...jobMail(false) });
    const args = (await readFile(join(dir, 'args'), 'utf8')).split('\n');
    expect(args).toContain('admin@example.com');
    expect(args).toContain('root@pve1');
    const raw = await readFile(join(dir, 'message'), 'utf8');
    expect(raw).toMatch(/^Subject: coldvault backup status \(pve1, job nightly\): backup failed$/m);
    expect(part(raw, 'text/plain')).toContain('Detailed backup log:');
  });

  it('a failing sendmail is MAIL_FAILED naming it', async () => {
    const sendmail = join(dir, 'sendmail-broken');
    await writeFile(sendmail, '#!/bin/sh\ncat >/dev/null\necho "sendmail: fatal: no mail system" >&2\nexit 75\n');
    await chmod(sendmail, 0o755);
    const err = await sendMail({ transport: 'sendmail', sendmailPath: sendmail }, { to: ['a@b.example'], from: 'root@pve1', ...jobMail(true) }).catch(
      (e: unknown) => e,
    );
    expect((err as ColdvaultError).code).toBe('MAIL_FAILED');
    expect((err as ColdvaultError).message).toContain(`via sendmail '${sendmail}' failed`);
  });
});
