/**
 * The job status mail, as vzdump's `mailto` sends it (interfaces.md §2), with coldvault's name and the
 * job id in the subject: `coldvault backup status (pve1, job nightly): backup successful` / `... backup failed`.
 * The body is a per-guest table (VMID, name, status, time HH:MM:SS, size, rate MiB/s, and downtime
 * HH:MM:SS: how long coldvault held the guest off, `-` when it did not stop it; wire: bytes sent and
 * received over the network by a cluster-mode push, `-` for a local backup), the errors of failed
 * guests, the boot tests of the new versions (job `bootTest`: passed or FAILED, with the reason; a
 * failed one puts `boot test failed` in the subject, the backup itself still counts as successful),
 * then the whole job log; as plain text and as HTML (everything escaped).
 * `sendMail` sends it with nodemailer: over SMTP (STARTTLS whenever the server offers it, AUTH when a
 * user is set) or through the local sendmail binary. Any failure is ColdvaultError('MAIL_FAILED')
 * naming the server.
 *
 * TLS rule: a password never crosses the network in clear. With `user`/`pass` set, the connection
 * must be TLS: `secure: true` (port 465), or STARTTLS, which is then required (nodemailer's
 * `requireTLS`): a server that does not offer it gets no AUTH and no mail, MAIL_FAILED says why.
 * Without credentials (a local relay that needs no login) STARTTLS stays opportunistic: used when
 * offered, plain otherwise. That is the opt-out: leave out user and pass.
 */
import type SMTPTransport from 'nodemailer/lib/smtp-transport/index.js';
import { ColdvaultError, describeError, formatBytes, formatDuration, formatRate } from '../core/index.js';

export interface MailConfig {
  transport: 'smtp' | 'sendmail';
  /** smtp: server name; default localhost */
  host?: string;
  /** smtp: default 465 when `secure`, else 25 */
  port?: number;
  /** smtp: TLS from the first byte (port 465); otherwise STARTTLS is used when the server offers it */
  secure?: boolean;
  /** smtp: AUTH user; no AUTH without it. With user/pass, TLS is required (secure, or STARTTLS) */
  user?: string;
  pass?: string;
  /** the sender when a mail gives none */
  from?: string;
  /** sendmail: the binary; default `sendmail` from PATH */
  sendmailPath?: string;
  /** smtp: check the server's certificate (default true); false only for self-signed test servers */
  tlsRejectUnauthorized?: boolean;
}

export interface GuestReport {
  vmid: string;
  name: string;
  status: 'ok' | 'failed';
  seconds: number;
  bytes: number;
  /** milliseconds coldvault held the guest off (shutdown request to started again); absent when it did not stop it */
  downtimeMs?: number;
  /** bytes sent and received over the network (a cluster-mode push); absent for a local backup */
  wireBytes?: number;
  /** the disks' logical size in the version (absent when it failed) */
  logicalBytes?: number;
  error?: string;
  /** the version the backup made (absent when it failed) */
  version?: number;
  /** the boot test of that version (job `bootTest`), absent when none ran */
  bootTest?: { ok: boolean; seconds: number; detail: string };
}

export interface JobMailArgs {
  node: string;
  jobId: string;
  ok: boolean;
  guests: GuestReport[];
  log: string;
  to: string[];
  from: string;
}

export interface ComposedMail {
  subject: string;
  text: string;
  html: string;
}

export interface OutgoingMail extends ComposedMail {
  to: string[];
  from: string;
}

/** one line: no CR/LF can reach a header */
const oneLine = (s: string): string => s.replace(/[\r\n]+/g, ' ').trim();

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const HEADERS = ['VMID', 'Name', 'Status', 'Time', 'Size', 'Rate', 'Downtime'] as const;

/** the Wire column (bytes on the network) only in the mail of a job that pushed to another node */
const pushedAny = (guests: GuestReport[]): boolean => guests.some((g) => g.wireBytes !== undefined);

const headers = (guests: GuestReport[]): string[] => (pushedAny(guests) ? [...HEADERS, 'Wire'] : [...HEADERS]);

/** bytes on the network (a cluster push), `-` for a local backup */
const wire = (bytes: number | undefined): string => (bytes === undefined ? '-' : formatBytes(bytes));

const downtime = (ms: number | undefined): string => (ms === undefined ? '-' : formatDuration(ms / 1000));

