/**
 * Restore and verify of encrypted versions through the API (issue 13). Guest 101 backed up with the
 * built CLI: version 1 encrypted with key A (`--kdf none`), version 2 plain, version 3 encrypted with
 * key P (a passphrase). A request names the key by paths only (`keyFile`, `passphraseFile`, inside
 * the config's keyDirs as written and with symlinks resolved): without it the restore of an encrypted
 * version is refused at once (400 KEY_REQUIRED naming the key's fingerprint), another key is 400
 * KEY_WRONG naming both, a path outside keyDirs 400 PATH_NOT_ALLOWED, a passphrase missing or wrong
 * 400 KEY_PASSPHRASE_WRONG, key material in the body 400 by schema; nothing is restored then. With
 * the right key the disk comes back byte-identical, and no log line or answer holds the key or the
 * passphrase. Verify without the key says which versions' content was not checked (task result
 * `contentUnchecked`, and a log line); with key A only version 3 is left so.
 * And a restore from another node (`remote`): a real `coldvault serve` (node1) serving the same
 * datastore folder; the key file is this node's, the chunks come over the wire and are opened here.
 */
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, imagePath, sha256File, writeServeConfig } from '../helpers/fixtures.js';
import { startServe, type ServeProcess } from '../helpers/serve-process.js';
import { makeToken } from '../targets/remote-lab.js';
import { errorCode, makeServerLab, waitTask, type ServerLab } from './helpers-server.js';

const PW = 'api restore passphrase 13';
let lab: ServerLab;
let keys: string;
let fpA: string;
let fpB: string;
let fpP: string;
let savedEnv: string | undefined;
const key = (name: string): string => join(keys, name);
const source = (): string => imagePath(lab, '101', 'vm-101-disk-0.raw');
const restore = (extra: Record<string, unknown>, newId = '201') =>
  lab.api('POST', '/api/v1/restore', { fromPath: 'main', id: '101', version: 1, newId, ...extra });

async function ok(args: string[], env: Record<string, string> = {}): Promise<string> {
  const r = await cli(args, { env: { COLDVAULT_KEY_PASSPHRASE: '', ...env } });
  expect(r.code, `${args.join(' ')}\n${r.stdout}\n${r.stderr}`).toBe(0);
  return r.stdout;
}
const fingerprint = async (file: string): Promise<string> => (JSON.parse(await ok(['key', 'show', file, '--json'])) as { fingerprint: string }).fingerprint;

async function taskLog(taskId: string): Promise<string> {
  const log = (await lab.api('GET', `/api/v1/tasks/${taskId}/log`)).json() as Array<{ message: string }>;
  return log.map((l) => l.message).join('\n');
}

/** Neither the key files' contents (their sealed key) nor the passphrase appear in `text`. */
function noSecrets(text: string): void {
  for (const name of ['a.key', 'b.key', 'p.key']) expect(text).not.toContain((JSON.parse(readFileSync(key(name), 'utf8')) as { key: string }).key);
  expect(text).not.toContain(PW);
}

function nothingRestored(newId: string): void {
  expect(existsSync(join(lab.guestsDir, `${newId}.conf`))).toBe(false);
  expect(existsSync(join(lab.storageDir, 'images', newId, `vm-${newId}-disk-0.raw`))).toBe(false);
}

beforeAll(async () => {
  savedEnv = process.env.COLDVAULT_KEY_PASSPHRASE;
  delete process.env.COLDVAULT_KEY_PASSPHRASE; // the server runs in this process: no passphrase from the environment
  lab = await makeServerLab();
  keys = join(lab.root, 'keys');
  mkdirSync(keys);
  lab.config.keyDirs = [keys];
  await ok(['key', 'create', key('a.key'), '--kdf', 'none']);
  await ok(['key', 'create', key('b.key'), '--kdf', 'none']);
  await ok(['key', 'create', key('p.key')], { COLDVAULT_KEY_PASSPHRASE: PW });
  writeFileSync(key('p.pw'), `${PW}\n`, { mode: 0o600 });
  writeFileSync(key('wrong.pw'), 'not the passphrase\n', { mode: 0o600 });
  writeFileSync(join(lab.root, 'outside.key'), readFileSync(key('a.key')), { mode: 0o600 });
  symlinkSync(join(lab.root, 'outside.key'), key('link.key')); // inside as written, outside when resolved
  [fpA, fpB, fpP] = await Promise.all([fingerprint(key('a.key')), fingerprint(key('b.key')), fingerprint(key('p.key'))]);
  await ok(['backup', '101', ...lab.flags, '--snapshot', 'off', '--encrypt', key('a.key')]);
  await ok(['backup', '101', ...lab.flags, '--snapshot', 'off']);
  await ok(['backup', '101', ...lab.flags, '--snapshot', 'off', '--encrypt', key('p.key'), '--passphrase-file', key('p.pw')]);
});
afterAll(async () => {
  await lab?.close();
  if (savedEnv !== undefined) process.env.COLDVAULT_KEY_PASSPHRASE = savedEnv;
});

