/**
 * The five operations a campaign cuts, each with its preconditions, its command, and what it may and
 * must have done when the power came back:
 * - backup (--keep 4): no version but its own may appear, and only those its keep-4 rotation removes
 *   may disappear; finished before the cut: its version and its rotation are durable;
 * - prune --keep-last 2: only versions the policy removes may disappear; finished: all of them are gone;
 * - gc: no version disappears (the chunks every version needs are checked by the store checks);
 * - restore: all or nothing (inspect.ts); finished: the guest is restored; cut: a second restore to the
 *   same ID succeeds, byte-identical, and leaves neither temp files nor orphaned volumes;
 * - catalog rebuild: finished: exit 0 (that `list` shows exactly the version folders is a store check).
 * And the checks every cut gets: every chunk and version folder whole and right, `list` = the folders,
 * `verify` clean.
 */
import { inspectChunks, inspectRestore, inspectVersions, restoreLeftovers, versionKey, type ExpectedVersion } from './inspect.js';
import { KEEP_ON_BACKUP, type CliResult, type PowerCutLab, type Rng } from './lab.js';
import type { CutRun } from './rig.js';

export const OPERATIONS = ['backup', 'prune', 'gc', 'restore', 'catalog-rebuild'] as const;
export type Operation = (typeof OPERATIONS)[number];

export const PRUNE_KEEP = 2;

export interface PlannedOperation {
  args: string[];
  /** what the operation may and must have done, looked at after the store checks */
  after(run: CutRun): Promise<string[]>;
}

type Planner = (lab: PowerCutLab, rng: Rng, round: number) => Promise<PlannedOperation>;

const tail = (text: string): string => text.trim().split('\n').slice(-6).join('\n');

/** An operation that ended by itself before the cut must have succeeded. */
function endedWell(run: CutRun, what: string): string[] {
  return run.exitedBeforeCut && run.code !== 0 ? [`${what} ended with exit code ${run.code} before the cut:\n${tail(run.stderr)}`] : [];
}

const missing = (want: number[], have: number[]): number[] => want.filter((v) => !have.includes(v));
const unexpected = (have: number[], allowed: number[]): number[] => have.filter((v) => !allowed.includes(v));
const same = (a: number[], b: number[]): boolean => a.join() === b.join();

const backup: Planner = async (lab, rng) => {
  const id = rng.real() < 0.7 ? '101' : '102';
  lab.mutate(id, rng);
  const before = lab.folders(id);
  const version = lab.expectBackup(id);
  return {
    args: lab.backupArgs(id),
    after: async (run) => {
      const now = lab.folders(id);
      const problems = endedWell(run, `backup of ${id}`);
      const lost = missing(before.slice(-(KEEP_ON_BACKUP - 1)), now);
      if (lost.length) problems.push(`backup of ${id}: versions ${lost.join(', ')} disappeared (only what keep-${KEEP_ON_BACKUP} removes may)`);
      const extra = unexpected(now, [...before, version]);
      if (extra.length) problems.push(`backup of ${id}: versions ${extra.join(', ')} appeared (expected only ${version})`);
      const done = [...before, version].slice(-KEEP_ON_BACKUP);
      if (run.exitedBeforeCut && run.code === 0 && !same(now, done))
        problems.push(`backup of ${id} finished before the cut, but after it the versions are ${now.join(', ')} instead of ${done.join(', ')}`);
      return problems;
    },
  };
};

const prune: Planner = async (lab, rng) => {
  while (lab.folders('101').length <= PRUNE_KEEP) {
    const problems = await uncutBackup(lab, '101', rng);
    if (problems.length) throw new Error(`preparing a prune: ${problems.join('\n')}`);
  }
  const before = lab.folders('101');
  const kept = before.slice(-PRUNE_KEEP);
  return {
    args: ['prune', '101', '--keep-last', String(PRUNE_KEEP), '--store', lab.store, '--json'],
    after: async (run) => {
      const now = lab.folders('101');
      const problems = endedWell(run, 'prune');
      const lost = missing(kept, now);
      if (lost.length) problems.push(`prune: versions ${lost.join(', ')} that keep-last ${PRUNE_KEEP} keeps disappeared`);
      if (unexpected(now, before).length) problems.push(`prune: versions ${unexpected(now, before).join(', ')} appeared`);
      if (run.exitedBeforeCut && run.code === 0 && !same(now, kept))
        problems.push(`prune finished before the cut, but after it versions ${now.join(', ')} exist (kept: ${kept.join(', ')})`);
      return problems;
    },
  };
};

const gc: Planner = async (lab) => {
  lab.ageChunks();
  const before = lab.allVersions();
  return {
    args: ['gc', '--store', lab.store, '--json'],
    after: async (run) => {
      const now = lab.allVersions();
      const problems = endedWell(run, 'gc');
      if (now.join() !== before.join()) problems.push(`gc: the versions changed from ${before.join(' ')} to ${now.join(' ')}`);
      return problems;
    },
  };
};

