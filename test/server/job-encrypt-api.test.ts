/**
 * A job's `encrypt` through the API (issue 13): paths only, each inside the config's keyDirs (as
 * written and with symlinks resolved) or exactly what the job already has; anything else is 400
 * PATH_NOT_ALLOWED naming the field and the key folders; key material in the body is 400 by schema;
 * no answer holds a file's contents. PUT without `encrypt` removes it (PUT replaces the job).
 */
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCode, makeServerLab, type ServerLab } from './helpers-server.js';

let lab: ServerLab;
let keys: string;
const MARKER = 'KEY-FILE-CONTENT-MARKER-7d1f';
const base = { id: 'enc', store: 'main', vmid: ['101'] };

beforeAll(async () => {
  lab = await makeServerLab();
  keys = join(lab.root, 'keys');
  mkdirSync(keys);
  lab.config.keyDirs = [keys, join(lab.root, 'keys-link')];
  symlinkSync(keys, join(lab.root, 'keys-link')); // a key folder that is a symlink itself
  writeFileSync(join(keys, 'a.key'), `{"not really a key": "${MARKER}"}\n`, { mode: 0o600 });
  writeFileSync(join(keys, 'a.pw'), `${MARKER}\n`, { mode: 0o600 });
  writeFileSync(join(lab.root, 'outside.key'), `${MARKER}\n`);
  symlinkSync(join(lab.root, 'outside.key'), join(keys, 'evil.key')); // a file leading out
  symlinkSync(lab.root, join(keys, 'sub')); // a folder leading out
});
afterAll(async () => lab?.close());

