/**
 * One node of a Cluster (netns.ts): its namespace and veth, its folder and config file, its
 * `coldvault serve`, and every command run as that node (`nsenter --net=/run/netns/<ns> node
 * bin/coldvault.js ...` with `COLDVAULT_CONFIG` set to its config). It has the fields of a test Lab
 * (root, guestsDir, storageDir, storeDir, flags), so writeGuest / writeImage / imagePath work on it.
 *
 * nsenter (util-linux), not `ip netns exec`: only the network namespace changes. `ip netns exec`
 * also gives every command a mount namespace of its own, so a disk that a node's serve mounts (the
 * external disk at the receiving node) would be seen neither by the test nor by the node's other
 * commands; with nsenter a node's processes share the mounts, as on a real machine.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Datastore } from '../../dist/datastore/index.js';
import { CLI, type CliResult, type Lab } from './fixtures.js';
import { ip } from './netns-ip.js';
import { startServe, type ServeProcess } from './serve-process.js';

export interface NodeOptions {
  index: number;
  ns: string;
  bridgeNs: string;
  /** the node's end of its veth; the bridge's end is this name + `b` */
  veth: string;
  address: string;
  port: number;
  root: string;
  /** extra keys of its config file */
  config: Record<string, unknown>;
}

export interface Target {
  url: string;
  fingerprint: string;
}

const STOP_GRACE_MS = 10_000;

export class ClusterNode implements Lab, Target {
  readonly name: string;
  readonly index: number;
  readonly ns: string;
  readonly address: string;
  readonly port: number;
  readonly veth: string;
  readonly bridgeNs: string;
  readonly root: string;
  readonly stateDir: string;
  readonly guestsDir: string;
  readonly storageDir: string;
  /** the folder of datastore `main` */
  readonly storeDir: string;
  readonly configPath: string;
  /** `https://<address>:<port>` (no trailing slash) */
  readonly url: string;
  /** SHA-256 of serve's certificate (`coldvault cert fingerprint` in the namespace), AB:CD:... */
  fingerprint = '';
  /** the running serve, if any */
  serve: ServeProcess | undefined;

  private constructor(opts: NodeOptions) {
    this.name = `node${opts.index}`;
    this.index = opts.index;
    this.ns = opts.ns;
    this.address = opts.address;
    this.port = opts.port;
    this.veth = opts.veth;
    this.bridgeNs = opts.bridgeNs;
    this.root = opts.root;
    this.stateDir = join(opts.root, 'state');
    this.guestsDir = join(opts.root, 'guests');
    this.storageDir = join(opts.root, 'vz');
    this.storeDir = join(opts.root, 'store-main');
    this.configPath = join(opts.root, 'coldvault.json');
    this.url = `https://${opts.address}:${opts.port}`;
  }

  /** Namespace, veth on the bridge, address, folders, config, datastore `main`, certificate. */
  static async create(opts: NodeOptions, bridge: string): Promise<ClusterNode> {
    const node = new ClusterNode(opts);
    await node.wire(bridge);
    node.makeFolders(opts.config);
    await Datastore.init(node.storeDir);
    node.fingerprint = await node.certFingerprint();
    return node;
  }

  /** `--store <main's folder> --guests-dir ... --storage local=...` (the Lab flags; the config says the same) */
  get flags(): string[] {
    return ['--store', this.storeDir, '--guests-dir', this.guestsDir, '--storage', `local=${this.storageDir}`];
  }

  /** Lab's cleanup: the Cluster removes the folder. */
  cleanup(): void {}

  /** The node's config file as JSON. */
  config(): Record<string, unknown> {
    return JSON.parse(readFileSync(this.configPath, 'utf8')) as Record<string, unknown>;
  }

  /** Merges keys into the config file (serve reads it at its next start). */
  updateConfig(keys: Record<string, unknown>): void {
    writeFileSync(this.configPath, JSON.stringify({ ...this.config(), ...keys }, null, 2), { mode: 0o600 });
  }

  /** Runs `command args...` in the node's namespace (env: COLDVAULT_CONFIG and `env`). */
  exec(command: string, args: string[], env: Record<string, string> = {}): Promise<CliResult> {
    return new Promise((resolve) => {
      execFile('nsenter', [this.netArg, command, ...args], { env: this.env(env), maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
        resolve({ code, stdout, stderr });
      });
    });
  }

  /** Starts `command args...` in the node's namespace without waiting (stdout and stderr piped). */
  spawn(command: string, args: string[], env: Record<string, string> = {}): ChildProcess {
    return spawn('nsenter', [this.netArg, command, ...args], { env: this.env(env), stdio: ['ignore', 'pipe', 'pipe'] });
  }

