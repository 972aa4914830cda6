/**
 * Through the API alone: create a job, run it, follow its log over server-sent events (real HTTP),
 * list the version, read /metrics, verify, restore under a new id (the restored disk has the
 * source's SHA-256) and prune. Driver `none`; a hook in the scripts folder holds the first run in
 * `backup-start` for a moment so the stream is seen live.
 */
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { get, type IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { imagePath, rewriteRegion, sha256File } from '../helpers/fixtures.js';
import { errorCode, makeServerLab, waitTask, type ServerLab } from './helpers-server.js';

let lab: ServerLab;
let url: string;
let hook: string;
let firstTask: string;

beforeAll(async () => {
  lab = await makeServerLab();
  hook = join(lab.scriptsDir, 'hook.sh');
  writeFileSync(hook, '#!/bin/sh\nif [ "$1" = backup-start ]; then /bin/sleep 1.5; fi\nexit 0\n', { mode: 0o755 });
  await lab.app.listen({ host: '127.0.0.1', port: 0 });
  const address = lab.app.server.address();
  url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
});
afterAll(async () => lab?.close());

function connections(): Promise<number> {
  return new Promise((resolve, reject) => lab.app.server.getConnections((err, n) => (err ? reject(err) : resolve(n))));
}

interface SseEvent {
  event: string;
  id?: string;
  data: string;
}

function parseEvents(text: string): SseEvent[] {
  return text
    .split('\n\n')
    .filter((b) => b.trim() && !b.startsWith(':'))
    .map((block) => {
      const e: SseEvent = { event: 'message', data: '' };
      for (const line of block.split('\n')) {
        const [k, ...rest] = line.split(': ');
        const v = rest.join(': ');
        if (k === 'event') e.event = v;
        else if (k === 'id') e.id = v;
        else if (k === 'data') e.data = v;
      }
      return e;
    });
}

describe('backup and restore through the API', () => {
  it('creates a job and runs it: 202 {taskId}; a second run while it runs is 409', async () => {
    const created = await lab.api('POST', '/api/v1/jobs', { id: 'nightly', store: 'main', vmid: ['101'], days: ['mon'], at: '22:30', keep: 5, hook });
    expect(created.statusCode, created.body).toBe(201);
    const run = await lab.api('POST', '/api/v1/jobs/nightly/run');
    expect(run.statusCode, run.body).toBe(202);
    firstTask = run.json().taskId;
    expect(firstTask).toMatch(/-backup-/);
    const again = await lab.api('POST', '/api/v1/jobs/nightly/run');
    expect([again.statusCode, errorCode(again)]).toEqual([409, 'JOB_RUNNING']);
    const status = (await lab.api('GET', '/api/v1/status')).json();
    expect(status.running).toEqual([expect.objectContaining({ taskId: firstTask, type: 'backup', jobId: 'nightly' })]);
  });

  it("streams the running task's log as server-sent events, ending with an `end` event", async () => {
    const res = await fetch(`${url}/api/v1/tasks/${firstTask}/log`, { headers: { accept: 'text/event-stream', authorization: `Bearer ${lab.token}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = res.body!.getReader();
    let text = '';
    let statusAtFirstLine: string | undefined;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += Buffer.from(value).toString();
      if (!statusAtFirstLine && text.includes('data: ')) statusAtFirstLine = (await lab.api('GET', `/api/v1/tasks/${firstTask}`)).json().status;
    }
    expect(statusAtFirstLine).toBe('running'); // lines came while the task ran
    const events = parseEvents(text);
    const lines = events.filter((e) => e.event === 'message').map((e) => JSON.parse(e.data) as { n: number; message: string });
    expect(lines.map((l) => l.n)).toEqual(lines.map((_l, i) => i)); // every line, once, in order
    expect(lines.map((l) => l.message)).toEqual(
      expect.arrayContaining([expect.stringMatching(/^Starting Backup of VM 101/), expect.stringMatching(/^Finished Backup of VM 101/)]),
    );
    expect(events.at(-1)).toEqual({ event: 'end', data: JSON.stringify({ status: 'ok' }) });
    expect((await waitTask(lab, firstTask)).status).toBe('ok');
  });

  it('an SSE stream resumes after Last-Event-ID and stops when the client goes away', async () => {
    const resumed = await fetch(`${url}/api/v1/tasks/${firstTask}/log`, {
      headers: { accept: 'text/event-stream', authorization: `Bearer ${lab.token}`, 'last-event-id': '2' },
    });
    const events = parseEvents(await resumed.text());
    expect(events[0]?.id).toBe('3');
    const task = lab.state.tasks.create('verify', { node: 'testnode' });
    const before = await connections();
    const req = get(`${url}/api/v1/tasks/${task.id}/log`, { agent: false, headers: { accept: 'text/event-stream', authorization: `Bearer ${lab.token}` } });
    const [response] = (await once(req, 'response')) as [IncomingMessage];
    expect(response.statusCode).toBe(200);
    expect(await connections()).toBe(before + 1);
    req.destroy();
    const until = Date.now() + 5000;
    while ((await connections()) > before && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    expect(await connections()).toBeLessThanOrEqual(before); // the server dropped the stream's connection
    task.finish(true);
  });

  it('lists the version like `coldvault list --json`', async () => {
    const res = await lab.api('GET', '/api/v1/backups?guest=101');
    expect(res.statusCode).toBe(200);
    const versions = res.json();
    expect(versions).toHaveLength(1);
    expect(versions[0]).toMatchObject({
      id: '101',
      version: 1,
      name: 'test-101',
      node: 'testnode',
      store: lab.storeDir,
      verified: false,
      verifyState: 'unverified',
      protected: false,
      logicalBytes: 16 * 1024 * 1024,
    });
    expect(versions[0].disks).toEqual([expect.objectContaining({ key: 'scsi0', size: 16 * 1024 * 1024, sha256: expect.stringMatching(/^[0-9a-f]{64}$/) })]);
    expect((await lab.api('GET', `/api/v1/backups?store=${encodeURIComponent(lab.storeDir)}`)).json()).toHaveLength(1);
    expect((await lab.api('GET', '/api/v1/backups?guest=999')).json()).toEqual([]);
  });

  it('/metrics after the backup', async () => {
    const res = await lab.api('GET', '/metrics');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0.0.4/);
    const text = res.body;
    expect(text).toContain('# TYPE coldvault_backup_bytes_total counter');
    expect(text).toContain(`coldvault_backup_bytes_total{guest="101",store="main"} ${16 * 1024 * 1024}`);
    expect(text).toMatch(/coldvault_backup_throughput_bytes_per_second\{guest="101",store="main"\} \d+(\.\d+)?/);
    const last = Number(/coldvault_last_success_timestamp_seconds\{guest="101",store="main"\} (\S+)/.exec(text)?.[1]);
    expect(Math.abs(last - Date.now() / 1000)).toBeLessThan(60);
    expect(text).toMatch(/coldvault_task_duration_seconds_count\{type="backup"\} 1\n/);
    expect(text).toMatch(/coldvault_task_duration_seconds_sum\{type="backup"\} [1-9]/);
    expect(text).toContain('coldvault_tasks_running 0');
    expect(text).toMatch(/coldvault_datastore_free_bytes\{store="main"\} \d+/);
  });

  it('verifies the store as a task', async () => {
    const res = await lab.api('POST', '/api/v1/verify', { store: 'main', guest: '101', version: 1 });
    expect(res.statusCode, res.body).toBe(202);
    const task = await waitTask(lab, res.json().taskId);
    expect(task).toMatchObject({ status: 'ok', type: 'verify', result: { ok: true } });
    expect((await lab.api('GET', '/api/v1/backups?guest=101')).json()[0].verifyState).toBe('ok');
  });

  it('restores under a new id as a task ending `restore successful`; the disk is bit-identical', async () => {
    const res = await lab.api('POST', '/api/v1/restore', { fromPath: lab.storeDir, id: '101', version: 1, newId: '201', unique: true });
    expect(res.statusCode, res.body).toBe(202);
    const taskId = res.json().taskId;
    expect((await waitTask(lab, taskId)).status).toBe('ok');
    const log = (await lab.api('GET', `/api/v1/tasks/${taskId}/log`)).json() as Array<{ message: string }>;
    expect(log.at(-1)?.message).toBe('restore successful');
    expect(sha256File(imagePath(lab, '201', 'vm-201-disk-0.raw'))).toBe(sha256File(imagePath(lab, '101', 'vm-101-disk-0.raw')));
    const guests = (await lab.api('GET', '/api/v1/guests')).json();
    expect(guests.map((g: { id: string }) => g.id)).toEqual(['101', '201']);

    const taken = await lab.api('POST', '/api/v1/restore', { fromPath: 'main', id: '101', version: 1, newId: '201' });
    expect([taken.statusCode, errorCode(taken)]).toEqual([409, 'GUEST_ID_TAKEN']);
    const badStorage = await lab.api('POST', '/api/v1/restore', { fromPath: 'main', id: '101', version: 1, newId: '202', targetStorage: 'nfs' });
    expect([badStorage.statusCode, errorCode(badStorage)]).toEqual([400, 'STORAGE_UNKNOWN']);
  });

  it('a second run (hook removed by PUT) stores a new version; prune keeps the last one', async () => {
    const put = await lab.api('PUT', '/api/v1/jobs/nightly', { store: 'main', vmid: ['101'], days: ['mon'], at: '22:30', keep: 5 });
    expect(put.statusCode, put.body).toBe(200);
    rewriteRegion(imagePath(lab, '101', 'vm-101-disk-0.raw'), 1, 'random', 99);
    const run = await lab.api('POST', '/api/v1/jobs/nightly/run');
    expect((await waitTask(lab, run.json().taskId)).status).toBe('ok');
    expect((await lab.api('GET', '/api/v1/backups?guest=101')).json().map((v: { version: number }) => v.version)).toEqual([1, 2]);

    const dry = await lab.api('POST', '/api/v1/prune', { store: 'main', guest: '101', keepLast: 1, dryRun: true });
    expect(dry.json()).toMatchObject({ removed: [1], dryRun: true });
    const pruned = await lab.api('POST', '/api/v1/prune', { store: 'main', guest: '101', keepLast: 1 });
    expect(pruned.statusCode, pruned.body).toBe(200);
    expect(pruned.json()).toMatchObject({ removed: [1], dryRun: false, taskId: expect.stringMatching(/-prune-/) });
    expect((await lab.api('GET', '/api/v1/backups?guest=101')).json().map((v: { version: number }) => v.version)).toEqual([2]);
    expect((await lab.api('GET', '/metrics')).body).toMatch(/coldvault_task_duration_seconds_count\{type="backup"\} 2\n/);
  });
});
