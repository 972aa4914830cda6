/**
 * A job's webhook target (job JSON `webhook`): `{url, secret?, notification: "always" | "failure",
 * topic?}`. Checked here once, for the CLI, the API and stored rows alike.
 *
 * Rules: the URL is http(s) without user:password in it (a credential goes into `secret`). The
 * secret is visible ASCII (it travels in an HTTP header). TLS rule, as for the mail password
 * (mail.ts): a secret never crosses the network in clear, so a job with a secret needs an https://
 * URL, or plain http:// to a loopback address (127.0.0.0/8, ::1, localhost). `topic` is for ntfy's
 * JSON publish form, which posts to the server's root URL and names the topic in the body.
 *
 * The secret is write-only: `webhookView` is what `job show|list`, the API and the web UI see
 * (`hasSecret` instead of the secret), and `mergeWebhook` keeps a stored secret when an edit leaves
 * it out, but only for the same URL: a new URL with an old secret is refused, so whoever may edit a
 * job cannot send the secret somewhere else without knowing it.
 */
import { ColdvaultError, isLoopbackHost } from '../../core/index.js';

export type WebhookNotification = 'always' | 'failure';

export interface JobWebhook {
  url: string;
  /** sent as `Authorization: Bearer <secret>` and the key of the body's HMAC-SHA-256 signature */
  secret?: string;
  notification: WebhookNotification;
  /** ntfy's JSON publish form: the topic named in the body (then `url` is the server's root URL) */
  topic?: string;
}

/** A job's webhook as shown: everything but the secret, which is only said to be set. */
export interface WebhookView {
  url: string;
  notification: WebhookNotification;
  topic?: string;
  hasSecret: boolean;
}

/** An edit of the webhook: `secret` undefined keeps the stored one (same URL only), null or '' removes it. */
export interface WebhookChange {
  url: string;
  secret?: string | null;
  notification?: WebhookNotification;
  topic?: string | null;
  /** what a job's view says; carried back by clients that send a job as they got it, and ignored */
  hasSecret?: boolean;
}

const KEYS = new Set(['url', 'secret', 'notification', 'topic']);
const SECRET = /^[\x21-\x7e]{1,4096}$/;
const TOPIC = /^[-_A-Za-z0-9]{1,64}$/;

function invalid(jobId: string, message: string): ColdvaultError {
  return new ColdvaultError('JOB_INVALID', `job '${jobId}': ${message}`);
}

/** The stored or given `webhook` as a JobWebhook, or undefined (none); JOB_INVALID names what is wrong. */
export function parseWebhook(v: unknown, jobId: string): JobWebhook | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw invalid(jobId, 'webhook must be an object {url, secret?, notification?, topic?}');
  const fields = v as Record<string, unknown>;
  const unknown = Object.keys(fields).filter((k) => !KEYS.has(k) && fields[k] !== undefined);
  if (unknown.length > 0) throw invalid(jobId, `webhook: unknown field(s) ${unknown.join(', ')} (url, secret, notification, topic)`);
  const url = webhookUrl(fields.url, jobId);
  const secret = optionalText(fields.secret, 'webhook.secret', jobId);
  if (secret !== undefined && !SECRET.test(secret))
    throw invalid(jobId, 'webhook.secret must be 1 to 4096 visible ASCII characters (no spaces: it travels in an HTTP header)');
  const topic = optionalText(fields.topic, 'webhook.topic', jobId);
  if (topic !== undefined && !TOPIC.test(topic)) throw invalid(jobId, `webhook.topic '${topic}' must be 1 to 64 letters, digits, '-' or '_' (an ntfy topic)`);
  if (secret !== undefined) checkSecretTransport(url, jobId);
  return { url: url.href, notification: notification(fields.notification, jobId), ...(secret ? { secret } : {}), ...(topic ? { topic } : {}) };
}

function webhookUrl(v: unknown, jobId: string): URL {
  if (typeof v !== 'string' || v === '') throw invalid(jobId, 'webhook.url is required: the http(s) address the report is posted to');
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    throw invalid(jobId, `webhook.url '${v}' is not a URL (https://host/path)`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw invalid(jobId, `webhook.url '${v}' must be an http:// or https:// address`);
  if (url.username || url.password) throw invalid(jobId, 'webhook.url must not hold a user or password: give the credential as webhook.secret');
  if (v.length > 2048) throw invalid(jobId, 'webhook.url is longer than 2048 characters');
  return url;
}

/** The TLS rule: a secret only over https, or plain http to this host. */
function checkSecretTransport(url: URL, jobId: string): void {
  if (url.protocol === 'https:' || isLoopbackHost(url.hostname)) return;
  throw invalid(
    jobId,
    `webhook.secret would cross the network in clear to ${url.host}: use an https:// URL (plain http:// only to a loopback address: 127.0.0.1, ::1, localhost), or leave out the secret`,
  );
}

function optionalText(v: unknown, name: string, jobId: string): string | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') throw invalid(jobId, `${name} must be a string`);
  return v;
}

function notification(v: unknown, jobId: string): WebhookNotification {
  if (v === undefined || v === null || v === '' || v === 'always') return 'always';
  if (v === 'failure') return 'failure';
  throw invalid(jobId, `webhook.notification ${JSON.stringify(v) ?? typeof v} must be always or failure`);
}

/** What may be shown of a webhook: the secret only as `hasSecret`. */
export function webhookView(webhook: JobWebhook): WebhookView {
  const { secret, ...shown } = webhook;
  return { ...shown, hasSecret: secret !== undefined };
}

/**
 * The webhook after an edit: `change` null removes it, undefined keeps it; a change without `secret`
 * keeps the stored secret when the URL stays, and is refused when the URL changes (the secret must
 * be given again, or null for none). Validated by parseWebhook afterwards (the job model).
 */
export function mergeWebhook(
  current: JobWebhook | undefined,
  change: WebhookChange | null | undefined,
  jobId: string,
): Record<string, unknown> | null | undefined {
  if (change === undefined) return undefined;
  if (change === null) return null;
  const { hasSecret: _shown, ...given } = change;
  if (given.secret !== undefined) return { ...given, secret: given.secret || undefined };
  if (current?.secret === undefined) return given;
  if (sameUrl(current.url, given.url)) return { ...given, secret: current.secret };
  throw invalid(
    jobId,
    'webhook.secret: the URL changes, so give the secret again (or null / an empty secret to send without one); a stored secret only goes to the URL it was given for',
  );
}

function sameUrl(a: string, b: string): boolean {
  try {
    return new URL(a).href === new URL(b).href;
  } catch {
    return false;
  }
}

/** The target as logs name it: scheme, host and port only (a path may hold a token: Slack's URLs, ntfy topics). */
export function describeWebhookTarget(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname === '/' && !u.search ? '/' : '/…'}`;
  } catch {
    return 'webhook';
  }
}
