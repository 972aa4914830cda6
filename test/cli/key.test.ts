/**
 * `coldvault key` (issue 13, keys): key files made, shown, re-protected, printed on paper and typed
 * back, through the built CLI on real files. Asserts what an admin relies on: the file is private
 * (0600) and never replaced by a new one; the wrong passphrase, a missing file, an edited file, a
 * crafted KDF and a mistyped paper key each fail with a clear message and exit code 1, changing
 * nothing; a passphrase change keeps the key (same fingerprint, same paper key); a paper key gives
 * the same key back; passphrases never come from an argument.
 */
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, makeLab, type Lab } from '../helpers/fixtures.js';

let lab: Lab;
const PW = { COLDVAULT_KEY_PASSPHRASE: 'correct horse battery staple' };
const at = (name: string): string => join(lab.root, name);
/** a CLI run with no passphrase in the environment unless given (the test runner's own is ignored) */
const key = (args: string[], env: Record<string, string> = {}) =>
  cli(['key', ...args], { env: { COLDVAULT_KEY_PASSPHRASE: '', COLDVAULT_KEY_NEW_PASSPHRASE: '', ...env } });
const fingerprintOf = async (file: string, env: Record<string, string> = {}): Promise<string> => {
  const r = await key(['show', file, '--json'], env);
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { fingerprint: string }).fingerprint;
};

beforeAll(() => {
  lab = makeLab('cv-key-');
});
afterAll(() => lab?.cleanup());

describe('key create and show', () => {
  it('makes a private key file with a fingerprint; show needs no passphrase; a new key never replaces a file', async () => {
    const made = await key(['create', at('a.key')], PW);
    expect(made.code, made.stderr).toBe(0);
    expect(made.stdout).toMatch(/fingerprint {2}([0-9a-f]{2}:){15}[0-9a-f]{2}/);
    expect(statSync(at('a.key')).mode & 0o777).toBe(0o600);
    const file = JSON.parse(readFileSync(at('a.key'), 'utf8')) as { kdf: { name: string; N: number }; key: string };
    expect(file.kdf).toMatchObject({ name: 'scrypt', N: 2 ** 17 });
    const fp = await fingerprintOf(at('a.key'));
    expect(made.stdout).toContain(fp);

    const before = readFileSync(at('a.key'));
    const again = await key(['create', at('a.key')], PW);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`'${at('a.key')}' exists: a new key file never replaces a file`);
    expect(readFileSync(at('a.key')).equals(before)).toBe(true);
    expect(await fingerprintOf(at('a.key'))).toBe(fp);
  });

  it('two keys differ; argon2id and --kdf none (no passphrase) work; a passphrase is never an argument', async () => {
    expect((await key(['create', at('b.key'), '--kdf', 'argon2id'], PW)).code).toBe(0);
    expect((await key(['create', at('c.key'), '--kdf', 'none'])).code).toBe(0);
    expect(await fingerprintOf(at('b.key'))).not.toBe(await fingerprintOf(at('a.key')));
    expect((await key(['paperkey', at('c.key')])).code).toBe(0); // no passphrase asked
    expect((await key(['paperkey', at('b.key')], PW)).code).toBe(0);
    const arg = await key(['create', at('d.key'), '--passphrase', 'secret']);
    expect(arg.code).toBe(2);
    expect(arg.stderr).toMatch(/Unknown option '--passphrase'/);
    const kdf = await key(['create', at('d.key'), '--kdf', 'md5'], PW);
    expect(kdf.stderr).toContain("--kdf 'md5': expected scrypt (the default), argon2id or none");
  });
});

