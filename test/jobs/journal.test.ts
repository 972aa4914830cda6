/**
 * The restart journal on a real state database (SQLite file): its two marks (stopped, locked), the
 * columns it adds to the journal table of an older state database, and the recovery of what dead
 * runs left, against the ProxmoxDriver with the FAKE qm of test/guests/fake-qm.ts (no Proxmox host
 * here; the fake keeps the lock in the guest's config file and refuses to start a locked guest
 * without --skiplock, as qm does). A dead run is a row whose pid is a process that has exited.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createTaskLog } from '../../src/core/log.js';
import { ProxmoxDriver } from '../../src/guests/hypervisor/proxmox.js';
import { openStateDb, StopJournal, type StateDb } from '../../src/jobs/index.js';
import { makeFakeQm, type FakeQm } from '../guests/fake-qm.js';

let root: string;
let db: StateDb;
let fake: FakeQm;
/** the pid of a process that has exited */
const deadPid = spawnSync('/bin/true').pid;

beforeAll(async () => {
  fake = await makeFakeQm();
});
afterAll(async () => {
  await fake.cleanup();
});
beforeEach(async () => {
  root = mkdtempSync(join(tmpdir(), 'cv-journal-'));
  db = openStateDb(root);
  await fake.clearCalls();
});
afterEach(() => {
  db.close();
  rmSync(root, { recursive: true, force: true });
});

const die = (vmid: string): void => {
  db.prepare('UPDATE journal SET pid = ? WHERE vmid = ?').run(deadPid, vmid);
};
const guest = async (vmid: string, state: 'running' | 'stopped', lock?: string): Promise<void> => {
  writeFileSync(join(fake.confDir, `${vmid}.conf`), `memory: 512\nname: g${vmid}\n${lock ? `lock: ${lock}\n` : ''}`);
  await fake.setState(vmid, state);
};

