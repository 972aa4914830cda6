/**
 * The Restore tab on another node, end to end: node1 is a real `coldvault serve` on 127.0.0.1 holding
 * a version of guest 101 pushed into its datastore `main` (made by a real backup elsewhere); the web
 * UI's server (the e2e lab, node `e2enode`) lists node1 in `cluster.nodes` with a backup token of
 * node1's `main`. In the browser: the Node field offers this node (default) and node1; choosing node1
 * hides the external device and the local datastores and asks for the datastore there; its backups
 * are listed, one click fills the form, and the restore's log ends `restore successful` with the
 * restored disk byte-identical to the backed-up one.
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
  [lab, browser] = await Promise.all([startE2eLab({ config: { cluster: { nodes: [{ name: 'node1', url: node1.url, token }] } } }), launchBrowser()]);
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
    await page.getByRole('heading', { level: 1, name: 'Backup' }).waitFor();
    await page.getByRole('navigation', { name: 'Backup' }).getByRole('link', { name: 'Restore' }).click();
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
});
