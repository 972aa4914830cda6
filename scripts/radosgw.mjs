/**
 * A real Ceph radosgw for tests and benches: ../shared/tools/ceph-rgw-test-server.sh (beside the repo,
 * or COLDVAULT_RGW_TOOL) starts a one-node cluster on 127.0.0.1 in a few seconds (installing Debian's
 * ceph packages when they are missing) and prints its S3 settings; `stop` removes everything. Its
 * gateway is then restarted with `tcp_nodelay=1` on the beast frontend, as a production RGW should run
 * (README): without it, every answer of 8 KiB or less (listings, lock objects, small files) waits for
 * the client's delayed ACK, 40 ms each. Used by test/helpers/radosgw.ts and bench/s3-*.mjs.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

export const RGW_TOOL = process.env.COLDVAULT_RGW_TOOL ?? fileURLToPath(new URL('../../shared/tools/ceph-rgw-test-server.sh', import.meta.url));

/**
 * @param {string} [dir] where the tool keeps the cluster (a fresh temp folder by default)
 * @returns {Promise<{endpoint: string, accessKeyId: string, secretAccessKey: string, region: string, dir: string,
 *   stop(): void, killGateway(): void, restartGateway(): Promise<void>}>}
 */
export async function startRadosgw(dir = mkdtempSync(join(tmpdir(), 'cv-rgw-'))) {
  const env = parseExports(execFileSync('bash', [RGW_TOOL, 'start', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 600_000 }));
  for (const name of ['S3_ENDPOINT', 'S3_ACCESS_KEY', 'S3_SECRET_KEY', 'S3_REGION']) if (!env[name]) throw new Error(`${RGW_TOOL} printed no ${name}`);
  const gateway = new Gateway(dir, env);
  await gateway.restart({ stop: 'SIGTERM', frontendOption: 'tcp_nodelay=1' });
  return {
    endpoint: env.S3_ENDPOINT,
    accessKeyId: env.S3_ACCESS_KEY,
    secretAccessKey: env.S3_SECRET_KEY,
    region: env.S3_REGION,
    dir,
    stop: () => void execFileSync('bash', [RGW_TOOL, 'stop', dir], { stdio: 'ignore', timeout: 120_000 }),
    killGateway: () => gateway.kill('SIGKILL'),
    restartGateway: () => gateway.start(),
  };
}

/** radosgw alone (the cluster and its objects stay): stopped, killed and started again as it ran, on its port. */
class Gateway {
  constructor(dir, env) {
    this.dir = dir;
    this.env = env;
    this.argv = undefined;
  }

  get pidFile() {
    return join(this.dir, 'client.rgw.pid');
  }

  /**
   * TERM, not KILL, for a restart: a killed gateway's watches stay registered for 30 s, and the next
   * one's first bucket creation (which notifies every watcher) waits for them to time out.
   */
  async restart({ stop, frontendOption }) {
    this.kill(stop);
    const at = this.argv.findIndex((a) => a.startsWith('beast '));
    if (at < 0) throw new Error(`radosgw's command line has no beast frontend: ${this.argv.join(' ')}`);
    this.argv[at] = `${this.argv[at]} ${frontendOption}`;
    await this.start();
  }

  kill(signal) {
    const pid = Number(readFileSync(this.pidFile, 'utf8'));
    this.argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    process.kill(pid, signal);
    // gone, or at least no longer listening (a stopped gateway unregisters and closes its port at once, then lingers)
    for (let i = 0; i < 200 && existsSync(`/proc/${pid}`) && !zombie(pid) && this.listening(); i++) execFileSync('sleep', ['0.05']);
  }

  listening() {
    const { hostname, port } = new URL(this.env.S3_ENDPOINT);
    try {
      execFileSync('bash', ['-c', `exec 3<>/dev/tcp/${hostname}/${port}`], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  }

  async start() {
    if (!this.argv) throw new Error('restartGateway: killGateway first');
    const [cmd, ...args] = this.argv;
    const child = spawn(cmd, args, { stdio: 'ignore', detached: true }); // its own session, as the tool starts it
    child.unref();
    writeFileSync(this.pidFile, `${child.pid}\n`);
    for (let i = 0; i < 300; i++) {
      if (this.answers()) return;
      await sleep(100);
    }
    throw new Error(`radosgw did not answer at ${this.env.S3_ENDPOINT} within 30 s of its restart`);
  }

  /** A signed ListBuckets answers 200 (as the tool checks; an HTTP answer alone can come before it serves S3). */
  answers() {
    const { S3_ENDPOINT, S3_REGION, S3_ACCESS_KEY, S3_SECRET_KEY } = this.env;
    try {
      execFileSync(
        'curl',
        [
          '-sf',
          '-m',
          '2',
          '-o',
          '/dev/null',
          '-H',
          'x-amz-content-sha256: UNSIGNED-PAYLOAD',
          '--aws-sigv4',
          `aws:amz:${S3_REGION}:s3`,
          '--user',
          `${S3_ACCESS_KEY}:${S3_SECRET_KEY}`,
          `${S3_ENDPOINT}/`,
        ],
        { stdio: 'ignore' },
      );
      return true;
    } catch {
      return false;
    }
  }
}

function zombie(pid) {
  try {
    return /\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

function parseExports(text) {
  const out = {};
  for (const m of text.matchAll(/^export (\w+)=(.*)$/gm)) out[m[1]] = m[2].replace(/^'|'$/g, '');
  return out;
}
