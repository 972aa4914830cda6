/**
 * The state dir (`stateDir`: jobs, tasks, logs, the admin password's hash, tokens): there, a folder
 * this user can write to, and private to its owner (0700; README "File modes").
 */
import { stat } from 'node:fs/promises';
import { cannotWrite, octalMode, pathKind } from './probe.js';
import { type DoctorCheck, type Finding, fail, ok, warn } from './types.js';

const CHECK = 'state dir';

export const stateDirCheck: DoctorCheck = {
  name: CHECK,
  async run({ stateDir }): Promise<Finding[]> {
    const kind = await pathKind(stateDir);
    if (kind === 'missing') {
      return [
        warn(
          CHECK,
          `'${stateDir}' does not exist yet`,
          'coldvault serve (and the first job or token) creates it, 0700; if it should exist, correct stateDir in the config or --state-dir',
        ),
      ];
    }
    if (kind !== 'folder') return [fail(CHECK, `'${stateDir}' is not a folder`, 'point stateDir in the config (or --state-dir) at a folder')];
    const why = await cannotWrite(stateDir);
    if (why) return [fail(CHECK, `'${stateDir}' takes no new file: ${why}`, `make it writable for this user (root), e.g. remount its filesystem read-write`)];
    const mode = (await stat(stateDir)).mode;
    if ((mode & 0o077) !== 0) {
      return [warn(CHECK, `'${stateDir}' may be read by other local users (mode ${octalMode(mode)})`, `chmod 700 '${stateDir}'`)];
    }
    return [ok(CHECK, `'${stateDir}' is writable and private (mode ${octalMode(mode)})`)];
  },
};
