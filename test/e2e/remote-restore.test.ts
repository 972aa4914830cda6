/**
 * The Restore tab on another node, end to end: node1 is a real `coldvault serve` on 127.0.0.1 holding
 * a version of guest 101 pushed into its datastore `main` (made by a real backup elsewhere); the web
 * UI's server (the e2e lab, node `e2enode`) lists node1 in `cluster.nodes` with a backup token of
 * node1's `main`. In the browser: the Node field offers this node (default) and node1; choosing node1
 * hides the external device and the local datastores and asks for the datastore there; its backups
 * are listed, one click fills the form, and the restore's log ends `restore successful` with the
 * restored disk byte-identical to the backed-up one.
 * The lab is also in a ring with node1 (after it: its backups land on node1): the job form offers
 * mode Cluster, says the backups land on node1 (and its disk is plugged in there), asks for the
 * datastore there and a bandwidth limit; the job made there runs (API) and its version is on node1.
 */
import type { Browser, Page } from 'playwright-core';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imagePath, sha256File } from '../helpers/fixtures.js';
import { startServe, type ServeProcess } from '../helpers/serve-process.js';
import { client, makeRemoteLab, makeToken, push, type RemoteLab } from '../targets/remote-lab.js';
import { launchBrowser, PASSWORD, screenshot, startE2eLab, watchErrors, type E2eLab } from './helpers-e2e.js';

let remoteLab: RemoteLab;
let node1: ServeProcess;
let lab: E2eLab;
let browser: Browser;
let page: Page;
let errors: string[];

beforeAll(async () => {
  remoteLab = await makeRemoteLab();
  const server = await remoteLab.serveConfig('node1');
  const token = await makeToken(server, 'e2enode', 'backup', 'main');
  node1 = await startServe(['--config', server.path, '--listen', '127.0.0.1:0']);
  const remote = client(node1.url, token);
  await push(remote, remoteLab.source, remoteLab.versions['101']!);
  remote.close();
  [lab, browser] = await Promise.all([
    startE2eLab({
      config: {
        cluster: {
          nodes: [
            { name: 'node1', url: node1.url, token },
            { name: 'e2enode', url: 'https://127.0.0.1:9' },
          ],
        },
      },
    }),
    launchBrowser(),
  ]);
  page = await (await browser.newContext({ locale: 'en-US', viewport: { width: 1280, height: 860 } })).newPage();
  page.setDefaultTimeout(15_000);
  errors = watchErrors(page);
});
afterAll(async () => {
  await browser?.close();
  await lab?.close();
  await node1?.stop();
  remoteLab?.cleanup();
});