describe('opening a key file', () => {
  it('wrong passphrase, no passphrase and no terminal, a missing file: exit 1 with a message naming what is wrong', async () => {
    const fp = await fingerprintOf(at('a.key'));
    const wrong = await key(['paperkey', at('a.key')], { COLDVAULT_KEY_PASSPHRASE: 'wrong' });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain(`the passphrase does not open key file '${at('a.key')}' (key ${fp})`);
    expect(wrong.stdout).toBe('');
    const none = await key(['paperkey', at('a.key')]);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('a passphrase is needed: give --passphrase-file FILE or set COLDVAULT_KEY_PASSPHRASE');
    const missing = await key(['show', at('nope.key')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`cannot read key file '${at('nope.key')}'`);
    writeFileSync(at('pw.txt'), `${PW.COLDVAULT_KEY_PASSPHRASE}\nignored second line\n`);
    expect((await key(['paperkey', at('a.key'), '--passphrase-file', at('pw.txt')])).code).toBe(0);
  });

  it('an edited field fails the key file authentication; a crafted KDF is refused before any work', async () => {
    const text = readFileSync(at('a.key'), 'utf8');
    const file = JSON.parse(text) as Record<string, unknown> & { kdf: Record<string, unknown> };
    writeFileSync(at('edited.key'), JSON.stringify({ ...file, created: '2020-01-01T00:00:00.000Z' }));
    const edited = await key(['paperkey', at('edited.key')], PW);
    expect(edited.code).toBe(1);
    expect(edited.stderr).toContain('or the file was edited (its fields are authenticated)');
    writeFileSync(at('huge.key'), JSON.stringify({ ...file, kdf: { ...file.kdf, N: 2 ** 30 } }));
    const huge = await key(['paperkey', at('huge.key')], PW);
    expect(huge.code).toBe(1);
    expect(huge.stderr).toContain('kdf N 1073741824 is out of bounds');
    writeFileSync(at('junk.key'), 'not json');
    expect((await key(['show', at('junk.key')])).stderr).toContain(`key file '${at('junk.key')}' is not JSON`);
  });
});

describe('passphrase change and paper key', () => {
  it('a new passphrase opens the same key; the old one no longer does', async () => {
    const fp = await fingerprintOf(at('a.key'));
    const paperBefore = (await key(['paperkey', at('a.key')], PW)).stdout;
    writeFileSync(at('new.txt'), 'a whole new passphrase\n');
    const changed = await key(['change-passphrase', at('a.key'), '--new-passphrase-file', at('new.txt')], PW);
    expect(changed.code, changed.stderr).toBe(0);
    expect(statSync(at('a.key')).mode & 0o777).toBe(0o600);
    expect(await fingerprintOf(at('a.key'))).toBe(fp);
    expect((await key(['paperkey', at('a.key')], PW)).code).toBe(1);
    const paperAfter = await key(['paperkey', at('a.key'), '--passphrase-file', at('new.txt')]);
    expect(paperAfter.stdout).toBe(paperBefore);
    const noNew = await key(['change-passphrase', at('a.key'), '--passphrase-file', at('new.txt')], PW);
    expect(noNew.code).toBe(1); // COLDVAULT_KEY_PASSPHRASE is the old one here, never taken as the new one
    expect(noNew.stderr).toContain('give --new-passphrase-file FILE or set COLDVAULT_KEY_NEW_PASSPHRASE');
  });

  it('a paper key typed back gives the same key under a new passphrase; any mistyped digit is found on its line', async () => {
    const paper = (await key(['paperkey', at('b.key')], PW)).stdout;
    writeFileSync(at('paper.txt'), paper);
    const imported = await key(['import', at('paper.txt'), at('b2.key')], { COLDVAULT_KEY_NEW_PASSPHRASE: 'paper pw' });
    expect(imported.code, imported.stderr).toBe(0);
    expect(await fingerprintOf(at('b2.key'))).toBe(await fingerprintOf(at('b.key')));
    expect((await key(['paperkey', at('b2.key')], { COLDVAULT_KEY_PASSPHRASE: 'paper pw' })).stdout).toBe(paper);

    const { parsePaperKey } = await import('../../dist/format/index.js');
    const lines = paper.split('\n');
    for (let n = 1; n <= 4; n++) {
      const row = lines.findIndex((l) => l.startsWith(`${n}: `));
      const line = lines[row] as string;
      for (let col = 3; col < line.length; col++) {
        const ch = line[col] as string;
        if (!/[0-9a-f]/.test(ch)) continue;
        const typo = [...lines];
        typo[row] = `${line.slice(0, col)}${ch === '0' ? '1' : '0'}${line.slice(col + 1)}`;
        expect(() => parsePaperKey(typo.join('\n'), 'typed')).toThrow(`line ${n} does not match its check digits`);
      }
    }
    writeFileSync(at('short.txt'), paper.replace(/^3: .*$/m, ''));
    const short = await key(['import', at('short.txt'), at('b3.key')], { COLDVAULT_KEY_NEW_PASSPHRASE: 'x' });
    expect(short.code).toBe(1);
    expect(short.stderr).toContain('line 3 of the key is missing');
  });
});