describe('restore of an encrypted version through the API', () => {
  it('without keyFile: 400 KEY_REQUIRED naming the key and the keyFile field; no task, nothing restored', async () => {
    const versions = (await lab.api('GET', '/api/v1/backups?guest=101')).json() as Array<{
      version: number;
      encrypted: boolean;
      keyFingerprint: string | null;
    }>;
    expect(versions.map((v) => [v.version, v.encrypted, v.keyFingerprint]).sort()).toEqual([
      [1, true, fpA],
      [2, false, null],
      [3, true, fpP],
    ]);
    const before = (await lab.api('GET', '/api/v1/tasks')).json() as unknown[];
    const res = await restore({});
    expect([res.statusCode, errorCode(res)], res.body).toEqual([400, 'KEY_REQUIRED']);
    expect(res.json().error.message).toBe(
      `version 1 of guest 101 is encrypted with key ${fpA}: give its key file (keyFile: a key file inside the config’s keyDirs)`,
    );
    expect((await lab.api('GET', '/api/v1/tasks')).json()).toHaveLength(before.length);
    nothingRestored('201');
  });

  it('a key or passphrase file outside keyDirs: 400 PATH_NOT_ALLOWED naming the field; also through a symlink', async () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ keyFile: join(lab.root, 'outside.key') }, /^keyFile '.*outside\.key' is not inside the key folders \(.*keys; config key keyDirs\)$/],
      [{ keyFile: `${keys}/../outside.key` }, /^keyFile '.*' must be an absolute path without '\.\.'$/],
      [{ keyFile: 'keys/a.key' }, /^keyFile 'keys\/a\.key' must be an absolute path/],
      [{ keyFile: key('link.key') }, /^keyFile '.*link\.key' leads out of the key folders .* through a symlink$/],
      [{ keyFile: key('a.key'), passphraseFile: '/etc/passwd' }, /^passphraseFile '\/etc\/passwd' is not inside the key folders/],
    ];
    for (const [fields, message] of cases) {
      const res = await restore(fields);
      expect([res.statusCode, errorCode(res)], JSON.stringify(fields)).toEqual([400, 'PATH_NOT_ALLOWED']);
      expect(res.json().error.message).toMatch(message);
      noSecrets(res.body);
    }
    nothingRestored('201');
  });

  it('another key: 400 KEY_WRONG naming both fingerprints; nothing restored', async () => {
    const res = await restore({ keyFile: key('b.key') });
    expect([res.statusCode, errorCode(res)], res.body).toEqual([400, 'KEY_WRONG']);
    expect(res.json().error.message).toBe(`version 1 of guest 101 is encrypted with key ${fpA}, but the key given is ${fpB}`);
    nothingRestored('201');
  });

  it('key material or unknown fields in the body: 400 by schema; a passphraseFile alone: 400', async () => {
    for (const [extra, field] of [
      [{ key: 'AAAA' }, 'key'],
      [{ keyFile: key('a.key'), passphrase: PW }, 'passphrase'],
      [{ keyFile: key('a.key'), keyfile: key('a.key') }, 'keyfile'],
    ] as const) {
      const res = await restore(extra);
      expect([res.statusCode, errorCode(res)], JSON.stringify(extra)).toEqual([400, 'INVALID_REQUEST']);
      expect(res.json().error.message).toBe(`body: unknown field '${field}' (no additional properties allowed)`);
    }
    const empty = await restore({ keyFile: '' });
    expect([empty.statusCode, errorCode(empty)]).toEqual([400, 'INVALID_REQUEST']);
    const alone = await restore({ passphraseFile: key('p.pw') });
    expect([alone.statusCode, errorCode(alone)]).toEqual([400, 'INVALID_REQUEST']);
    expect(alone.json().error.message).toBe('restore: passphraseFile goes with keyFile (the key file it opens)');
    nothingRestored('201');
  });

  it('the right key file inside keyDirs: restored byte-identical as a task; no log line or answer holds the key', async () => {
    const res = await restore({ keyFile: key('a.key') });
    expect(res.statusCode, res.body).toBe(202);
    const taskId = res.json().taskId as string;
    const task = await waitTask(lab, taskId);
    const log = await taskLog(taskId);
    expect(task.status, log).toBe('ok');
    expect(log).toContain(`version is encrypted with key ${fpA}: manifest authenticated`);
    expect(log.trim().split('\n').at(-1)).toBe('restore successful');
    expect(sha256File(imagePath(lab, '201', 'vm-201-disk-0.raw'))).toBe(sha256File(source()));
    expect(readFileSync(join(lab.guestsDir, '201.conf'), 'utf8')).toContain('scsi0: local:201/vm-201-disk-0.raw');
    noSecrets(`${res.body}${JSON.stringify(task)}${log}`);
  });

  it('a key with a passphrase: opened with passphraseFile; without one or with a wrong one 400 KEY_PASSPHRASE_WRONG', async () => {
    const none = await restore({ version: 3, keyFile: key('p.key') }, '203');
    expect([none.statusCode, errorCode(none)], none.body).toEqual([400, 'KEY_PASSPHRASE_WRONG']);
    expect(none.json().error.message).toMatch(
      /^restore: key file '.*p\.key' could not be opened, so no restore was started: the key file has a passphrase and the request none: give passphraseFile/,
    );
    const wrong = await restore({ version: 3, keyFile: key('p.key'), passphraseFile: key('wrong.pw') }, '203');
    expect([wrong.statusCode, errorCode(wrong)], wrong.body).toEqual([400, 'KEY_PASSPHRASE_WRONG']);
    noSecrets(`${none.body}${wrong.body}`);
    nothingRestored('203');

    const res = await restore({ version: 3, keyFile: key('p.key'), passphraseFile: key('p.pw') }, '203');
    expect(res.statusCode, res.body).toBe(202);
    const task = await waitTask(lab, res.json().taskId);
    expect(task.status).toBe('ok');
    expect(sha256File(imagePath(lab, '203', 'vm-203-disk-0.raw'))).toBe(sha256File(source()));
    noSecrets(`${JSON.stringify(task)}${await taskLog(res.json().taskId)}`);
  });

  it('a plain version restores as before; a key file given with it is opened and not needed', async () => {
    const res = await restore({ version: 2, keyFile: key('a.key') }, '202');
    expect(res.statusCode, res.body).toBe(202);
    expect((await waitTask(lab, res.json().taskId)).status).toBe('ok');
    expect(sha256File(imagePath(lab, '202', 'vm-202-disk-0.raw'))).toBe(sha256File(source()));
  });
});

