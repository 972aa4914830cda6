/**
 * A job as it is shown (`job show|list`, the API's job answers, the web UI): every field but the
 * webhook's secret, which appears only as `webhook.hasSecret`. The stored job keeps it (the state
 * database is private to root: 0600 in a 0700 state dir).
 */
import type { Job } from './job-model.js';
import { webhookView, type WebhookView } from './notify/index.js';

export type JobView = Omit<Job, 'webhook'> & { webhook?: WebhookView };

export function jobView(job: Job): JobView {
  const { webhook, ...rest } = job;
  return webhook ? { ...rest, webhook: webhookView(webhook) } : rest;
}
