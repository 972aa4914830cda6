/**
 * The checks `coldvault doctor` runs, in the order their findings are listed, and the run itself.
 * A new check is one module answering `DoctorCheck` and one entry in DOCTOR_CHECKS (or, for a caller
 * with checks of its own, the `checks` argument of runDoctor).
 */
import { describeError } from '../../core/index.js';
import { clockCheck } from './clock.js';
import { clusterCheck } from './cluster.js';
import { datastoresCheck } from './datastores.js';
import { freeSpaceCheck } from './free-space.js';
import { guestsCheck } from './guests.js';
import { hypervisorCheck } from './hypervisor.js';
import { mailCheck } from './mail-server.js';
import { within } from './probe.js';
import { s3StoresCheck } from './s3-stores.js';
import { stateDirCheck } from './state-dir.js';
import { webhookCheck } from './webhooks.js';
import { type DoctorCheck, type DoctorSetup, type Finding, fail } from './types.js';

export const DOCTOR_CHECKS: readonly DoctorCheck[] = [
  stateDirCheck,
  guestsCheck,
  datastoresCheck,
  s3StoresCheck,
  freeSpaceCheck,
  hypervisorCheck,
  mailCheck,
  webhookCheck,
  clusterCheck,
  clockCheck,
];

/** A check that has not answered after this long is a failed finding (what it waits for may never answer). */
const CHECK_LIMIT_MS = 120_000;

export interface DoctorReport {
  /** no finding failed */
  ok: boolean;
  findings: Finding[];
}

/** Runs every check at once; a check that throws or hangs is a failed finding of its own. */
export async function runDoctor(setup: DoctorSetup, checks: readonly DoctorCheck[] = DOCTOR_CHECKS): Promise<DoctorReport> {
  const answers = await Promise.all(
    checks.map((check) => within(check.run(setup), CHECK_LIMIT_MS, `the ${check.name} check`).catch((err: unknown) => [broken(check, err)])),
  );
  const findings = answers.flat();
  return { ok: findings.every((f) => f.status !== 'fail'), findings };
}

function broken(check: DoctorCheck, err: unknown): Finding {
  return fail(
    check.name,
    `the check itself failed: ${describeError(err)}`,
    'run coldvault doctor again; if it fails the same way, report it with this message',
  );
}
