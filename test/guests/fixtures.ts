/** Where the shared qemu-server config fixtures live: COLDVAULT_FIXTURES, else ../shared beside the repo. */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export function qemuConfigFixturesDir(): string {
  const env = process.env.COLDVAULT_FIXTURES;
  if (env) return existsSync(join(env, 'qemu-server-configs')) ? join(env, 'qemu-server-configs') : env;
  return fileURLToPath(new URL('../../../shared/fixtures/qemu-server-configs', import.meta.url));
}

/** Every `.conf` file below the fixtures dir, as paths relative to it, sorted. */
export function listConfigFixtures(dir = qemuConfigFixturesDir()): string[] {
  const walk = (d: string): string[] =>
    readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(d, e.name)) : e.name.endsWith('.conf') ? [join(d, e.name)] : []));
  return walk(dir)
    .map((p) => relative(dir, p))
    .sort();
}

export function readFixture(name: string): string {
  return readFileSync(join(qemuConfigFixturesDir(), name), 'utf8');
}
