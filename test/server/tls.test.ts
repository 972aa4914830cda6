/**
 * serve's own TLS certificate, for real: the built CLI (`coldvault serve`, `coldvault cert`), real
 * openssl, real TLS on 127.0.0.1 read by a node:tls client. The pair is made once with private modes,
 * reused (same fingerprint) at every start, never replaced when damaged; `cert fingerprint` is what a
 * client sees. Where serve speaks HTTPS (tlsChoice) is checked as a unit: listening beyond loopback
 * for real is for the network-namespace harness (tests here stay on loopback).
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:tls';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, makeLab, type Lab } from '../helpers/fixtures.js';
import { startServe, type ServeProcess } from '../helpers/serve-process.js';
import { serverTls, tlsChoice } from '../../dist/server/index.js';

let lab: Lab;
const running: ServeProcess[] = [];

beforeAll(() => {
  lab = makeLab('cv-tls-');
});
afterAll(async () => {
  await Promise.all(running.map((s) => s.stop()));
  lab?.cleanup();
});

/** A config file of node `name` with its own state dir (and `extra` keys); returns its path. */
function configFor(name: string, extra: Record<string, unknown> = {}): { path: string; stateDir: string } {
  const stateDir = join(lab.root, `state-${name}`);
  const path = join(lab.root, `${name}.json`);
  const config = { node: name, stateDir, guestsDir: lab.guestsDir, storages: { local: lab.storageDir }, hypervisor: { driver: 'none' }, ...extra };
  writeFileSync(path, JSON.stringify(config));
  return { path, stateDir };
}

async function serve(configPath: string): Promise<ServeProcess> {
  const s = await startServe(['--config', configPath, '--listen', '127.0.0.1:0']);
  running.push(s);
  return s;
}

/** The SHA-256 fingerprint of the certificate a TLS client is shown at `url`. */
function seenFingerprint(url: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port), rejectUnauthorized: false }, () => {
      resolve(socket.getPeerCertificate().fingerprint256);
      socket.end();
    });
    socket.on('error', reject);
  });
}

async function fingerprintCli(configPath: string): Promise<{ fingerprint: string; created: boolean; cert: string; key: string }> {
  const r = await cli(['cert', 'fingerprint', '--json', '--config', configPath]);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as { fingerprint: string; created: boolean; cert: string; key: string };
}

const mode = (path: string): number => statSync(path).mode & 0o777;
const FINGERPRINT = /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/;

describe('where serve speaks HTTPS (tlsChoice)', () => {
  it('plain HTTP only on loopback; beyond it the configured files, else its own certificate, unless allowInsecureListen', () => {
    const files = { cert: '/c.pem', key: '/k.pem' };
    expect(tlsChoice('127.0.0.1', {})).toBe('plain');
    expect(tlsChoice('::1', {})).toBe('plain');
    expect(tlsChoice('0.0.0.0', {})).toBe('generated');
    expect(tlsChoice('::', {})).toBe('generated');
    expect(tlsChoice('192.168.1.5', {})).toBe('generated');
    expect(tlsChoice('0.0.0.0', { allowInsecureListen: true })).toBe('plain');
    expect(tlsChoice('127.0.0.1', { tls: 'auto' })).toBe('generated');
    expect(tlsChoice('0.0.0.0', { tls: 'auto', allowInsecureListen: true })).toBe('generated');
    expect(tlsChoice('127.0.0.1', { tls: files })).toBe('configured');
    expect(tlsChoice('0.0.0.0', { tls: files })).toBe('configured');
  });

  it('plain HTTP on loopback makes no certificate', async () => {
    const stateDir = join(lab.root, 'state-plain');
    expect(await serverTls('127.0.0.1', { stateDir, node: 'plain' })).toBeUndefined();
    expect(existsSync(join(stateDir, 'tls'))).toBe(false);
  });

  it('a malformed tls setting is a clear config error', async () => {
    for (const tls of ['yes', { cert: '/c.pem' }, { cert: '/c.pem', key: '/k.pem', ca: '/x' }]) {
      const r = await cli(['cert', 'fingerprint', '--config', configFor('badtls', { tls }).path]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/'tls' must be \{"cert": "\/path\/cert.pem", "key": "\/path\/key.pem"\} or "auto"/);
    }
  });
});

