/**
 * The web UI in a real browser (Debian's chromium through playwright-core, headless) against the real
 * `coldvault serve`: log in, see the guests, create a job with weekdays and a start time through the
 * form (an API refusal shows next to its field first), Start now -> the confirm dialog -> the live
 * log shows `Finished Backup` and the status OK; restore to a new ID through the Restore tab -> the log
 * ends `restore successful` and the restored disk is the source's; edit and delete a job (that one with a key
 * file: outside the key folders it is refused next to its field, inside it is saved and the list marks the job encrypted); then once
 * more in German (EN | DE switch, remembered; and German chosen from the browser's languages). An
 * encrypted version (guest 150, `backup --encrypt`) in the Restore tab: a lock tag with its key's
 * fingerprint; choosing it shows the key file fields; without the key or with a path outside the key
 * folders the refusal shows next to the Key file field; with the key file the restore succeeds.
 * Screenshots of every screen: test-artifacts/e2e/*.png.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, imagePath, sha256File, writeGuest, writeImage } from '../helpers/fixtures.js';
import { launchBrowser, PASSWORD, screenshot, startE2eLab, watchErrors, type E2eLab } from './helpers-e2e.js';

let lab: E2eLab;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let errors: string[];
/** a key folder of the server (config keyDirs), besides the default one */
const keysDir = mkdtempSync(join(tmpdir(), 'cv-e2e-keys-'));
const T = 15_000; // per-step wait: a backup of the 16 MiB guest takes well under a second

beforeAll(async () => {
  // script before holds the run for a moment, so the log is seen while the task still runs
  [lab, browser] = await Promise.all([startE2eLab({ beforeScript: 'sleep 1.5', config: { keyDirs: ['/etc/coldvault/keys', keysDir] } }), launchBrowser()]);
  context = await browser.newContext({ locale: 'en-US', viewport: { width: 1280, height: 860 } });
  page = await context.newPage();
  page.setDefaultTimeout(T);
  errors = watchErrors(page);
});

afterAll(async () => {
  await browser?.close();
  await lab?.close();
  rmSync(keysDir, { recursive: true, force: true });
});

/** Inputs and selects on the page that have neither a <label> nor an aria-label. */
const unlabelled = () =>
  page.evaluate(() =>
    [...document.querySelectorAll('input, select, textarea')]
      .filter((el) => (el as HTMLInputElement).labels?.length === 0 && !el.getAttribute('aria-label'))
      .map((el) => el.outerHTML),
  );

const heading = (name: string | RegExp) => page.getByRole('heading', { level: 1, name });
const logText = () => page.locator('#task-log').innerText();

/** Waits for the live log to end; returns its text. */
async function waitLogEnd(expected: 'ok' | 'failed' = 'ok'): Promise<string> {
  await page.locator('#task-log[data-ended="true"]').waitFor({ timeout: 30_000 });
  await expect.poll(() => page.locator('#task-status [data-status]').getAttribute('data-status')).toBe(expected);
  return logText();
}

