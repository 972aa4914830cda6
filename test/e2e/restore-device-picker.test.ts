/**
 * The Restore tab's device picker in a real browser (chromium through playwright-core) against the
 * real `coldvault serve`, on REAL loop devices (root) with ext4: a disk that a job (`coldvault job run`
 * on the same state) initialised and backed up guest 101 to is offered, with its size, filesystem,
 * label and datastore; an empty disk is not. Choosing it chooses the job's folder, says what it holds
 * (guest 101, version 1, as the job saw it) and lists that version; choosing the version and
 * restoring to a new ID mounts the disk read-only for the restore, the log ends `restore successful`
 * and the restored disk is the source's. "Another disk" shows the field to type a path by hand.
 * Screenshot: test-artifacts/e2e/restore-device-picker.png.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, imagePath, sha256File } from '../helpers/fixtures.js';
import { Loops, sh, type Loop } from '../jobs/helpers-devices.js';
import { launchBrowser, PASSWORD, screenshot, startE2eLab, watchErrors, type E2eLab } from './helpers-e2e.js';

let lab: E2eLab;
let browser: Browser;
let page: Page;
let loops: Loops;
let used: Loop;
let empty: Loop;
let usbDir = '';
let errors: string[];
const label = `cvui${Math.random().toString(36).slice(2, 6)}`;

beforeAll(async () => {
  [lab, browser] = await Promise.all([startE2eLab(), launchBrowser()]);
  loops = new Loops(mkdtempSync(join(tmpdir(), 'cv-e2e-pick-')));
  used = loops.make('used', '160M', (dev) => void sh('mkfs.ext4', ['-q', '-F', '-L', label, dev]));
  empty = loops.make('empty', '64M', (dev) => void sh('mkfs.ext4', ['-q', '-F', '-L', `${label}x`, dev]));
  usbDir = join(loops.work, 'usb');
  const config = ['--config', lab.configPath];
  const add = await cli(['job', 'add', 'usbjob', '--store', usbDir, '--vmid', '101', '--device', `UUID=${used.uuid}`, '--init-device', ...config]);
  expect(add.code, add.stderr).toBe(0);
  const run = await cli(['job', 'run', 'usbjob', ...config]);
  expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
  const context = await browser.newContext({ locale: 'en-US', viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  page.setDefaultTimeout(15_000);
  errors = watchErrors(page);
});

afterAll(async () => {
  await browser?.close();
  await loops?.cleanup();
  await lab?.close();
});

describe('the Restore tab’s device picker', () => {
  it('offers the disk that holds a datastore, not the empty one; choosing it and restoring works', async () => {
    await page.goto(lab.url);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor(); // the landing page
    await page.goto(`${lab.url}/#/restore`);
    await page.getByRole('heading', { name: 'Restore', level: 2 }).waitFor();
    const form = page.locator('form.restore-form');
    const picker = form.getByLabel('External device', { exact: true });
    const option = picker.locator(`option[value="UUID=${used.uuid}"]`);
    await option.waitFor({ state: 'attached' });
    const job = (await (await page.request.get(`${lab.url}/api/v1/jobs/usbjob`)).json()) as { deviceDatastoreId: string };
    expect(await option.innerText()).toBe(`${used.path} · 160.0 MiB · ext4 · ${label} — datastore ${job.deviceDatastoreId.slice(0, 8)}`);
    const texts = await picker.locator('option').allInnerTexts();
    expect(
      texts.some((t) => t.includes(empty.path)),
      texts.join('\n'),
    ).toBe(false);
    expect(texts[0]).toBe('None: the datastore folder as it is');
    expect(texts.at(-1)).toBe('Another disk (type its path)…');

    await picker.selectOption('__typed__');
    expect(await form.getByLabel('Disk path, typed by hand').isVisible()).toBe(true);
    await picker.selectOption(`UUID=${used.uuid}`);
    expect(await form.getByLabel('Disk path, typed by hand').isVisible()).toBe(false);
    expect(await form.getByLabel('From path').inputValue()).toBe(usbDir);
    const detail = form.locator('.device-detail');
    expect(await detail.innerText()).toMatch(
      new RegExp(
        `^Datastore ${job.deviceDatastoreId.slice(0, 8)}; mounted read-only on job:usbjob for the restore\\.\\n+When coldvault last had it mounted \\(\\d{4}-\\d\\d-\\d\\d, job usbjob\\): guests 101 \\(1\\)\\.$`,
      ),
    );
    const item = page.locator('#backup-list button', { hasText: 'ID: 101, Version: 1 (on the disk)' });
    await item.click();
    expect(await form.getByLabel('From ID').inputValue()).toBe('101');
    expect(await form.getByLabel('Version').inputValue()).toBe('1');
    await form.getByLabel('New ID').fill('501');
    await screenshot(page, 'restore-device-picker');
    await form.getByRole('button', { name: 'Restore' }).click();
    await page.getByRole('heading', { level: 1, name: 'Task log' }).waitFor();
    await page.locator('#task-log[data-ended="true"]').waitFor({ timeout: 30_000 });
    const log = await page.locator('#task-log').innerText();
    expect(log).toContain(`mounted UUID=${used.uuid} read-only on '${usbDir}', without journal replay: the disk is not changed`);
    expect(log).toMatch(/restore successful$/m);
    expect(log.trim().split('\n').at(-1)).toMatch(new RegExp(`INFO: unmounted UUID=${used.uuid}: the disk may now be removed$`));
    expect(sha256File(imagePath(lab, '501', 'vm-501-disk-0.raw'))).toBe(sha256File(imagePath(lab, '101', 'vm-101-disk-0.raw')));
    expect(errors).toEqual([]);
  });
});
