/** Jobs CRUD, schema and path refusals, guests, status, tasks, backups listing, OpenAPI, static UI, error bodies. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeGuest } from '../helpers/fixtures.js';
import { ALL_ROUTES, errorCode, makeServerLab, type ServerLab } from './helpers-server.js';

let lab: ServerLab;
beforeAll(async () => {
  lab = await makeServerLab({ config: { datastores: {} } });
  lab.config.datastores.main = lab.storeDir;
  lab.config.datastores.gone = join(lab.root, 'missing-disk');
});
afterAll(async () => lab?.close());

const base = { id: 'nightly', store: 'main', vmid: ['101'], days: ['mon', 'wed'], at: '22:30', keep: 3 };

describe('jobs', () => {
  it('create, list, get, replace, delete', async () => {
    const created = await lab.api('POST', '/api/v1/jobs', base);
    expect(created.statusCode, created.body).toBe(201);
    expect(created.json()).toMatchObject({
      ...base,
      store: lab.storeDir,
      all: false,
      exclude: [],
      mode: 'stop',
      compress: 'zstd',
      enabled: true,
      stopTimeout: 600,
      snapshot: 'auto',
    });
    expect((await lab.api('GET', '/api/v1/jobs')).json()).toHaveLength(1);
    expect((await lab.api('GET', '/api/v1/jobs/nightly')).json()).toMatchObject({ id: 'nightly', days: ['mon', 'wed'] });

    const replaced = await lab.api('PUT', '/api/v1/jobs/nightly', {
      store: lab.storeDir,
      all: true,
      exclude: ['102'],
      days: ['fri'],
      at: '1:05',
      enabled: false,
      snapshot: 'off',
    });
    expect(replaced.statusCode, replaced.body).toBe(200);
    expect(replaced.json()).toMatchObject({
      id: 'nightly',
      all: true,
      vmid: [],
      exclude: ['102'],
      days: ['fri'],
      at: '01:05',
      enabled: false,
      snapshot: 'off',
    });
    expect(replaced.json().keep).toBeUndefined(); // replaced, not merged

    const dup = await lab.api('POST', '/api/v1/jobs', base);
    expect([dup.statusCode, errorCode(dup)]).toEqual([409, 'JOB_EXISTS']);
    const mismatch = await lab.api('PUT', '/api/v1/jobs/nightly', { ...base, id: 'other' });
    expect([mismatch.statusCode, errorCode(mismatch)]).toEqual([400, 'INVALID_REQUEST']);

    expect((await lab.api('DELETE', '/api/v1/jobs/nightly')).statusCode).toBe(204);
    const gone = await lab.api('GET', '/api/v1/jobs/nightly');
    expect([gone.statusCode, errorCode(gone)]).toEqual([404, 'JOB_NOT_FOUND']);
    expect((await lab.api('PUT', '/api/v1/jobs/nightly', base)).statusCode).toBe(404);
    expect((await lab.api('DELETE', '/api/v1/jobs/nightly')).statusCode).toBe(404);
    expect((await lab.api('POST', '/api/v1/jobs/nightly/run')).statusCode).toBe(404);
  });

  it('refuses bad fields by schema (400 INVALID_REQUEST) and by the job model (400 JOB_INVALID)', async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ ...base, vmid: ['12'] }, 'INVALID_REQUEST'],
      [{ ...base, vmid: ['abc'] }, 'INVALID_REQUEST'],
      [{ ...base, exclude: ['1; rm -rf /'] }, 'INVALID_REQUEST'],
      [{ ...base, days: ['someday'] }, 'INVALID_REQUEST'],
      [{ ...base, at: '25:00' }, 'INVALID_REQUEST'],
      [{ ...base, keep: 0 }, 'INVALID_REQUEST'],
      [{ ...base, mode: 'snapshot' }, 'INVALID_REQUEST'],
      [{ ...base, snapshot: 'sometimes' }, 'INVALID_REQUEST'],
      [{ ...base, id: '1bad' }, 'INVALID_REQUEST'],
      [{ ...base, unknownField: 1 }, 'INVALID_REQUEST'],
      [{ ...base, vmid: ['101'], all: true }, 'JOB_INVALID'],
      [{ ...base, schedule: '61 * * * *' }, 'JOB_INVALID'],
      [{ ...base, mailto: ['not an address'] }, 'JOB_INVALID'],
    ];
    for (const [body, code] of cases) {
      const res = await lab.api('POST', '/api/v1/jobs', body);
      expect([res.statusCode, errorCode(res)], JSON.stringify(body)).toEqual([400, code]);
    }
    const unknown = await lab.api('POST', '/api/v1/jobs', { ...base, foo: 'bar' });
    expect(unknown.json().error.message).toBe("body: unknown field 'foo' (no additional properties allowed)");
    expect((await lab.api('GET', '/api/v1/jobs')).json()).toEqual([]);
  });

  it('refuses paths outside the configured stores and script folders (400 PATH_NOT_ALLOWED)', async () => {
    const hook = join(lab.scriptsDir, 'hook.sh');
    const cases: Array<Record<string, unknown>> = [
      { ...base, store: '/etc' },
      { ...base, store: `${lab.storeDir}/../../../etc` },
      { ...base, store: `${lab.storeDir}/..` },
      { ...base, store: `${lab.storeDir}/chunks` },
      { ...base, store: 'store' },
      { ...base, store: 'elsewhere/../store' },
      { ...base, hook: '/bin/sh' },
      { ...base, scriptBefore: `${lab.scriptsDir}/../state/x.sh` },
      { ...base, scriptAfter: 'relative.sh' },
      { ...base, device: '/dev/../etc/passwd' },
      { ...base, device: '/etc/passwd' },
    ];
    for (const body of cases) {
      const res = await lab.api('POST', '/api/v1/jobs', body);
      expect([res.statusCode, errorCode(res)], JSON.stringify(body)).toEqual([400, 'PATH_NOT_ALLOWED']);
    }
    const ok = await lab.api('POST', '/api/v1/jobs', { ...base, id: 'withpaths', store: `${lab.storeDir}/`, hook, device: '/dev/disk/by-uuid/1234' });
    expect(ok.statusCode, ok.body).toBe(201);
    expect(ok.json()).toMatchObject({ store: lab.storeDir, hook });
    expect((await lab.api('DELETE', '/api/v1/jobs/withpaths')).statusCode).toBe(204);
  });

  it('rejects bodies that are not JSON', async () => {
    const text = await lab.app.inject({
      method: 'POST',
      url: '/api/v1/jobs',
      payload: 'id=x',
      headers: { authorization: `Bearer ${lab.token}`, 'content-type': 'text/plain' },
    });
    expect([text.statusCode, errorCode(text)]).toEqual([415, 'UNSUPPORTED_MEDIA_TYPE']);
    const broken = await lab.app.inject({
      method: 'POST',
      url: '/api/v1/jobs',
      payload: '{"id":',
      headers: { authorization: `Bearer ${lab.token}`, 'content-type': 'application/json' },
    });
    expect([broken.statusCode, errorCode(broken)]).toEqual([400, 'INVALID_REQUEST']);
  });
});

describe('guests, status, tasks, backups', () => {
  it('GET /guests: id, status, name, type, disk size (null when a disk is missing)', async () => {
    writeGuest(lab, '102', [{ key: 'virtio0', file: 'vm-102-disk-0.raw' }]);
    writeFileSync(join(lab.guestsDir, 'notes.txt'), 'not a guest');
    const res = await lab.api('GET', '/api/v1/guests');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual([
      { id: '101', status: 'stopped', name: 'test-101', type: 'qemu', diskSize: 16 * 1024 * 1024 },
      { id: '102', status: 'stopped', name: 'test-102', type: 'qemu', diskSize: null },
    ]);
  });

  it('GET /status: node, version, uptime, running, datastores (one that cannot be opened has an error)', async () => {
    lab.advance(5000);
    const res = await lab.api('GET', '/api/v1/status');
    lab.advance(-5000);
    expect(res.statusCode).toBe(200);
    const status = res.json();
    expect(status).toMatchObject({ node: 'testnode', version: expect.any(String), running: [] });
    expect(status.uptime).toBeGreaterThanOrEqual(5);
    const main = status.datastores.find((d: { name: string }) => d.name === 'main');
    expect(main).toMatchObject({ dir: lab.storeDir, versions: 0 });
    expect(main.free).toBeGreaterThan(0);
    expect(main.used + main.free).toBe(main.total);
    const gone = status.datastores.find((d: { name: string }) => d.name === 'gone');
    expect(gone.error).toMatch(/does not exist/);
  });

  it('GET /tasks, /tasks/{id}, /tasks/{id}/log; unknown task 404; bad limit 400', async () => {
    const task = lab.state.tasks.create('verify', { node: 'testnode', summary: 'test' });
    task.info('first line');
    task.warn('second line');
    task.finish(true, { fine: 1 });
    const list = await lab.api('GET', '/api/v1/tasks?limit=5');
    expect(list.json()[0]).toMatchObject({ id: task.id, status: 'ok', type: 'verify', jobId: null, result: { fine: 1 } });
    expect((await lab.api('GET', `/api/v1/tasks/${task.id}`)).json()).toMatchObject({ id: task.id, status: 'ok', end: expect.any(String) });
    const log = (await lab.api('GET', `/api/v1/tasks/${task.id}/log`)).json();
    expect(log.map((l: { message: string }) => l.message)).toEqual(['first line', 'second line']);
    expect(log[1]).toMatchObject({ n: 1, level: 'WARN', text: expect.stringMatching(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d WARN: second line$/) });
    expect((await lab.api('GET', `/api/v1/tasks/${task.id}/log?from=1`)).json()).toHaveLength(1);
    const missing = await lab.api('GET', '/api/v1/tasks/nope');
    expect([missing.statusCode, errorCode(missing)]).toEqual([404, 'TASK_NOT_FOUND']);
    expect((await lab.api('GET', '/api/v1/tasks/nope/log')).statusCode).toBe(404);
    expect((await lab.api('GET', '/api/v1/tasks?limit=0')).statusCode).toBe(400);
    expect((await lab.api('GET', '/api/v1/tasks?limit=5&x=1')).statusCode).toBe(400);
  });

  it('GET /backups: empty store; bad guest and foreign stores refused', async () => {
    expect((await lab.api('GET', '/api/v1/backups?guest=101&store=main')).json()).toEqual([]);
    expect((await lab.api('GET', '/api/v1/backups')).json()).toEqual([]);
    const bad = await lab.api('GET', '/api/v1/backups?guest=10');
    expect([bad.statusCode, errorCode(bad)]).toEqual([400, 'INVALID_REQUEST']);
    for (const store of ['/etc', `${lab.storeDir}/../state`]) {
      const res = await lab.api('GET', `/api/v1/backups?store=${encodeURIComponent(store)}`);
      expect([res.statusCode, errorCode(res)], store).toEqual([400, 'PATH_NOT_ALLOWED']);
    }
    const gone = await lab.api('GET', '/api/v1/backups?store=gone');
    expect([gone.statusCode, errorCode(gone)]).toEqual([404, 'NOT_A_DATASTORE']);
  });

  it('verify, prune and restore refuse foreign paths, unknown fields and bad ids before starting anything', async () => {
    const cases: Array<[string, Record<string, unknown>, number, string]> = [
      ['/api/v1/verify', { store: '/etc' }, 400, 'PATH_NOT_ALLOWED'],
      ['/api/v1/verify', { store: 'main', version: 1 }, 400, 'INVALID_REQUEST'],
      ['/api/v1/verify', { store: 'main', deep: true }, 400, 'INVALID_REQUEST'],
      ['/api/v1/prune', { store: 'main', guest: '101', keepLast: 0 }, 400, 'INVALID_REQUEST'],
      ['/api/v1/prune', { store: `${lab.storeDir}/../vz`, guest: '101', keepLast: 1 }, 400, 'PATH_NOT_ALLOWED'],
      ['/api/v1/restore', { fromPath: '/var/lib', id: '101', version: 1, newId: '201' }, 400, 'PATH_NOT_ALLOWED'],
      ['/api/v1/restore', { fromPath: 'main', id: '101', version: 1, newId: '20' }, 400, 'INVALID_REQUEST'],
      ['/api/v1/restore', { fromPath: 'main', id: '101', version: 1, newId: '201', targetDir: '/tmp' }, 400, 'INVALID_REQUEST'],
      ['/api/v1/restore', { fromDevice: '/dev/sdb1', id: '101', version: 1, newId: '201' }, 400, 'INVALID_REQUEST'],
      ['/api/v1/restore', { fromDevice: '/etc/passwd', fromPath: 'main', id: '101', version: 1, newId: '201' }, 400, 'PATH_NOT_ALLOWED'],
      [
        '/api/v1/restore',
        { fromDevice: 'UUID=00000000-dead-beef-0000-000000000000', fromPath: 'main', id: '101', version: 1, newId: '201' },
        404,
        'DEVICE_NOT_FOUND',
      ],
      ['/api/v1/restore', { id: '101', version: 1, newId: '201' }, 400, 'INVALID_REQUEST'],
      ['/api/v1/restore', { fromPath: 'main', id: '101', version: 9, newId: '201' }, 404, 'VERSION_NOT_FOUND'],
    ];
    for (const [url, body, status, code] of cases) {
      const res = await lab.api('POST', url, body);
      expect([res.statusCode, errorCode(res)], `${url} ${JSON.stringify(body)}`).toEqual([status, code]);
    }
    const types = (await lab.api('GET', '/api/v1/tasks')).json().map((t: { type: string }) => t.type);
    expect(types).toEqual(['verify']); // only the one the task test made: nothing was started
  });
});

describe('OpenAPI, static files, errors', () => {
  it('openapi.json lists every route with its schemas', async () => {
    const res = await lab.api('GET', '/api/v1/openapi.json');
    expect(res.statusCode).toBe(200);
    const doc = res.json();
    expect(doc.openapi).toBe('3.1.0');
    const listed = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([path, ops]) =>
      Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`),
    );
    expect(listed.sort()).toEqual([...ALL_ROUTES].sort());
    const create = doc.paths['/api/v1/jobs'].post;
    expect(create.requestBody.content['application/json'].schema).toMatchObject({
      additionalProperties: false,
      required: expect.arrayContaining(['id', 'store']),
    });
    expect(create.responses['201'].content['application/json'].schema.properties.vmid).toBeDefined();
    expect(create.responses['4XX'].content['application/json'].schema.properties.error).toBeDefined();
    expect(doc.paths['/api/v1/jobs/{id}'].get.parameters).toEqual([expect.objectContaining({ name: 'id', in: 'path', required: true })]);
    expect(doc.paths['/api/v1/tasks/{id}/log'].get.responses['200'].content['text/event-stream']).toBeDefined();
    expect(doc.paths['/api/v1/health'].get.security).toEqual([]);
    expect(doc.paths['/metrics'].get.security).toBeUndefined();
    for (const [path, ops] of Object.entries(doc.paths as Record<string, Record<string, { responses: object }>>)) {
      for (const [method, op] of Object.entries(ops)) expect(Object.keys(op.responses), `${method} ${path}`).toEqual(expect.arrayContaining(['4XX', '5XX']));
    }
  });

  it('serves the web UI folder at / publicly, with a strict CSP, and never a file outside it', async () => {
    const index = await lab.app.inject({ method: 'GET', url: '/' });
    expect(index.statusCode).toBe(200);
    expect(index.headers['content-type']).toMatch(/^text\/html/);
    expect(index.headers['content-security-policy']).toMatch(/default-src 'self'/);
    expect(index.body).toContain('coldvault');
    expect((await lab.app.inject({ method: 'GET', url: '/index.html' })).statusCode).toBe(200);
    for (const url of ['/../package.json', '/%2e%2e/%2e%2e/package.json', '/..%2f..%2fpackage.json', '/nope.js']) {
      const res = await lab.app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(404);
      expect(res.body).not.toContain('"name": "coldvault"');
    }
  });

  it('an unknown API route is a JSON 404', async () => {
    const res = await lab.api('GET', '/api/v1/nope');
    expect([res.statusCode, errorCode(res)]).toEqual([404, 'NOT_FOUND']);
    const post = await lab.api('POST', '/api/v1/nope', {});
    expect([post.statusCode, errorCode(post)]).toEqual([404, 'NOT_FOUND']);
  });
});
