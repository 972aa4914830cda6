/**
 * Roles of API tokens on the real server (fastify.inject; real datastores, backups and restores with
 * driver `none`): every route of the OpenAPI document against every role (a route without an
 * expectation here fails the test, a route without an access rule cannot be registered); what an
 * operator may not do in a job or a restore, and that its restore leaves out `args:` / `hookscript:`
 * with a WARN line while an admin's keeps them; a backup token sees its own store only; tasks record
 * who started them (API and `coldvault task list`), the scheduler included.
 */
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, imagePath, spawnCli, writeGuest, writeImage } from '../helpers/fixtures.js';
import { Datastore } from '../../dist/datastore/index.js';
import { createDriver } from '../../dist/guests/hypervisor/index.js';
import { openStateDb, TaskStore } from '../../dist/jobs/index.js';
import { createServer, decide, TokenStore } from '../../dist/server/index.js';
import { errorCode, makeServerLab, PASSWORD, waitTask, type ServerLab } from './helpers-server.js';

type Who = 'admin' | 'operator' | 'audit' | 'backup' | 'web';
const ALL: Who[] = ['admin', 'operator', 'audit', 'backup', 'web'];
const READERS: Who[] = ['admin', 'operator', 'audit', 'web'];
const OPERATORS: Who[] = ['admin', 'operator', 'web'];
const ADMINS: Who[] = ['admin', 'web'];
const WRITERS: Who[] = ['admin', 'backup', 'web'];
const LEASERS: Who[] = ['admin', 'operator', 'backup', 'web'];

/** Who may use each route (anyone else gets 403 FORBIDDEN). A new route needs a line here. */
const MAY: Record<string, Who[]> = {
  'GET /api/v1/health': ALL,
  'POST /api/v1/login': ALL,
  'POST /api/v1/logout': ALL,
  'GET /api/v1/whoami': ALL,
  'GET /api/v1/openapi.json': ALL,
  'GET /api/v1/backups': ALL,
  'GET /api/v1/backups/{vmid}/{version}/screenshot': ALL,
  'GET /api/v1/status': READERS,
  'GET /api/v1/restore/nodes': READERS,
  'GET /api/v1/guests': READERS,
  'GET /api/v1/overview': READERS,
  'GET /api/v1/jobs': READERS,
  'GET /api/v1/jobs/{id}': READERS,
  'GET /api/v1/tasks': READERS,
  'GET /api/v1/tasks/{id}': READERS,
  'GET /api/v1/tasks/{id}/log': READERS,
  'GET /metrics': READERS,
  'GET /api/v1/devices': READERS,
  'GET /api/v1/devices/datastores': READERS,
  'POST /api/v1/jobs': OPERATORS,
  'PUT /api/v1/jobs/{id}': OPERATORS,
  'DELETE /api/v1/jobs/{id}': OPERATORS,
  'POST /api/v1/jobs/{id}/run': OPERATORS,
  'POST /api/v1/verify': OPERATORS,
  'POST /api/v1/restore': OPERATORS,
  'POST /api/v1/prune': ADMINS,
  'POST /api/v1/devices/probe': OPERATORS,
  'POST /api/v1/stores/{store}/uploads': WRITERS,
  'POST /api/v1/stores/{store}/uploads/{upload}/known': WRITERS,
  'PUT /api/v1/stores/{store}/uploads/{upload}/chunks/{digest}': WRITERS,
  'PUT /api/v1/stores/{store}/uploads/{upload}/files/{name}': WRITERS,
  'POST /api/v1/stores/{store}/uploads/{upload}/finish': WRITERS,
  'DELETE /api/v1/stores/{store}/uploads/{upload}': WRITERS,
  'POST /api/v1/stores/{store}/device': WRITERS,
  'POST /api/v1/stores/{store}/device/{attachment}/keepalive': WRITERS,
  'DELETE /api/v1/stores/{store}/device/{attachment}': WRITERS,
  'GET /api/v1/stores/{store}': ALL,
  'GET /api/v1/stores/{store}/guests': ALL,
  'GET /api/v1/stores/{store}/guests/{id}/versions': ALL,
  'GET /api/v1/stores/{store}/guests/{id}/versions/{version}/files/{name}': ALL,
  'GET /api/v1/stores/{store}/chunks/{digest}': ALL,
  'POST /api/v1/stores/{store}/guests/{id}/versions/{version}/lease': LEASERS,
  'POST /api/v1/stores/{store}/leases/{lease}/keepalive': LEASERS,
  'DELETE /api/v1/stores/{store}/leases/{lease}': LEASERS,
};

