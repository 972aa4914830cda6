/**
 * notify: a job's reports beyond mail. A webhook target per job (job JSON `webhook`): when the job
 * ends, a JSON POST with its structured result plus the fields Gotify, ntfy and Slack-style
 * receivers show as they are (`title`, `message`, `text`), an optional secret (Bearer header and an
 * HMAC-SHA-256 signature of the body), retried with backoff; a failing target never fails the job.
 *   webhook-setting.ts  the job's `webhook`: validation, the TLS rule for the secret, the shown view
 *   webhook-payload.ts  the JSON body
 *   webhook-post.ts     the POST with retries, WebhookError
 *   webhook-report.ts   what the runner calls when a job ends
 */
export * from './webhook-setting.js';
export * from './webhook-payload.js';
export * from './webhook-post.js';
export * from './webhook-report.js';
