/**
 * An external disk at the receiving node (cluster mode), as root on REAL loop devices with ext4, through
 * a real `coldvault serve` on 127.0.0.1 with real scoped tokens (`coldvault token create --role backup
 * --store usb`) and the real client (RemoteStore.attachDevice / detachDevice from dist/): the disk is
 * mounted on the store's folder at the receiver, a version pushed into it lands on the disk, detach
 * unmounts it; an empty disk is initialised only with `init`; a disk not plugged in there, one holding
 * another datastore, one the receiver's storeDevices does not list, and a token of another store are
 * refused with nothing mounted and the disk unchanged; a sender killed while attached lets the disk go
 * after uploadIdleSeconds (and a live one keeps it by its keep-alives); serve's shutdown unmounts it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cli, REPO, writeServeConfig } from '../helpers/fixtures.js';
import { startServe, type ServeProcess } from '../helpers/serve-process.js';
import { imageHash, Loops, mounted, sh, type Loop } from '../jobs/helpers-devices.js';
import { sleep, waitFor } from '../jobs/helpers-jobs.js';
import { Datastore } from '../../dist/datastore/index.js';
import { readMounts, RemoteStore } from '../../dist/targets/index.js';
import { makeServerLab, type ServerLab } from './helpers-server.js';
import { expectOk, fetchSend, Pusher, readSource, type SourceVersion } from './upload-client.js';

const IDLE_SECONDS = 2;
const MISSING = 'UUID=0b5e55ed-0000-4000-8000-00000000dead';

let lab: ServerLab;
let loops: Loops;
let usbDir: string;
let configPath: string;
let usbToken: string;
let mainToken: string;
let serve: ServeProcess;
let source: Datastore;
let src: SourceVersion;
const disk = {} as Record<'empty' | 'other' | 'stranger' | 'bare', Loop>;
let otherId: string;
const children: ChildProcess[] = [];

async function token(name: string, store: string): Promise<string> {
  const made = await cli(['token', 'create', name, '--role', 'backup', '--store', store, '--config', configPath]);
  expect(made.code, made.stderr).toBe(0);
  return made.stdout.split('\n')[0]!;
}

const client = (tok = usbToken, store = 'usb'): RemoteStore =>
  new RemoteStore({ url: serve.url, token: tok, store, retry: { attempts: 2, baseDelayMs: 50, maxDelayMs: 100 } });
const mountSource = async (): Promise<string | undefined> => (await readMounts()).find((m) => m.mountpoint === usbDir)?.source;
const refusal = async (p: Promise<unknown>): Promise<{ code?: string; message: string }> =>
  p.then(
    () => ({ message: 'no refusal' }),
    (err: { code?: string; message: string }) => ({ code: err.code, message: err.message }),
  );

/** A sending node's process (test/server/device-sender.mjs) that attaches `device` and lives on; `answer`: its JSON line. */
function startSender(device: string): { child: ChildProcess; answer: Promise<string> } {
  const child = spawn(process.execPath, [join(REPO, 'test/server/device-sender.mjs'), serve.url, usbToken, 'usb', device], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  const answer = waitFor(() => out.includes('\n'), 30_000).then(() => out);
  return { child, answer };
}

beforeAll(async () => {
  lab = await makeServerLab();
  loops = new Loops(mkdtempSync(join(tmpdir(), 'cv-rdisk-loops-')));
  usbDir = join(lab.root, 'usb');
  const ext4 = (label: string) => (dev: string) => sh('mkfs.ext4', ['-q', '-F', '-L', label, dev]);
  disk.empty = loops.make('empty', '160M', ext4('cvrdempty'));
  disk.other = loops.make('other', '160M', ext4('cvrdother'));
  disk.stranger = loops.make('stranger', '160M', ext4('cvrdstranger'));
  disk.bare = loops.make('bare', '160M', ext4('cvrdbare'));
  otherId = await loops.byHand(disk.other, async (dir) => (await Datastore.init(dir)).identity.id);
  const listed = [disk.empty, disk.other, disk.bare].map((l) => `UUID=${l.uuid}`);
  configPath = writeServeConfig(lab, 'recv1', 'serve-state', {
    datastores: { main: lab.storeDir, usb: usbDir },
    storeDevices: { usb: [...listed, MISSING] },
    uploadIdleSeconds: IDLE_SECONDS,
  });
  usbToken = await token('node2', 'usb');
  mainToken = await token('node3', 'main');
  const sourceDir = join(lab.root, 'node2-store');
  await Datastore.init(sourceDir);
  const backup = await cli(['backup', '101', '--store', sourceDir, '--guests-dir', lab.guestsDir, '--storage', `local=${lab.storageDir}`]);
  expect(backup.code, backup.stderr).toBe(0);
  source = await Datastore.open(sourceDir);
  src = await readSource(source, '101', 1);
  serve = await startServe(['--config', configPath, '--listen', '127.0.0.1:0']);
}, 120_000);

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await serve?.stop();
  await loops?.cleanup([usbDir]);
  await lab?.close();
});

