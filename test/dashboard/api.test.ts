/** The dashboard's API client against the stand-in server (test/dashboard/fake-api.ts): token, JSON, errors. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient, ApiError } from '../../src/dashboard/api.js';
import { startFakeApi, TASK_ID, type FakeApi } from './fake-api.js';

let api: FakeApi;
beforeAll(async () => {
  api = await startFakeApi({ token: 'tok' });
});
afterAll(() => api.close());

describe('ApiClient', () => {
  it('sends the bearer token and reads the contract routes', async () => {
    const client = new ApiClient({ url: `${api.url}/`, token: 'tok' });
    const status = await client.status();
    expect(status.running?.[0]?.progress?.readBytes).toBeGreaterThan(0);
    expect((await client.jobs()).map((j) => j.id)).toEqual(['daily', 'weekly']);
    expect(await client.backups('usb1')).toHaveLength(9);
    expect(await client.backups('elsewhere')).toEqual([]);
    expect((await client.tasks(1)).map((t) => t.id)).toEqual([TASK_ID]);
    expect((await client.taskLog(TASK_ID, 1))[0]?.n).toBe(1);
    expect(api.requests).toContain('GET /api/v1/backups?store=usb1');
  });

  it('turns refusals into ApiErrors with the status, code and message of `{error: {code, message}}`', async () => {
    const err = await new ApiClient({ url: api.url, token: 'nope' }).status().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({
      status: 401,
      code: 'UNAUTHORIZED',
      path: '/api/v1/status',
      message: 'GET /api/v1/status: 401 UNAUTHORIZED: a valid token is required',
    });
    const missing = await new ApiClient({ url: api.url, token: 'tok' }).get('/api/v1/nothing').catch((e: unknown) => e);
    expect(missing).toMatchObject({ status: 404, code: 'NOT_FOUND' });
  });

  it('names a server that is not there', async () => {
    const gone = await startFakeApi();
    const url = gone.url;
    await gone.close();
    const err = await new ApiClient({ url }).status().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).reason).toBe('ECONNREFUSED');
  });
});
