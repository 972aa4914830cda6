/**
 * The JSON a webhook receives when a job ends: the job's structured result (job, node, kind, task,
 * result, start and end, one row per guest with its boot test), and beside it the fields common
 * receivers show without any configuration:
 *   - `title`, `message`: Gotify (POST /message) and ntfy's JSON publish form (with `topic`, and
 *     `priority` 1-5 / `tags` for ntfy; Gotify takes `priority` 0-10 as well);
 *   - `text`: Slack-style incoming webhooks (Slack, Mattermost, Rocket.Chat), `&`, `<`, `>` escaped
 *     as Slack's message formatting asks.
 * Receivers ignore the fields they do not know. `message` lists at most MESSAGE_GUESTS guests and
 * stays under MESSAGE_CHARS characters (ntfy turns a longer message into an attachment); the
 * structured `guests` always has every guest. `schema` versions the structured part.
 */
import { formatBytes, formatDuration } from '../../core/index.js';
import type { GuestReport } from '../mail.js';

export const WEBHOOK_EVENT = 'job.finished';
const MESSAGE_GUESTS = 20;
const MESSAGE_CHARS = 3000;

export interface WebhookGuestRow {
  id: string;
  name: string;
  status: 'ok' | 'failed';
  durationMs: number;
  /** how long coldvault held the guest off; null when it did not stop it */
  downtimeMs: number | null;
  /** bytes read (a backup) or pulled (a sync) */
  bytes: number;
  /** the disks' logical size in the new version; null when it failed */
  logicalBytes: number | null;
  /** the version made; null when it failed */
  version: number | null;
  error: string | null;
  bootTest: { ok: boolean; durationMs: number; detail: string } | null;
}

export interface WebhookPayload {
  title: string;
  message: string;
  text: string;
  priority: number;
  tags: string[];
  topic?: string;
  schema: 1;
  event: typeof WEBHOOK_EVENT;
  jobId: string;
  node: string;
  kind: 'backup' | 'sync';
  taskId: string;
  result: 'success' | 'failure';
  /** a boot test of a new version failed (the backup itself may still be a success) */
  bootTestFailed: boolean;
  start: string;
  end: string;
  durationMs: number;
  guests: WebhookGuestRow[];
}

export interface JobOutcome {
  jobId: string;
  node: string;
  kind: 'backup' | 'sync';
  taskId: string;
  ok: boolean;
  start: Date;
  end: Date;
  guests: GuestReport[];
}

const ms = (seconds: number): number => Math.round(seconds * 1000);

function guestRow(g: GuestReport): WebhookGuestRow {
  const boot = g.bootTest ? { ok: g.bootTest.ok, durationMs: ms(g.bootTest.seconds), detail: g.bootTest.detail } : null;
  return {
    id: g.vmid,
    name: g.name,
    status: g.status,
    durationMs: ms(g.seconds),
    downtimeMs: g.downtimeMs ?? null,
    bytes: g.bytes,
    logicalBytes: g.logicalBytes ?? null,
    version: g.version ?? null,
    error: g.error ?? null,
    bootTest: boot,
  };
}

/** `backup successful` / `sync failed, boot test failed` */
function resultWords(o: JobOutcome, bootFailed: boolean): string {
  return `${o.kind} ${o.ok ? 'successful' : 'failed'}${bootFailed ? ', boot test failed' : ''}`;
}

/** One line per guest: `101 web01: ok in 00:01:02, 1.20 GiB, off 00:00:14` / `102 db: FAILED: ...` */
function guestLine(g: GuestReport): string {
  const name = g.name ? ` ${g.name}` : '';
  if (g.status === 'failed') return `${g.vmid}${name}: FAILED: ${g.error ?? 'failed'}`;
  const off = g.downtimeMs === undefined ? '' : `, off ${formatDuration(g.downtimeMs / 1000)}`;
  const boot = g.bootTest ? `, boot test ${g.bootTest.ok ? 'passed' : `FAILED: ${g.bootTest.detail}`}` : '';
  return `${g.vmid}${name}: ok in ${formatDuration(g.seconds)}, ${formatBytes(g.bytes)}${off}${boot}`;
}

function composeMessage(o: JobOutcome, words: string): string {
  const failed = o.guests.filter((g) => g.status === 'failed').length;
  const head = `job ${o.jobId} on ${o.node}: ${words} (${o.guests.length} guest(s): ${o.guests.length - failed} ok, ${failed} failed) in ${formatDuration((o.end.getTime() - o.start.getTime()) / 1000)}`;
  const lines = o.guests.slice(0, MESSAGE_GUESTS).map(guestLine);
  const more = o.guests.length > MESSAGE_GUESTS ? [`… and ${o.guests.length - MESSAGE_GUESTS} more guest(s)`] : [];
  const message = [head, ...lines, ...more].join('\n');
  return message.length > MESSAGE_CHARS ? `${message.slice(0, MESSAGE_CHARS - 1)}…` : message;
}

/** Slack's message formatting: `&`, `<` and `>` are control characters there. */
const slackEscape = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function composeWebhookPayload(o: JobOutcome, topic?: string): WebhookPayload {
  const bootTestFailed = o.guests.some((g) => g.bootTest && !g.bootTest.ok);
  const words = resultWords(o, bootTestFailed);
  const title = `coldvault ${o.kind} status (${o.node}, job ${o.jobId}): ${words}`;
  const message = composeMessage(o, words);
  const bad = !o.ok || bootTestFailed;
  return {
    title,
    message,
    text: slackEscape(`${title}\n${message}`),
    priority: bad ? 5 : 3,
    tags: [bad ? 'rotating_light' : 'white_check_mark'],
    ...(topic ? { topic } : {}),
    schema: 1,
    event: WEBHOOK_EVENT,
    jobId: o.jobId,
    node: o.node,
    kind: o.kind,
    taskId: o.taskId,
    result: o.ok ? 'success' : 'failure',
    bootTestFailed,
    start: o.start.toISOString(),
    end: o.end.toISOString(),
    durationMs: o.end.getTime() - o.start.getTime(),
    guests: o.guests.map(guestRow),
  };
}