// a test that failed with the disk attached: serve's shutdown lets it go, so the next test starts clean
afterEach(async () => {
  if (!(await mounted(usbDir))) return;
  await serve.stop();
  serve = await startServe(['--config', configPath, '--listen', '127.0.0.1:0']);
});

describe('an external disk at the receiving node', () => {
  it('an empty disk with init: mounted on the store folder there, initialised, a pushed version lands on it, detach unmounts it', async () => {
    const push = new Pusher(fetchSend(serve.url, usbToken), 'usb');
    const before = await push.open({ guestId: '101', node: src.manifest.node as string });
    expect([before.status, before.code]).toEqual([409, 'DEVICE_NOT_ATTACHED']); // no disk: nothing lands on the bare folder

    const remote = client();
    const attached = await remote.attachDevice({ device: `UUID=${disk.empty.uuid}`, init: true });
    expect(attached).toMatchObject({ device: `UUID=${disk.empty.uuid}`, initialised: true, idleTimeoutSeconds: IDLE_SECONDS });
    expect(attached.log.join('\n')).toContain(`initialised datastore ${attached.datastoreId} on the empty disk UUID=${disk.empty.uuid}`);
    expect(await mountSource()).toBe(disk.empty.path);
    const second = await refusal(client().attachDevice({ device: `UUID=${disk.other.uuid}` }));
    expect(second.code).toBe('LOCKED');
    expect(second.message).toContain(`disk UUID=${disk.empty.uuid} is attached for token:node2`);

    const { version } = await new Pusher(fetchSend(serve.url, usbToken), 'usb').push(source, src, { guestId: '101', node: src.manifest.node as string });
    await sleep(IDLE_SECONDS * 2500); // the client's keep-alives hold the disk past the idle time
    expect(await mounted(usbDir)).toBe(true);
    await remote.detachDevice(attached.attachment);
    expect(await mounted(usbDir)).toBe(false);
    await remote.detachDevice(attached.attachment); // idempotent: a retry after a lost answer is fine
    remote.close();

    await loops.byHand(
      disk.empty,
      async (dir) => {
        const store = await Datastore.open(dir);
        expect(store.identity.id).toBe(attached.datastoreId);
        expect(await store.listVersionNumbers('101')).toEqual([version]);
      },
      true,
    );
    const after = await push.open({ guestId: '101', node: src.manifest.node as string });
    expect(after.code).toBe('DEVICE_NOT_ATTACHED');
  });

  it('a disk not plugged in at the receiver: DEVICE_NOT_FOUND naming the node and the disk, nothing mounted', async () => {
    const err = await refusal(client().attachDevice({ device: MISSING, init: true }));
    expect(err.code).toBe('DEVICE_NOT_FOUND');
    expect(err.message).toContain(`external disk ${MISSING} on node recv1`);
    expect(err.message).toContain('plug it into node recv1');
    expect(err.message).toContain(serve.url); // the client names the node's URL too
    expect(await mounted(usbDir)).toBe(false);
  });

  it('a disk holding another datastore than the job is bound to: WRONG_DATASTORE, the disk unchanged, nothing mounted', async () => {
    const hash = imageHash(disk.other);
    const err = await refusal(client().attachDevice({ device: `UUID=${disk.other.uuid}`, datastoreIds: ['11111111-2222-4333-8444-555555555555'] }));
    expect(err.code).toBe('WRONG_DATASTORE');
    expect(err.message).toContain(`holds datastore ${otherId}, not the expected datastore 11111111-2222-4333-8444-555555555555`);
    expect(err.message).toContain('node recv1');
    expect(imageHash(disk.other)).toBe(hash);
    expect(await mounted(usbDir)).toBe(false);
  });

  it('an empty disk without init is refused untouched; of rotated disks the one plugged in is mounted when it holds the bound datastore', async () => {
    const hash = imageHash(disk.bare);
    const err = await refusal(client().attachDevice({ device: `UUID=${disk.bare.uuid}` }));
    expect(err.code).toBe('WRONG_DATASTORE');
    expect(err.message).toContain(`the disk UUID=${disk.bare.uuid} holds no coldvault datastore; nothing was written to it`);
    expect(imageHash(disk.bare)).toBe(hash);
    const remote = client();
    const attached = await remote.attachDevice({ device: `${MISSING},UUID=${disk.other.uuid}`, datastoreIds: [otherId] });
    expect(attached).toMatchObject({ device: `UUID=${disk.other.uuid}`, datastoreId: otherId, initialised: false }); // rotated disks: the one plugged in
    expect(attached.log).toContain(`not attached (rotated away): ${MISSING}`);
    await remote.detachDevice(attached.attachment);
    expect(await mounted(usbDir)).toBe(false);
  });

  it("a disk the receiver's storeDevices does not list, and a token of another store: refused, nothing mounted", async () => {
    const hash = imageHash(disk.stranger);
    const err = await refusal(client().attachDevice({ device: `UUID=${disk.stranger.uuid}`, init: true }));
    expect(err.code).toBe('DEVICE_NOT_ALLOWED');
    expect(err.message).toContain(`node recv1 refuses to mount an external disk: it may not mount UUID=${disk.stranger.uuid} on datastore 'usb'`);
    const rotated = await refusal(client().attachDevice({ device: `UUID=${disk.empty.uuid},/dev/sda1` }));
    expect(rotated.code).toBe('DEVICE_NOT_ALLOWED');
    const onMain = await refusal(client(usbToken, 'main').attachDevice({ device: `UUID=${disk.empty.uuid}` }));
    expect(onMain.code).toBe('REMOTE_FORBIDDEN');
    const otherToken = await refusal(client(mainToken, 'usb').attachDevice({ device: `UUID=${disk.empty.uuid}` }));
    expect(otherToken.code).toBe('REMOTE_FORBIDDEN');
    expect(otherToken.message).toContain("'usb'");
    expect(await mounted(usbDir)).toBe(false);
    expect(imageHash(disk.stranger)).toBe(hash);
  });

  it('the sender killed while attached: the receiver unmounts the disk after uploadIdleSeconds', async () => {
    const sender = startSender(`UUID=${disk.other.uuid}`);
    expect(JSON.parse(await sender.answer)).toMatchObject({ device: `UUID=${disk.other.uuid}`, datastoreId: otherId });
    await sleep(IDLE_SECONDS * 2500);
    expect(await mounted(usbDir)).toBe(true); // alive: its keep-alives hold the disk
    sender.child.kill('SIGKILL');
    expect(await waitFor(async () => !(await mounted(usbDir)), 30_000)).toBe(true);
    const tasksDir = join(lab.root, 'serve-state', 'tasks');
    // the task log is written as the unmount is done, not before: wait for the line too (a loaded CI lane saw it late)
    const logged = () =>
      readdirSync(tasksDir).some((f) => readFileSync(join(tasksDir, f), 'utf8').includes(`let go: nothing heard of token:node2 for ${IDLE_SECONDS} s`));
    expect(await waitFor(() => Promise.resolve(logged()), 10_000)).toBe(true);
  });

  it('the sender killed while an upload into the store is open: the disk stays until that upload ended, then is let go', async () => {
    const sender = startSender(`UUID=${disk.other.uuid}`);
    expect(JSON.parse(await sender.answer)).toMatchObject({ datastoreId: otherId });
    const push = new Pusher(fetchSend(serve.url, usbToken), 'usb');
    expectOk(await push.open({ guestId: '101', node: src.manifest.node as string }), 'open');
    sender.child.kill('SIGKILL');
    for (let i = 0; i < IDLE_SECONDS * 6; i++) {
      await push.known(src.digests.slice(0, 1)); // the upload lives on (a request every half idle time)
      await sleep(IDLE_SECONDS * 500);
      expect(await mounted(usbDir)).toBe(true); // sender gone for 3 idle times, but an upload is open
    }
    expect(await waitFor(async () => !(await mounted(usbDir)), 30_000)).toBe(true); // the upload expired, then the disk went
    expect((await push.known(src.digests.slice(0, 1)).catch((err: Error) => err.message)) as unknown).toMatch(/UPLOAD_EXPIRED|410/);
  });

  it("serve's shutdown unmounts an attached disk", async () => {
    const remote = client();
    await remote.attachDevice({ device: `UUID=${disk.other.uuid}`, datastoreIds: [otherId] });
    expect(await mounted(usbDir)).toBe(true);
    expect(await serve.stop()).toBe(0);
    expect(await mounted(usbDir)).toBe(false);
    remote.close();
    serve = await startServe(['--config', configPath, '--listen', '127.0.0.1:0']);
    const again = client();
    const attached = await again.attachDevice({ device: `UUID=${disk.other.uuid}`, datastoreIds: [otherId] });
    await again.detachDevice(attached.attachment);
    again.close();
  });
});
