/**
 * Webhook reports end to end: `coldvault job run` (built CLI, hypervisor driver 'none', plain generated
 * disk images) posts the job's result to REAL HTTP receivers on 127.0.0.1 (node:http): on success and
 * on failure as configured (always / failure only), with the secret as a Bearer header and an
 * HMAC-SHA-256 signature of the body; retried on 500 (three tries, one delivery id) and the backup
 * still succeeds; a receiver that always fails, refuses (404), hangs, or a closed port: the backup
 * still succeeds and the job log names the webhook failure. The secret never shows in `job show|list`
 * (text and JSON) nor in the task log. A sync job posts too. The config's `webhook` makes the retries fast.
 */
import { createHmac } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeImage } from '../helpers/fixtures.js';
import { startReceiver, type Receiver } from '../helpers/webhook-receiver.js';
import { cv, diskPath, makeJobLab, NODE, taskIdOf, writeGuestConf, type JobLab } from './helpers-jobs.js';

const SECRET = 'S3cr3t-for-the-webhook-9f2c';
let lab: JobLab;
let hook: Receiver;

interface Payload {
  title: string;
  message: string;
  text: string;
  priority: number;
  jobId: string;
  node: string;
  kind: string;
  taskId: string;
  result: string;
  start: string;
  end: string;
  durationMs: number;
  guests: Array<{ id: string; name: string; status: string; bytes: number; logicalBytes: number | null; version: number | null; error: string | null }>;
}
const payload = (raw: string): Payload => JSON.parse(raw) as Payload;

async function addJob(id: string, args: string[]): Promise<void> {
  const add = await cv(lab, ['job', 'add', id, '--store', lab.storeDir, ...args]);
  expect(add.code, add.stderr).toBe(0);
}

beforeAll(async () => {
  hook = await startReceiver();
  lab = await makeJobLab('cv-jw-');
  const config = JSON.parse(readFileSync(lab.configPath, 'utf8')) as Record<string, unknown>;
  writeFileSync(lab.configPath, JSON.stringify({ ...config, webhook: { timeoutSeconds: 1, backoffSeconds: 0.05 } }));
  // 101: a plain 12 MiB disk image; 102: its disk file is missing
  mkdirSync(join(lab.storageDir, 'images', '101'), { recursive: true });
  writeImage(diskPath(lab, '101'), ['random', 'zero', 'text'], 7);
  writeGuestConf(lab, '101', 'web01');
  writeGuestConf(lab, '102', 'gone02');
});

afterAll(async () => {
  await hook?.close();
  await lab?.cleanup();
});