function rows(guests: GuestReport[]): string[][] {
  const withWire = pushedAny(guests);
  return guests.map((g) => [
    g.vmid,
    oneLine(g.name),
    g.status,
    formatDuration(g.seconds),
    formatBytes(g.bytes),
    formatRate(g.bytes, g.seconds),
    downtime(g.downtimeMs),
    ...(withWire ? [wire(g.wireBytes)] : []),
  ]);
}

function totalRow(guests: GuestReport[]): string[] {
  const seconds = guests.reduce((a, g) => a + g.seconds, 0);
  const bytes = guests.reduce((a, g) => a + g.bytes, 0);
  const stopped = guests.filter((g) => g.downtimeMs !== undefined);
  const off = stopped.length > 0 ? downtime(stopped.reduce((a, g) => a + (g.downtimeMs ?? 0), 0)) : '-';
  const pushed = guests.filter((g) => g.wireBytes !== undefined);
  const onWire = pushed.length > 0 ? wire(pushed.reduce((a, g) => a + (g.wireBytes ?? 0), 0)) : '-';
  const cells = ['TOTAL', '', '', formatDuration(seconds), formatBytes(bytes), formatRate(bytes, seconds), off];
  return pushed.length > 0 ? [...cells, onWire] : cells;
}

function textTable(table: string[][]): string {
  const widths = (table[0] ?? []).map((_, i) => Math.max(...table.map((r) => (r[i] ?? '').length)));
  return table
    .map((r) =>
      r
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export function composeJobMail(args: JobMailArgs): ComposedMail {
  const bootFailed = args.guests.some((g) => g.bootTest && !g.bootTest.ok);
  const result = `${args.ok ? 'backup successful' : 'backup failed'}${bootFailed ? ', boot test failed' : ''}`;
  const subject = oneLine(`coldvault backup status (${args.node}, job ${args.jobId}): ${result}`);
  const failed = args.guests.filter((g) => g.status === 'failed');
  const summary =
    `coldvault backup job '${oneLine(args.jobId)}' on ${oneLine(args.node)}: ${result} ` +
    `(${args.guests.length} guest(s): ${args.guests.length - failed.length} ok, ${failed.length} failed)`;
  const body = rows(args.guests);
  const total = totalRow(args.guests);
  const errors = failed.map((g) => `${g.vmid}: ${g.error ?? 'failed'}`);
  const boots = bootLines(args.guests);
  const log = args.log.replace(/\r\n/g, '\n').replace(/\n+$/, '');

  const text = [
    summary,
    '',
    textTable([headers(args.guests), ...body, total]),
    ...(errors.length > 0 ? ['', 'Errors:', ...errors] : []),
    ...(boots.length > 0 ? ['', 'Boot tests:', ...boots] : []),
    '',
    'Detailed backup log:',
    '',
    log,
    '',
  ].join('\n');

  const cells = (r: string[], tag: 'td' | 'th'): string => `<tr>${r.map((c) => `<${tag}>${escapeHtml(c)}</${tag}>`).join('')}</tr>`;
  const html = [
    '<!DOCTYPE html>',
    `<html><head><meta charset="utf-8"><title>${escapeHtml(subject)}</title></head><body>`,
    `<p>${escapeHtml(summary)}</p>`,
    '<table border="1" cellpadding="4" cellspacing="0" style="border-collapse:collapse;font-family:monospace">',
    `<thead>${cells(headers(args.guests), 'th')}</thead>`,
    '<tbody>',
    ...body.map((r) => cells(r, 'td')),
    '</tbody>',
    `<tfoot>${cells(total, 'th')}</tfoot>`,
    '</table>',
    ...(errors.length > 0 ? ['<p>Errors:</p><ul>', ...errors.map((e) => `<li>${escapeHtml(e)}</li>`), '</ul>'] : []),
    ...(boots.length > 0 ? ['<p>Boot tests:</p><ul>', ...boots.map((e) => `<li>${escapeHtml(e)}</li>`), '</ul>'] : []),
    '<p>Detailed backup log:</p>',
    `<pre>${escapeHtml(log)}</pre>`,
    '</body></html>',
    '',
  ].join('\n');

  return { subject, text, html };
}

/** `101 version 3: passed in 5.2 s (serial: ...)` / `101 version 3: FAILED after 300 s: timeout: ...` */
function bootLines(guests: GuestReport[]): string[] {
  return guests.flatMap((g) => {
    if (!g.bootTest) return [];
    const b = g.bootTest;
    return [oneLine(`${g.vmid} version ${g.version ?? '?'}: ${b.ok ? `passed in ${b.seconds} s (${b.detail})` : `FAILED after ${b.seconds} s: ${b.detail}`}`)];
  });
}

/** `smtp mail.example.com:587` / `sendmail '/usr/sbin/sendmail'`, for error messages */
function describeServer(config: MailConfig): string {
  if (config.transport === 'sendmail') return `sendmail '${config.sendmailPath ?? 'sendmail'}'`;
  return `SMTP server ${config.host ?? 'localhost'}:${smtpPort(config)}`;
}

const smtpPort = (config: MailConfig): number => config.port ?? (config.secure ? 465 : 25);

export async function sendMail(config: MailConfig, mail: OutgoingMail): Promise<void> {
  if (mail.to.length === 0) throw new ColdvaultError('USAGE', 'sending mail failed: no recipient');
  const from = mail.from || config.from;
  if (!from) throw new ColdvaultError('USAGE', 'sending mail failed: no sender (from)');
  const { createTransport } = await import('nodemailer'); // loaded when a mail goes out, not at every start
  const transporter =
    config.transport === 'sendmail'
      ? createTransport({ sendmail: true, path: config.sendmailPath ?? 'sendmail', newline: 'unix' })
      : createTransport(smtpOptions(config));
  try {
    await transporter.sendMail({
      from,
      to: mail.to,
      subject: oneLine(mail.subject),
      text: mail.text,
      html: mail.html,
    });
  } catch (err) {
    throw new ColdvaultError('MAIL_FAILED', `sending mail '${oneLine(mail.subject)}' via ${describeServer(config)} failed: ${mailFailure(config, err)}`, {
      cause: err,
    });
  } finally {
    transporter.close();
  }
}

/** Credentials are set: they may only travel over TLS (see the TLS rule above). */
const hasCredentials = (config: MailConfig): boolean => config.user !== undefined || config.pass !== undefined;

function smtpOptions(config: MailConfig): SMTPTransport.Options {
  return {
    host: config.host ?? 'localhost',
    port: smtpPort(config),
    secure: config.secure ?? false,
    // not secure: STARTTLS is used whenever the server offers it, and required when a password is sent
    requireTLS: hasCredentials(config) && !config.secure,
    ...(hasCredentials(config) ? { auth: { user: config.user ?? '', pass: config.pass ?? '' } } : {}),
    tls: { rejectUnauthorized: config.tlsRejectUnauthorized ?? true },
    connectionTimeout: 30_000,
    greetingTimeout: 30_000,
    socketTimeout: 60_000,
  };
}

/** nodemailer's reason, or the TLS rule's when the server offered no STARTTLS. */
function mailFailure(config: MailConfig, err: unknown): string {
  const noStartTls = /STARTTLS/i.test(describeError(err)) && hasCredentials(config) && !config.secure;
  if (!noStartTls) return describeError(err);
  return (
    'the server does not offer STARTTLS, and coldvault sends a password only over TLS ' +
    '(enable STARTTLS on the server, use secure: true on port 465, or leave out user and pass for a relay that needs no login)'
  );
}

/**
 * Whether the configured SMTP server takes coldvault's mail, without sending any: connect, EHLO,
 * STARTTLS (required when a password is set, as for a real mail) and AUTH when a user is set
 * (nodemailer's `verify`). MAIL_FAILED naming the server and the reason. For `coldvault doctor`.
 */
export async function verifyMailServer(config: MailConfig, timeoutMs = 10_000): Promise<void> {
  if (config.transport === 'sendmail') throw new ColdvaultError('USAGE', 'verifying mail: the sendmail transport has no server to ask');
  const { createTransport } = await import('nodemailer');
  const transporter = createTransport({ ...smtpOptions(config), connectionTimeout: timeoutMs, greetingTimeout: timeoutMs, socketTimeout: timeoutMs });
  try {
    await transporter.verify();
  } catch (err) {
    throw new ColdvaultError('MAIL_FAILED', `connecting to ${describeServer(config)} failed: ${mailFailure(config, err)}`, { cause: err });
  } finally {
    transporter.close();
  }
}

/** `mail.example.com:587`: the server coldvault's SMTP mail goes to. */
export const smtpAddress = (config: MailConfig): string => `${config.host ?? 'localhost'}:${smtpPort(config)}`;