let lab: ServerLab;
let otherStore: string;
let configPath: string;
let cookie: string;
const tokens = {} as Record<Exclude<Who, 'web'>, string>;
const children: ChildProcess[] = [];

function as(who: Who, method: string, url: string, body?: unknown): Promise<LightMyRequestResponse> {
  const headers: Record<string, string> = who === 'web' ? { cookie, 'x-requested-with': 'coldvault' } : { authorization: `Bearer ${tokens[who]}` };
  return lab.api(method, url, body, headers);
}

async function webLogin(): Promise<string> {
  const login = await lab.app.inject({
    method: 'POST',
    url: '/api/v1/login',
    payload: { password: PASSWORD },
    headers: { 'x-requested-with': 'coldvault' },
    remoteAddress: '10.9.0.1',
  });
  return String(login.headers['set-cookie']).split(';')[0]!;
}

async function runJob(who: Who, id: string): Promise<{ taskId: string; task: Record<string, unknown> }> {
  const res = await as(who, 'POST', `/api/v1/jobs/${id}/run`);
  expect(res.statusCode, res.body).toBe(202);
  const { taskId } = res.json() as { taskId: string };
  const task = await waitTask(lab, taskId);
  expect(task.status).toBe('ok');
  return { taskId, task };
}

beforeAll(async () => {
  lab = await makeServerLab();
  otherStore = join(lab.root, 'other-store');
  await Datastore.init(otherStore);
  lab.config.datastores.other = otherStore;
  writeGuest(lab, '102', [{ key: 'scsi0', file: 'vm-102-disk-0.raw' }], 'args: -no-reboot -d guest_errors\nhookscript: local:snippets/on-start.pl\n');
  writeImage(imagePath(lab, '102', 'vm-102-disk-0.raw'), ['random', 'zero'], 3);
  tokens.admin = lab.token;
  tokens.operator = lab.tokens.create('ops', { role: 'operator' }).token;
  tokens.audit = lab.tokens.create('auditor', { role: 'audit' }).token;
  tokens.backup = lab.tokens.create('node2', { role: 'backup', store: 'main' }).token;
  cookie = await webLogin();
  configPath = join(lab.root, 'coldvault.json');
  writeFileSync(
    configPath,
    JSON.stringify({
      node: 'testnode',
      stateDir: lab.stateDir,
      guestsDir: lab.guestsDir,
      storages: lab.config.storages,
      datastores: lab.config.datastores,
      hypervisor: { driver: 'none' },
    }),
  );
  for (const [id, store, vmid] of [
    ['to-main', 'main', '102'],
    ['to-other', 'other', '101'],
  ] as const) {
    expect((await as('admin', 'POST', '/api/v1/jobs', { id, store, vmid: [vmid] })).statusCode).toBe(201);
    await runJob('admin', id);
  }
});
afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await lab?.close();
});

