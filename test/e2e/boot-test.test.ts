/**
 * The boot test in the web UI (Debian's chromium through playwright-core, headless, against the real
 * `coldvault serve`): the tiny real guest's version, boot-tested by the CLI, shows in the Restore
 * tab's backup list with a `✓ boots (N s)` tag (its detail as the title; `✓ startet` in German) and a
 * link to the PNG of the guest's screen, which the server serves to the logged-in session.
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, imagePath, writeGuest } from '../helpers/fixtures.js';
import { ensureTinyGuest, makeGuestDisk } from '../helpers/tiny-guest.js';
import { launchBrowser, PASSWORD, screenshot, startE2eLab, watchErrors, type E2eLab } from './helpers-e2e.js';

let lab: E2eLab;
let browser: Browser;
let page: Page;
let errors: string[];

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
    await page.getByRole('heading', { level: 1, name: 'Backup' }).waitFor();
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
});