describe('the restart journal', () => {
  it('after a reboot, a row whose pid now belongs to a live process is still an orphan (its boot id tells)', async () => {
    await guest('105', 'stopped');
    const j = new StopJournal(db);
    j.recordStop('105', 't5');
    const live = spawn('sleep', ['30']);
    try {
      db.prepare('UPDATE journal SET pid = ? WHERE vmid = ?').run(live.pid, '105');
      expect(j.orphans()).toEqual([]); // the same boot: a live pid is a live run
      db.prepare('UPDATE journal SET boot = ? WHERE vmid = ?').run('an-earlier-boot', '105');
      expect(j.orphans().map((e) => e.vmid)).toEqual(['105']);
      const log = createTaskLog();
      expect(await j.recover(new ProxmoxDriver({ qm: fake.qm, pollMs: 10 }), log)).toBe(1);
      expect(await fake.state('105')).toBe('running');
    } finally {
      live.kill();
    }
  });

  it('keeps one row per guest and task while either mark is set', () => {
    const j = new StopJournal(db);
    j.recordLock('101', 't1');
    j.recordStop('101', 't1');
    expect(j.entries()).toMatchObject([{ vmid: '101', taskId: 't1', pid: process.pid, stopped: true, locked: true }]);
    j.clearStop('101', 't1');
    expect(j.entries()).toMatchObject([{ vmid: '101', stopped: false, locked: true }]);
    j.recordStop('101', 't1');
    j.clearLock('101', 't1');
    expect(j.entries()).toMatchObject([{ vmid: '101', stopped: true, locked: false }]);
    j.clearStop('101', 't1');
    expect(j.entries()).toEqual([]);
    expect(j.orphans()).toEqual([]);
  });

  it("adds its columns to an older state database, whose rows are stops; two processes' journals agree", () => {
    const old = join(root, 'old.sqlite');
    const raw = new Database(old);
    raw.exec(
      'CREATE TABLE journal (vmid TEXT NOT NULL, task_id TEXT NOT NULL, pid INTEGER NOT NULL, host TEXT NOT NULL, stopped_at TEXT NOT NULL, PRIMARY KEY (vmid, task_id))',
    );
    raw.prepare('INSERT INTO journal VALUES (?, ?, ?, ?, ?)').run('102', 'told', 4242, 'somehost', '2026-01-01T00:00:00.000Z');
    const other = new Database(old);
    try {
      const entries = new StopJournal(raw).entries();
      expect(entries).toEqual([
        { vmid: '102', taskId: 'told', pid: 4242, host: 'somehost', boot: null, recordedAt: '2026-01-01T00:00:00.000Z', stopped: true, locked: false },
      ]);
      expect(new StopJournal(other).entries()).toEqual(entries); // its columns exist already: no second ALTER
    } finally {
      other.close();
      raw.close();
    }
  });

  it('recovery removes the backup lock first, then starts the guest as anyone would (no --skiplock)', async () => {
    await guest('101', 'stopped', 'backup');
    const j = new StopJournal(db);
    j.recordLock('101', 't1');
    j.recordStop('101', 't1');
    die('101');
    const log = createTaskLog();
    expect(await j.recover(new ProxmoxDriver({ qm: fake.qm, pollMs: 10 }), log)).toBe(1);
    expect(await fake.calls()).toEqual(['config 101 --current', 'unlock 101', 'status 101', 'status 101', 'start 101', 'status 101']);
    expect(await fake.lock('101')).toBeUndefined();
    expect(await fake.state('101')).toBe('running');
    expect(j.entries()).toEqual([]);
    expect(log.lines.map((l) => `${l.level}: ${l.message}`)).toEqual([
      expect.stringMatching(/^WARN: guest 101 was locked for backup by task t1 \(pid \d+\) at .*, which did not finish; removing the lock$/),
      'INFO: guest 101 is unlocked',
      expect.stringMatching(/^WARN: guest 101 was stopped by task t1 .*; starting it again$/),
      'INFO: guest 101 is running again',
    ]);
  });

  it('a lock-only row (the guest was off) is unlocked and the guest left off; keepStopped keeps the stop mark for the job that adopts it', async () => {
    await guest('103', 'stopped', 'backup');
    await guest('104', 'stopped', 'backup');
    const j = new StopJournal(db);
    j.recordLock('103', 't3');
    j.recordLock('104', 't4');
    j.recordStop('104', 't4');
    die('103');
    die('104');
    expect(await j.recover(new ProxmoxDriver({ qm: fake.qm }), createTaskLog(), new Set(['104']))).toBe(0);
    expect([await fake.lock('103'), await fake.lock('104')]).toEqual([undefined, undefined]);
    expect([await fake.state('103'), await fake.state('104')]).toEqual(['stopped', 'stopped']);
    expect(j.entries()).toMatchObject([{ vmid: '104', taskId: 't4', stopped: true, locked: false }]);
  });

  it("a lock that is someone else's now is left in place; a start it refuses stays in the journal for the next try", async () => {
    await guest('105', 'stopped', 'migrate');
    const j = new StopJournal(db);
    j.recordLock('105', 't5');
    j.recordStop('105', 't5');
    die('105');
    const log = createTaskLog();
    expect(await j.recover(new ProxmoxDriver({ qm: fake.qm }), log)).toBe(0);
    expect(await fake.calls()).toEqual(['config 105 --current', 'status 105', 'status 105', 'start 105']);
    expect(await fake.lock('105')).toBe('migrate');
    expect(j.entries()).toMatchObject([{ vmid: '105', stopped: true, locked: false }]);
    const errors = log.lines.filter((l) => l.level === 'ERROR').map((l) => l.message);
    expect(errors).toEqual([
      "removing the backup lock of guest 105 failed - guest 105 holds 'lock: migrate', not the 'lock: backup' coldvault set: left in place",
      expect.stringContaining('starting guest 105 failed - starting guest 105 failed: command'),
    ]);
    expect(errors[1]).toContain('VM is locked (migrate)');
  });
});