describe('webhook reports via a real HTTP receiver', () => {
  it('always: a success posts the structured result, title/message/text, the secret as Bearer and a signature of the body', async () => {
    await addJob('hookok', ['--vmid', '101', '--webhook', hook.url, '--webhook-secret', SECRET]);
    const before = hook.got.length;
    const run = await cv(lab, ['job', 'run', 'hookok']);
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect(hook.got.length - before).toBe(1);
    const got = hook.got[before]!;
    expect([got.method, got.path]).toEqual(['POST', '/hook/t0ken-in-path']);
    expect(got.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(got.headers.authorization).toBe(`Bearer ${SECRET}`);
    expect(got.headers['x-coldvault-signature']).toBe(`sha256=${createHmac('sha256', SECRET).update(got.raw).digest('hex')}`);
    expect(got.headers['x-coldvault-event']).toBe('job.finished');

    const body = payload(got.raw);
    expect(body).toMatchObject({ jobId: 'hookok', node: NODE, kind: 'backup', result: 'success', taskId: taskIdOf(run.stdout), priority: 3 });
    expect(body.title).toBe(`coldvault backup status (${NODE}, job hookok): backup successful`);
    expect(body.message).toMatch(/^job hookok on testnode: backup successful \(1 guest\(s\): 1 ok, 0 failed\) in \d\d:\d\d:\d\d\n101 web01: ok in /);
    expect(body.text).toBe(`${body.title}\n${body.message}`);
    expect(Date.parse(body.end) - Date.parse(body.start)).toBe(body.durationMs);
    expect(body.durationMs).toBeGreaterThan(0);
    expect(body.guests).toEqual([
      expect.objectContaining({ id: '101', name: 'web01', status: 'ok', version: 1, error: null, downtimeMs: null, bootTest: null }),
    ]);
    expect(body.guests[0]!.bytes).toBeGreaterThan(0);
    expect(body.guests[0]!.logicalBytes).toBe(12 * 1024 * 1024);

    expect(run.stdout).toContain(`INFO: sent the report to webhook http://127.0.0.1:${hook.port}/… (HTTP 200)`);
    expect(run.stdout).not.toContain('t0ken-in-path'); // the log names the target by its origin
    expect(run.stdout).not.toContain(SECRET);
  });

  it('the secret never shows: job show and list (text and JSON), the task log', async () => {
    const shown = [
      await cv(lab, ['job', 'show', 'hookok']),
      await cv(lab, ['job', 'show', 'hookok', '--json']),
      await cv(lab, ['job', 'list']),
      await cv(lab, ['job', 'list', '--json']),
    ];
    for (const r of shown) {
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).not.toContain(SECRET);
    }
    expect(shown[0]!.stdout).toContain(`webhook http://127.0.0.1:${hook.port}/… (secret set)`);
    expect(JSON.parse(shown[1]!.stdout).webhook).toEqual({ url: hook.url, notification: 'always', hasSecret: true });
    const tasks = JSON.parse((await cv(lab, ['task', 'list', '--json'])).stdout) as Array<{ id: string }>;
    for (const t of tasks) expect((await cv(lab, ['task', 'log', t.id])).stdout).not.toContain(SECRET);
  });

  it('failure only: nothing for a success; the failed guest and its error for a failure', async () => {
    await addJob('hookfail', ['--vmid', '101', '--webhook', hook.url, '--webhook-notification', 'failure']);
    const before = hook.got.length;
    const ok = await cv(lab, ['job', 'run', 'hookfail']);
    expect(ok.code, `${ok.stdout}\n${ok.stderr}`).toBe(0);
    expect(hook.got.length).toBe(before);
    expect(ok.stdout).not.toContain('webhook');

    expect((await cv(lab, ['job', 'edit', 'hookfail', '--vmid', '101,102'])).code).toBe(0);
    const failed = await cv(lab, ['job', 'run', 'hookfail']);
    expect(failed.code, `${failed.stdout}\n${failed.stderr}`).toBe(1);
    expect(hook.got.length - before).toBe(1);
    const got = hook.got[before]!;
    expect(got.headers.authorization).toBeUndefined(); // no secret: no Bearer, no signature
    expect(got.headers['x-coldvault-signature']).toBeUndefined();
    const body = payload(got.raw);
    expect(body).toMatchObject({ jobId: 'hookfail', result: 'failure', priority: 5 });
    expect(body.title).toBe(`coldvault backup status (${NODE}, job hookfail): backup failed`);
    expect(body.guests.map((g) => [g.id, g.status])).toEqual([
      ['101', 'ok'],
      ['102', 'failed'],
    ]);
    const missing = diskPath(lab, '102');
    expect(body.guests[1]!.error).toBe(`disk 'scsi0' of guest 102: image '${missing}' does not exist`);
    expect(body.message).toContain(`102 gone02: FAILED: disk 'scsi0' of guest 102: image '${missing}' does not exist`);
  });

  it('a receiver that answers 500 twice, then 200, gets three tries of one delivery; the backup succeeds', async () => {
    const flaky = await startReceiver((n) => (n <= 2 ? 500 : 200));
    try {
      await addJob('hookflaky', ['--vmid', '101', '--webhook', flaky.url]);
      const run = await cv(lab, ['job', 'run', 'hookflaky']);
      expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
      expect(flaky.got.length).toBe(3);
      expect(new Set(flaky.got.map((g) => g.headers['x-coldvault-delivery'])).size).toBe(1);
      expect(new Set(flaky.got.map((g) => g.raw)).size).toBe(1);
      const target = `webhook http://127.0.0.1:${flaky.port}/…`;
      expect(run.stdout).toMatch(
        new RegExp(
          `WARN: ${escape(target)}: attempt 1 of 4 failed: HTTP 500 Internal Server Error: \\{"error":"receiver says no"\\}; trying again in \\d+\\.\\d s`,
        ),
      );
      expect(run.stdout).toContain(`WARN: ${target}: attempt 2 of 4 failed: HTTP 500`);
      expect(run.stdout).toContain(`INFO: sent the report to ${target} (HTTP 200, attempt 3)`);
      expect(run.stdout).toMatch(/INFO: Backup job finished successfully/);
    } finally {
      await flaky.close();
    }
  });

  it('a failing target never fails the backup: always 500, 404 (not retried), no answer, a closed port', async () => {
    const down = await startReceiver(() => 500);
    const refuses = await startReceiver(() => 404);
    const hangs = await startReceiver(() => 'hang');
    const closed = await startReceiver();
    await closed.close();
    const cases: Array<[Receiver, number, RegExp]> = [
      [down, 4, /failed \(attempt 4 of 4\): HTTP 500 Internal Server Error: \{"error":"receiver says no"\}; the job's result stays as it is$/m],
      [refuses, 1, /failed \(attempt 1 of 4\): HTTP 404 Not Found: \{"error":"receiver says no"\}; the job's result stays as it is$/m],
      [hangs, 4, /failed \(attempt 4 of 4\): no answer within 1 s; the job's result stays as it is$/m],
      [closed, 0, /failed \(attempt 4 of 4\): connect ECONNREFUSED 127\.0\.0\.1:\d+; the job's result stays as it is$/m],
    ];
    try {
      for (const [receiver, tries, failure] of cases) {
        const id = `hookdown${receiver.port}`;
        await addJob(id, ['--vmid', '101', '--webhook', receiver.url]);
        const run = await cv(lab, ['job', 'run', id]);
        expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
        expect(receiver.got.length, id).toBe(tries);
        expect(run.stdout).toContain(`ERROR: sending the report to webhook http://127.0.0.1:${receiver.port}/… failed`);
        expect(run.stdout).toMatch(failure);
        expect(run.stdout).toMatch(/INFO: Backup job finished successfully/);
        const task = (JSON.parse((await cv(lab, ['task', 'list', '--json'])).stdout) as Array<{ id: string; status: string }>).find(
          (t) => t.id === taskIdOf(run.stdout),
        );
        expect(task?.status).toBe('ok');
      }
    } finally {
      for (const r of [down, refuses, hangs]) await r.close();
    }
  });

  it('a sync job posts its result too', async () => {
    const copy = join(lab.root, 'copy');
    const add = await cv(lab, ['job', 'add', 'hooksync', '--kind', 'sync', '--from', lab.storeDir, '--store', copy, '--vmid', '101', '--webhook', hook.url]);
    expect(add.code, add.stderr).toBe(0);
    const before = hook.got.length;
    const run = await cv(lab, ['job', 'run', 'hooksync']);
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect(hook.got.length - before).toBe(1);
    const body = payload(hook.got[before]!.raw);
    expect(body).toMatchObject({ jobId: 'hooksync', kind: 'sync', result: 'success' });
    expect(body.title).toBe(`coldvault sync status (${NODE}, job hooksync): sync successful`);
    expect(body.guests.map((g) => [g.id, g.status])).toEqual([['101', 'ok']]);
  });

  it('job add and edit: the secret only over https or to loopback, no credentials in the URL, a new URL needs the secret again', async () => {
    const refused: Array<[string[], RegExp]> = [
      [
        ['--webhook', 'http://hooks.example.com/x', '--webhook-secret', SECRET],
        /webhook\.secret would cross the network in clear to hooks\.example\.com: use an https:\/\/ URL/,
      ],
      [['--webhook', 'https://user:pw@hooks.example.com/x'], /webhook\.url must not hold a user or password: give the credential as webhook\.secret/],
      [['--webhook', 'ftp://hooks.example.com/x'], /webhook\.url 'ftp:\/\/hooks\.example\.com\/x' must be an http:\/\/ or https:\/\/ address/],
      [['--webhook', 'https://hooks.example.com/x', '--webhook-secret', 'two words'], /webhook\.secret must be 1 to 4096 visible ASCII characters/],
      [['--webhook', 'https://ntfy.example.com/', '--webhook-topic', 'a/b'], /webhook\.topic 'a\/b' must be 1 to 64 letters/],
      [['--webhook-secret', SECRET], /go with --webhook URL \(the job has no webhook\)/],
    ];
    for (const [args, message] of refused) {
      const r = await cv(lab, ['job', 'add', 'tls', '--store', lab.storeDir, '--vmid', '101', ...args]);
      expect(r.code, args.join(' ')).not.toBe(0);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toContain(SECRET);
    }
    for (const url of ['https://hooks.example.com/x', 'http://127.0.0.1:9/x', 'http://[::1]:9/x', 'http://localhost:9/x']) {
      const r = await cv(lab, ['job', 'add', 'tls', '--store', lab.storeDir, '--vmid', '101', '--webhook', url, '--webhook-secret', SECRET]);
      expect(r.code, `${url}: ${r.stderr}`).toBe(0);
      expect((await cv(lab, ['job', 'rm', 'tls'])).code).toBe(0);
    }

    const moved = await cv(lab, ['job', 'edit', 'hookok', '--webhook', 'https://elsewhere.example.com/']);
    expect(moved.code).not.toBe(0);
    expect(moved.stderr).toMatch(/webhook\.secret: the URL changes, so give the secret again/);
    const secretFile = join(lab.root, 'hook.secret');
    writeFileSync(secretFile, 'An0ther-secret\n', { mode: 0o600 });
    const edited = await cv(lab, ['job', 'edit', 'hookok', '--webhook', 'https://elsewhere.example.com/', '--webhook-secret-file', secretFile, '--json']);
    expect(edited.code, edited.stderr).toBe(0);
    expect(JSON.parse(edited.stdout).webhook).toEqual({ url: 'https://elsewhere.example.com/', notification: 'always', hasSecret: true });
    const notified = await cv(lab, ['job', 'edit', 'hookok', '--webhook-notification', 'failure', '--webhook-secret', '', '--json']);
    expect(JSON.parse(notified.stdout).webhook).toEqual({ url: 'https://elsewhere.example.com/', notification: 'failure', hasSecret: false });
    const removed = await cv(lab, ['job', 'edit', 'hookok', '--no-webhook', '--json']);
    expect(JSON.parse(removed.stdout).webhook).toBeUndefined();
  });
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