describe('verify of encrypted versions through the API', () => {
  const verify = async (extra: Record<string, unknown>) => {
    const res = await lab.api('POST', '/api/v1/verify', { store: 'main', ...extra });
    expect(res.statusCode, res.body).toBe(202);
    const taskId = res.json().taskId as string;
    const task = (await waitTask(lab, taskId)) as { status: string; result: { ok: boolean; contentUnchecked: unknown[]; versions: unknown[] } };
    return { task, log: await taskLog(taskId) };
  };

  it("without keyFile the result and the log say which versions' content was not checked; with keyFile that key's versions are checked fully", async () => {
    const without = await verify({});
    expect(without.task.status, without.log).toBe('ok');
    expect(without.task.result.contentUnchecked).toEqual([
      { guestId: '101', version: 1, fingerprint: fpA },
      { guestId: '101', version: 3, fingerprint: fpP },
    ]);
    expect(without.log).toContain(`2 encrypted version(s) checked without their key (${fpA}, ${fpP})`);

    const withA = await verify({ guest: '101', keyFile: key('a.key') });
    expect(withA.task.status, withA.log).toBe('ok');
    expect(withA.task.result.contentUnchecked).toEqual([{ guestId: '101', version: 3, fingerprint: fpP }]);
    expect(withA.log).toContain(`1 encrypted version(s) checked without their key (${fpP})`);
    const one = await verify({ guest: '101', version: 3, keyFile: key('p.key'), passphraseFile: key('p.pw') });
    expect(one.task.status, one.log).toBe('ok');
    expect(one.task.result.contentUnchecked).toEqual([]);
    expect(one.log).not.toContain('checked without their key');
    noSecrets(`${JSON.stringify(withA.task)}${withA.log}${JSON.stringify(one.task)}${one.log}`);
  });

  it('refuses at once: a key file outside keyDirs, a wrong passphrase, key material', async () => {
    const outside = await lab.api('POST', '/api/v1/verify', { store: 'main', keyFile: join(lab.root, 'outside.key') });
    expect([outside.statusCode, errorCode(outside)]).toEqual([400, 'PATH_NOT_ALLOWED']);
    expect(outside.json().error.message).toMatch(/^keyFile '.*outside\.key' is not inside the key folders/);
    const wrong = await lab.api('POST', '/api/v1/verify', { store: 'main', keyFile: key('p.key'), passphraseFile: key('wrong.pw') });
    expect([wrong.statusCode, errorCode(wrong)]).toEqual([400, 'KEY_PASSPHRASE_WRONG']);
    expect(wrong.json().error.message).toMatch(/^verify: key file '.*p\.key' could not be opened, so no verify was started: /);
    const material = await lab.api('POST', '/api/v1/verify', { store: 'main', key: 'AAAA' });
    expect([material.statusCode, errorCode(material)]).toEqual([400, 'INVALID_REQUEST']);
    noSecrets(`${outside.body}${wrong.body}${material.body}`);
  });

  it('the OpenAPI document describes keyFile and passphraseFile as paths on restore and verify', async () => {
    const doc = (await lab.api('GET', '/api/v1/openapi.json')).json();
    for (const path of ['/api/v1/restore', '/api/v1/verify']) {
      const schema = doc.paths[path].post.requestBody.content['application/json'].schema;
      expect(schema.additionalProperties, path).toBe(false);
      expect(schema.properties.keyFile, path).toMatchObject({ type: 'string' });
      expect(schema.properties.passphraseFile, path).toMatchObject({ type: 'string' });
      expect(schema.required, path).not.toContain('keyFile');
    }
  });
});