describe('every route against every role', () => {
  it('the OpenAPI document lists exactly the routes this test has rules for', async () => {
    const doc = (await as('admin', 'GET', '/api/v1/openapi.json')).json() as { paths: Record<string, Record<string, unknown>> };
    const listed = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`));
    expect(listed.sort()).toEqual(Object.keys(MAY).sort());
  });

  it('each role gets 403 FORBIDDEN, naming itself, its role and the action, exactly where it may not go', async () => {
    const taskId = (await as('admin', 'GET', '/api/v1/tasks?limit=1')).json()[0].id as string;
    const wrong: string[] = [];
    const logoutLast = Object.entries(MAY).sort(([a], [b]) => Number(a.endsWith('/logout')) - Number(b.endsWith('/logout')));
    for (const [route, allowed] of logoutLast) {
      const [method, path] = route.split(' ') as [string, string];
      const url = path.replace('{id}', path.startsWith('/api/v1/tasks') ? taskId : 'no-such-job').replace('{store}', 'main'); // the backup token's store
      for (const who of ALL) {
        const res = await as(who, method, url, ['POST', 'PUT'].includes(method) ? {} : undefined);
        const forbidden = res.statusCode === 403 && errorCode(res) === 'FORBIDDEN';
        if (forbidden === allowed.includes(who) || res.statusCode === 401) wrong.push(`${who} ${route}: ${res.statusCode} ${res.body.slice(0, 120)}`);
        if (forbidden)
          expect(res.json().error.message).toMatch(
            who === 'backup' ? /^token:node2: role 'backup' \(store 'main'\) may not / : new RegExp(`^token:\\w+: role '${who}' may not `),
          );
      }
    }
    expect(wrong).toEqual([]);
    cookie = await webLogin(); // the loop logged the web session out
  });

  it('a route without an access rule cannot be added', async () => {
    const app = await createServer({ config: lab.config, state: lab.state, driver: createDriver({ driver: 'none' }), uiDir: null });
    try {
      expect(() => app.get('/api/v1/unguarded', { schema: { summary: 'x' } }, async () => 'open')).toThrow(/has no access rule/);
    } finally {
      await app.close();
    }
  });

  it('whoami names the principal, its role and store', async () => {
    expect((await as('backup', 'GET', '/api/v1/whoami')).json()).toEqual({ name: 'token:node2', role: 'backup', store: 'main' });
    expect((await as('operator', 'GET', '/api/v1/whoami')).json()).toEqual({ name: 'token:ops', role: 'operator', store: null });
    expect((await as('web', 'GET', '/api/v1/whoami')).json()).toEqual({ name: 'admin@web', role: 'admin', store: null });
  });
});

describe("the decision cluster mode's push routes will use (store.write)", () => {
  it('a backup token may write its own store only; an operator or audit token none; an admin any', () => {
    const backup = { role: 'backup', store: 'main' } as const;
    expect(decide(backup, 'store.write', 'main')).toEqual({ allowed: true });
    expect(decide(backup, 'store.write', 'other')).toEqual({ allowed: false, message: "role 'backup' (store 'main') may not write versions of store 'other'" });
    expect(decide(backup, 'store.write')).toEqual({ allowed: true, onlyStore: 'main' });
    for (const role of ['operator', 'audit'] as const)
      expect(decide({ role }, 'store.write', 'main')).toMatchObject({ allowed: false, message: `role '${role}' may not write versions of store 'main'` });
    expect(decide({ role: 'admin' }, 'store.write', 'other')).toEqual({ allowed: true });
  });
});

describe('operator', () => {
  const hook = () => join(lab.scriptsDir, 'hook.sh');

  it('creates a job without scripts, hook or device; one with them is refused, naming the field', async () => {
    expect((await as('operator', 'POST', '/api/v1/jobs', { id: 'op-plain', store: 'main', vmid: ['101'] })).statusCode).toBe(201);
    for (const extra of [{ hook: hook() }, { scriptBefore: hook() }, { scriptAfter: hook() }, { device: '/dev/sdz1' }]) {
      const res = await as('operator', 'POST', '/api/v1/jobs', { id: 'op-hooked', store: 'main', vmid: ['101'], ...extra });
      expect([res.statusCode, errorCode(res)], JSON.stringify(extra)).toEqual([403, 'FORBIDDEN']);
      expect(res.json().error.message).toContain(`sets ${Object.keys(extra)[0]}`);
    }
    expect((await as('admin', 'GET', '/api/v1/jobs/op-hooked')).statusCode).toBe(404);
    expect((await as('admin', 'POST', '/api/v1/jobs', { id: 'op-hooked', store: 'main', vmid: ['101'], hook: hook() })).statusCode).toBe(201);
  });

  it('edits a job keeping its hook as it is, but may not change or remove it', async () => {
    const keep = await as('operator', 'PUT', '/api/v1/jobs/op-hooked', { store: 'main', vmid: ['101'], keep: 3, hook: hook() });
    expect(keep.statusCode, keep.body).toBe(200);
    expect(keep.json()).toMatchObject({ keep: 3, hook: hook() });
    const removed = await as('operator', 'PUT', '/api/v1/jobs/op-hooked', { store: 'main', vmid: ['101'] });
    expect([removed.statusCode, errorCode(removed)]).toEqual([403, 'FORBIDDEN']);
    expect(removed.json().error.message).toMatch(
      /role 'operator' may not set or change a job's scripts, hook, external device or webhook \(this request changes hook\)/,
    );
    expect((await as('admin', 'GET', '/api/v1/jobs/op-hooked')).json().hook).toBe(hook());
  });

  it('may not restore with force, nor prune', async () => {
    const force = await as('operator', 'POST', '/api/v1/restore', { fromPath: 'main', id: '102', version: 1, newId: '102', force: true });
    expect([force.statusCode, errorCode(force)]).toEqual([403, 'FORBIDDEN']);
    expect(force.json().error.message).toMatch(/role 'operator' may not restore over an existing guest \(force\)/);
    const prune = await as('operator', 'POST', '/api/v1/prune', { store: 'main', guest: '102', keepLast: 1 });
    expect(prune.json().error.message).toMatch(/^token:ops: role 'operator' may not prune versions \(store 'main'\)/);
  });

  it("restores to a new id without the archived args: and hookscript: lines, with a WARN naming them; an admin's restore keeps them", async () => {
    const archived = readFileSync(join(lab.guestsDir, '102.conf'), 'utf8');
    expect(archived).toMatch(/^args: .*\nhookscript: /m);
    const byOperator = await as('operator', 'POST', '/api/v1/restore', { fromPath: 'main', id: '102', version: 1, newId: '301' });
    expect(byOperator.statusCode, byOperator.body).toBe(202);
    const task = await waitTask(lab, byOperator.json().taskId);
    expect(task.status).toBe('ok');
    const restored = readFileSync(join(lab.guestsDir, '301.conf'), 'utf8');
    expect(restored).not.toMatch(/^(args|hookscript):/m);
    expect(restored).toMatch(/^name: test-102$/m);
    expect(task.startedBy).toBe('token:ops');
    const log = (await as('operator', 'GET', `/api/v1/tasks/${byOperator.json().taskId}/log`)).json() as Array<{ level: string; message: string }>;
    const warn = log.filter((l) => l.level === 'WARN');
    expect(warn).toHaveLength(1);
    expect(warn[0]!.message).toMatch(/'args:', 'hookscript:'.*token:ops \(role 'operator'\) may not restore them/);

    const byAdmin = await as('admin', 'POST', '/api/v1/restore', { fromPath: 'main', id: '102', version: 1, newId: '302' });
    expect(await waitTask(lab, byAdmin.json().taskId)).toMatchObject({ status: 'ok', startedBy: 'token:tests' });
    const kept = readFileSync(join(lab.guestsDir, '302.conf'), 'utf8');
    expect(kept).toMatch(/^args: -no-reboot -d guest_errors$/m);
    expect(kept).toMatch(/^hookscript: local:snippets\/on-start\.pl$/m);
    const adminLog = (await as('admin', 'GET', `/api/v1/tasks/${byAdmin.json().taskId}/log`)).json() as Array<{ level: string }>;
    expect(adminLog.filter((l) => l.level === 'WARN')).toEqual([]);
  });
});

describe('backup token (scoped to the datastore main)', () => {
  it('lists only the versions of its store; another store is refused, by name or folder', async () => {
    const all = (await as('admin', 'GET', '/api/v1/backups')).json() as Array<{ id: string; store: string }>;
    expect(new Set(all.map((v) => v.store))).toEqual(new Set([lab.storeDir, otherStore]));
    const mine = (await as('backup', 'GET', '/api/v1/backups')).json() as Array<{ id: string; store: string }>;
    expect(mine.map((v) => [v.id, v.store])).toEqual([['102', lab.storeDir]]);
    expect((await as('backup', 'GET', '/api/v1/backups?store=main')).json()).toEqual(mine);
    expect((await as('backup', 'GET', `/api/v1/backups?store=${encodeURIComponent(lab.storeDir)}`)).json()).toEqual(mine);
    for (const store of ['other', otherStore]) {
      const res = await as('backup', 'GET', `/api/v1/backups?store=${encodeURIComponent(store)}`);
      expect([res.statusCode, errorCode(res)]).toEqual([403, 'FORBIDDEN']);
      expect(res.json().error.message).toBe("token:node2: role 'backup' (store 'main') may not read the versions of store 'other'");
    }
  });

  it("is refused jobs, restores, verify, devices and the server's state", async () => {
    for (const [method, url, body] of [
      ['GET', '/api/v1/jobs'],
      ['POST', '/api/v1/restore', { fromPath: 'main', id: '102', version: 1, newId: '303' }],
      ['POST', '/api/v1/verify', { store: 'main' }],
      ['GET', '/api/v1/devices'],
      ['GET', '/api/v1/status'],
      ['GET', '/api/v1/tasks'],
    ] as const) {
      const res = await as('backup', method, url, body);
      expect([res.statusCode, errorCode(res)], url).toEqual([403, 'FORBIDDEN']);
    }
  });
});

describe('who started a task', () => {
  it('is recorded for a token, the web login and the CLI, and shown by the API and `coldvault task list`', async () => {
    expect((await runJob('operator', 'op-plain')).task.startedBy).toBe('token:ops');
    expect((await runJob('web', 'op-plain')).task.startedBy).toBe('admin@web');
    const byCli = await cli(['job', 'run', 'op-plain', '--config', configPath]);
    expect(byCli.code, byCli.stderr).toBe(0);
    const tasks = (await as('audit', 'GET', '/api/v1/tasks?limit=3')).json() as Array<{ startedBy: string }>;
    expect(tasks.map((t) => t.startedBy)).toEqual([`${userInfo().username}@cli`, 'admin@web', 'token:ops']);
    const listed = await cli(['task', 'list', '--limit', '3', '--config', configPath]);
    expect(listed.code, listed.stderr).toBe(0);
    expect(
      listed.stdout
        .trim()
        .split('\n')
        .map((l) => /\bby (\S+)/.exec(l)?.[1]),
    ).toEqual([`${userInfo().username}@cli`, 'admin@web', 'token:ops']);
  });

  it('is `scheduler` for a run that `coldvault serve` starts on schedule', async () => {
    expect((await as('admin', 'POST', '/api/v1/jobs', { id: 'cron', store: 'main', vmid: ['101'], schedule: '* * * * *' })).statusCode).toBe(201);
    lab.state.db.prepare("UPDATE jobs SET created = '2000-01-01T00:00:00.000Z' WHERE id = 'cron'").run(); // due at once: its last minute is within the grace period
    const serve = spawnCli(['serve', '--config', configPath, '--listen', '127.0.0.1:0']);
    children.push(serve);
    let task: { id: string; status: string; startedBy: string } | undefined;
    for (const until = Date.now() + 30_000; Date.now() < until && task?.status !== 'ok'; await new Promise((r) => setTimeout(r, 200))) {
      task = lab.state.tasks.list(20).find((t) => t.jobId === 'cron') as typeof task;
    }
    const exited = new Promise((resolve) => serve.once('exit', resolve));
    serve.kill('SIGTERM');
    await exited;
    expect(task).toMatchObject({ status: 'ok', startedBy: 'scheduler' });
  });
});

describe('tokens and their roles (built CLI)', () => {
  const token = (...args: string[]) => cli(['token', ...args, '--config', configPath]);

  it('token create defaults to operator; backup needs --store (a configured datastore), the others refuse it', async () => {
    const made = await token('create', 'plain', '--json');
    expect(made.code, made.stderr).toBe(0);
    expect(JSON.parse(made.stdout)).toMatchObject({ name: 'plain', role: 'operator', store: null, token: expect.stringMatching(/^cv_/) });
    const scoped = await token('create', 'pusher', '--role', 'backup', '--store', otherStore);
    expect(scoped.code, scoped.stderr).toBe(0);
    expect(scoped.stdout).toMatch(/role backup of store other/);
    for (const [args, message] of [
      [['--role', 'backup'], /role 'backup' is scoped to one datastore: give --store STORE/],
      [['--role', 'audit', '--store', 'main'], /--store is only for the role backup/],
      [['--role', 'root'], /role 'root' is unknown \(roles: admin, operator, audit, backup\)/],
      [['--role', 'backup', '--store', '/srv/elsewhere'], /--store '\/srv\/elsewhere' is not a configured datastore \(configured: main, other/],
    ] as const) {
      const r = await token('create', 'refused', ...args);
      expect([r.code, r.stderr], args.join(' ')).toEqual([2, expect.stringMatching(message)]);
    }
    const listed = await token('list');
    expect(listed.stdout).toMatch(/^plain\s+role operator\s+created/m);
    expect(listed.stdout).toMatch(/^pusher\s+role backup of store other\s+created/m);
    expect(listed.stdout).toMatch(/^auditor\s+role audit\s+created/m);
    expect(listed.stdout).not.toMatch(/refused/);
  });

  it('tokens and tasks from before roles: the tokens stay admin (they were), old tasks have no started-by, new ones do', async () => {
    const stateDir = join(lab.root, 'old-state');
    mkdirSync(stateDir);
    const old = new Database(join(stateDir, 'coldvault.sqlite'));
    old.exec(`CREATE TABLE api_tokens (name TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, created TEXT NOT NULL, expires TEXT, last_used TEXT);
      CREATE TABLE tasks (id TEXT PRIMARY KEY, type TEXT NOT NULL, job_id TEXT, node TEXT NOT NULL, status TEXT NOT NULL CHECK (status IN ('running','ok','failed')),
        start TEXT NOT NULL, end TEXT, pid INTEGER NOT NULL, host TEXT NOT NULL, summary TEXT, result TEXT);
      PRAGMA user_version = 1;`);
    old
      .prepare('INSERT INTO api_tokens (name, hash, created) VALUES (?, ?, ?)')
      .run('legacy', createHash('sha256').update('cv_legacy-secret').digest('hex'), '2024-01-01T00:00:00.000Z');
    old
      .prepare(
        "INSERT INTO tasks (id, type, node, status, start, end, pid, host) VALUES ('old-task', 'backup', 'n', 'ok', '2024-01-01T00:00:00Z', '2024-01-01T00:01:00Z', 1, 'h')",
      )
      .run();
    old.close();

    const db = openStateDb(stateDir);
    try {
      expect(db.pragma('user_version', { simple: true })).toBe(3); // roles (2), task boot ids (3)
      expect(new TokenStore(db).list()).toEqual([expect.objectContaining({ name: 'legacy', role: 'admin', store: null })]);
      expect(new TokenStore(db).authenticate('cv_legacy-secret')).toEqual({ name: 'legacy', grant: { role: 'admin' } });
      const tasks = new TaskStore(db, stateDir);
      tasks.create('verify', { node: 'n', startedBy: 'token:x' }).finish(true);
      expect(tasks.list().map((t) => [t.id === 'old-task' ? 'old' : 'new', t.startedBy])).toEqual([
        ['new', 'token:x'],
        ['old', null],
      ]);
    } finally {
      db.close();
    }
    const listed = await cli(['token', 'list', '--state-dir', stateDir]);
    expect(listed.stdout).toMatch(/^legacy\s+role admin\s+created/m);
  });
});
