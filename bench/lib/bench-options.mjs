/**
 * The options every round-based bench script shares (cluster.mjs, encryption.mjs): how it fails and
 * logs (named, with seconds since `started`), --quick, --rounds, the image's regions and --dir.
 */
import { join, resolve } from 'node:path';

export function benchOptions(name, opt, started, defaultRounds) {
  const fail = (msg) => {
    process.stderr.write(`${name} bench: ${msg}\n`);
    process.exit(2);
  };
  const log = (msg) => process.stderr.write(`[${name} ${((Date.now() - started) / 1000).toFixed(0).padStart(4)}s] ${msg}\n`);
  const quick = opt.quick;
  const rounds = Number(opt.rounds ?? (quick ? 1 : defaultRounds));
  if (!Number.isInteger(rounds) || rounds < 1) fail(`--rounds ${opt.rounds}: expected a positive integer`);
  return { fail, log, quick, rounds, regions: quick ? 128 : 512, dir: resolve(opt.dir) };
}

/** parseArgs options every such script takes; its own are added beside them. */
export function commonOptions(repo, defaultDir) {
  return {
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    dir: { type: 'string', default: defaultDir },
    out: { type: 'string', default: join(repo, 'bench', 'RESULTS.md') },
    json: { type: 'string' },
    'no-build': { type: 'boolean', default: false },
    'from-json': { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  };
}
