/**
 * `coldvault doctor [--json]` on real parts: datastores made by `datastore init` and `backup`, a real
 * QEMU answering QMP on a socket and a stale socket nobody serves, a real SMTP server on loopback
 * (smtp-server, test/helpers/smtp.ts) and a closed port, a real HTTPS server on loopback that presents
 * a node's certificate (made by `coldvault cert fingerprint`) and a clock an hour ahead, a state
 * database with a task stamped in the future, and a store on a 16 MiB tmpfs (root). The one fake: the
 * `qm` of test/guests/fake-qm.ts for the proxmox driver (there is no Proxmox host here).
 * Each problem is reported with what was found (the store, the socket, host:port) and what to do,
 * exit 1; a healthy node exits 0 and no mail is sent. Webhooks: a real HTTP receiver on loopback (it
 * takes the connection, gets no POST) and a closed port.
 */
import Database from 'better-sqlite3';
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, linkSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { createServer as createNetServer } from 'node:net';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cli, execFileAsync, type Lab, makeLab, writeGuest, writeImage } from '../helpers/fixtures.js';
import { startSmtpSink } from '../helpers/smtp.js';
import { makeFakeQm } from '../guests/fake-qm.js';

interface Finding {
  check: string;
  status: 'ok' | 'warn' | 'fail';
  found: string;
  fix?: string;
}
interface Report {
  node: string | null;
  ok: boolean;
  findings: Finding[];
}

let lab: Lab;
const cleanups: Array<() => unknown> = [];

beforeEach(async () => {
  lab = makeLab('cv-doctor-');
  writeGuest(lab, '101', [{ key: 'scsi0', file: 'vm-101-disk-0.raw' }]);
  writeImage(join(lab.storageDir, 'images', '101', 'vm-101-disk-0.raw'), ['random', 'zero']);
  const init = await cli(['datastore', 'init', lab.storeDir]);
  expect(init.code, init.stderr).toBe(0);
});

afterEach(async () => {
  for (const clean of cleanups.splice(0).reverse()) await clean();
  lab.cleanup();
});

/** `<lab>/config.json` (0600): node pve1, state, guests, storage `local`, datastore `main`, no hypervisor, and `extra`. */
function writeConfig(extra: Record<string, unknown> = {}): string {
  const file = join(lab.root, 'config.json');
  const config = {
    node: 'pve1',
    stateDir: join(lab.root, 'state'),
    guestsDir: lab.guestsDir,
    storages: { local: lab.storageDir },
    datastores: { main: lab.storeDir },
    hypervisor: { driver: 'none' },
    ...extra,
  };
  writeFileSync(file, JSON.stringify(config), { mode: 0o600 });
  return file;
}

