/**
 * Posts one JSON body to a webhook, retried: up to `attempts` tries, each with its own timeout;
 * between them an exponential backoff with jitter (`backoffSeconds` * 2^(n-1), times 0.5 to 1), or
 * the receiver's Retry-After when that is longer (at most 60 s). Retried: network errors, timeouts,
 * HTTP 429 and 5xx. Not retried (a second try would get the same answer): other 4xx, and redirects,
 * which are never followed (the secret header goes only to the URL the admin gave).
 *
 * Headers: `Content-Type: application/json`, `X-Coldvault-Event`, `X-Coldvault-Delivery` (one id per
 * report, the same on every retry: a receiver can drop duplicates) and, with a secret,
 * `Authorization: Bearer <secret>` (ntfy access tokens, Gotify app tokens) and
 * `X-Coldvault-Signature: sha256=<hex HMAC-SHA-256 of the body, keyed with the secret>`.
 *
 * Every failure is a WebhookError (code WEBHOOK_FAILED) saying why (`reason`) and whether another
 * try may help (`retryable`).
 */
import { createHmac, randomUUID } from 'node:crypto';
import { ColdvaultError } from '../../core/index.js';

export interface WebhookSettings {
  /** tries in all (default 4) */
  attempts?: number;
  /** seconds one try may take, answer included (default 10) */
  timeoutSeconds?: number;
  /** the first pause between tries; it doubles each time (default 1) */
  backoffSeconds?: number;
}

export const WEBHOOK_DEFAULTS: Required<WebhookSettings> = { attempts: 4, timeoutSeconds: 10, backoffSeconds: 1 };
const MAX_RETRY_AFTER_MS = 60_000;

export type WebhookFailure = 'network' | 'timeout' | 'http' | 'redirect';

export class WebhookError extends ColdvaultError {
  constructor(
    readonly reason: WebhookFailure,
    message: string,
    readonly retryable: boolean,
    readonly extra: { status?: number; retryAfterMs?: number; cause?: unknown } = {},
  ) {
    super('WEBHOOK_FAILED', message, { cause: extra.cause });
    this.name = 'WebhookError';
  }
}

export interface WebhookRequest {
  url: string;
  body: string;
  secret?: string;
  event: string;
}

export interface WebhookDelivery {
  status: number;
  attempts: number;
}

/** Called after a failed try that will be tried again, with the pause before the next one. */
export type RetryListener = (attempt: number, error: WebhookError, delayMs: number) => void;

export function webhookHeaders(req: WebhookRequest, delivery: string): Record<string, string> {
  const headers: Record<string, string> = {
    'content-type': 'application/json; charset=utf-8',
    'user-agent': 'coldvault',
    'x-coldvault-event': req.event,
    'x-coldvault-delivery': delivery,
  };
  if (req.secret === undefined) return headers;
  const signature = createHmac('sha256', req.secret).update(req.body, 'utf8').digest('hex');
  return { ...headers, authorization: `Bearer ${req.secret}`, 'x-coldvault-signature': `sha256=${signature}` };
}

/** Posts `req`, retried as the header says; the last try's WebhookError when every try failed. */
export async function postWebhook(req: WebhookRequest, settings: WebhookSettings = {}, onRetry?: RetryListener): Promise<WebhookDelivery> {
  const { attempts, timeoutSeconds, backoffSeconds } = { ...WEBHOOK_DEFAULTS, ...settings };
  const headers = webhookHeaders(req, randomUUID());
  for (let attempt = 1; ; attempt++) {
    try {
      return { status: await postOnce(req.url, req.body, headers, timeoutSeconds * 1000), attempts: attempt };
    } catch (err) {
      const error = err instanceof WebhookError ? err : new WebhookError('network', String(err), true, { cause: err });
      if (!error.retryable || attempt >= attempts) throw error;
      const wait = backoffMs(backoffSeconds * 1000, attempt, error.extra.retryAfterMs);
      onRetry?.(attempt, error, wait);
      await new Promise((r) => setTimeout(r, wait));
    }
  }
}

/** Exponential backoff with jitter (0.5 to 1 times the step), or Retry-After when longer. */
export function backoffMs(firstMs: number, attempt: number, retryAfterMs?: number): number {
  const step = firstMs * 2 ** (attempt - 1);
  const jittered = Math.round(step * (0.5 + Math.random() / 2));
  return Math.max(jittered, Math.min(retryAfterMs ?? 0, MAX_RETRY_AFTER_MS));
}

async function postOnce(url: string, body: string, headers: Record<string, string>, timeoutMs: number): Promise<number> {
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    const res = await fetch(url, { method: 'POST', headers, body, redirect: 'manual', signal });
    const answer = oneLine(await res.text()).slice(0, 200);
    if (res.ok) return res.status;
    throw statusError(res, answer);
  } catch (err) {
    if (err instanceof WebhookError) throw err;
    if (signal.aborted) throw new WebhookError('timeout', `no answer within ${timeoutMs / 1000} s`, true, { cause: err });
    throw new WebhookError('network', networkReason(err), true, { cause: err });
  }
}

function statusError(res: Response, answer: string): WebhookError {
  const what = `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}${answer ? `: ${answer}` : ''}`;
  if (res.status >= 300 && res.status < 400) {
    const to = res.headers.get('location');
    return new WebhookError('redirect', `${what} (a redirect${to ? ` to ${to}` : ''}, not followed: give the final URL)`, false, { status: res.status });
  }
  const retryable = res.status === 429 || res.status >= 500;
  return new WebhookError('http', what, retryable, { status: res.status, retryAfterMs: retryAfter(res.headers.get('retry-after')) });
}

/** Retry-After in seconds or as an HTTP date, in milliseconds from now. */
function retryAfter(value: string | null): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/** fetch's "fetch failed" with the system error under it: `connect ECONNREFUSED 127.0.0.1:9`. */
function networkReason(err: unknown): string {
  const cause = err instanceof Error ? err.cause : undefined;
  if (cause instanceof Error) return cause.message;
  return err instanceof Error ? err.message : String(err);
}

const oneLine = (s: string): string => s.replace(/\s+/g, ' ').trim();

/** Config `webhook`: `{attempts: 1-10, timeoutSeconds: > 0 (at most 300), backoffSeconds: >= 0 (at most 300)}`, each optional. */
export function checkWebhookSettings(v: unknown, where: string): WebhookSettings {
  const fields = typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  const within = (x: unknown, min: number, max: number, integer = false): boolean =>
    x === undefined || (typeof x === 'number' && x >= min && x <= max && (!integer || Number.isInteger(x)));
  const ok =
    fields !== undefined &&
    Object.keys(fields).every((k) => k in WEBHOOK_DEFAULTS) &&
    within(fields.attempts, 1, 10, true) &&
    within(fields.timeoutSeconds, 0.001, 300) &&
    within(fields.backoffSeconds, 0, 300);
  if (!ok) {
    throw new ColdvaultError(
      'CONFIG_INVALID',
      `${where}: 'webhook' must be {"attempts": 1-10, "timeoutSeconds": seconds up to 300, "backoffSeconds": seconds up to 300}, each optional`,
    );
  }
  return fields;
}