describe('the Restore tab reading another node', () => {
  it("lists node1's backups and restores one byte-identical on this node", async () => {
    await page.goto(lab.url);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
    await page.goto(`${lab.url}/#/restore`);
    const form = page.locator('form.restore-form');
    const node = form.getByLabel('Node');
    await node.waitFor();
    expect(await node.locator('option').allInnerTexts()).toEqual(['e2enode (this node)', 'node1']);
    expect(await form.getByLabel('Datastore there').isVisible()).toBe(false);
    await node.selectOption('node1');
    expect(await form.getByLabel('External device').isVisible()).toBe(false);
    expect(await form.getByLabel('From path').isVisible()).toBe(false);
    await form.getByLabel('Datastore there').fill('main');
    await form.getByLabel('Datastore there').press('Tab');
    const item = page.locator('#backup-list button[data-id="101"]');
    await item.waitFor();
    expect(await page.locator('#backup-list button').count()).toBe(1);
    await item.click();
    expect(await form.getByLabel('Version').inputValue()).toBe('1');
    await form.getByLabel('New ID').fill('301');
    await screenshot(page, 'remote-restore');
    await form.getByRole('button', { name: 'Restore' }).click();
    await page.locator('#task-log[data-ended="true"]').waitFor({ timeout: 30_000 });
    const log = await page.locator('#task-log').innerText();
    expect(log).toContain("from datastore 'main' on node node1");
    expect(log.trim().split('\n').at(-1)).toMatch(/restore successful$/);
    const restored = join(lab.storageDir, 'images', '301', 'vm-301-disk-0.raw');
    expect(sha256File(restored)).toBe(sha256File(imagePath(remoteLab, '101', 'vm-101-disk-0.raw')));
    expect(errors).toEqual([]);
  });

  it('the job form in cluster mode: the backups land on node1; the job pushes guest 101 there', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Backup' }).click();
    await page.getByRole('button', { name: 'Create new job' }).click();
    await page.getByRole('heading', { name: 'New job' }).waitFor();
    const form = page.locator('form.job-form');
    expect(await form.getByLabel('Datastore there').isVisible()).toBe(false);
    await form.getByLabel('Mode', { exact: true }).selectOption('cluster');
    expect(await form.getByLabel('Target dir').isVisible()).toBe(false);
    expect(await form.locator('.landing').innerText()).toContain('The backups land on node node1: an external disk (device) is plugged into node node1');
    await form.getByLabel('Job name').fill('ring');
    await form.getByLabel('Start time').fill('01:00');
    await form.getByLabel('Datastore there').fill('main');
    await form.getByLabel('Bandwidth limit (MB/s)').fill('50');
    await form.getByLabel('Select guest 101').check();
    await form.getByRole('button', { name: 'Save job' }).click();
    await page.getByText('Job “ring” was saved.').waitFor();
    const api = async (path: string, method = 'GET'): Promise<unknown> =>
      (await page.request.fetch(`${lab.url}${path}`, { method, headers: { 'X-Requested-With': 'coldvault' } })).json();
    const job = (await api('/api/v1/jobs/ring')) as { mode: string; store: string; bwlimit: number };
    expect(job).toMatchObject({ mode: 'cluster', store: 'main', bwlimit: 50 });
    const before = (await api('/api/v1/backups?remote=node1&store=main&guest=101')) as unknown[];
    const started = (await api('/api/v1/jobs/ring/run', 'POST')) as { taskId: string };
    let task: { status: string; result?: { guests?: Array<{ wireBytes?: number }> } } = { status: 'running' };
    for (let i = 0; i < 300 && task.status === 'running'; i++) {
      await new Promise((r) => setTimeout(r, 200));
      task = (await api(`/api/v1/tasks/${started.taskId}`)) as typeof task;
    }
    expect(task.status).toBe('ok');
    expect(task.result?.guests?.[0]?.wireBytes).toBeGreaterThan(0);
    const after = (await api('/api/v1/backups?remote=node1&store=main&guest=101')) as unknown[];
    expect(after.length).toBe(before.length + 1);
    expect(errors).toEqual([]);
  });

  it("a sync job made in the job form pulls node1's versions of guest 101 into this node's datastore", async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Backup' }).click();
    await page.getByRole('button', { name: 'Create new job' }).click();
    await page.getByRole('heading', { name: 'New job' }).waitFor();
    const form = page.locator('form.job-form');
    expect(await form.getByLabel('From (node:datastore, or a datastore here)').isVisible()).toBe(false);
    await form.getByLabel('Kind', { exact: true }).selectOption('sync');
    expect(await form.getByLabel('Script before').isVisible()).toBe(false);
    expect(await form.getByLabel('Mode', { exact: true }).isVisible()).toBe(false);
    await form.getByLabel('Job name').fill('pull');
    await form.getByLabel('Start time').fill('03:00');
    await form.getByLabel('From (node:datastore, or a datastore here)').fill('node1:main');
    await form.getByLabel('Select guest 101').check();
    await form.getByRole('button', { name: 'Save job' }).click();
    await page.getByText('Job “pull” was saved.').waitFor();
    const api = async (path: string, method = 'GET'): Promise<unknown> =>
      (await page.request.fetch(`${lab.url}${path}`, { method, headers: { 'X-Requested-With': 'coldvault' } })).json();
    expect(await api('/api/v1/jobs/pull')).toMatchObject({ kind: 'sync', from: 'node1:main', vmid: ['101'] });
    const remote = (await api('/api/v1/backups?remote=node1&store=main&guest=101')) as Array<{ version: number }>;
    const started = (await api('/api/v1/jobs/pull/run', 'POST')) as { taskId: string };
    let task: { status: string } = { status: 'running' };
    for (let i = 0; i < 300 && task.status === 'running'; i++) {
      await new Promise((r) => setTimeout(r, 200));
      task = (await api(`/api/v1/tasks/${started.taskId}`)) as typeof task;
    }
    expect(task.status).toBe('ok');
    const local = (await api('/api/v1/backups?store=main&guest=101')) as Array<{ version: number }>;
    expect(local.map((v) => v.version)).toEqual(remote.map((v) => v.version));
    expect(errors).toEqual([]);
  });
});
