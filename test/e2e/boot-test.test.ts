/**
 * The boot test in the web UI (Debian's chromium through playwright-core, headless, against the real
 * `coldvault serve`): the tiny real guest's version, boot-tested by the CLI, shows in the Restore
 * tab's backup list with a `✓ boots (N s)` tag (its detail as the title; `✓ startet` in German) and a
 * link to the PNG of the guest's screen, which the server serves to the logged-in session; a job
 * task's guest table gets a Boot test column (✓ seconds / ✗ failed, the detail as its title). The job
 * task is recorded through the TaskStore with a result of the runner's shape (a real job run with
 * bootTest: test/cli/boot-test.test.ts). The job form sets bootTest and its console pattern.
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStateDb, TaskStore } from '../../dist/jobs/index.js';
import type { GuestReport } from '../../src/jobs/mail.js';
import { cli, imagePath, writeGuest } from '../helpers/fixtures.js';
import { ensureTinyGuest, makeGuestDisk } from '../helpers/tiny-guest.js';
import { launchBrowser, PASSWORD, screenshot, startE2eLab, watchErrors, type E2eLab } from './helpers-e2e.js';

let lab: E2eLab;
let browser: Browser;
let page: Page;
let errors: string[];
let taskId: string;

async function ok(args: string[]): Promise<void> {
  const r = await cli([...args, '--config', lab.configPath]);
  if (r.code !== 0) throw new Error(`coldvault ${args.join(' ')} exited ${r.code}:\n${r.stderr}`);
}

beforeAll(async () => {
  const guest = await ensureTinyGuest();
  [lab, browser] = await Promise.all([startE2eLab({ config: { bootTest: { accel: 'tcg' } } }), launchBrowser()]);
  writeGuest(
    lab,
    '120',
    [{ key: 'virtio0', file: 'vm-120-disk-0.raw' }],
    `args: -kernel ${guest.kernel} -initrd ${guest.initrd} -append 'console=ttyS0 quiet'\n`,
  );
  await makeGuestDisk(imagePath(lab, '120', 'vm-120-disk-0.raw'), 16);
  await ok(['backup', '120', '--store', 'main']);
  await ok(['boot-test', '120', '--version', '1', '--store', 'main', '--expect', 'coldvault-tiny-guest: boot', '--timeout', '60']);
  const db = openStateDb(lab.stateDir);
  try {
    const task = new TaskStore(db, lab.stateDir).create('backup', { jobId: 'nightly', node: 'e2enode', summary: 'job nightly' });
    const guests: GuestReport[] = [
      { vmid: '120', name: 'test-120', status: 'ok', seconds: 3, bytes: 1 << 20, version: 1, bootTest: { ok: true, seconds: 4.2, detail: 'serial: up' } },
      {
        vmid: '121',
        name: 'broken',
        status: 'ok',
        seconds: 2,
        bytes: 1 << 20,
        version: 4,
        bootTest: { ok: false, seconds: 3, detail: 'the guest powered off' },
      },
      { vmid: '122', name: 'gone', status: 'failed', seconds: 1, bytes: 0, error: 'no disk' },
    ];
    task.finish(true, { guests });
    taskId = task.id;
  } finally {
    db.close();
  }
  const context = await browser.newContext({ locale: 'en-US', viewport: { width: 1280, height: 860 } });
  page = await context.newPage();
  page.setDefaultTimeout(15_000);
  errors = watchErrors(page);
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await lab?.close();
});

describe('the boot test in the web UI', () => {
  it('the Restore tab tags the boot-tested version and links the screenshot, which the session can fetch', async () => {
    await page.goto(lab.url);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
    await page.goto(`${lab.url}/#/restore`);
    const item = page.locator('#backup-list li', { has: page.locator('button[data-id="120"][data-version="1"]') });
    await item.waitFor();
    const tag = item.locator('.tag.boot.ok');
    expect(await tag.innerText()).toMatch(/^✓ boots \(\d+(\.\d)? s\)$/);
    expect(await tag.getAttribute('title')).toMatch(/^boot test of \d{4}-\d\d-\d\d: serial: coldvault-tiny-guest: boot 1 marker/);
    const link = item.getByRole('link', { name: 'screen' });
    const href = await link.getAttribute('href');
    expect(href).toBe(`/api/v1/backups/120/1/screenshot?store=${encodeURIComponent(lab.storeDir)}`);
    const png = await page.request.get(`${lab.url}${href}`, { headers: { 'x-requested-with': 'coldvault' } });
    expect(png.status()).toBe(200);
    expect(png.headers()['content-type']).toBe('image/png');
    expect((await png.body()).subarray(1, 4).toString()).toBe('PNG');
    await screenshot(page, 'boot-test-restore');
    await page.getByRole('group', { name: 'Language' }).getByRole('button', { name: 'DE', exact: true }).click();
    await expect.poll(() => tag.innerText()).toMatch(/^✓ startet \(/);
    expect(await item.getByRole('link', { name: 'Bildschirm' }).count()).toBe(1);
    expect(errors).toEqual([]);
  });

  it("a job task's guest table shows each new version's boot test", async () => {
    await page.goto(`${lab.url}/#/tasks/${encodeURIComponent(taskId)}`);
    const head = page.locator('#task-guests thead');
    await head.waitFor();
    expect(await head.innerText()).toMatch(/Ausfallzeit\s+Starttest\s*$/); // still in German from the test before
    const cell = (vmid: string) => page.locator(`#task-guests tr[data-vmid="${vmid}"] td.boot`);
    expect(await cell('121').getAttribute('title')).toBe('the guest powered off');
    expect(await cell('121').innerText()).toBe('✗ fehlgeschlagen');
    expect(await cell('122').innerText()).toBe('–');
    await page.getByRole('button', { name: 'EN', exact: true }).click();
    await expect.poll(() => head.innerText()).toMatch(/Downtime\s+Boot test\s*$/);
    await expect.poll(() => cell('120').innerText()).toBe('✓ 4.2 s');
    expect(await cell('121').innerText()).toBe('✗ failed');
    await screenshot(page, 'boot-test-task');
    expect(errors).toEqual([]);
  });

  it('the job form sets bootTest and its console pattern; a bad pattern is refused next to its field', async () => {
    await page.goto(`${lab.url}/#/jobs`);
    await page.getByRole('button', { name: 'Create new job' }).click();
    await page.getByRole('heading', { name: 'New job' }).waitFor();
    const form = page.locator('form.job-form');
    await form.getByLabel('Job name').fill('booted');
    await form.getByLabel('Mon', { exact: true }).check();
    await form.getByLabel('Start time').fill('22:30');
    await form.getByLabel('Select guest 120').check();
    await form.getByLabel('Boot test each new version').check();
    await form.getByLabel('Boot test: console line').fill('(');
    await form.getByRole('button', { name: 'Save job' }).click();
    await expect.poll(() => form.getByLabel('Boot test: console line').getAttribute('aria-invalid')).toBe('true');
    expect(await form.getByRole('alert').innerText()).toMatch(/bootTestExpect '\(' is not a regular expression/);
    await form.getByLabel('Boot test: console line').fill('coldvault-tiny-guest: boot');
    await screenshot(page, 'boot-test-job-form');
    await form.getByRole('button', { name: 'Save job' }).click();
    await page.getByText('Job “booted” was saved.').waitFor();
    const job = (await (await page.request.get(`${lab.url}/api/v1/jobs/booted`, { headers: { 'x-requested-with': 'coldvault' } })).json()) as Record<
      string,
      unknown
    >;
    expect(job).toMatchObject({ bootTest: true, bootTestExpect: 'coldvault-tiny-guest: boot' });
    expect(errors).toEqual([]);
  });
});