  /** `coldvault ARGS` as this node: in its namespace, with its config file. */
  cli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
    return this.exec(process.execPath, [CLI, ...args], env);
  }

  /** `coldvault ARGS --json` as this node; throws with stderr unless it exits 0. */
  async cliJson<T>(args: string[]): Promise<T> {
    const r = await this.cli([...args, '--json']);
    if (r.code !== 0) throw new Error(`${this.name}: coldvault ${args.join(' ')} exited ${r.code}:\n${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  }

  /** A scoped token (`coldvault token create NAME --role backup --store STORE` on this node): the secret. */
  async token(name: string, store = 'main'): Promise<string> {
    const r = await this.cli(['token', 'create', name, '--role', 'backup', '--store', store]);
    if (r.code !== 0) throw new Error(`${this.name}: token create ${name} exited ${r.code}:\n${r.stderr}`);
    return r.stdout.split('\n')[0] ?? '';
  }

  /** Starts serve; resolves once it listens (throws when its printed fingerprint is not `fingerprint`). */
  async start(): Promise<ServeProcess> {
    if (this.serve) throw new Error(`${this.name}: serve is running already`);
    const serve = await startServe([], 30_000, (args) => this.spawn(process.execPath, [CLI, ...args]));
    this.serve = serve;
    if (serve.url !== this.url || serve.fingerprint !== this.fingerprint) {
      throw new Error(`${this.name}: serve listens on ${serve.url} with ${serve.fingerprint}, expected ${this.url} with ${this.fingerprint}`);
    }
    return serve;
  }

  /** kill -9 of serve; resolves once it is gone. */
  async kill(): Promise<void> {
    const serve = this.serve;
    this.serve = undefined;
    if (!serve || serve.child.exitCode !== null || serve.child.signalCode !== null) return;
    const gone = new Promise((resolve) => serve.child.once('exit', resolve));
    serve.child.kill('SIGKILL');
    await gone;
  }

  /** SIGTERM to serve (SIGKILL after 10 s); resolves with its exit code. */
  async stop(): Promise<number | null> {
    const serve = this.serve;
    this.serve = undefined;
    if (!serve) return null;
    const timer = setTimeout(() => serve.child.kill('SIGKILL'), STOP_GRACE_MS);
    try {
      return await serve.stop();
    } finally {
      clearTimeout(timer);
    }
  }

  /** Cuts the node's link: its port on the bridge goes down (the cable pulled at the switch). */
  async cutLink(): Promise<void> {
    await ip('-n', this.bridgeNs, 'link', 'set', `${this.veth}b`, 'down');
  }

  async restoreLink(): Promise<void> {
    await ip('-n', this.bridgeNs, 'link', 'set', `${this.veth}b`, 'up');
  }

  /** nsenter's argument: this node's network namespace only (execs the command: its pid is the command's) */
  private get netArg(): string {
    return `--net=/run/netns/${this.ns}`;
  }

  private env(extra: Record<string, string>): NodeJS.ProcessEnv {
    return { ...process.env, COLDVAULT_CONFIG: this.configPath, ...extra };
  }

  private async wire(bridge: string): Promise<void> {
    const port = `${this.veth}b`;
    await ip('netns', 'add', this.ns);
    await ip('-n', this.bridgeNs, 'link', 'add', port, 'type', 'veth', 'peer', 'name', this.veth, 'netns', this.ns);
    await ip('-n', this.bridgeNs, 'link', 'set', port, 'master', bridge, 'up');
    await ip('-n', this.ns, 'link', 'set', 'lo', 'up');
    await ip('-n', this.ns, 'addr', 'add', `${this.address}/24`, 'dev', this.veth);
    await ip('-n', this.ns, 'link', 'set', this.veth, 'up');
  }

  private makeFolders(extra: Record<string, unknown>): void {
    for (const dir of [this.root, this.stateDir, this.guestsDir, join(this.storageDir, 'images')]) mkdirSync(dir, { recursive: true, mode: 0o700 });
    const config = {
      node: this.name,
      stateDir: this.stateDir,
      guestsDir: this.guestsDir,
      storages: { local: this.storageDir },
      datastores: { main: this.storeDir },
      hypervisor: { driver: 'none' },
      listen: `${this.address}:${this.port}`,
      ...extra,
    };
    writeFileSync(this.configPath, JSON.stringify(config, null, 2), { mode: 0o600 });
  }

  private async certFingerprint(): Promise<string> {
    return (await this.cliJson<{ fingerprint: string }>(['cert', 'fingerprint'])).fingerprint;
  }
}