describe('restore of an encrypted version from another node (remote) through the API', () => {
  let node1: ServeProcess | undefined;
  beforeAll(async () => {
    // node1 serves this lab's datastore folder as its `main`; a backup token of it is this node's way in
    const config = writeServeConfig(lab, 'node1', 'node1-state');
    const token = await makeToken({ path: config, stores: { main: lab.storeDir, other: lab.storeDir } }, 'testnode', 'backup', 'main');
    node1 = await startServe(['--config', config, '--listen', '127.0.0.1:0']);
    lab.config.cluster = { nodes: [{ name: 'node1', url: node1.url, token }] };
  });
  afterAll(async () => {
    await node1?.stop();
  });

  it('without keyFile 400 KEY_REQUIRED, with another key 400 KEY_WRONG; with the key byte-identical', async () => {
    const body = { remote: 'node1', fromPath: 'main', id: '101', version: 1, newId: '301' };
    const refused = await lab.api('POST', '/api/v1/restore', body);
    expect([refused.statusCode, errorCode(refused)], refused.body).toEqual([400, 'KEY_REQUIRED']);
    expect(refused.json().error.message).toContain(`encrypted with key ${fpA}`);
    const wrong = await lab.api('POST', '/api/v1/restore', { ...body, keyFile: key('b.key') });
    expect([wrong.statusCode, errorCode(wrong)], wrong.body).toEqual([400, 'KEY_WRONG']);
    nothingRestored('301');
    const res = await lab.api('POST', '/api/v1/restore', { ...body, keyFile: key('a.key') });
    expect(res.statusCode, res.body).toBe(202);
    const task = await waitTask(lab, res.json().taskId);
    const log = await taskLog(res.json().taskId);
    expect(task.status, log).toBe('ok');
    expect(log).toContain('node1');
    expect(sha256File(imagePath(lab, '301', 'vm-301-disk-0.raw'))).toBe(sha256File(source()));
    noSecrets(`${JSON.stringify(task)}${log}${node1?.out() ?? ''}`);
  });
});
