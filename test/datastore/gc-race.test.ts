/**
 * Garbage collection against backups, prune and restore, with each race window made to happen on
 * purpose: every operation runs in this process on its own Datastore object (as separate processes
 * would) on a real store on tmpfs, parked at the engine's checkpoints (src/core/seams.ts) by a
 * StepGate, with a clock the test moves forward instead of sleeping. What is asserted is what a user
 * relies on: every version that exists restores byte-identical, and verify is clean.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock, StepGate } from '../helpers/interleaving.js';
import { block, makeStoreLab, type StoreLab } from '../helpers/store-lab.js';

let lab: StoreLab;
let clock: ManualClock;
beforeEach(async () => {
  lab = await makeStoreLab();
  clock = new ManualClock();
});
afterEach(async () => lab.close());

const SECOND = 1000;

async function expectAllRestorable(expected: Map<string, string>): Promise<void> {
  for (const { id, version } of await lab.versions()) {
    const want = expected.get(`${id}/${version}`);
    expect(want, `version ${id}/${version} has an expected content`).toBeDefined();
    expect(await lab.restoreSha(id, version), `restore of ${id}/${version}`).toBe(want);
  }
  expect(await lab.verify()).toEqual({ ok: true, errors: [] });
}

describe('gc and a backup that overlap', () => {
  it('a backup that started before gc and publishes (and ends) while gc is marking keeps every chunk', async () => {
    // The reported data loss: the backup is unknown to gc if gc asks for running backups only after marking.
    const expected = new Map<string, string>();
    const sha = lab.writeGuest('102', [1, 2, 0, 3]);
    const backupGate = new StepGate().hold('backup:publish');
    const backup = lab.backup('102', { clock, checkpoint: backupGate.checkpoint });
    await backupGate.reached('backup:publish'); // chunks written, version staged, not yet published
    clock.advance(10 * SECOND);
    const gcGate = new StepGate().hold('gc:marked');
    const gc = lab.gc({ clock, checkpoint: gcGate.checkpoint });
    await gcGate.reached('gc:marked'); // gc has listed every version: the new one is not among them
    backupGate.release('backup:publish');
    const { version } = await backup; // published, and its writer registration is gone
    expected.set(`102/${version}`, sha);
    gcGate.release('gc:marked');
    await gc;
    await expectAllRestorable(expected);
  });

  it("a backup that starts after gc began keeps the chunks it reuses, even ones no version referenced at gc's start", async () => {
    const expected = new Map<string, string>();
    lab.writeGuest('101', [1, 2, 3]);
    const v1 = await lab.backup('101', { clock });
    const sha2 = lab.writeGuest('101', [4, 5, 6]);
    const v2 = await lab.backup('101', { clock });
    expect(await lab.prune('101', 1, { clock })).toEqual([v1.version]); // blocks 1-3 now unreferenced
    expected.set(`101/${v2.version}`, sha2);
    clock.advance(3600 * SECOND);
    const gcGate = new StepGate().hold('gc:marked');
    const gc = lab.gc({ clock, checkpoint: gcGate.checkpoint });
    await gcGate.reached('gc:marked');
    clock.advance(3600 * SECOND); // gc stopped for an hour (SIGSTOP, a slow disk)
    const sha = lab.writeGuest('103', [1, 2, 3]); // the data of the pruned version, again
    const b = await lab.backup('103', { clock });
    expected.set(`103/${b.version}`, sha);
    gcGate.release('gc:marked');
    await gc;
    await expectAllRestorable(expected);
  });

  it('a chunk gc has already moved aside is written again by a backup that needs it', async () => {
    const expected = new Map<string, string>();
    lab.writeGuest('101', [1]);
    const v1 = await lab.backup('101', { clock });
    const sha2 = lab.writeGuest('101', [2]);
    const v2 = await lab.backup('101', { clock });
    await lab.prune('101', 1, { clock });
    expected.set(`101/${v2.version}`, sha2);
    expect(v1.version).toBeLessThan(v2.version);
    clock.advance(3600 * SECOND);
    const gcGate = new StepGate().hold('gc:aside');
    const gc = lab.gc({ clock, checkpoint: gcGate.checkpoint });
    await gcGate.reached('gc:aside'); // block 1's chunk is renamed aside, not yet looked at again
    const sha = lab.writeGuest('104', [1]);
    const b = await lab.backup('104', { clock });
    expected.set(`104/${b.version}`, sha);
    gcGate.release('gc:aside');
    await gc;
    await expectAllRestorable(expected);
  });

  it('a chunk that vanishes after the backup reused it (a touch that lost its race with gc) is written again before publishing', async () => {
    // A touch (utimes) resolves the chunk's name, then sets the time: gc can rename the file aside, look at
    // its old time and delete it in between. The backup checks its reused chunks are still there.
    const expected = new Map<string, string>();
    const sha1 = lab.writeGuest('101', [1, 2]);
    const v1 = await lab.backup('101', { clock });
    expected.set(`101/${v1.version}`, sha1);
    const sha = lab.writeGuest('105', [2, 1, 0]);
    const gate = new StepGate().hold('backup:stored');
    const backup = lab.backup('105', { clock, checkpoint: gate.checkpoint });
    await gate.reached('backup:stored');
    const store = await lab.open();
    const hex = createHash('sha256').update(block(2)).digest('hex');
    await rm(store.chunks.pathOf(hex)); // what gc did in that window
    gate.release('backup:stored');
    const b = await backup;
    expected.set(`105/${b.version}`, sha);
    await expectAllRestorable(expected);
  });

  it('a gc killed while a reused chunk is moved aside loses nothing: a restore puts it back, and so does the next gc', async () => {
    // gc looked at the chunk (old), a backup reused (touched) it and published, then gc moved it aside and died.
    const expected = new Map<string, string>();
    const past = new ManualClock();
    past.advance(-3600 * SECOND); // the first versions were made an hour ago (for gc in its own process, on the real clock)
    lab.writeGuest('101', [1]);
    await lab.backup('101', { clock: past });
    const sha2 = lab.writeGuest('101', [2]);
    const v2 = await lab.backup('101', { clock: past });
    await lab.prune('101', 1, { clock: past }); // block 1's chunk is unreferenced and old
    expected.set(`101/${v2.version}`, sha2);
    const hex = createHash('sha256').update(block(1)).digest('hex');
    const gc = new GcProcess(lab.storeDir, ['gc:decided', 'gc:aside']);
    try {
      await gc.parked('gc:decided'); // gc has looked at block 1's chunk: old, unreferenced
      const sha = lab.writeGuest('106', [1]);
      const b = await lab.backup('106'); // reuses it: touch, check, publish
      expected.set(`106/${b.version}`, sha);
      gc.go();
      await gc.parked('gc:aside'); // moved aside, not yet looked at again
      gc.kill();
      const store = await lab.open();
      expect(readdirSync(dirname(store.chunks.pathOf(hex))).filter((n) => n.startsWith(`${hex}.`))).toHaveLength(1);
      expect(await lab.restoreSha('106', b.version)).toBe(sha); // the read puts it back
      await lab.gc(); // and a gc keeps it
      await expectAllRestorable(expected);
    } finally {
      gc.kill();
    }
  });

  it('the next gc puts back what a killed gc left aside before it judges anything', async () => {
    const expected = new Map<string, string>();
    const sha = lab.writeGuest('101', [1, 2]);
    const v1 = await lab.backup('101');
    expected.set(`101/${v1.version}`, sha);
    const store = await lab.open();
    const hex = createHash('sha256').update(block(2)).digest('hex');
    const { rename } = await import('node:fs/promises');
    await rename(store.chunks.pathOf(hex), `${store.chunks.pathOf(hex)}.cvgc-999999-dead`); // as a gc killed mid-look leaves it
    const result = await lab.gc();
    expect(result.removedChunks).toBe(0);
    await expectAllRestorable(expected);
    expect(readdirSync(dirname(store.chunks.pathOf(hex))).filter((n) => n.includes('.cvgc-'))).toEqual([]);
  });
});

/** collectGarbage in a child process (test/helpers/gc-child.mjs) that parks at the given steps until told to go on. */
class GcProcess {
  private readonly child: ChildProcess;
  private readonly lines: AsyncIterator<string>;

  constructor(storeDir: string, stops: string[]) {
    this.child = spawn(process.execPath, [join(import.meta.dirname, '../helpers/gc-child.mjs'), storeDir, stops.join(',')], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    this.lines = createInterface({ input: this.child.stdout! })[Symbol.asyncIterator]();
  }

  async parked(step: string): Promise<void> {
    const line = await this.lines.next();
    expect(line.value, `gc should park at ${step}`).toBe(`parked ${step}`);
  }

  go(): void {
    this.child.stdin?.write('go\n');
  }

  kill(): void {
    this.child.kill('SIGKILL');
  }
}
