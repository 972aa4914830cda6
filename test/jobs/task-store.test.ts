/**
 * Tasks left running by a process that died are marked failed (interrupted), also after a power cut
 * and a reboot, when the dead task's pid may belong to a live process by now: the row's boot id tells
 * (a job would otherwise count as running and never start again). Real state database.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openStateDb, type StateDb, TaskStore } from '../../src/jobs/index.js';

let root: string;
let db: StateDb;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'cv-tasks-'));
  db = openStateDb(root);
});
afterEach(() => {
  db.close();
  rmSync(root, { recursive: true, force: true });
});

describe('a task whose process is gone', () => {
  it('counts as running while its pid lives in the same boot, and as interrupted once the pid is from an earlier boot', () => {
    const tasks = new TaskStore(db, root);
    const task = tasks.create('backup', { jobId: 'nightly', node: 'pve1' });
    const live = spawn('sleep', ['30']);
    try {
      db.prepare('UPDATE tasks SET pid = ? WHERE id = ?').run(live.pid, task.id);
      expect(tasks.runningForJob('nightly').map((t) => t.id)).toEqual([task.id]);
      db.prepare('UPDATE tasks SET boot = ? WHERE id = ?').run('an-earlier-boot', task.id);
      expect(tasks.runningForJob('nightly')).toEqual([]);
      expect(tasks.get(task.id)).toMatchObject({ status: 'failed' });
      expect(tasks.get(task.id).summary).toContain('interrupted');
    } finally {
      live.kill();
    }
  });
});
