/**
 * A model-based test of backup, prune, protect, gc, verify and restore running at the same time on one
 * real store: fast-check generates which operations run, their arguments, the order in which they take
 * their steps (the Interleaver releases one parked operation at a time, at the engine's checkpoints,
 * including lock waits) and how far the clock moves between steps. After each run:
 * - every version in the store restores byte-identical to the disk it was made from, and verify is clean;
 * - every backup that succeeded left its version; every protect that succeeded left its version;
 * - every restore that succeeded wrote the right bytes, and one that failed did so only because its
 *   version was gone before it began or was busy (never a missing chunk);
 * - gc and verify never fail because a version was pruned under them.
 * A failing case prints the seed, the operations and the trace of steps to replay it.
 */
import { mkdir, rm } from 'node:fs/promises';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Datastore } from '../../dist/datastore/index.js';
import { Interleaver, ManualClock } from '../helpers/interleaving.js';
import { makeStoreLab, type StoreLab } from '../helpers/store-lab.js';

type Op =
  | { kind: 'backup'; guest: string; blocks: number[] }
  | { kind: 'prune'; guest: string; keep: number }
  | { kind: 'protect'; guest: string; pick: number }
  | { kind: 'restore'; guest: string; pick: number }
  | { kind: 'gc' }
  | { kind: 'verify' };

const blocks = fc.array(fc.integer({ min: 0, max: 7 }), { minLength: 1, maxLength: 3 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('backup' as const), guest: fc.constantFrom('101', '103'), blocks }),
  fc.record({ kind: fc.constant('prune' as const), guest: fc.constantFrom('101', '102'), keep: fc.integer({ min: 1, max: 2 }) }),
  fc.record({ kind: fc.constant('protect' as const), guest: fc.constantFrom('101', '102'), pick: fc.nat() }),
  fc.record({ kind: fc.constant('restore' as const), guest: fc.constantFrom('101', '102'), pick: fc.nat() }),
  fc.constant({ kind: 'gc' as const }),
  fc.constant({ kind: 'verify' as const }),
);

const scenario = fc.record({
  history: fc.array(fc.record({ guest: fc.constantFrom('101', '102'), blocks }), { minLength: 2, maxLength: 5 }),
  ops: fc
    .tuple(
      fc.record({ kind: fc.constant('backup' as const), guest: fc.constantFrom('101', '103'), blocks }),
      fc.constant({ kind: 'gc' as const }),
      fc.array(opArb, { minLength: 0, maxLength: 4 }),
    )
    .map(([backup, gc, more]) => [backup, gc, ...more] as Op[])
    .filter((ops) => {
      const backups = ops.filter((o) => o.kind === 'backup').map((o) => (o as { guest: string }).guest);
      return new Set(backups).size === backups.length; // one backup per guest: its disk must not change meanwhile
    }),
  choices: fc.array(fc.nat({ max: 1000 }), { minLength: 1, maxLength: 60 }),
  gaps: fc.array(fc.integer({ min: 0, max: 20_000 }), { minLength: 1, maxLength: 60 }),
});

type Scenario = typeof scenario extends fc.Arbitrary<infer T> ? T : never;

const ALLOWED_FAILURES: Record<Op['kind'], string[]> = {
  backup: [],
  prune: ['LOCKED'],
  protect: ['VERSION_NOT_FOUND', 'LOCKED'],
  restore: ['VERSION_NOT_FOUND', 'LOCKED'],
  gc: ['LOCKED'],
  verify: [],
};

const codeOf = (err: unknown): string => (err as { code?: string }).code ?? String(err);

let lab: StoreLab;
beforeAll(async () => {
  lab = await makeStoreLab();
});
afterAll(async () => lab.close());