async function doctor(config: string): Promise<{ code: number; report: Report; text: string }> {
  const json = await cli(['doctor', '--json', '--config', config]);
  const text = await cli(['doctor', '--config', config]);
  expect(text.code, json.stderr).toBe(json.code);
  expect(json.stdout, json.stderr).toMatch(/^\{/);
  return { code: json.code, report: JSON.parse(json.stdout) as Report, text: text.stdout };
}

const findings = (report: Report, check: string): Finding[] => report.findings.filter((f) => f.check === check);
const failed = (report: Report): Finding[] => report.findings.filter((f) => f.status === 'fail');

/** A port on 127.0.0.1 that nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A real SMTP server on loopback; by default STARTTLS (its built-in self-signed certificate) and AUTH of backup / s3cret. */
async function startSink(options?: Parameters<typeof startSmtpSink>[0]): Promise<Awaited<ReturnType<typeof startSmtpSink>>> {
  const sink = await startSmtpSink(
    options ?? {
      authMethods: ['PLAIN', 'LOGIN'],
      onAuth: (auth, _session, callback) =>
        auth.username === 'backup' && auth.password === 's3cret' ? callback(null, { user: 'backup' }) : callback(new Error('Invalid username or password')),
    },
  );
  cleanups.push(() => sink.close());
  return sink;
}

describe('coldvault doctor', () => {
  it('a healthy node: exit 0, every finding ok, the SMTP server asked (EHLO) but sent no mail; the --json shape', async () => {
    const sink = await startSink();
    const backup = await cli(['backup', '101', ...lab.flags]);
    expect(backup.code, backup.stderr).toBe(0);
    mkdirSync(join(lab.root, 'state'), { mode: 0o700 });
    // the test server's certificate is self-signed: only here is the check turned off
    const mail = { transport: 'smtp', host: '127.0.0.1', port: sink.port, user: 'backup', pass: 's3cret', tlsRejectUnauthorized: false };
    const { code, report, text } = await doctor(writeConfig({ mail }));

    expect(report.findings.filter((f) => f.status !== 'ok' && f.check !== 'free space')).toEqual([]);
    expect(code).toBe(0);
    expect(report).toMatchObject({ node: 'pve1', ok: true });
    for (const f of report.findings) {
      expect(Object.keys(f).sort()).toEqual(f.status === 'ok' ? ['check', 'found', 'status'] : ['check', 'fix', 'found', 'status']);
      expect(['ok', 'warn', 'fail']).toContain(f.status);
    }
    expect(findings(report, 'datastore main')[0]?.found).toMatch(/1 guest\(s\), writable/);
    expect(findings(report, 'mail')[0]?.found).toBe(`the SMTP server 127.0.0.1:${sink.port} answers and takes the login of 'backup' (no mail sent)`);
    expect(findings(report, 'clock')[0]?.found).toMatch(/after version 101\/1 in/);
    expect(sink.got).toEqual([]);
    expect(text).toMatch(/^coldvault doctor on node pve1:\n/);
    expect(text).toMatch(/\nok {4}datastore main +datastore [0-9a-f-]+ in '/);
  });

  it('a configured datastore whose folder is missing: fail naming the store, its folder and what to do', async () => {
    const gone = join(lab.root, 'usb1');
    const { code, report, text } = await doctor(writeConfig({ datastores: { main: lab.storeDir, usb1: gone } }));
    expect(code).toBe(1);
    expect(report.ok).toBe(false);
    expect(findings(report, 'datastore usb1')).toEqual([
      {
        check: 'datastore usb1',
        status: 'fail',
        found: `the folder '${gone}' does not exist`,
        fix: `mount the disk that holds the datastore on '${gone}', create a new one with 'coldvault datastore init ${gone}', or correct 'datastores.usb1' in the config`,
      },
    ]);
    expect(findings(report, 'datastore main')[0]?.status).toBe('ok');
    expect(text).toContain(`FAIL  datastore usb1`);
    expect(text).toMatch(/\n +fix: mount the disk that holds the datastore on/);
  });

  it("a folder that holds no datastore, and a job's missing folder (the job makes one: a warning)", async () => {
    const empty = join(lab.root, 'empty');
    mkdirSync(join(empty, 'something'), { recursive: true });
    const config = writeConfig({ datastores: { main: lab.storeDir, other: empty } });
    const add = await cli(['job', 'add', 'nightly', '--store', join(lab.root, 'later'), '--vmid', '101', '--config', config]);
    expect(add.code, add.stderr).toBe(0);
    const { code, report } = await doctor(config);
    expect(code).toBe(1);
    expect(findings(report, 'datastore other')[0]).toMatchObject({ status: 'fail', found: `'${empty}' holds no coldvault datastore` });
    expect(findings(report, 'job nightly')[0]).toMatchObject({
      status: 'warn',
      found: `'${join(lab.root, 'later')}' does not exist: the job creates a new datastore there at its next run`,
    });
  });

  it('the qemu driver: a QMP socket folder that does not exist fails naming it', async () => {
    const folder = join(lab.root, 'no-such-dir');
    const { code, report } = await doctor(writeConfig({ hypervisor: { driver: 'qemu', qmpSocket: `${folder}/{vmid}.qmp`, startCommand: 'true' } }));
    expect(code).toBe(1);
    expect(failed(report)).toEqual([
      {
        check: 'hypervisor',
        status: 'fail',
        found: `the QMP socket folder '${folder}' (hypervisor.qmpSocket '${folder}/{vmid}.qmp') does not exist`,
        fix: expect.stringContaining("set hypervisor.qmpSocket to where the guests' QEMU keeps its QMP socket") as string,
      },
    ]);
  });

  it('the qemu driver: a socket nobody serves fails naming guest and path; a real QEMU on the next socket answers', async () => {
    const sockets = join(lab.root, 'qmp');
    mkdirSync(sockets);
    writeGuest(lab, '102', [{ key: 'scsi0', file: 'vm-102-disk-0.raw' }]);
    writeGuest(lab, '103', [{ key: 'scsi0', file: 'vm-103-disk-0.raw' }]);
    await staleSocket(join(sockets, '101.qmp'));
    await startQemu(join(sockets, '102.qmp'));
    const { code, report } = await doctor(writeConfig({ hypervisor: { driver: 'qemu', qmpSocket: `${sockets}/{vmid}.qmp`, startCommand: 'true' } }));
    expect(code).toBe(1);
    const hypervisor = findings(report, 'hypervisor');
    expect(hypervisor.filter((f) => f.status === 'fail')).toEqual([
      {
        check: 'hypervisor',
        status: 'fail',
        found: expect.stringMatching(new RegExp(`^guest 101: nothing answers on the QMP socket '${sockets}/101\\.qmp' \\(.*ECONNREFUSED`)) as string,
        fix: expect.stringContaining('correct hypervisor.qmpSocket') as string,
      },
    ]);
    expect(hypervisor.map((f) => f.found)).toContain(`qemu driver, QMP sockets '${sockets}/{vmid}.qmp': answering: 102 (running); no socket (stopped): 103`);
  });

  it('the qemu driver without a startCommand fails: a job could not start a guest again', async () => {
    const sockets = join(lab.root, 'qmp');
    mkdirSync(sockets);
    const { code, report } = await doctor(writeConfig({ hypervisor: { driver: 'qemu', qmpSocket: `${sockets}/{vmid}.qmp` } }));
    expect(code).toBe(1);
    expect(failed(report).map((f) => f.found)).toEqual([
      'qemu driver: hypervisor.startCommand is not set: a job that shuts a running guest down cannot start it again',
    ]);
  });

  it('the libvirt driver answers through virsh (test:/// URI); a wrong URI fails naming the command', async () => {
    const good = await doctor(writeConfig({ hypervisor: { driver: 'libvirt', libvirtUri: 'test:///default', libvirtDomain: 'test' } }));
    expect(findings(good.report, 'hypervisor')).toEqual([{ check: 'hypervisor', status: 'ok', found: 'libvirt driver answers: 101 running' }]);
    const bad = await doctor(writeConfig({ hypervisor: { driver: 'libvirt', libvirtUri: 'test:///nonexistent.xml', libvirtDomain: 'test' } }));
    expect(bad.code).toBe(1);
    expect(findings(bad.report, 'hypervisor')[0]).toMatchObject({
      status: 'fail',
      found: expect.stringContaining("command 'virsh -c test:///nonexistent.xml") as string,
    });
  });

  it('the proxmox driver asks qm status of each guest (the FAKE qm of test/guests: no Proxmox host here); no qm on the PATH fails', async () => {
    const fake = await makeFakeQm(lab.guestsDir);
    cleanups.push(() => fake.cleanup());
    await fake.setState('101', 'running');
    const config = writeConfig({ hypervisor: { driver: 'proxmox' } });
    const json = async (path: string): Promise<{ code: number; report: Report }> => {
      const r = await cli(['doctor', '--json', '--config', config], { env: { PATH: path } });
      return { code: r.code, report: JSON.parse(r.stdout) as Report };
    };
    const good = await json(`${fake.dir}:/usr/bin:/bin`);
    expect(findings(good.report, 'hypervisor')).toEqual([{ check: 'hypervisor', status: 'ok', found: 'proxmox driver answers: 101 running' }]);
    expect(await fake.calls()).toEqual(['status 101']);
    const none = await json('/usr/bin:/bin');
    expect(none.code).toBe(1);
    expect(findings(none.report, 'hypervisor')[0]).toMatchObject({
      status: 'fail',
      found: expect.stringContaining("proxmox driver: command 'qm status 101' failed") as string,
      fix: "run coldvault on a Proxmox VE node as root ('qm' in /usr/sbin on the PATH), or set hypervisor.driver to the one this host has",
    });
  });

  it('an unreachable SMTP server (a closed port on 127.0.0.1) fails naming host:port', async () => {
    const port = await closedPort();
    const { code, report } = await doctor(writeConfig({ mail: { transport: 'smtp', host: '127.0.0.1', port } }));
    expect(code).toBe(1);
    expect(failed(report)).toEqual([
      {
        check: 'mail',
        status: 'fail',
        found: expect.stringMatching(new RegExp(`^connecting to SMTP server 127\\.0\\.0\\.1:${port} failed: .*ECONNREFUSED`)) as string,
        fix: `check mail.host and mail.port (now 127.0.0.1:${port}), that the server runs and this node may reach it (firewall)`,
      },
    ]);
  });

  it('a mail server that does not offer STARTTLS gets no password, a wrong password and an untrusted certificate fail, each saying so', async () => {
    const plain = await startSink({ authOptional: true, disabledCommands: ['STARTTLS'] });
    const login = { transport: 'smtp', host: '127.0.0.1', user: 'backup', pass: 's3cret' };
    const noTls = await doctor(writeConfig({ mail: { ...login, port: plain.port } }));
    expect(noTls.code).toBe(1);
    expect(findings(noTls.report, 'mail')[0]).toMatchObject({
      status: 'fail',
      found: expect.stringContaining('the server does not offer STARTTLS, and coldvault sends a password only over TLS') as string,
    });
    const tls = await startSink();
    const wrong = await doctor(writeConfig({ mail: { ...login, port: tls.port, pass: 'wrong', tlsRejectUnauthorized: false } }));
    expect(findings(wrong.report, 'mail')[0]).toMatchObject({
      status: 'fail',
      found: expect.stringMatching(/Invalid (login|username)/i) as string,
      fix: 'check mail.user and mail.pass',
    });
    const untrusted = await doctor(writeConfig({ mail: { ...login, port: tls.port } }));
    expect(findings(untrusted.report, 'mail')[0]).toMatchObject({ status: 'fail', fix: expect.stringContaining('a certificate this node trusts') as string });
    expect([...plain.got, ...tls.got]).toEqual([]);
  });

  it('webhooks: a receiver that takes connections is ok and gets no POST; one on a closed port fails naming it and the job, never its path', async () => {
    const posts: string[] = [];
    const receiver = createHttpServer((req, res) => {
      posts.push(`${req.method} ${req.url}`);
      res.end();
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => receiver.close(() => resolve())));
    const { port } = receiver.address() as { port: number };
    const dead = await closedPort();
    const config = writeConfig();
    const hooks: Array<[string, string]> = [
      ['nightly', `http://127.0.0.1:${port}/hooks/token-in-path`],
      ['weekly', `http://127.0.0.1:${dead}/hooks/other-token`],
    ];
    for (const [id, url] of hooks) {
      const add = await cli(['job', 'add', id, '--store', lab.storeDir, '--vmid', '101', '--webhook', url, '--config', config]);
      expect(add.code, add.stderr).toBe(0);
    }
    const { code, report } = await doctor(config);
    expect(code).toBe(1);
    expect(findings(report, 'webhook')).toEqual([
      { check: 'webhook', status: 'ok', found: `the webhook receiver http://127.0.0.1:${port}/… of job(s) nightly takes connections; nothing posted` },
      {
        check: 'webhook',
        status: 'fail',
        found: expect.stringMatching(
          new RegExp(`^the webhook receiver http://127\\.0\\.0\\.1:${dead}/… of job\\(s\\) weekly cannot be reached: .*ECONNREFUSED`),
        ) as string,
        fix: expect.stringContaining('coldvault job edit ID --webhook URL') as string,
      },
    ]);
    expect(JSON.stringify(report)).not.toContain('token');
    expect(posts).toEqual([]);
  });

  it('jobs that mail reports without a mail section: a warning (exit 0)', async () => {
    const config = writeConfig();
    expect((await cli(['job', 'add', 'nightly', '--store', lab.storeDir, '--vmid', '101', '--mailto', 'admin@example.com', '--config', config])).code).toBe(0);
    const { code, report } = await doctor(config);
    expect(findings(report, 'mail')).toEqual([
      {
        check: 'mail',
        status: 'warn',
        found: "job(s) nightly mail their reports, but the config has no 'mail' section: no report goes out",
        fix: "add a 'mail' section to the config (README: Mail)",
      },
    ]);
    expect(code).toBe(0);
  });

  it('a config that does not load: one failed finding with the loader message, nothing else checked', async () => {
    const file = join(lab.root, 'bad.json');
    writeFileSync(file, JSON.stringify({ node: 'pve1', colour: 'blue' }));
    const { code, report, text } = await doctor(file);
    expect(code).toBe(1);
    expect(report).toEqual({
      node: null,
      ok: false,
      findings: [
        {
          check: 'config',
          status: 'fail',
          found: `config file '${file}': unknown key(s) colour`,
          fix: 'correct the config file (README: Config file); coldvault serve does not start with it',
        },
      ],
    });
    expect(text).toContain('FAIL  config');
  });

  it('a config file others may read: a warning with the chmod', async () => {
    const file = writeConfig();
    chmodSync(file, 0o644);
    const { report } = await doctor(file);
    expect(findings(report, 'config')[0]).toMatchObject({ status: 'warn', fix: `chmod 600 '${file}'` });
  });

  it('a clock behind a task the state database recorded: fail naming the task', async () => {
    const config = writeConfig();
    expect((await cli(['job', 'add', 'nightly', '--store', lab.storeDir, '--vmid', '101', '--config', config])).code).toBe(0);
    const run = await cli(['job', 'run', 'nightly', '--config', config]);
    expect(run.code, run.stderr).toBe(0);
    const db = new Database(join(lab.root, 'state', 'coldvault.sqlite'));
    const task = db.prepare('SELECT id FROM tasks').get() as { id: string };
    db.prepare("UPDATE tasks SET start = '2099-01-01T00:00:00.000Z', end = '2099-01-01T00:01:00.000Z'").run();
    db.close();
    const { code, report } = await doctor(config);
    expect(code).toBe(1);
    expect(findings(report, 'clock')).toEqual([
      {
        check: 'clock',
        status: 'fail',
        found: expect.stringMatching(new RegExp(`^this node's clock says \\S+, before task ${task.id} at 2099-01-01T00:01:00\\.000Z$`)) as string,
        fix: 'set the clock right and keep it so (NTP: timedatectl set-ntp true, or chrony)',
      },
    ]);
  });

  it('a cluster node: its pinned certificate checked, an hour of clock skew a warning; a wrong pin and a closed port fail', async () => {
    const { fingerprint, server, port } = await startNodeStandIn(3600_000);
    const wrong = fingerprint.replace(/^../, fingerprint.startsWith('00') ? '11' : '00');
    const closed = await closedPort();
    const ring = (pin: string, url: string) => ({
      cluster: {
        nodes: [
          { name: 'pve1', url: 'https://127.0.0.1:8007' },
          { name: 'pve2', url, fingerprint: pin },
        ],
      },
    });
    const good = await doctor(writeConfig(ring(fingerprint, `https://127.0.0.1:${port}`)));
    expect(findings(good.report, 'cluster node pve2')).toEqual([
      { check: 'cluster node pve2', status: 'ok', found: `https://127.0.0.1:${port} (sends-to, receives-from) answers with its pinned certificate` },
    ]);
    expect(findings(good.report, 'clock')[0]).toMatchObject({
      status: 'warn',
      found: expect.stringMatching(/^node pve2 says \S+, (359|360)\d s from this node's clock$/) as string,
    });
    expect(good.code).toBe(0);

    const pinned = await doctor(writeConfig(ring(wrong, `https://127.0.0.1:${port}`)));
    expect(findings(pinned.report, 'cluster node pve2')[0]).toMatchObject({
      status: 'fail',
      found: expect.stringContaining(`presents ${fingerprint}, pinned ${wrong}`) as string,
    });
    server.close();

    const down = await doctor(writeConfig(ring(fingerprint, `https://127.0.0.1:${closed}`)));
    expect(down.code).toBe(1);
    expect(findings(down.report, 'cluster node pve2')[0]).toMatchObject({
      status: 'fail',
      found: expect.stringMatching(new RegExp(`^https://127\\.0\\.0\\.1:${closed} \\(sends-to, receives-from\\) does not answer: `)) as string,
    });
  });

  it('a datastore on a nearly full filesystem (a 16 MiB tmpfs): free space fails naming it', async () => {
    const small = join(lab.root, 'small');
    mkdirSync(small);
    await execFileAsync('mount', ['-t', 'tmpfs', '-o', 'size=16m,mode=0700', 'tmpfs', small]);
    cleanups.push(() => execFileAsync('umount', [small]));
    expect((await cli(['datastore', 'init', small])).code).toBe(0);
    const { code, report } = await doctor(writeConfig({ datastores: { main: lab.storeDir, small } }));
    expect(code).toBe(1);
    expect(findings(report, 'free space').filter((f) => f.status === 'fail')).toMatchObject([
      {
        status: 'fail',
        found: expect.stringMatching(new RegExp(`^datastore small \\('${small}'\\): \\S+ MiB free of 16(\\.00)? MiB \\(\\d+\\.\\d %\\)$`)) as string,
        fix: expect.stringContaining("'coldvault prune' old versions and 'coldvault gc'") as string,
      },
    ]);
  });
});

/** A unix socket file that nothing serves: a hard link to a listening socket outlives the listener. */
async function staleSocket(path: string): Promise<void> {
  const server = createNetServer();
  const live = `${path}.live`;
  await new Promise<void>((resolve) => server.listen(live, resolve));
  linkSync(live, path);
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** A real QEMU (no machine, no disks) serving QMP on `socket`, killed after the test. */
async function startQemu(socket: string): Promise<ChildProcess> {
  const qemu = spawn('qemu-system-x86_64', ['-machine', 'none', '-nodefaults', '-display', 'none', '-qmp', `unix:${socket},server=on,wait=off`], {
    stdio: 'ignore',
  });
  cleanups.push(() => qemu.kill('SIGKILL'));
  for (let i = 0; i < 100; i++) {
    try {
      readFileSync(socket);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return qemu; // there: reading a socket fails otherwise
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`QEMU made no socket ${socket}`);
}

/**
 * An HTTPS server on loopback standing in for a node's serve: it presents a certificate made by
 * `coldvault cert fingerprint` (as serve would) and answers /api/v1/health with its clock `skewMs` ahead.
 */
async function startNodeStandIn(skewMs: number): Promise<{ fingerprint: string; server: HttpsServer; port: number }> {
  const made = await cli(['cert', 'fingerprint', '--json', '--state-dir', join(lab.root, 'node2')]);
  const { cert, key, fingerprint } = JSON.parse(made.stdout) as { cert: string; key: string; fingerprint: string };
  const server = createHttpsServer({ cert: readFileSync(cert), key: readFileSync(key) }, (_req, res) => {
    res.sendDate = false;
    res.writeHead(200, { date: new Date(Date.now() + skewMs).toUTCString(), 'content-type': 'application/json' });
    res.end('{"ok":true}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { fingerprint, server, port: (server.address() as { port: number }).port };
}
