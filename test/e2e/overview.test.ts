/**
 * The overview page in a real browser (Debian's chromium through playwright-core, headless) against
 * the real `coldvault serve`, on a datastore (a 128 MiB tmpfs, root) holding two weeks of versions of
 * four guests, made by the real CLI on past days (test/helpers/overview-history.ts; its shifted clock
 * is TEST ONLY), server and browser in Europe/Zurich time. After the login the overview is the landing
 * page; in English and in German it shows every guest with its last result, flags the guest no job
 * covers, the one whose last backup failed and the overdue one; the usage chart (uPlot's own data, read
 * from the page) has one point per day of history; the "full on" date shown is the one the test
 * computes itself from `coldvault list --json` and the filesystem's free space (least squares, written
 * apart from the product's); each job's run chart has a point per run, and the 30 / 90 days switch
 * works. Screenshots: test-artifacts/e2e/overview-*.png (overview-readme.png is the README's docs/overview.png).
 */
process.env.TZ = 'Europe/Zurich';

import { statfsSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from '../helpers/fixtures.js';
import { expectedForecast, GUESTS, makeHistory, OVERDUE_DAYS } from '../helpers/overview-history.js';
import { mountFs, type MountedFs } from '../helpers/snapshot-fs.js';
import { ARTIFACTS, launchBrowser, PASSWORD, screenshot, startE2eLab, watchErrors, type E2eLab } from './helpers-e2e.js';

const DAYS = 14; // two weeks of history: enough for the forecast (at least 7 days) and every flag
let lab: E2eLab;
let tmpfs: MountedFs | undefined;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let errors: string[];
let forecast: { days: number; dayList: string[]; fullOn: string | null };

beforeAll(async () => {
  [lab, browser] = await Promise.all([startE2eLab({ prepare: (l) => (tmpfs = mountFs('tmpfs', l.root, l.storeDir, 128)) }), launchBrowser()]);
  const now = new Date();
  await makeHistory(lab, lab.configPath, now, DAYS);
  const listed = await cli(['list', '--store', lab.storeDir, '--json', '--config', lab.configPath]);
  expect(listed.code, listed.stderr).toBe(0);
  const s = statfsSync(lab.storeDir);
  forecast = expectedForecast(JSON.parse(listed.stdout) as Array<{ time: string; storedBytes: number }>, s.bavail * s.bsize, now);
  context = await browser.newContext({ locale: 'en-US', timezoneId: 'Europe/Zurich', viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  page.setDefaultTimeout(15_000);
  errors = watchErrors(page);
}, 300_000);

afterAll(async () => {
  await browser?.close();
  tmpfs?.cleanup(); // unmounted before the lab's folder is removed
  await lab?.close();
});

const row = (id: string) => page.locator(`table.overview-guests tr[data-vmid="${id}"]`);
const flagsOf = async (id: string) => (await row(id).getAttribute('data-flags'))?.split(' ').filter(Boolean) ?? [];
const flagTexts = (id: string) => row(id).locator('.flag').allInnerTexts();
/** What uPlot holds for a chart: [x values, ...series] */
const chartData = (selector: string) =>
  page.locator(selector).evaluate((el) => (el as HTMLElement & { uplot: { data: Array<Array<number | null>> } }).uplot.data);

describe('the overview in English', () => {
  it('is the landing page after the login', async () => {
    expect([DAYS, DAYS + 1]).toContain(forecast.days); // DAYS + 1 when run in the first 90 minutes after midnight
    expect(forecast.fullOn).not.toBeNull();
    await page.goto(lab.url);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
    expect(page.url()).toMatch(/#\/overview$/);
    expect(await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Overview' }).getAttribute('aria-current')).toBe('page');
  });

  it('shows every guest with its last result; flags the uncovered, the failed and the overdue guest', async () => {
    await row(GUESTS.ok).waitFor();
    expect(await page.locator('table.overview-guests tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-vmid')))).toEqual([
      '101',
      '102',
      '103',
      '104',
    ]);
    const result = (id: string) => row(id).locator('td.last .badge').innerText();
    expect(await row(GUESTS.ok).getAttribute('data-result')).toBe('ok');
    expect(await result(GUESTS.ok)).toBe('OK');
    expect(await flagsOf(GUESTS.ok)).toEqual([]);
    expect(await row(GUESTS.ok).getAttribute('class')).toBeNull();

    expect(await row(GUESTS.failed).getAttribute('data-result')).toBe('failed');
    expect(await result(GUESTS.failed)).toBe('failed');
    expect(await flagTexts(GUESTS.failed)).toEqual(['failed', 'overdue']);
    expect(await row(GUESTS.failed).getAttribute('class')).toContain('flagged');

    expect(await row(GUESTS.overdue).getAttribute('data-result')).toBe('ok');
    expect(await flagTexts(GUESTS.overdue)).toEqual(['overdue']);
    const cells = await row(GUESTS.overdue).locator('td').allInnerTexts();
    expect(cells.at(-2)).toBe(String(OVERDUE_DAYS)); // days since the last good backup

    expect(await row(GUESTS.uncovered).getAttribute('data-result')).toBe('ok');
    expect(await flagTexts(GUESTS.uncovered)).toEqual(['not backed up']);
    expect(await row(GUESTS.uncovered).getAttribute('class')).toContain('flag-not-backed-up');
  });

  it("the usage chart has one point per day of history; the full-on date is the test's own", async () => {
    const store = page.locator('article.store[data-store="main"]');
    const data = await chartData('[data-chart="usage"][data-store="main"]');
    expect(data[0]).toHaveLength(forecast.days);
    expect(data[1]).toHaveLength(forecast.days);
    const days = data[0] as number[];
    for (let i = 1; i < days.length; i++) expect(Math.round((days[i]! - days[i - 1]!) / 3600)).toBeGreaterThanOrEqual(23); // a day apart (23 h across DST)
    expect(await store.locator('.full-on').getAttribute('data-full-on')).toBe(forecast.fullOn);
    expect(await store.locator('.full-on strong').innerText()).toBe(`Full on ${forecast.fullOn}`);
    expect(await store.locator('.dedup').innerText()).toMatch(/^dedup factor \d+\.\d×$/);
    expect(await store.locator('canvas').count()).toBe(1);
  });

  it('run history: a point per run of each job; the 30 / 90 days switch', async () => {
    const nightly = await chartData('[data-chart="runs"][data-job="nightly"]');
    expect(nightly[0]).toHaveLength(DAYS);
    expect(nightly[4]?.filter((v) => v !== null)).toHaveLength(1); // the one failed run, marked
    expect((await chartData('[data-chart="runs"][data-job="offsite"]'))[0]).toHaveLength(DAYS - OVERDUE_DAYS);
    expect(await page.locator('article.job-runs[data-job="nightly"] h3').innerText()).toBe(`Job nightly: ${DAYS} runs, 1 failed`);
    const ninety = page.getByRole('group', { name: 'Period' }).getByRole('button', { name: '90 days' });
    await ninety.click();
    expect(await ninety.getAttribute('aria-pressed')).toBe('true');
    expect((await chartData('[data-chart="runs"][data-job="nightly"]'))[0]).toHaveLength(DAYS);
    expect(await page.getByText('No job used an external disk in this period.').isVisible()).toBe(true);
    await screenshot(page, 'overview-en');
    // the README's picture (docs/overview.png is a copy): guests, datastore, the first job's runs
    const bottom = await page.locator('article.job-runs[data-job="nightly"]').evaluate((el) => el.getBoundingClientRect().bottom + window.scrollY);
    await page.screenshot({ path: join(ARTIFACTS, 'overview-readme.png'), fullPage: true, clip: { x: 0, y: 0, width: 1280, height: Math.ceil(bottom) + 24 } });
    expect(errors).toEqual([]);
  });
});

describe('the overview in German', () => {
  it('says the same in German: Übersicht, Flags, Voll am', async () => {
    await page.getByRole('button', { name: 'DE' }).click();
    await page.getByRole('heading', { level: 1, name: 'Übersicht' }).waitFor();
    expect(await flagTexts(GUESTS.failed)).toEqual(['fehlgeschlagen', 'überfällig']);
    expect(await flagTexts(GUESTS.overdue)).toEqual(['überfällig']);
    expect(await flagTexts(GUESTS.uncovered)).toEqual(['nicht gesichert']);
    expect(await row(GUESTS.failed).locator('td.last .badge').innerText()).toBe('fehlgeschlagen');
    const store = page.locator('article.store[data-store="main"]');
    expect(await store.locator('.full-on strong').innerText()).toBe(`Voll am ${forecast.fullOn}`);
    // the charts were drawn again in German, with the same points
    const usage = page.locator('[data-chart="usage"][data-store="main"]');
    expect(await usage.locator('.u-legend').innerText()).toContain('gespeichert');
    expect((await chartData('[data-chart="usage"][data-store="main"]'))[0]).toHaveLength(forecast.days);
    expect(await page.locator('[data-chart="runs"][data-job="nightly"] .u-legend').innerText()).toMatch(/Dauer \((s|min)\)/);
    await screenshot(page, 'overview-de');
  });

  it('a fresh German login lands on the Übersicht too', async () => {
    const de = await browser.newContext({ locale: 'de-DE', timezoneId: 'Europe/Zurich', viewport: { width: 1280, height: 900 } });
    const dePage = await de.newPage();
    dePage.setDefaultTimeout(15_000);
    const deErrors = watchErrors(dePage);
    await dePage.goto(lab.url);
    await dePage.getByLabel('Passwort').fill(PASSWORD);
    await dePage.keyboard.press('Enter');
    await dePage.getByRole('heading', { level: 1, name: 'Übersicht' }).waitFor();
    await dePage.locator(`tr[data-vmid="${GUESTS.uncovered}"] .flag`).waitFor();
    expect(await dePage.locator(`tr[data-vmid="${GUESTS.uncovered}"] .flag`).innerText()).toBe('nicht gesichert');
    await de.close();
    expect(deErrors).toEqual([]);
    expect(errors).toEqual([]);
  });
});
