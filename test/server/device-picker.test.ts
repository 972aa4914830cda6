/**
 * The Restore tab's disks over the API, on REAL loop devices (root): GET /api/v1/devices/datastores
 * offers the attached disks that hold a coldvault datastore as far as coldvault knows, and mounts
 * nothing (no mount of any of the disks in the kernel log, mountinfo unchanged):
 * - a disk a job initialised and backed up to: its datastore, the job's store as the folder to mount
 *   it on, guest 101 with version 1, seen by the job;
 * - a disk named by a job bound to its datastore but never mounted by this server: offered from the
 *   binding (no guests known);
 * - a disk with a datastore that nothing names: not offered until an explicit probe has seen it;
 * - an empty disk, named by a job that never ran: not offered.
 * A restore from the offered disk (fromDevice = its spec, fromPath = its store) restores guest 101
 * byte-identical and records what it saw. Loop devices are made here and detached in afterAll.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readMounts } from '../../src/targets/index.js';
import { cli, imagePath, sha256File } from '../helpers/fixtures.js';
import { kernelMountsOf, Loops, sh, type Loop } from '../jobs/helpers-devices.js';
import { makeServerLab, waitTask, type ServerLab } from './helpers-server.js';

interface Disk {
  path: string;
  spec: string;
  datastoreIds: string[];
  store: string | null;
  storeName: string | null;
  jobs: string[];
  guests: Array<{ id: string; versions: number[] }> | null;
  seen: { time: string; by: string } | null;
}

describe('the Restore tab’s disks (loop devices, root)', () => {
  let lab: ServerLab;
  let loops: Loops;
  const disks = {} as Record<'used' | 'bound' | 'unnamed' | 'empty', Loop>;
  const ids = {} as Record<'bound' | 'unnamed', string>;
  const ext4 = (dev: string): void => void sh('mkfs.ext4', ['-q', '-F', '-L', `cvpick${Math.random().toString(36).slice(2, 6)}`, dev]);
  const initOn = async (dir: string): Promise<string> => {
    expect((await cli(['datastore', 'init', dir])).code).toBe(0);
    return (JSON.parse(readFileSync(join(dir, 'coldvault-datastore.json'), 'utf8')) as { id: string }).id;
  };
  const ours = async (): Promise<string[]> => {
    const paths = Object.values(disks).map((d) => d.path);
    return (await readMounts()).filter((m) => paths.includes(m.source) || m.mountpoint.includes('coldvault-probe-')).map((m) => m.mountpoint);
  };
  const offered = async (): Promise<Disk[]> => {
    const res = await lab.api('GET', '/api/v1/devices/datastores');
    expect(res.statusCode, res.body).toBe(200);
    const paths = Object.values(disks).map((d) => d.path);
    return (res.json() as { disks: Disk[] }).disks.filter((d) => paths.includes(d.path)); // other tests' loop devices are not ours
  };
  const store = (name: string): string => join(loops.work, name);

  beforeAll(async () => {
    loops = new Loops(mkdtempSync(join(tmpdir(), 'cv-pick-')));
    // the jobs' stores are configured datastores (the API takes no other folder): the disks are mounted on them
    lab = await makeServerLab({ config: { datastores: { usb: store('usb'), bound: store('bound'), never: store('never') } } });
    for (const name of ['used', 'bound', 'unnamed', 'empty'] as const) disks[name] = loops.make(name, name === 'used' ? '160M' : '64M', ext4);
    ids.bound = await loops.byHand(disks.bound, initOn);
    ids.unnamed = await loops.byHand(disks.unnamed, initOn);
    const jobs: Array<Record<string, unknown>> = [
      { id: 'usb', store: store('usb'), vmid: ['101'], device: `UUID=${disks.used.uuid}`, initDevice: true },
      { id: 'bound', store: store('bound'), vmid: ['101'], device: `UUID=${disks.bound.uuid}`, deviceDatastoreId: ids.bound },
      { id: 'never', store: store('never'), vmid: ['101'], device: `UUID=${disks.empty.uuid}`, initDevice: true },
    ];
    for (const job of jobs) expect((await lab.api('POST', '/api/v1/jobs', job)).statusCode).toBe(201);
    const run = await lab.api('POST', '/api/v1/jobs/usb/run');
    expect(run.statusCode, run.body).toBe(202);
    const runId = (run.json() as { taskId: string }).taskId;
    const ran = await waitTask(lab, runId);
    expect(ran.status, JSON.stringify((await lab.api('GET', `/api/v1/tasks/${runId}/log`)).json())).toBe('ok');
  });

  afterAll(async () => {
    await loops?.cleanup();
    await lab?.close();
  });

  it('offers the disks that hold a datastore, as far as coldvault knows, and mounts nothing', async () => {
    const mountsBefore = await ours();
    const logged = Object.values(disks).map((d) => kernelMountsOf(d.uuid));
    const found = await offered();
    expect(
      Object.values(disks).map((d) => kernelMountsOf(d.uuid)),
      'the kernel logged no mount of the disks',
    ).toEqual(logged);
    expect(await ours()).toEqual(mountsBefore);
    expect(found.map((d) => d.path).sort()).toEqual([disks.used.path, disks.bound.path].sort());

    const used = found.find((d) => d.path === disks.used.path)!;
    const usbId = (lab.state.jobs.get('usb').deviceDatastoreId ?? '').split(',')[0];
    expect(used).toMatchObject({
      spec: `UUID=${disks.used.uuid}`,
      datastoreIds: [usbId],
      store: store('usb'),
      storeName: 'usb',
      jobs: ['usb'],
      guests: [{ id: '101', versions: [1] }],
      seen: { by: 'job usb' },
    });
    const bound = found.find((d) => d.path === disks.bound.path)!;
    expect(bound).toMatchObject({ datastoreIds: [ids.bound], store: store('bound'), storeName: 'bound', jobs: ['bound'], guests: null, seen: null });
  });

  it('a disk nothing names is offered once an explicit probe has seen it', async () => {
    expect((await offered()).some((d) => d.path === disks.unnamed.path)).toBe(false);
    const probe = await lab.api('POST', '/api/v1/devices/probe', { devices: [disks.unnamed.path, disks.empty.path] });
    expect(probe.statusCode, probe.body).toBe(200);
    const found = await offered();
    expect(found.find((d) => d.path === disks.unnamed.path)).toMatchObject({
      datastoreIds: [ids.unnamed],
      store: null,
      jobs: [],
      guests: null,
      seen: { by: 'probe' },
    });
    expect(found.some((d) => d.path === disks.empty.path)).toBe(false);
  });

  it('a restore from the offered disk restores the guest byte-identical and records what it saw', async () => {
    const disk = (await offered()).find((d) => d.path === disks.used.path)!;
    const res = await lab.api('POST', '/api/v1/restore', { fromDevice: disk.spec, fromPath: disk.store, id: '101', version: 1, newId: '411' });
    expect(res.statusCode, res.body).toBe(202);
    expect((await waitTask(lab, (res.json() as { taskId: string }).taskId)).status).toBe('ok');
    expect(sha256File(join(lab.storageDir, 'images', '411', 'vm-411-disk-0.raw'))).toBe(sha256File(imagePath(lab, '101', 'vm-101-disk-0.raw')));
    expect(await ours()).toEqual([]);
    expect((await offered()).find((d) => d.path === disks.used.path)?.seen?.by).toBe('restore');
  });
});
