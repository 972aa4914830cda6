/**
 * The job's report to its webhook, sent when a backup or sync job ends (beside the mail): skipped
 * under `notification: "failure"` when the job succeeded and no boot test failed (as the mail).
 * Each failed try is a WARN line in the job's log, a target that fails every try an ERROR line; the
 * job's result stays what it was (a failing target never fails a backup). Log lines name the target
 * by its origin (webhook-setting.ts) and never hold the secret.
 */
import { describeError, type TaskLog } from '../../core/index.js';
import { composeWebhookPayload, WEBHOOK_EVENT, type JobOutcome } from './webhook-payload.js';
import { postWebhook, WEBHOOK_DEFAULTS, type WebhookSettings } from './webhook-post.js';
import { describeWebhookTarget, type JobWebhook } from './webhook-setting.js';

export interface WebhookReport {
  webhook: JobWebhook | undefined;
  outcome: JobOutcome;
  /** tries, timeout and backoff (config `webhook`) */
  settings?: WebhookSettings;
  log: TaskLog;
}

/** Whether the job's webhook gets this outcome (notification "failure": only failures and failed boot tests). */
export function webhookWanted(webhook: JobWebhook | undefined, outcome: Pick<JobOutcome, 'ok' | 'guests'>): webhook is JobWebhook {
  if (!webhook) return false;
  const bootFailed = outcome.guests.some((g) => g.bootTest && !g.bootTest.ok);
  return webhook.notification === 'always' || !outcome.ok || bootFailed;
}

/** Sends the report; never throws (failures are logged). */
export async function sendWebhookReport({ webhook, outcome, settings, log }: WebhookReport): Promise<void> {
  if (!webhookWanted(webhook, outcome)) return;
  const target = `webhook ${describeWebhookTarget(webhook.url)}`;
  const hide = (text: string): string => (webhook.secret ? text.split(webhook.secret).join('***') : text);
  const attempts = settings?.attempts ?? WEBHOOK_DEFAULTS.attempts;
  let tries = 1;
  try {
    const body = JSON.stringify(composeWebhookPayload(outcome, webhook.topic));
    const delivered = await postWebhook({ url: webhook.url, body, secret: webhook.secret, event: WEBHOOK_EVENT }, settings, (attempt, err, waitMs) => {
      tries = attempt + 1;
      log.warn(hide(`${target}: attempt ${attempt} of ${attempts} failed: ${err.message}; trying again in ${(waitMs / 1000).toFixed(1)} s`));
    });
    log.info(`sent the report to ${target} (HTTP ${delivered.status}${delivered.attempts > 1 ? `, attempt ${delivered.attempts}` : ''})`);
  } catch (err) {
    log.error(hide(`sending the report to ${target} failed (attempt ${tries} of ${attempts}): ${describeError(err)}; the job's result stays as it is`));
  }
}
