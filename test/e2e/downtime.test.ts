/**
 * The downtime in the web UI (Debian's chromium through playwright-core, headless, against the real
 * `coldvault serve`): a backup job's task view lists its guests with how long each was off, and the
 * Restore tab's backup list adds `downtime: 00:00:14` to a version that recorded one (in German:
 * `Ausfallzeit`). The version is made by the engine's backupGuest in process, with a request whose
 * `downtime` answers directly (test/helpers/downtime.ts); the e2e lab's hypervisor driver is `none`,
 * which stops no guest, so the job task is recorded through the TaskStore the job runner finishes its
 * task with, holding a result of the runner's shape (a real job's: test/jobs/job-downtime.test.ts).
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStateDb, TaskStore } from '../../dist/jobs/index.js';
import type { GuestReport } from '../../src/jobs/mail.js';
import { backupInProcess, DOWNTIME } from '../helpers/downtime.js';
import { launchBrowser, PASSWORD, screenshot, startE2eLab, watchErrors, type E2eLab } from './helpers-e2e.js';

let lab: E2eLab;
let browser: Browser;
let page: Page;
let errors: string[];
let taskId: string;

beforeAll(async () => {
  [lab, browser] = await Promise.all([startE2eLab(), launchBrowser()]);
  await backupInProcess({ ...lab, guestId: '101', downtime: () => DOWNTIME });
  const db = openStateDb(lab.stateDir);
  try {
    const task = new TaskStore(db, lab.stateDir).create('backup', { jobId: 'nightly', node: 'e2enode', summary: 'job nightly' });
    const guests: GuestReport[] = [
      { vmid: '101', name: 'test-101', status: 'ok', seconds: 75, bytes: 16 << 20, downtimeMs: 14_123 },
      { vmid: '102', name: 'idle', status: 'ok', seconds: 2, bytes: 0 },
    ];
    task.info('Backup job finished successfully');
    task.finish(true, { guests });
    taskId = task.id;
  } finally {
    db.close();
  }
  const context = await browser.newContext({ locale: 'en-US', viewport: { width: 1280, height: 860 } });
  page = await context.newPage();
  page.setDefaultTimeout(15_000);
  errors = watchErrors(page);
});

afterAll(async () => {
  await browser?.close();
  await lab?.close();
});

describe('downtime in the web UI', () => {
  it('logs in', async () => {
    await page.goto(lab.url);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
  });

  it("a job task's view lists its guests with their downtime; `–` for a guest coldvault did not stop", async () => {
    await page.goto(`${lab.url}/#/tasks/${encodeURIComponent(taskId)}`);
    await page.getByRole('heading', { level: 2, name: 'Guests' }).waitFor();
    const head = page.locator('#task-guests thead');
    expect(await head.innerText()).toMatch(/VMID\s+Name\s+Status\s+Time\s+Downtime/);
    const cells = (vmid: string) => page.locator(`#task-guests tr[data-vmid="${vmid}"]`).locator('th, td').allInnerTexts();
    expect(await cells('101')).toEqual(['101', 'test-101', 'OK', '00:01:15', '00:00:14']);
    expect(await cells('102')).toEqual(['102', 'idle', 'OK', '00:00:02', '–']);
    await screenshot(page, 'downtime-task');
  });

  it('the Restore tab shows the downtime of a version that recorded one, also in German', async () => {
    await page.goto(`${lab.url}/#/restore`);
    const item = page.locator('#backup-list button[data-id="101"][data-version="1"]');
    await item.waitFor();
    expect(await item.innerText()).toMatch(/^ID: 101, Version: 1 \(\d{4}-\d\d-\d\d\), name: test-101, downtime: 00:00:14$/);
    await page.getByRole('group', { name: 'Language' }).getByRole('button', { name: 'DE', exact: true }).click();
    await expect.poll(() => item.innerText()).toMatch(/, Ausfallzeit: 00:00:14$/);
    await screenshot(page, 'downtime-restore-de');
    expect(errors).toEqual([]);
  });
});