async function runScenario(s: Scenario): Promise<void> {
  await resetStore();
  const clock = new ManualClock();
  const expected = new Map<string, string>();
  for (const h of s.history) {
    const sha = lab.writeGuest(h.guest, h.blocks);
    const { version } = await lab.backup(h.guest, { clock });
    expected.set(`${h.guest}/${version}`, sha);
    clock.advance(1000);
  }
  const before = await lab.versions();
  const pickVersion = (guest: string, pick: number): number => {
    const mine = before.filter((v) => v.id === guest);
    return mine[pick % mine.length]?.version ?? 1;
  };
  const shaOfBackup = new Map<string, string>();
  for (const op of s.ops) if (op.kind === 'backup') shaOfBackup.set(op.guest, lab.writeGuest(op.guest, op.blocks));

  const il = new Interleaver();
  const actors = s.ops.map((op, i) => ({ op, actor: il.add(`${i}:${op.kind}`, (checkpoint) => start(op, { clock, checkpoint }, pickVersion)) }));
  let c = 0;
  let g = 0;
  await il.run(
    (n) => (s.choices[c++ % s.choices.length] ?? 0) % n,
    () => clock.advance(s.gaps[g++ % s.gaps.length] ?? 0),
  );

  const at = (): string => `trace: ${il.trace.join(' ')}`;
  const after = await lab.versions();
  const exists = (guest: string, version: number): boolean => after.some((v) => v.id === guest && v.version === version);
  const results = await Promise.all(actors.map(async ({ op, actor }) => ({ op, name: actor.name, r: await actor.result })));
  for (const { op, r } of results) {
    if (op.kind === 'backup' && r.ok) expected.set(`${op.guest}/${(r.value as { version: number }).version}`, shaOfBackup.get(op.guest) ?? '');
  }
  for (const { op, name, r } of results) {
    if (!r.ok) {
      expect(ALLOWED_FAILURES[op.kind], `${name} failed: ${String(r.error)}; ${at()}`).toContain(codeOf(r.error));
      continue;
    }
    if (op.kind === 'backup') {
      const { version } = r.value as { version: number };
      expect(exists(op.guest, version), `${name}: its version ${version} is gone; ${at()}`).toBe(true);
    }
    if (op.kind === 'protect') {
      const version = pickVersion(op.guest, op.pick);
      expect(exists(op.guest, version), `${name}: protected ${op.guest}/${version} was pruned; ${at()}`).toBe(true);
    }
    if (op.kind === 'restore') {
      const version = pickVersion(op.guest, op.pick);
      expect(r.value, `${name}: restored ${op.guest}/${version}; ${at()}`).toBe(expected.get(`${op.guest}/${version}`));
    }
    if (op.kind === 'verify') {
      const v = r.value as { ok: boolean; errors: string[] };
      expect(v, `${name} (a version pruned meanwhile is skipped, not failed); ${at()}`).toEqual({ ok: true, errors: [] });
    }
  }
  for (const { id, version } of after) {
    expect(await lab.restoreSha(id, version), `final restore of ${id}/${version}; ${at()}`).toBe(expected.get(`${id}/${version}`));
  }
  expect(await lab.verify(), `final verify; ${at()}`).toEqual({ ok: true, errors: [] });
}

function start(
  op: Op,
  seams: { clock: ManualClock; checkpoint: (step: string) => Promise<void> },
  pickVersion: (g: string, p: number) => number,
): Promise<unknown> {
  switch (op.kind) {
    case 'backup':
      return lab.backup(op.guest, seams);
    case 'prune':
      return lab.prune(op.guest, op.keep, seams);
    case 'protect':
      return lab.protect(op.guest, pickVersion(op.guest, op.pick), seams);
    case 'restore':
      return lab.restoreSha(op.guest, pickVersion(op.guest, op.pick), seams);
    case 'gc':
      return lab.gc(seams);
    case 'verify':
      return lab.verify(seams);
  }
}

async function resetStore(): Promise<void> {
  await rm(lab.storeDir, { recursive: true, force: true });
  await rm(lab.guestsDir, { recursive: true, force: true });
  await mkdir(lab.guestsDir, { recursive: true });
  await Datastore.init(lab.storeDir);
}

describe('backup, prune, protect, gc, verify and restore interleaved at random on a real store', () => {
  it('never lose or damage a published version', async () => {
    await fc.assert(fc.asyncProperty(scenario, runScenario), { numRuns: 80, endOnFailure: true });
  }, 600_000);
});
