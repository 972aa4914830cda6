/**
 * Versions in use (src/datastore/version-use.ts): a restore holds a read lease that prune respects,
 * a durable hold (a live restore's, datastore/locks.ts whileFile) keeps it after its process died,
 * while its file exists; a restore does not start on a version prune is removing, and prune and protect of one guest take
 * turns. Each window is forced with the engine's checkpoints (StepGate) on a real store; every
 * operation has its own Datastore object, as separate processes would.
 */
import { execFileSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ManualClock, StepGate } from '../helpers/interleaving.js';
import { makeStoreLab, type StoreLab } from '../helpers/store-lab.js';

let lab: StoreLab;
let clock: ManualClock;
beforeEach(async () => {
  lab = await makeStoreLab();
  clock = new ManualClock();
});
afterEach(async () => lab.close());

const codeOf = (err: unknown): unknown => (err as { code?: unknown }).code;

/** A process that takes a durable hold on version argv[2] of guest 101 of store argv[1] while file argv[3] exists, prints its reference and exits. */
const HOLD_AND_EXIT = `
const { Datastore, leaseVersion } = await import(${JSON.stringify(new URL('../../dist/datastore/index.js', import.meta.url).href)});
const [dir, version, file] = process.argv.slice(1);
const store = await Datastore.open(dir);
const held = await leaseVersion(store, '101', Number(version), 'live restore of guest 101 version ' + version, 0, { whileFile: file });
console.log(held.path);
process.exit(0);
`;

/** Two versions of guest 101 (blocks that share nothing); returns their disks' SHA-256. */
async function twoVersions(): Promise<{ v1: number; sha1: string; v2: number; sha2: string }> {
  const sha1 = lab.writeGuest('101', [1, 2, 0]);
  const { version: v1 } = await lab.backup('101', { clock });
  const sha2 = lab.writeGuest('101', [3, 4]);
  const { version: v2 } = await lab.backup('101', { clock });
  return { v1, sha1, v2, sha2 };
}

describe('a restore reading a version', () => {
  it('keeps it from prune (and so from gc) until it is done; the next prune removes it', async () => {
    const { v1, sha1, v2 } = await twoVersions();
    const gate = new StepGate().hold('restore:disk');
    const restore = lab.restoreSha('101', v1, { clock, checkpoint: gate.checkpoint });
    await gate.reached('restore:disk'); // manifest and indexes read, no chunk yet
    expect(await lab.prune('101', 1, { clock })).toEqual([]); // v1 is being read: kept
    clock.advance(3_600_000);
    await lab.gc({ clock });
    gate.release('restore:disk');
    expect(await restore).toBe(sha1);
    expect(await lab.prune('101', 1, { clock })).toEqual([v1]);
    expect(await lab.versions()).toEqual([{ id: '101', version: v2 }]);
  });

  it("with a durable hold (a live restore's), keeps it after the holding process died, while the hold's file exists; another process ends the hold", async () => {
    const { v1, sha1, v2 } = await twoVersions();
    const journal = join(lab.root, '202.json');
    writeFileSync(journal, '{}');
    // a separate process takes the hold and dies without releasing it (as a kill -9 would leave it)
    const ref = execFileSync(process.execPath, ['--input-type=module', '-e', HOLD_AND_EXIT, lab.storeDir, String(v1), journal], { encoding: 'utf8' }).trim();
    expect(await lab.prune('101', 1, { clock })).toEqual([]); // held: kept
    clock.advance(3_600_000);
    await lab.gc({ clock });
    expect(await lab.restoreSha('101', v1, { clock })).toBe(sha1);
    await (await lab.open()).locks.dropRegistration(ref);
    expect(await lab.prune('101', 1, { clock })).toEqual([v1]);
    expect(await lab.versions()).toEqual([{ id: '101', version: v2 }]);
  });

  it('a durable hold whose file is gone holds nothing (the live restore was finished or undone)', async () => {
    const { v1 } = await twoVersions();
    const journal = join(lab.root, '203.json');
    writeFileSync(journal, '{}');
    execFileSync(process.execPath, ['--input-type=module', '-e', HOLD_AND_EXIT, lab.storeDir, String(v1), journal]);
    rmSync(journal);
    expect(await lab.prune('101', 1, { clock })).toEqual([v1]);
  });

  it('does not start on a version prune is removing: it waits, then finds it gone (nothing written)', async () => {
    const { v1 } = await twoVersions();
    const pruneGate = new StepGate().hold('prune:remove-locked');
    const prune = lab.prune('101', 1, { clock, checkpoint: pruneGate.checkpoint });
    await pruneGate.reached('prune:remove-locked'); // prune holds remove-101-<v1> and has not looked for readers
    const restoreGate = new StepGate().hold('lock:wait');
    const restore = lab.restoreSha('101', v1, { clock, checkpoint: restoreGate.checkpoint }).then(
      () => 'restored',
      (err: unknown) => codeOf(err),
    );
    const first = await Promise.race([restore, restoreGate.reached('lock:wait').then(() => 'waiting')]);
    expect(first).toBe('waiting');
    pruneGate.release('prune:remove-locked');
    expect(await prune).toEqual([v1]);
    restoreGate.release('lock:wait');
    expect(await restore).toBe('VERSION_NOT_FOUND');
  });
});

describe('prune and protect of one guest', () => {
  it('take turns: a version protected while prune decides is never removed after protect succeeded', async () => {
    const { v1 } = await twoVersions();
    const pruneGate = new StepGate().hold('prune:listed');
    const prune = lab.prune('101', 1, { clock, checkpoint: pruneGate.checkpoint });
    await pruneGate.reached('prune:listed'); // prune has read "v1 is not protected" and decided to remove it
    const protectGate = new StepGate().hold('lock:wait');
    const protect = lab.protect('101', v1, { clock, checkpoint: protectGate.checkpoint }).then(
      () => 'protected',
      (err: unknown) => codeOf(err),
    );
    const first = await Promise.race([protect, protectGate.reached('lock:wait').then(() => 'waiting')]);
    pruneGate.release('prune:listed');
    const removed = await prune;
    if (first === 'waiting') protectGate.release('lock:wait');
    const outcome = await protect;
    const exists = (await lab.versions()).some((v) => v.version === v1);
    if (outcome === 'protected') expect(exists, 'a version protect said it protected was pruned').toBe(true);
    else expect(outcome).toBe('VERSION_NOT_FOUND');
    expect(first).toBe('waiting');
    expect(removed).toEqual([v1]);
  });

  it("two prunes of one guest take turns instead of failing on each other's removals", async () => {
    await twoVersions();
    const sha3 = lab.writeGuest('101', [5]);
    const { version: v3 } = await lab.backup('101', { clock });
    const gate = new StepGate().hold('prune:listed');
    const first = lab.prune('101', 1, { clock, checkpoint: gate.checkpoint });
    await gate.reached('prune:listed'); // decided: remove v1 and v2
    const waitGate = new StepGate().hold('lock:wait');
    const second = lab.prune('101', 2, { clock, checkpoint: waitGate.checkpoint });
    await Promise.race([second, waitGate.reached('lock:wait')]); // the second prune ends (removing v1) or waits its turn
    gate.release('prune:listed');
    await first.catch(() => undefined);
    waitGate.release('lock:wait');
    expect((await first).length + (await second).length).toBe(2);
    expect(await lab.versions()).toEqual([{ id: '101', version: v3 }]);
    expect(await lab.restoreSha('101', v3)).toBe(sha3);
  });
});