const restore: Planner = async (lab, rng, round) => {
  const id = lab.folders('102').length > 0 && rng.real() < 0.3 ? '102' : '101';
  const version = rng.pick(lab.folders(id));
  const want = lab.expected.get(versionKey(id, version));
  if (!want) throw new Error(`no expectation for version ${id}/${version}`);
  const newId = String(300 + round);
  const layout = { guestsDir: lab.guestsDir, storageDir: lab.storageDir };
  return {
    args: lab.restoreArgs(id, version, newId),
    after: async (run) => {
      const problems = endedWell(run, `restore of ${id}/${version} to ${newId}`);
      const cut = inspectRestore(layout, newId, want);
      problems.push(...cut.problems);
      if (run.exitedBeforeCut && run.code === 0 && !cut.restored)
        problems.push(`restore to ${newId} finished before the cut, but ${newId}.conf is gone after it`);
      if (!cut.restored) problems.push(...(await restoreAgain(lab, id, version, newId, want)));
      lab.dropRestored(newId);
      return problems;
    },
  };
};

/** After a cut restore: the same restore again works, byte-identical, and cleans up after the cut one. */
async function restoreAgain(lab: PowerCutLab, id: string, version: number, newId: string, want: ExpectedVersion): Promise<string[]> {
  const r = await lab.run(lab.restoreArgs(id, version, newId));
  if (r.code !== 0) return [`restoring ${id}/${version} to ${newId} again after the cut failed (${r.code}):\n${tail(r.stderr)}`];
  const layout = { guestsDir: lab.guestsDir, storageDir: lab.storageDir };
  const again = inspectRestore(layout, newId, want);
  const left = restoreLeftovers(layout, newId);
  return [
    ...again.problems.map((p) => `after restoring again: ${p}`),
    ...(again.restored ? [] : [`restoring to ${newId} again exited 0 but wrote no ${newId}.conf`]),
    ...(left.length ? [`restoring to ${newId} again left files of the cut restore behind: ${left.join(', ')}`] : []),
  ];
}

const catalogRebuild: Planner = async (lab) => ({
  args: ['catalog', 'rebuild', '--store', lab.store, '--json'],
  after: async (run) => endedWell(run, 'catalog rebuild'),
});

export const PLANNERS: Record<Operation, Planner> = { backup, prune, gc, restore, 'catalog-rebuild': catalogRebuild };

/** An uncut backup of `id` (with new data): it must succeed, publish its version and leave no staging folder. */
export async function uncutBackup(lab: PowerCutLab, id: string, rng: Rng): Promise<string[]> {
  lab.mutate(id, rng);
  const version = lab.expectBackup(id);
  const r = await lab.run(lab.backupArgs(id));
  if (r.code !== 0) return [`a backup of ${id} (no cut) failed (${r.code}):\n${tail(r.stderr)}`];
  const problems: string[] = [];
  if (!lab.folders(id).includes(version)) problems.push(`a backup of ${id} (no cut) exited 0 but version ${version} is not there`);
  if (lab.stagingFolders(id).length) problems.push(`a backup of ${id} (no cut) left staging folders: ${lab.stagingFolders(id).join(', ')}`);
  return problems;
}

/**
 * The checks every cut gets: files, `list`, `verify`. They run side by side: a bad chunk that verify
 * moves to quarantine meanwhile is one a version uses, and then verify fails anyway.
 */
export async function checkStore(lab: PowerCutLab): Promise<string[]> {
  const commands = Promise.all([lab.run(['list', '--json', '--store', lab.store]), lab.run(['verify', '--json', '--store', lab.store])]);
  const chunks = inspectChunks(lab.store);
  const versions = inspectVersions(lab.store, lab.expected);
  const [list, verify] = await commands;
  const problems = [...chunks.problems, ...versions.problems, ...listProblems(list, versions.folders)];
  if (verify.code !== 0) problems.push(`verify failed (${verify.code}): ${verifySummary(verify)}`);
  return problems;
}

function listProblems(list: CliResult, folders: Map<string, number[]>): string[] {
  if (list.code !== 0) return [`list failed (${list.code}):\n${tail(list.stderr)}`];
  const listed = JSON.parse(list.stdout) as Array<{ id: string; version: number }>;
  const shown = (id: string): number[] =>
    listed
      .filter((x) => x.id === id)
      .map((x) => x.version)
      .sort((a, b) => a - b);
  const ids = new Set([...folders.keys(), ...listed.map((x) => x.id)]);
  return [...ids]
    .filter((id) => !same(shown(id), folders.get(id) ?? []))
    .map((id) => `list shows versions ${shown(id).join(', ')} of ${id}, the folders are ${(folders.get(id) ?? []).join(', ')}`);
}

function verifySummary(r: CliResult): string {
  try {
    const result = JSON.parse(r.stdout) as { versions: Array<{ guestId: string; version: number; ok: boolean; errors: string[] }> };
    return result.versions
      .filter((v) => !v.ok)
      .map((v) => `${v.guestId}/${v.version}: ${v.errors.slice(0, 3).join('; ')}`)
      .join(' | ');
  } catch {
    return tail(r.stderr);
  }
}