describe("serve's self-signed certificate (built CLI, real openssl and TLS)", () => {
  it('the first start makes key and certificate (private modes, ECDSA P-256, CN and names of the node, 10 years); later starts reuse them', async () => {
    const { path, stateDir } = configFor('tlsnode', { tls: 'auto' });
    const first = await serve(path);
    expect(first.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(first.out()).toMatch(/TLS certificate \S+ \(made now\)/);
    const dir = join(stateDir, 'tls');
    expect(readdirSync(dir).sort()).toEqual(['cert.pem', 'key.pem']);
    expect(readdirSync(stateDir).filter((n) => n.startsWith('.tls'))).toEqual([]); // no temp folder left
    expect([mode(dir), mode(join(dir, 'key.pem')), mode(join(dir, 'cert.pem'))]).toEqual([0o700, 0o600, 0o600]);
    const cert = new X509Certificate(readFileSync(join(dir, 'cert.pem')));
    expect(cert.subject).toBe('CN=tlsnode');
    expect(cert.subjectAltName?.split(', ').sort()).toEqual(['DNS:localhost', 'DNS:tlsnode', 'IP Address:0:0:0:0:0:0:0:1', 'IP Address:127.0.0.1']);
    expect(cert.ca).toBe(false);
    expect(Date.parse(cert.validTo) - Date.parse(cert.validFrom)).toBe(3650 * 86_400_000);
    expect(createPrivateKey(readFileSync(join(dir, 'key.pem'))).asymmetricKeyDetails?.namedCurve).toBe('prime256v1');

    const seen = await seenFingerprint(first.url);
    expect(seen).toMatch(FINGERPRINT);
    expect(seen).toBe(cert.fingerprint256);
    expect(first.fingerprint).toBe(seen);
    const printed = await fingerprintCli(path);
    expect(printed).toMatchObject({ fingerprint: seen, created: false, cert: join(dir, 'cert.pem') });
    const human = await cli(['cert', 'fingerprint', '--config', path]);
    expect(human.stdout).toBe(`${seen}\n`);
    expect(await first.stop()).toBe(0);

    const keyBefore = statSync(join(dir, 'key.pem'));
    const second = await serve(path);
    expect(second.out()).toMatch(/TLS certificate \S+ \(generated\)/);
    expect(await seenFingerprint(second.url)).toBe(seen);
    const keyAfter = statSync(join(dir, 'key.pem'));
    expect([keyAfter.ino, keyAfter.mtimeMs]).toEqual([keyBefore.ino, keyBefore.mtimeMs]);
    expect(await second.stop()).toBe(0);
  });

  it('`cert fingerprint` makes the certificate when there is none, as serve would; two at once agree on one', async () => {
    const { path, stateDir } = configFor('certfirst');
    const [a, b] = await Promise.all([fingerprintCli(path), fingerprintCli(path)]);
    expect(a.fingerprint).toMatch(FINGERPRINT);
    expect(b.fingerprint).toBe(a.fingerprint);
    expect([a.created, b.created].filter(Boolean)).toHaveLength(1);
    expect(new X509Certificate(readFileSync(join(stateDir, 'tls', 'cert.pem'))).fingerprint256).toBe(a.fingerprint);
    expect(readdirSync(stateDir).filter((n) => n.startsWith('.tls'))).toEqual([]);
    expect(await fingerprintCli(path)).toMatchObject({ fingerprint: a.fingerprint, created: false });
    const show = await cli(['cert', 'show', '--config', path]);
    expect(show.stdout).toMatch(/subject +CN=certfirst\n.*valid +\S+ to \S+\nfingerprint +([0-9A-F:]{95}) \(SHA-256\)/s);
  });

  it('a node name that is no host name cannot change the certificate: its CN is cleaned, it gets no DNS name', async () => {
    const made = await fingerprintCli(configFor('odd', { node: 'evil\n[ext]\nbasicConstraints = CA:TRUE' }).path);
    const cert = new X509Certificate(readFileSync(made.cert));
    expect(cert.subject).toBe('CN=evil__ext__basicConstraints___CA_TRUE');
    expect(cert.ca).toBe(false);
    expect(cert.subjectAltName?.split(', ').sort()).toEqual(['DNS:localhost', 'IP Address:0:0:0:0:0:0:0:1', 'IP Address:127.0.0.1']);
  });

  it('a configured tls pair is the one serve uses and `cert fingerprint` prints', async () => {
    const made = await fingerprintCli(configFor('source').path);
    const files = { cert: join(lab.root, 'own-cert.pem'), key: join(lab.root, 'own-key.pem') };
    copyFileSync(made.cert, files.cert);
    copyFileSync(made.key, files.key);
    const { path, stateDir } = configFor('configured', { tls: files });
    expect(await fingerprintCli(path)).toMatchObject({ fingerprint: made.fingerprint, cert: files.cert, created: false });
    expect(existsSync(join(stateDir, 'tls'))).toBe(false);
  });

  it('a damaged or mismatched pair is a clear error naming the files, and is never replaced', async () => {
    const { path, stateDir } = configFor('damaged', { tls: 'auto' });
    await fingerprintCli(path);
    const key = join(stateDir, 'tls', 'key.pem');
    writeFileSync(key, 'not a key\n');
    const r = await cli(['serve', '--config', path, '--listen', '127.0.0.1:0']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`the TLS certificate '${join(stateDir, 'tls', 'cert.pem')}' and key '${key}' cannot be used: the key does not parse`);
    expect(r.stderr).toMatch(/other nodes pin this certificate's fingerprint.*remove the folder/);
    expect(readFileSync(key, 'utf8')).toBe('not a key\n');

    const other = await fingerprintCli(configFor('other').path);
    copyFileSync(other.key, key);
    const mismatch = await cli(['cert', 'fingerprint', '--config', path]);
    expect(mismatch.code).toBe(1);
    expect(mismatch.stderr).toMatch(/cannot be used: the key does not belong to the certificate/);
  });

  it('without openssl, a clear error that says how to fix it, and nothing half-made is left', async () => {
    const { path, stateDir } = configFor('noopenssl');
    const emptyBin = join(lab.root, 'empty-bin');
    mkdirSync(emptyBin, { recursive: true });
    const r = await cli(['cert', 'fingerprint', '--config', path], { env: { PATH: emptyBin } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /making the self-signed TLS certificate of node 'noopenssl'.*failed: the openssl command is not installed \(Debian package openssl\)/,
    );
    expect(readdirSync(stateDir)).toEqual([]);
  });
});
