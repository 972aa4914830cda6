/**
 * A schedule through the web UI (Debian's chromium through playwright-core against the real
 * `coldvault serve`, both in Europe/Zurich): the job form's Schedule field with its hint (English and
 * German); a bad calendar event is refused next to that field with the part that is wrong; a good one
 * is saved, the jobs list shows it with the next run as its title (a date in the hour the clocks skip:
 * the jump); editing sends the job back (with its read-only nextRun) and changes the schedule, whose
 * next run the API answers as systemd-analyze computes it. Screenshots: test-artifacts/e2e/schedule-*.png.
 */
process.env.TZ = 'Europe/Zurich'; // the server's local time (serve inherits it)

import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { iso, systemdRuns, ZONE } from '../jobs/helpers-schedule.js';
import { launchBrowser, PASSWORD, screenshot, startE2eLab, watchErrors, type E2eLab } from './helpers-e2e.js';

let lab: E2eLab;
let browser: Browser;
let page: Page;
let errors: string[];

beforeAll(async () => {
  [lab, browser] = await Promise.all([startE2eLab(), launchBrowser()]);
  const context = await browser.newContext({ locale: 'en-US', timezoneId: ZONE, viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  page.setDefaultTimeout(15_000);
  errors = watchErrors(page);
  await page.goto(lab.url);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor(); // the landing page
  await page.goto(`${lab.url}/#/jobs`);
  await page.getByRole('heading', { level: 1, name: 'Backup' }).waitFor();
});

afterAll(async () => {
  await browser?.close();
  await lab?.close();
});

const form = () => page.locator('form.job-form');

describe('the Schedule field of the job form', () => {
  it('refuses a bad calendar event next to the field, naming the wrong part; saves a good one', async () => {
    await page.getByRole('button', { name: 'Create new job' }).click();
    await page.getByRole('heading', { name: 'New job' }).waitFor();
    const schedule = form().getByLabel('Schedule', { exact: true });
    expect(await form().locator('#job-schedule-hint').innerText()).toMatch(/Proxmox calendar event \(mon\.\.fri 22:30.*cron with five fields/);
    await form().getByLabel('Job name').fill('dst');
    await form().getByLabel('Select guest 101').check();
    await schedule.fill('mon..fry 22:30');
    await form().getByRole('button', { name: 'Save job' }).click();
    const fieldError = form().locator('[data-field="schedule"] .field-error');
    await fieldError.waitFor();
    expect(await fieldError.innerText()).toContain("schedule 'mon..fry 22:30' (a calendar event): 'fry' is not a weekday");
    expect(await schedule.getAttribute('aria-invalid')).toBe('true');
    await screenshot(page, 'schedule-refused');

    await schedule.fill('2031-03-30 02:30'); // 02:30 does not come that night: the clocks jump from 02:00 to 03:00
    await form().getByRole('button', { name: 'Save job' }).click();
    await page.getByText('Job “dst” was saved.').waitFor();
    const when = page.locator('tr[data-job="dst"] td.when');
    expect(await when.innerText()).toBe('2031-03-30 02:30');
    expect(await when.getAttribute('title')).toBe('next run: 2031-03-30 03:00:00');
    const days = await page.locator('tr[data-job="dst"] td.day').allInnerTexts();
    expect(days.some((d) => d.includes('✓'))).toBe(false); // the schedule, not weekdays
    await screenshot(page, 'schedule-jobs');
  });

  it('edits the schedule: the form sends the job back and the API answers the new next run', async () => {
    await page.getByRole('button', { name: 'Edit: dst' }).click();
    const schedule = form().getByLabel('Schedule', { exact: true });
    expect(await schedule.inputValue()).toBe('2031-03-30 02:30');
    await schedule.fill('sat 18:15');
    await form().getByRole('button', { name: 'Save job' }).click();
    await page.getByText('Job “dst” was saved.').waitFor();
    const before = await systemdRuns('sat 18:15', new Date(), 1);
    const job = await (await page.request.get(`${lab.url}/api/v1/jobs/dst`)).json();
    const after = await systemdRuns('sat 18:15', new Date(), 1);
    expect(job).toMatchObject({ schedule: 'sat 18:15', vmid: ['101'] });
    expect([...before, ...after].map(iso)).toContain(job.nextRun);
  });

  it('has its label and hint in German', async () => {
    await page.getByRole('group', { name: 'Language' }).getByRole('button', { name: 'DE', exact: true }).click();
    await page.getByRole('button', { name: 'Bearbeiten: dst' }).click();
    expect(await form().getByLabel('Zeitplan', { exact: true }).inputValue()).toBe('sat 18:15');
    expect(await form().locator('#job-schedule-hint').innerText()).toMatch(/Proxmox-Kalenderereignis.*Cron mit fünf Feldern/);
    await screenshot(page, 'schedule-form-de');
    expect(errors).toEqual([]);
  });
});
