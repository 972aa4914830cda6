/**
 * A job's `webhook` through the API (issue 16): the secret is write-only. No answer holds it (POST,
 * GET one, GET all, PUT), only `hasSecret`; a job sent back as GET answered it keeps the secret; a new
 * URL without the secret is 400 JOB_INVALID naming webhook.secret; `secret: null` removes it; the TLS
 * rule refuses a secret over plain http beyond loopback. An operator token may resend the webhook but
 * not set or change its URL or secret (403). A run started through the API posts to a real receiver
 * on 127.0.0.1 with the secret as Bearer, and the task log does not hold it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startReceiver, type Receiver } from '../helpers/webhook-receiver.js';
import { errorCode, makeServerLab, waitTask, type ServerLab } from './helpers-server.js';

const SECRET = 'api-S3cret-7b51e0';
let lab: ServerLab;
let hook: Receiver;
let operator: Record<string, string>;
const base = { id: 'hooked', store: 'main', vmid: ['101'] };

beforeAll(async () => {
  hook = await startReceiver();
  lab = await makeServerLab({ config: { webhook: { backoffSeconds: 0.05 } } });
  operator = { authorization: `Bearer ${lab.tokens.create('ops', { role: 'operator' }).token}` };
});
afterAll(async () => {
  await lab?.close();
  await hook?.close();
});

describe('job webhook through the API', () => {
  it('answers hasSecret, never the secret; a job sent back as answered keeps it', async () => {
    const created = await lab.api('POST', '/api/v1/jobs', { ...base, webhook: { url: hook.url, secret: SECRET, notification: 'failure' } });
    expect(created.statusCode, created.body).toBe(201);
    const shown = { url: hook.url, notification: 'failure', hasSecret: true };
    const got = await lab.api('GET', '/api/v1/jobs/hooked');
    for (const res of [created, got, await lab.api('GET', '/api/v1/jobs')]) {
      expect(res.body).not.toContain(SECRET);
      const job = (Array.isArray(res.json()) ? res.json()[0] : res.json()) as { webhook: unknown };
      expect(job.webhook).toEqual(shown);
    }
    const resent = await lab.api('PUT', '/api/v1/jobs/hooked', got.json());
    expect(resent.statusCode, resent.body).toBe(200);
    expect(resent.body).not.toContain(SECRET);
    expect(lab.state.jobs.get('hooked').webhook).toEqual({ url: hook.url, notification: 'failure', secret: SECRET });
  });

  it('a new URL needs the secret again; null removes it; the TLS rule and the schema refuse', async () => {
    const moved = await lab.api('PUT', '/api/v1/jobs/hooked', { ...base, webhook: { url: 'https://elsewhere.example.com/hook' } });
    expect([moved.statusCode, errorCode(moved)]).toEqual([400, 'JOB_INVALID']);
    expect(moved.json().error.message).toMatch(/^job 'hooked': webhook\.secret: the URL changes, so give the secret again/);
    expect(lab.state.jobs.get('hooked').webhook?.url).toBe(hook.url);

    const clear = await lab.api('POST', '/api/v1/jobs', { ...base, id: 'clear', webhook: { url: 'http://hooks.example.com/x', secret: 'abc' } });
    expect([clear.statusCode, errorCode(clear)]).toEqual([400, 'JOB_INVALID']);
    expect(clear.json().error.message).toMatch(/webhook\.secret would cross the network in clear to hooks\.example\.com/);
    for (const webhook of [{ url: hook.url, token: 'x' }, { secret: 'x' }, 'https://hooks.example.com/']) {
      const res = await lab.api('POST', '/api/v1/jobs', { ...base, id: 'schema', webhook });
      expect([res.statusCode, errorCode(res)], JSON.stringify(webhook)).toEqual([400, 'INVALID_REQUEST']);
    }

    const removed = await lab.api('PUT', '/api/v1/jobs/hooked', { ...base, webhook: { url: hook.url, secret: null } });
    expect(removed.statusCode, removed.body).toBe(200);
    expect(removed.json().webhook).toEqual({ url: hook.url, notification: 'always', hasSecret: false });
    const back = await lab.api('PUT', '/api/v1/jobs/hooked', { ...base, webhook: { url: hook.url, secret: SECRET } });
    expect(back.json().webhook.hasSecret).toBe(true);
  });

  it('an operator may resend the webhook, not set or change its URL or secret', async () => {
    const got = (await lab.api('GET', '/api/v1/jobs/hooked')).json() as Record<string, unknown>;
    const same = await lab.api('PUT', '/api/v1/jobs/hooked', { ...got, keep: 3 }, operator);
    expect(same.statusCode, same.body).toBe(200);
    const changes = [
      { webhook: { url: 'https://elsewhere.example.com/', secret: 'new' } },
      { webhook: { url: hook.url, secret: SECRET } },
      { webhook: undefined },
    ];
    for (const change of changes) {
      const res = await lab.api('PUT', '/api/v1/jobs/hooked', { ...got, ...change }, operator);
      expect([res.statusCode, errorCode(res)], JSON.stringify(change)).toEqual([403, 'FORBIDDEN']);
      expect(res.json().error.message).toContain('(this request changes webhook)');
    }
    const created = await lab.api('POST', '/api/v1/jobs', { ...base, id: 'byop', webhook: { url: hook.url } }, operator);
    expect([created.statusCode, errorCode(created)]).toEqual([403, 'FORBIDDEN']);
    expect(lab.state.jobs.get('hooked').webhook?.secret).toBe(SECRET);
  });

  it('a run through the API posts to the receiver with the secret as Bearer; the task log does not hold it', async () => {
    const put = await lab.api('PUT', '/api/v1/jobs/hooked', { ...base, webhook: { url: hook.url, secret: SECRET } });
    expect(put.statusCode, put.body).toBe(200);
    const started = await lab.api('POST', '/api/v1/jobs/hooked/run');
    expect(started.statusCode, started.body).toBe(202);
    const { taskId } = started.json() as { taskId: string };
    expect((await waitTask(lab, taskId)).status).toBe('ok');
    expect(hook.got).toHaveLength(1);
    expect(hook.got[0]!.headers.authorization).toBe(`Bearer ${SECRET}`);
    expect(JSON.parse(hook.got[0]!.raw)).toMatchObject({ jobId: 'hooked', taskId, result: 'success', kind: 'backup', node: 'testnode' });
    const log = await lab.api('GET', `/api/v1/tasks/${taskId}/log`);
    expect(log.body).toContain('sent the report to webhook http://127.0.0.1:');
    expect(log.body).not.toContain(SECRET);
  });
});