describe('job encrypt through the API', () => {
  it('refuses key and passphrase files outside keyDirs with 400 PATH_NOT_ALLOWED naming the field and the folders', async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ keyFile: '/etc/shadow' }, 'encrypt.keyFile'],
      [{ keyFile: join(lab.root, 'outside.key') }, 'encrypt.keyFile'],
      [{ keyFile: `${keys}/../outside.key` }, 'encrypt.keyFile'],
      [{ keyFile: 'keys/a.key' }, 'encrypt.keyFile'],
      [{ keyFile: `${keys}-other/a.key` }, 'encrypt.keyFile'],
      [{ keyFile: join(keys, 'evil.key') }, 'encrypt.keyFile'],
      [{ keyFile: join(keys, 'sub', 'outside.key') }, 'encrypt.keyFile'],
      [{ keyFile: join(keys, 'sub', 'not-there-yet.key') }, 'encrypt.keyFile'],
      [{ keyFile: join(keys, 'a.key'), passphraseFile: '/etc/passwd' }, 'encrypt.passphraseFile'],
    ];
    for (const [encrypt, field] of cases) {
      const res = await lab.api('POST', '/api/v1/jobs', { ...base, encrypt });
      expect([res.statusCode, errorCode(res)], JSON.stringify(encrypt)).toEqual([400, 'PATH_NOT_ALLOWED']);
      const message = res.json().error.message as string;
      expect(message.startsWith(`${field} '`), message).toBe(true);
      if (!message.includes('absolute path')) expect(message).toContain(`the key folders (${keys}, ${join(lab.root, 'keys-link')}; config key keyDirs)`);
      expect(res.body).not.toContain(MARKER);
    }
    expect((await lab.api('GET', '/api/v1/jobs')).json()).toEqual([]);
  });

  it('refuses key material and unknown subfields by schema, and encrypt on a sync job', async () => {
    for (const encrypt of [{ keyFile: join(keys, 'a.key'), passphrase: 'secret' }, { key: 'AAAA' }, { keyFile: '' }, 'a.key']) {
      const res = await lab.api('POST', '/api/v1/jobs', { ...base, encrypt });
      expect([res.statusCode, errorCode(res)], JSON.stringify(encrypt)).toEqual([400, 'INVALID_REQUEST']);
    }
    const sync = await lab.api('POST', '/api/v1/jobs', { ...base, kind: 'sync', from: 'node1:main', encrypt: { keyFile: join(keys, 'a.key') } });
    expect([sync.statusCode, errorCode(sync)]).toEqual([400, 'JOB_INVALID']);
    expect(sync.json().error.message).toMatch(/encrypt is for backup jobs/);
  });

  it('stores paths inside keyDirs (also not yet existing, also through a symlinked key folder); answers only the paths', async () => {
    const encrypt = { keyFile: join(keys, 'a.key'), passphraseFile: join(keys, 'a.pw') };
    const created = await lab.api('POST', '/api/v1/jobs', { ...base, encrypt });
    expect(created.statusCode, created.body).toBe(201);
    expect(created.json().encrypt).toEqual(encrypt);
    for (const res of [created, await lab.api('GET', '/api/v1/jobs/enc'), await lab.api('GET', '/api/v1/jobs')]) {
      expect(res.body).not.toContain(MARKER);
      const job = (Array.isArray(res.json()) ? res.json()[0] : res.json()) as { encrypt: unknown };
      expect(job.encrypt).toEqual(encrypt);
    }
    expect(lab.state.jobs.get('enc').encrypt).toEqual(encrypt);

    for (const keyFile of [join(keys, 'later.key'), join(keys, 'new', 'deeper.key'), join(lab.root, 'keys-link', 'a.key'), `${keys}//a.key`]) {
      const res = await lab.api('PUT', '/api/v1/jobs/enc', { ...base, encrypt: { keyFile } });
      expect(res.statusCode, `${keyFile}: ${res.body}`).toBe(200);
      expect(res.json().encrypt.keyFile).toBe(keyFile.replace('//', '/'));
      expect(res.json().encrypt.passphraseFile).toBeUndefined(); // PUT replaces
    }
  });

  it('keeps a path outside keyDirs that the job already has (set with the CLI), refuses changing it to another; PUT without encrypt removes it', async () => {
    const outside = { keyFile: '/root/coldvault/node.key', passphraseFile: '/root/coldvault/node.pw' };
    lab.state.jobs.add({ id: 'cli', store: lab.storeDir, vmid: ['101'], encrypt: outside });
    const same = await lab.api('PUT', '/api/v1/jobs/cli', { store: 'main', vmid: ['101'], keep: 2, encrypt: outside });
    expect(same.statusCode, same.body).toBe(200);
    expect(same.json()).toMatchObject({ keep: 2, encrypt: outside });
    const other = await lab.api('PUT', '/api/v1/jobs/cli', { store: 'main', vmid: ['101'], encrypt: { ...outside, keyFile: '/root/coldvault/other.key' } });
    expect([other.statusCode, errorCode(other)]).toEqual([400, 'PATH_NOT_ALLOWED']);
    expect(other.json().error.message).toMatch(/^encrypt\.keyFile '\/root\/coldvault\/other\.key' is not inside the key folders/);
    const another = await lab.api('POST', '/api/v1/jobs', { id: 'cli2', store: 'main', vmid: ['101'], encrypt: outside }); // another job's path is not this job's
    expect([another.statusCode, errorCode(another)]).toEqual([400, 'PATH_NOT_ALLOWED']);
    expect(lab.state.jobs.get('cli').encrypt).toEqual(outside);

    const removed = await lab.api('PUT', '/api/v1/jobs/cli', { store: 'main', vmid: ['101'] });
    expect(removed.statusCode, removed.body).toBe(200);
    expect(removed.json().encrypt).toBeUndefined();
    expect(lab.state.jobs.get('cli').encrypt).toBeUndefined();
  });

  it('the OpenAPI document describes encrypt as paths, with no other field', async () => {
    const doc = (await lab.api('GET', '/api/v1/openapi.json')).json();
    const schema = doc.paths['/api/v1/jobs'].post.requestBody.content['application/json'].schema.properties.encrypt;
    expect(schema).toMatchObject({ type: 'object', additionalProperties: false, required: ['keyFile'] });
    expect(Object.keys(schema.properties).sort()).toEqual(['keyFile', 'passphraseFile']);
    expect(doc.paths['/api/v1/jobs/{id}'].get.responses['200'].content['application/json'].schema.properties.encrypt).toBeDefined();
  });
});