describe('the web UI in English', () => {
  it('shows the login, refuses a wrong password, logs in', async () => {
    await page.goto(lab.url);
    await heading('Log in').waitFor();
    expect(await page.locator('html').getAttribute('lang')).toBe('en');
    await screenshot(page, '01-login');
    await page.getByLabel('Password').fill('wrong');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('alert').getByText('Wrong password.').waitFor();
    await page.getByLabel('Password').fill(PASSWORD);
    await page.keyboard.press('Enter');
    await heading('Overview').waitFor(); // the landing page (test/e2e/overview.test.ts)
    expect(page.url()).toMatch(/#\/overview$/);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Backup' }).click();
    await heading('Backup').waitFor();
    expect(await page.getByText('No jobs yet.').isVisible()).toBe(true);
    const cookies = await context.cookies();
    expect(cookies.find((c) => c.name === 'coldvault_session')).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
  });

  it('lists the guests: VMID, status, name, type, disk size', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Guests' }).click();
    await heading('Guests').waitFor();
    const row = page.locator('tr[data-vmid="101"]');
    await expect.poll(() => row.locator('th, td').allInnerTexts()).toEqual(['101', 'stopped', 'test-101', 'qemu', '16.0 MiB']);
    await screenshot(page, '02-guests');
  });

  it("creates a job through the form; the API's refusal shows next to its field", async () => {
    await page.getByRole('link', { name: 'Backup' }).click();
    await heading('Backup').waitFor();
    await page.getByRole('button', { name: 'Create new job' }).click();
    await page.getByRole('heading', { name: 'New job' }).waitFor();
    const form = page.locator('form.job-form');
    // every field of the seed is there, each with its label
    for (const label of [
      'Job name',
      'Node',
      'Target dir',
      'External device',
      'Start time',
      'Mode',
      'Cold snapshot',
      'Mail to',
      'Include all guests',
      'Exclude',
      'Keep (1-x)',
      'Script before',
      'Script after',
      'Key file (encryption)',
      'Passphrase file',
    ]) {
      expect(await form.getByLabel(label, { exact: true }).count(), label).toBe(1);
    }
    for (const day of ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun']) expect(await form.getByLabel(day, { exact: true }).count(), day).toBe(1);
    expect(await form.getByLabel('Node', { exact: true }).inputValue()).toBe('e2enode');
    expect(await form.getByLabel('Exclude', { exact: true }).isDisabled()).toBe(true);
    expect(await unlabelled()).toEqual([]);

    await form.getByLabel('Job name').fill('nightly');
    for (const day of ['Mon', 'Wed', 'Fri']) await form.getByLabel(day, { exact: true }).check();
    await form.getByLabel('Start time').fill('22:30');
    await form.getByLabel('Keep (1-x)').fill('3');
    expect(await form.getByLabel('Cold snapshot', { exact: true }).inputValue()).toBe('auto'); // the default
    await form.getByLabel('Cold snapshot', { exact: true }).selectOption('off');
    expect(await form.getByLabel('Full read every (days)', { exact: true }).inputValue()).toBe('7'); // the default
    await form.getByLabel('Full read every (days)', { exact: true }).fill('3');
    await form.getByLabel('Mail to').fill('admin@example.com');
    await form.getByLabel('Select guest 101').check();
    await form.getByLabel('Script before').fill('/tmp/not-allowed.sh'); // outside the server's script folders
    await form.getByRole('button', { name: 'Save job' }).click();
    const fieldError = form.locator('[data-field="scriptBefore"] .field-error');
    await fieldError.waitFor();
    expect(await fieldError.innerText()).toMatch(/scriptBefore '\/tmp\/not-allowed\.sh' is not inside the script folders/);
    expect(await form.getByLabel('Script before').getAttribute('aria-invalid')).toBe('true');
    expect(await form.getByRole('alert').innerText()).toMatch(/The job was not saved:[\s\S]*PATH_NOT_ALLOWED/);

    await form.getByLabel('Script before').fill(join(lab.scriptsDir, 'before.sh'));
    await screenshot(page, '04-new-job');
    await form.getByRole('button', { name: 'Save job' }).click();
    await heading('Backup').waitFor();
    await page.getByText('Job “nightly” was saved.').waitFor();

    const row = page.locator('tr[data-job="nightly"]');
    await row.waitFor();
    const cells = await row.locator('th, td').allInnerTexts();
    expect(cells.slice(0, 2)).toEqual(['nightly', 'e2enode']);
    expect(cells.slice(2, 9).map((c) => c.includes('✓'))).toEqual([true, false, true, false, true, false, false]);
    expect(cells.slice(9, 12)).toEqual(['22:30', `${lab.storeDir} (main)`, '101']);
    for (const name of ['Edit: nightly', 'Delete: nightly', 'Start now: nightly']) expect(await row.getByRole('button', { name }).count()).toBe(1);
    await screenshot(page, '03-jobs');

    const job = await (await page.request.get(`${lab.url}/api/v1/jobs/nightly`)).json();
    expect(job).toMatchObject({
      id: 'nightly',
      node: 'e2enode',
      store: lab.storeDir,
      vmid: ['101'],
      all: false,
      days: ['mon', 'wed', 'fri'],
      at: '22:30',
      keep: 3,
      mode: 'stop',
      snapshot: 'off',
      fullEvery: 3,
      mailto: ['admin@example.com'],
      scriptBefore: join(lab.scriptsDir, 'before.sh'),
      enabled: true,
    });
  });

  it('Start now asks in a dialog; cancel does nothing, confirming shows the live log to `Finished Backup` and OK', async () => {
    const start = page.getByRole('button', { name: 'Start now: nightly' });
    await start.click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    expect(await dialog.evaluate((d) => d.tagName === 'DIALOG' && (d as HTMLDialogElement).open)).toBe(true);
    expect(await dialog.innerText()).toMatch(/Start job “nightly” now\?/);
    await page.keyboard.press('Escape'); // cancel
    await dialog.waitFor({ state: 'detached' });
    expect(page.url()).toMatch(/#\/jobs$/);
    expect(await (await page.request.get(`${lab.url}/api/v1/tasks`)).json()).toEqual([]);

    await start.click();
    await dialog.waitFor();
    await screenshot(page, '03b-confirm-start');
    await dialog.getByRole('button', { name: 'Start now' }).click();
    await heading('Task log').waitFor();
    expect(page.url()).toMatch(/#\/tasks\/[^/]+-backup-[^/]*\?from=jobs$/);
    // the stream follows the task while it runs (script before sleeps 1.5 s)
    await page.locator('#task-status [data-status="running"]').waitFor({ timeout: 3000 });
    await page.locator('#task-log .line').first().waitFor();
    const text = await waitLogEnd('ok');
    expect(text).toMatch(/INFO: Starting Backup of VM 101 \(qemu\)/);
    expect(text).toMatch(/INFO: Finished Backup of VM 101/);
    expect(await page.locator('#task-status').innerText()).toBe('OK');
    expect(await page.getByRole('status').filter({ hasText: 'The task has ended.' }).count()).toBe(1);
    await screenshot(page, '05-live-log');
  });

  it('the task list links to the logs', async () => {
    await page.getByRole('link', { name: 'Tasks' }).click();
    await heading('Tasks').waitFor();
    const links = page.locator('table.tasks tbody a');
    await links.first().waitFor();
    expect(await links.count()).toBe(1);
    const row = await page.locator('table.tasks tbody tr').first().innerText();
    expect(row).toMatch(/backup\s+nightly\s+OK/);
    expect(row).toContain('admin@web'); // who started it: the web login
    await screenshot(page, '05b-tasks');
    await links.first().click();
    await heading('Task log').waitFor();
    expect(await waitLogEnd('ok')).toMatch(/Finished Backup of VM 101/);
  });

  it('restores to a new ID through the Restore tab; the log ends `restore successful`', async () => {
    await page.getByRole('link', { name: 'Backup' }).click();
    await page.getByRole('navigation', { name: 'Backup' }).getByRole('link', { name: 'Restore' }).click();
    await page.getByRole('heading', { name: 'Restore', level: 2 }).waitFor();
    const form = page.locator('form.restore-form');
    expect(await form.getByLabel('External device').isEditable()).toBe(true); // optional: an external disk mounted read-only for the restore
    expect(await form.getByLabel('From path').inputValue()).toBe(lab.storeDir);
    expect(await unlabelled()).toEqual([]);
    const item = page.locator('#backup-list button').first();
    await item.waitFor();
    // From ID filters the list (GET /backups?guest=)
    await form.getByLabel('From ID').fill('999');
    await page.getByText('No backups in this datastore.').waitFor();
    await form.getByLabel('From ID').fill('');
    await item.waitFor();
    const day = new Date();
    const date = `${day.getFullYear()}-${String(day.getMonth() + 1).padStart(2, '0')}-${String(day.getDate()).padStart(2, '0')}`;
    expect(await item.innerText()).toBe(`ID: 101, Version: 1 (${date}), name: test-101`);
    await item.click();
    expect(await item.getAttribute('aria-pressed')).toBe('true');
    expect(await form.getByLabel('From ID').inputValue()).toBe('101');
    expect(await form.getByLabel('Version').inputValue()).toBe('1');
    expect(await form.getByLabel('New ID').inputValue()).toBe('102'); // the next free ID
    await form.getByLabel('New ID').fill('101'); // taken: the API refuses
    await form.getByRole('button', { name: 'Restore' }).click();
    await form
      .locator('[data-field="newId"] .field-error')
      .filter({ hasText: /guest ID 101 is already in use/ })
      .waitFor();
    await form.getByLabel('New ID').fill('201');
    await screenshot(page, '06-restore');
    await form.getByRole('button', { name: 'Restore' }).click();
    await heading('Task log').waitFor();
    expect(page.url()).toMatch(/-restore-[^/]*\?from=restore$/);
    const text = await waitLogEnd('ok');
    expect(text.trim().split('\n').at(-1)).toMatch(/restore successful$/);
    await screenshot(page, '07-restore-log');
    const restored = imagePath(lab, '201', 'vm-201-disk-0.raw');
    expect(existsSync(restored)).toBe(true);
    expect(sha256File(restored)).toBe(sha256File(imagePath(lab, '101', 'vm-101-disk-0.raw')));
    expect(readFileSync(join(lab.guestsDir, '201.conf'), 'utf8')).toMatch(/local:201\/vm-201-disk-0\.raw/);
    await page.getByRole('link', { name: 'Back to restore' }).click();
    await page.getByRole('heading', { name: 'Restore', level: 2 }).waitFor();
  });

  it('edits a job (the form comes back filled; the change is saved) and deletes one behind the dialog', async () => {
    await page.getByRole('navigation', { name: 'Backup' }).getByRole('link', { name: 'Jobs' }).click();
    await page.getByRole('button', { name: 'Start now: nightly' }).waitFor();
    await page.getByRole('button', { name: 'Edit: nightly' }).click();
    await page.getByRole('heading', { name: 'Edit job nightly' }).waitFor();
    const form = page.locator('form.job-form');
    expect(await form.getByLabel('Job name').getAttribute('readonly')).not.toBeNull();
    expect(await form.getByLabel('Start time').inputValue()).toBe('22:30');
    expect(await form.getByLabel('Wed', { exact: true }).isChecked()).toBe(true);
    expect(await form.getByLabel('Select guest 101').isChecked()).toBe(true);
    await form.getByLabel('Include all guests').check();
    expect(await form.getByLabel('Select guest 101').isDisabled()).toBe(true);
    await form.getByLabel('Exclude', { exact: true }).fill('201');
    await form.getByLabel('Sat', { exact: true }).check();
    await form.getByLabel('Start time').fill('23:15');
    await form.getByRole('button', { name: 'Save job' }).click();
    await page.getByText('Job “nightly” was saved.').waitFor();
    await page.locator('tr[data-job="nightly"]').waitFor();
    const cells = await page.locator('tr[data-job="nightly"]').locator('th, td').allInnerTexts();
    expect(cells.slice(9, 12)).toEqual(['23:15', `${lab.storeDir} (main)`, 'all guests except 201']);
    const job = await (await page.request.get(`${lab.url}/api/v1/jobs/nightly`)).json();
    expect(job).toMatchObject({
      all: true,
      vmid: [],
      exclude: ['201'],
      days: ['mon', 'wed', 'fri', 'sat'],
      at: '23:15',
      keep: 3,
      scriptBefore: join(lab.scriptsDir, 'before.sh'),
      mailto: ['admin@example.com'],
    });

    // a second job to delete, encrypted: its key file must lie in the key folders (config keyDirs, default /etc/coldvault/keys)
    await page.getByRole('button', { name: 'Create new job' }).click();
    const scratch = page.locator('form.job-form');
    await scratch.getByLabel('Job name').fill('scratch');
    await scratch.getByLabel('Start time').fill('01:00');
    await scratch.getByLabel('Include all guests').check();
    await scratch.getByLabel('Key file (encryption)').fill('/tmp/scratch.key');
    await page.getByRole('button', { name: 'Save job' }).click();
    const keyError = scratch.locator('[data-field="keyFile"] .field-error');
    await keyError.waitFor();
    expect(await keyError.innerText()).toMatch(
      /encrypt\.keyFile '\/tmp\/scratch\.key' is not inside the key folders \(\/etc\/coldvault\/keys, .*cv-e2e-keys-.*; config key keyDirs\)/,
    );
    await scratch.getByLabel('Key file (encryption)').fill('/etc/coldvault/keys/scratch.key');
    await page.getByRole('button', { name: 'Save job' }).click();
    await page.locator('tr[data-job="scratch"]').waitFor();
    const lock = page.locator('tr[data-job="scratch"] .tag.encrypted');
    expect(await lock.innerText()).toBe('🔒 encrypted');
    expect(await lock.getAttribute('title')).toBe('encrypted with key file /etc/coldvault/keys/scratch.key');
    expect(await page.locator('tr[data-job="nightly"] .tag.encrypted').count()).toBe(0);
    expect((await (await page.request.get(`${lab.url}/api/v1/jobs/scratch`)).json()).encrypt).toEqual({ keyFile: '/etc/coldvault/keys/scratch.key' });
    await page.getByRole('button', { name: 'Delete: scratch' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'detached' });
    expect(await page.locator('tr[data-job="scratch"]').count()).toBe(1);
    await page.getByRole('button', { name: 'Delete: scratch' }).click();
    await dialog.getByRole('button', { name: 'Delete' }).click();
    await page.getByText('Job “scratch” was deleted.').waitFor();
    // the table reloads after the deletion: wait for it rather than read it mid-render
    await page.locator('tr[data-job="scratch"]').waitFor({ state: 'detached' });
    await page.locator('tr[data-job="nightly"]').waitFor();
    expect(await page.locator('tr[data-job="scratch"]').count()).toBe(0);
    expect(await page.locator('tr[data-job="nightly"]').count()).toBe(1);
  });
});

describe('the web UI in German', () => {
  it('switches to DE: Datensicherung, Jobs, Neuen Job erstellen, Jetzt starten; the choice is remembered', async () => {
    await page.getByRole('group', { name: 'Language' }).getByRole('button', { name: 'DE', exact: true }).click();
    await heading('Datensicherung').waitFor();
    expect(await page.locator('html').getAttribute('lang')).toBe('de');
    expect(await page.getByRole('button', { name: 'DE', exact: true }).getAttribute('aria-pressed')).toBe('true');
    for (const name of ['Gäste', 'Datensicherung', 'Aufgaben'])
      expect(await page.getByRole('navigation', { name: 'Hauptmenü' }).getByRole('link', { name }).count(), name).toBe(1);
    expect(await page.getByRole('button', { name: 'Abmelden' }).count()).toBe(1);
    expect(await page.getByRole('navigation', { name: 'Datensicherung' }).innerText()).toMatch(/Jobs\s+Wiederherstellen/);
    expect(await page.getByRole('button', { name: 'Neuen Job erstellen' }).count()).toBe(1);
    const row = page.locator('tr[data-job="nightly"]');
    expect(await row.getByRole('button', { name: 'Jetzt starten: nightly' }).innerText()).toBe('Jetzt starten');
    expect(await page.locator('table.jobs thead').innerText()).toMatch(/Knoten\s+Mo\s+Di\s+Mi\s+Do\s+Fr\s+Sa\s+So\s+Startzeit\s+Zielverzeichnis\s+Auswahl/);
    expect(await row.innerText()).toMatch(/alle Gäste ausser 201/);
    await page.reload();
    await heading('Datensicherung').waitFor();
    await screenshot(page, '08-jobs-de');
  });

  it('the new-job form in German', async () => {
    await page.getByRole('button', { name: 'Neuen Job erstellen' }).click();
    await page.getByRole('heading', { name: 'Neuer Job' }).waitFor();
    const form = page.locator('form.job-form');
    for (const label of [
      'Knoten',
      'Zielverzeichnis',
      'Externes Gerät',
      'Startzeit',
      'Modus',
      'Mail an',
      'Alle Gäste einschliessen',
      'Ausschliessen',
      'Behalten (1-x)',
      'Skript vorher',
      'Skript nachher',
      'Schlüsseldatei (Verschlüsselung)',
      'Passphrasen-Datei',
    ]) {
      expect(await form.getByLabel(label, { exact: true }).count(), label).toBe(1);
    }
    for (const day of ['Mo', 'Di', 'Mi', 'Do', 'Fr', 'Sa', 'So']) expect(await form.getByLabel(day, { exact: true }).count(), day).toBe(1);
    await screenshot(page, '08b-new-job-de');
    await form.getByRole('button', { name: 'Abbrechen' }).click();
    await heading('Datensicherung').waitFor();
  });

  it('Jetzt starten -> Bestätigung -> das Protokoll zeigt `Finished Backup`; Wiederherstellen -> `restore successful`', async () => {
    // by keyboard: Enter on the row's button opens the dialog with Abbrechen focused; Tab, Enter confirms
    await page.getByRole('button', { name: 'Jetzt starten: nightly' }).focus();
    await page.keyboard.press('Enter');
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    expect(await dialog.innerText()).toMatch(/Job „nightly“ jetzt starten\?/);
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Abbrechen');
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Jetzt starten');
    await page.keyboard.press('Enter');
    await heading('Protokoll').waitFor();
    const text = await waitLogEnd('ok');
    expect(text).toMatch(/Finished Backup of VM 101/);
    expect(text).not.toMatch(/VM 201/); // all guests except 201, the restored one
    expect(await page.locator('dl.task-meta').innerText()).toMatch(/Status\s+OK/);
    await screenshot(page, '09-live-log-de');

    await page.getByRole('link', { name: 'Zurück zu den Jobs' }).click();
    await page.getByRole('navigation', { name: 'Datensicherung' }).getByRole('link', { name: 'Wiederherstellen' }).click();
    await page.getByRole('heading', { name: 'Wiederherstellen', level: 2 }).waitFor();
    const form = page.locator('form.restore-form');
    for (const label of ['Externes Gerät', 'Von Pfad', 'Von ID', 'Version', 'Neue ID'])
      expect(await form.getByLabel(label, { exact: true }).count(), label).toBe(1);
    const v2 = page.locator('#backup-list button[data-id="101"][data-version="2"]');
    await v2.waitFor();
    expect(await v2.innerText()).toMatch(/^ID: 101, Version: 2 \(\d{4}-\d\d-\d\d\), name: test-101$/);
    await v2.click();
    expect(await form.getByLabel('Neue ID').inputValue()).toBe('102');
    await form.getByLabel('Neue ID').fill('202');
    await screenshot(page, '10-restore-de');
    await form.getByRole('button', { name: 'Wiederherstellen' }).click();
    await heading('Protokoll').waitFor();
    const restoreLog = await waitLogEnd('ok');
    expect(restoreLog.trim().split('\n').at(-1)).toMatch(/restore successful$/);
    expect(existsSync(imagePath(lab, '202', 'vm-202-disk-0.raw'))).toBe(true);
    await screenshot(page, '11-restore-log-de');
  });

  it('a browser that prefers German gets German at the login; logging out ends the session', async () => {
    const de = await browser.newContext({ locale: 'de-DE' });
    const dePage = await de.newPage();
    dePage.setDefaultTimeout(T);
    const deErrors = watchErrors(dePage);
    await dePage.goto(lab.url);
    await dePage.getByRole('heading', { level: 1, name: 'Anmelden' }).waitFor();
    expect(await dePage.getByLabel('Passwort').count()).toBe(1);
    await de.close();
    expect(deErrors).toEqual([]);

    await page.getByRole('button', { name: 'Abmelden' }).click();
    await heading('Anmelden').waitFor();
    expect((await page.request.get(`${lab.url}/api/v1/jobs`)).status()).toBe(401);
    expect(errors).toEqual([]);
  });
});

describe('an encrypted version in the Restore tab', () => {
  it('shows a lock with its key fingerprint; the restore asks for the key file and succeeds with it', async () => {
    writeGuest(lab, '150', [{ key: 'scsi0', file: 'vm-150-disk-0.raw' }]);
    writeImage(imagePath(lab, '150', 'vm-150-disk-0.raw'), ['random', 'text'], 150);
    const keyFile = join(keysDir, 'e2e.key');
    for (const args of [
      ['key', 'create', keyFile, '--kdf', 'none'],
      ['backup', '150', ...lab.flags, '--snapshot', 'off', '--encrypt', keyFile],
    ]) {
      const r = await cli(args);
      expect(r.code, r.stderr).toBe(0);
    }
    const fp = (JSON.parse((await cli(['key', 'show', keyFile, '--json'])).stdout) as { fingerprint: string }).fingerprint;

    const enContext = await browser.newContext({ locale: 'en-US', viewport: { width: 1280, height: 860 } });
    const en = await enContext.newPage();
    en.setDefaultTimeout(T);
    const enErrors = watchErrors(en);
    await en.goto(lab.url);
    await en.getByLabel('Password').fill(PASSWORD);
    await en.keyboard.press('Enter');
    await en.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
    await en.goto(`${lab.url}/#/restore`);
    const form = en.locator('form.restore-form');
    const item = en.locator('#backup-list button[data-id="150"]');
    await item.waitFor();
    const lock = item.locator('.tag.encrypted');
    expect(await lock.innerText()).toBe(`🔒 key ${fp}`);
    expect(await lock.getAttribute('title')).toBe(`encrypted with key ${fp}: restoring it needs its key file`);
    expect(await en.locator('#backup-list button[data-id="101"] .tag.encrypted').count()).toBe(0);
    expect(await form.getByLabel('Key file', { exact: true }).isVisible()).toBe(false); // nothing encrypted chosen yet
    await item.click();
    expect(await form.getByLabel('Key file', { exact: true }).isVisible()).toBe(true);
    expect(await form.getByLabel('Passphrase file', { exact: true }).isVisible()).toBe(true);
    expect(await form.locator('.key-needed').innerText()).toBe(`🔒 Version 1 of guest 150 is encrypted with key ${fp}: give its key file.`);
    await form.getByLabel('New ID').fill('250');

    const keyError = form.locator('[data-field="keyFile"] .field-error');
    await form.getByRole('button', { name: 'Restore' }).click();
    await keyError.filter({ hasText: `encrypted with key ${fp}: give its key file` }).waitFor();
    expect(await form.locator('.form-summary .code').innerText()).toBe(' (KEY_REQUIRED)');
    await form.getByLabel('Key file', { exact: true }).fill('/tmp/e2e.key');
    await form.getByRole('button', { name: 'Restore' }).click();
    await keyError.filter({ hasText: "keyFile '/tmp/e2e.key' is not inside the key folders" }).waitFor();
    expect(await form.locator('.form-summary .code').innerText()).toBe(' (PATH_NOT_ALLOWED)');
    expect(existsSync(join(lab.guestsDir, '250.conf'))).toBe(false);
    await screenshot(en, '12-restore-encrypted-refused');

    await form.getByLabel('Key file', { exact: true }).fill(keyFile);
    await form.getByRole('button', { name: 'Restore' }).click();
    await en.getByRole('heading', { level: 1, name: 'Task log' }).waitFor();
    await en.locator('#task-log[data-ended="true"]').waitFor({ timeout: 30_000 });
    await expect.poll(() => en.locator('#task-status [data-status]').getAttribute('data-status')).toBe('ok');
    const text = await en.locator('#task-log').innerText();
    expect(text).toContain(`version is encrypted with key ${fp}: manifest authenticated`);
    expect(text.trim().split('\n').at(-1)).toMatch(/restore successful$/);
    expect(sha256File(imagePath(lab, '250', 'vm-250-disk-0.raw'))).toBe(sha256File(imagePath(lab, '150', 'vm-150-disk-0.raw')));
    await enContext.close();
    expect(enErrors).toEqual([]);
  });
});
