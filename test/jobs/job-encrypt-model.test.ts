/**
 * A job's `encrypt` (issue 13) in the job model: `{keyFile, passphraseFile?}`, absolute paths only,
 * no other subfield (never a key or a passphrase), not on a sync job; errors name the field.
 */
import { describe, expect, it } from 'vitest';
import { validateJob } from '../../src/jobs/index.js';

const base = { id: 'j', store: '/s', vmid: ['101'] };

describe('job encrypt setting', () => {
  it('takes a key file and an optional passphrase file, in stop and cluster mode; none without it', () => {
    expect(validateJob({ ...base, encrypt: { keyFile: '/etc/coldvault/keys/a.key' } }).encrypt).toEqual({ keyFile: '/etc/coldvault/keys/a.key' });
    expect(validateJob({ ...base, encrypt: { keyFile: '/k/a.key', passphraseFile: '/k/a.pw' } }).encrypt).toEqual({
      keyFile: '/k/a.key',
      passphraseFile: '/k/a.pw',
    });
    expect(validateJob({ ...base, encrypt: { keyFile: '/k/a.key', passphraseFile: '' } }).encrypt).toEqual({ keyFile: '/k/a.key' });
    expect(validateJob({ ...base, mode: 'cluster', store: 'main', encrypt: { keyFile: '/k/a.key' } }).encrypt).toEqual({ keyFile: '/k/a.key' });
    expect(validateJob(base).encrypt).toBeUndefined();
    expect(validateJob({ ...base, encrypt: null }).encrypt).toBeUndefined();
    expect(JSON.parse(JSON.stringify(validateJob(base)))).not.toHaveProperty('encrypt');
  });

  it('refuses relative paths, unknown subfields, a missing key file and a sync job with encrypt, naming the field', () => {
    expect(() => validateJob({ ...base, encrypt: { keyFile: 'keys/a.key' } })).toThrow(/^encrypt\.keyFile: 'keys\/a\.key' must be an absolute path$/);
    expect(() => validateJob({ ...base, encrypt: { keyFile: '/k/a.key', passphraseFile: 'pw.txt' } })).toThrow(
      /^encrypt\.passphraseFile: 'pw\.txt' must be an absolute path$/,
    );
    expect(() => validateJob({ ...base, encrypt: { keyFile: '/k/a.key', passphrase: 'secret' } })).toThrow(
      /^encrypt: unknown field\(s\) passphrase \(only keyFile and passphraseFile/,
    );
    expect(() => validateJob({ ...base, encrypt: { key: 'AAAA' } })).toThrow(/encrypt: unknown field\(s\) key/);
    expect(() => validateJob({ ...base, encrypt: {} })).toThrow(/^encrypt\.keyFile is required/);
    expect(() => validateJob({ ...base, encrypt: '/k/a.key' })).toThrow(/^encrypt must be an object \{keyFile, passphraseFile\?\}/);
    expect(() => validateJob({ ...base, encrypt: { keyFile: 42 } })).toThrow(/^encrypt\.keyFile must be a string/);
    expect(() => validateJob({ ...base, kind: 'sync', from: 'node1:main', encrypt: { keyFile: '/k/a.key' } })).toThrow(
      /^job 'j': encrypt is for backup jobs; a sync job copies versions as they are .* and needs no key$/,
    );
    expect(validateJob({ ...base, kind: 'sync', from: 'node1:main' }).kind).toBe('sync');
  });
});
