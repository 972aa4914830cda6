/**
 * The job form's webhook in a real browser (chromium through playwright-core) against the real
 * `coldvault serve`, with a REAL receiver on 127.0.0.1 (node:http): a secret over plain http beyond
 * loopback is refused next to the secret field; a job with a webhook and a secret is saved, and the
 * API answers `hasSecret`, never the secret; Start now posts the result with the secret as Bearer;
 * editing shows the secret as "set" (an empty password field), saving without touching it keeps it
 * (the next run still sends it), "Remove the webhook secret" and "on failure only" are saved.
 * Screenshot: test-artifacts/e2e/job-webhook.png.
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startReceiver, type Receiver } from '../helpers/webhook-receiver.js';
import { launchBrowser, PASSWORD, screenshot, startE2eLab, watchErrors, type E2eLab } from './helpers-e2e.js';

const SECRET = 'ui-S3cret-0c4d';
let lab: E2eLab;
let browser: Browser;
let page: Page;
let hook: Receiver;
let errors: string[];

beforeAll(async () => {
  [lab, browser, hook] = await Promise.all([startE2eLab(), launchBrowser(), startReceiver()]);
  const context = await browser.newContext({ locale: 'en-US', viewport: { width: 1280, height: 1100 } });
  page = await context.newPage();
  page.setDefaultTimeout(15_000);
  errors = watchErrors(page);
});

afterAll(async () => {
  await browser?.close();
  await lab?.close();
  await hook?.close();
});

const form = () => page.locator('form.job-form');
const apiJob = async (): Promise<{ webhook?: unknown }> => (await page.request.get(`${lab.url}/api/v1/jobs/hooked`)).json();

async function startNow(): Promise<string> {
  await page.getByRole('button', { name: 'Start now: hooked' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Start now' }).click();
  await page.locator('#task-log[data-ended="true"]').waitFor({ timeout: 30_000 });
  await expect.poll(() => page.locator('#task-status [data-status]').getAttribute('data-status')).toBe('ok');
  return page.locator('#task-log').innerText();
}

async function editHooked(): Promise<void> {
  await page.goto(`${lab.url}/#/jobs`);
  await page.getByRole('button', { name: 'Edit: hooked' }).click();
  await page.getByRole('heading', { name: 'Edit job hooked' }).waitFor();
}

describe('the job form’s webhook', () => {
  it('refuses a secret over plain http next to its field, saves the webhook, answers hasSecret only', async () => {
    await page.goto(lab.url);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor(); // the landing page
    await page.goto(`${lab.url}/#/jobs`);
    await page.getByRole('button', { name: 'Create new job' }).click();
    await page.getByRole('heading', { name: 'New job' }).waitFor();
    const f = form();
    await f.getByLabel('Job name').fill('hooked');
    await f.getByLabel('Start time').fill('01:00');
    await f.getByLabel('Select guest 101').check();
    expect(await f.getByLabel('Remove the webhook secret').isVisible()).toBe(false); // nothing to remove yet
    await f.getByLabel('Webhook URL', { exact: true }).fill('http://hooks.example.com/x');
    await f.getByLabel('Webhook secret', { exact: true }).fill(SECRET);
    await f.getByRole('button', { name: 'Save job' }).click();
    const secretError = f.locator('[data-field="webhookSecret"] .field-error');
    await secretError.waitFor();
    expect(await secretError.innerText()).toMatch(/webhook\.secret would cross the network in clear to hooks\.example\.com: use an https:\/\/ URL/);

    await f.getByLabel('Webhook URL', { exact: true }).fill(hook.url);
    await f.getByRole('button', { name: 'Save job' }).click();
    await page.getByText('Job “hooked” was saved.').waitFor();
    const res = await page.request.get(`${lab.url}/api/v1/jobs/hooked`);
    expect(await res.text()).not.toContain(SECRET);
    expect((await res.json()).webhook).toEqual({ url: hook.url, notification: 'always', hasSecret: true });
  });

  it('Start now posts the result with the secret as Bearer', async () => {
    const log = await startNow();
    expect(log).toContain(`INFO: sent the report to webhook http://127.0.0.1:${hook.port}/… (HTTP 200)`);
    expect(log).not.toContain(SECRET);
    expect(hook.got).toHaveLength(1);
    expect(hook.got[0]!.headers.authorization).toBe(`Bearer ${SECRET}`);
    expect(JSON.parse(hook.got[0]!.raw)).toMatchObject({ jobId: 'hooked', result: 'success' });
  });

  it('editing shows the secret as set; saving without it keeps it; remove and failure only are saved', async () => {
    await editHooked();
    const f = form();
    const secret = f.getByLabel('Webhook secret', { exact: true });
    expect(await secret.inputValue()).toBe('');
    expect(await secret.getAttribute('placeholder')).toBe('set (leave empty to keep it)');
    expect(await secret.getAttribute('type')).toBe('password');
    expect(await f.getByLabel('Webhook URL', { exact: true }).inputValue()).toBe(hook.url);
    expect(await page.content()).not.toContain(SECRET);
    await f.getByLabel('Start time').fill('02:00');
    await screenshot(page, 'job-webhook');
    await f.getByRole('button', { name: 'Save job' }).click();
    await page.getByText('Job “hooked” was saved.').waitFor();
    await startNow();
    expect(hook.got).toHaveLength(2);
    expect(hook.got[1]!.headers.authorization).toBe(`Bearer ${SECRET}`); // kept

    await editHooked();
    await form().getByLabel('Remove the webhook secret').check();
    expect(await form().getByLabel('Webhook secret', { exact: true }).isDisabled()).toBe(true);
    await form().getByLabel('Webhook: send').selectOption('failure');
    await form().getByRole('button', { name: 'Save job' }).click();
    await page.getByText('Job “hooked” was saved.').waitFor();
    expect((await apiJob()).webhook).toEqual({ url: hook.url, notification: 'failure', hasSecret: false });

    await editHooked();
    expect(await form().getByLabel('Remove the webhook secret').isVisible()).toBe(false);
    await form().getByLabel('Webhook URL', { exact: true }).fill('');
    await form().getByRole('button', { name: 'Save job' }).click();
    await page.getByText('Job “hooked” was saved.').waitFor();
    expect((await apiJob()).webhook).toBeUndefined();
    expect(errors).toEqual([]);
  });
});
