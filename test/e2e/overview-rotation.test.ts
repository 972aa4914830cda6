/**
 * The overview's disk rotation on REAL rotated disks (root): two loop devices with ext4, labelled
 * cvrot-a and cvrot-b, are "carried away" in turn: each day only one is attached (losetup), and job
 * `usb` (`--device UUID=a,UUID=b --init-device`) runs with the real CLI on that past day (the shifted
 * clock of test/helpers/overview-history.ts, TEST ONLY), so the disk it used is named in its task log
 * as the device code writes it. GET /api/v1/overview then lists, per day, the disk the job used (by
 * label), and the web UI's rotation table in Chromium shows the same rows, newest first, while the
 * job's store (no disk attached now) is listed with why it cannot be read.
 * Runs one file at a time with the other block-device tests (vitest.config.ts: devices group).
 */
process.env.TZ = 'Europe/Zurich';

import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readMounts } from '../../src/targets/index.js';
import { cliAt, daysBefore, localDay } from '../helpers/overview-history.js';
import { launchBrowser, PASSWORD, screenshot, startE2eLab, watchErrors, type E2eLab } from './helpers-e2e.js';

const sh = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();

interface Disk {
  label: string;
  img: string;
  uuid: string;
}

let lab: E2eLab;
let browser: Browser;
let page: Page;
let work: string;
let usbDir: string;
const disks: Disk[] = [];
/** the disk attached on each day, oldest first */
const PLAN = [0, 1, 0, 1];
const now = new Date();

/** Detaches every loop device of an image (a disk carried away). */
const unplug = (disk: Disk): void => {
  for (const line of sh('losetup', ['-j', disk.img]).split('\n').filter(Boolean)) sh('losetup', ['-d', line.split(':')[0] as string]);
};
const plug = (disk: Disk): string => sh('losetup', ['--find', '--show', disk.img]);

beforeAll(async () => {
  [lab, browser] = await Promise.all([startE2eLab(), launchBrowser()]);
  work = mkdtempSync(join(tmpdir(), 'cv-rotation-'));
  for (const label of ['cvrot-a', 'cvrot-b']) {
    const img = join(work, `${label}.img`);
    sh('truncate', ['-s', '160M', img]);
    const dev = plug({ label, img, uuid: '' });
    sh('mkfs.ext4', ['-q', '-F', '-L', label, dev]);
    disks.push({ label, img, uuid: sh('blkid', ['-s', 'UUID', '-o', 'value', '-p', dev]) });
    unplug(disks.at(-1) as Disk);
  }
  usbDir = join(lab.root, 'usb');
  mkdirSync(usbDir);
  const config = ['--config', lab.configPath];
  const first = daysBefore(now, PLAN.length - 1, 60);
  const specs = disks.map((d) => `UUID=${d.uuid}`).join(',');
  const add = await cliAt(first, ['job', 'add', 'usb', '--store', usbDir, '--device', specs, '--init-device', '--vmid', '101', '--snapshot', 'off', ...config]);
  expect(add.code, add.stderr).toBe(0);
  for (const [i, which] of PLAN.entries()) {
    const disk = disks[which] as Disk;
    plug(disk);
    try {
      const run = await cliAt(daysBefore(now, PLAN.length - 1 - i, 60), ['job', 'run', 'usb', ...config]);
      expect(run.code, run.stderr + run.stdout).toBe(0);
    } finally {
      unplug(disk);
    }
  }
  page = await (await browser.newContext({ locale: 'en-US', timezoneId: 'Europe/Zurich', viewport: { width: 1280, height: 900 } })).newPage();
  page.setDefaultTimeout(15_000);
}, 240_000);

afterAll(async () => {
  await browser?.close();
  for (const m of (await readMounts()).filter((x) => x.mountpoint === usbDir || x.mountpoint.startsWith(work))) spawnSync('umount', ['-l', m.mountpoint]);
  for (const d of disks) unplug(d);
  await lab?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('the disk rotation', () => {
  /** (the disks are made in beforeAll) */
  const expectedDays = () => PLAN.map((which, i) => ({ day: localDay(daysBefore(now, PLAN.length - 1 - i, 60)), device: disks[which]?.label }));

  it('GET /api/v1/overview: the disk each run of the job used, by day and label', async () => {
    const login = await fetch(`${lab.url}/api/v1/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-requested-with': 'coldvault' },
      body: JSON.stringify({ password: PASSWORD }),
    });
    const cookie = login.headers.get('set-cookie')?.split(';')[0] ?? '';
    const overview = (await (await fetch(`${lab.url}/api/v1/overview`, { headers: { cookie } })).json()) as {
      rotation: Array<{ day: string; device: string; job: string; label: string; uuid: string; spec: string }>;
      datastores: Array<{ name: string; error?: string; detached?: boolean }>;
    };
    expect(overview.rotation.map((r) => ({ day: r.day, device: r.device }))).toEqual(expectedDays());
    expect(overview.rotation.every((r) => r.job === 'usb')).toBe(true);
    expect(overview.rotation.map((r) => r.uuid)).toEqual(PLAN.map((w) => disks[w]?.uuid));
    // the job's store is on the disk that is not attached now: listed as detached, naming the disks
    const usb = overview.datastores.find((d) => d.name === 'job:usb');
    expect(usb?.detached).toBe(true);
    expect(usb?.error).toBe(
      `no external disk is attached on '${usbDir}' now (job usb: ${disks.map((d) => `UUID=${d.uuid}`).join(',')}): its versions are on the disk`,
    );
  });

  it('the web UI shows the rotation table, newest day first', async () => {
    const errors = watchErrors(page);
    await page.goto(lab.url);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 2, name: 'Disk rotation' }).waitFor();
    const rows = page.locator('table.rotation tbody tr');
    await rows.first().waitFor();
    const shown = await rows.evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll('th, td')].map((c) => (c as HTMLElement).innerText)));
    expect(shown).toEqual(
      expectedDays()
        .reverse()
        .map((e) => [e.day, 'usb', e.device, '–']),
    );
    expect(await page.locator('article.store[data-store="job:usb"] .detached').innerText()).toBe(
      'No external disk attached now: the versions are on the disk that was carried away.',
    );
    await screenshot(page, 'overview-rotation');
    expect(errors).toEqual([]);
  });
});
