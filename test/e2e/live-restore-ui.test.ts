/**
 * The Restore tab's "Start the guest at once (restore on the fly)" in a real browser against the real
 * `coldvault serve` (hypervisor `none`, the e2e lab): the checkbox and its hint are there in English
 * and German, ticking it shows the bandwidth field, and the form sends `live: true` with `bwlimit`:
 * under the `none` driver the server refuses it at once, and the UI shows that refusal (naming the
 * qemu driver) next to the checkbox; nothing is restored. The real restore on the fly is tested
 * through the API against a real QEMU guest (test/server/live-restore-api.test.ts).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser, PASSWORD, screenshot, startE2eLab, watchErrors, type E2eLab } from './helpers-e2e.js';

let lab: E2eLab;
let browser: Browser;

beforeAll(async () => {
  [lab, browser] = await Promise.all([startE2eLab(), launchBrowser()]);
});

afterAll(async () => {
  await browser?.close();
  await lab?.close();
});

/** A page in `locale`, logged in, on the Restore tab. */
async function restoreTab(locale: string, words: { password: string; heading: string }): Promise<{ page: Page; errors: string[] }> {
  const context = await browser.newContext({ locale, viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  const errors = watchErrors(page);
  await page.goto(lab.url);
  await page.getByLabel(words.password).fill(PASSWORD);
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { level: 1 }).first().waitFor();
  await page.goto(`${lab.url}/#/restore`);
  await page.getByRole('heading', { name: words.heading, level: 2 }).waitFor();
  return { page, errors };
}

describe('the Restore tab: start the guest at once', () => {
  it('in English: the checkbox shows the bandwidth field; the form sends live and bwlimit; the refusal of the none driver is shown', async () => {
    const { page, errors } = await restoreTab('en-US', { password: 'Password', heading: 'Restore' });
    const form = page.locator('form.restore-form');
    const live = form.getByLabel('Start the guest at once (restore on the fly)', { exact: true });
    expect(await live.isChecked()).toBe(false);
    expect(await form.locator('[data-field="live"] .hint').innerText()).toMatch(/qemu driver only: the guest runs on the backup while its disks are copied/);
    const bandwidth = form.getByLabel('Bandwidth (MB/s)', { exact: true });
    expect(await bandwidth.isVisible()).toBe(false);
    await live.check();
    expect(await bandwidth.isVisible()).toBe(true);
    await bandwidth.fill('2.5');
    await form.getByLabel('From ID').fill('101');
    await form.getByLabel('Version').fill('1');
    await form.getByLabel('New ID').fill('301');
    const sent = page.waitForRequest((r) => r.url().endsWith('/api/v1/restore') && r.method() === 'POST');
    await form.getByRole('button', { name: 'Restore' }).click();
    expect((await sent).postDataJSON()).toMatchObject({ id: '101', version: 1, newId: '301', live: true, bwlimit: 2.5 });
    const refusal = form.locator('[data-field="live"] .field-error');
    await refusal.filter({ hasText: /needs the qemu driver \(hypervisor\.driver 'qemu'\), not 'none'/ }).waitFor();
    expect(await refusal.innerText()).toMatch(/no hypervisor is configured to run the guest; restore without live/);
    expect(await form.locator('.form-summary').innerText()).toMatch(/The restore was not started/);
    await screenshot(page, 'live-restore-refused');
    expect(existsSync(join(lab.guestsDir, '301.conf'))).toBe(false);
    await live.uncheck();
    expect(await bandwidth.isVisible()).toBe(false);
    expect(errors).toEqual([]);
  });

  it('in German: the checkbox and the bandwidth field', async () => {
    const { page, errors } = await restoreTab('de-DE', { password: 'Passwort', heading: 'Wiederherstellen' });
    const form = page.locator('form.restore-form');
    const live = form.getByLabel('Gast sofort starten (Restore on the fly)', { exact: true });
    expect(await live.count()).toBe(1);
    expect(await form.locator('[data-field="live"] .hint').innerText()).toMatch(/nur mit dem qemu-Treiber/);
    const bandwidth = form.getByLabel('Bandbreite (MB/s)', { exact: true });
    expect(await bandwidth.isVisible()).toBe(false);
    await live.check();
    expect(await bandwidth.isVisible()).toBe(true);
    expect(errors).toEqual([]);
  });
});
