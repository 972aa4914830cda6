/**
 * Two (or more) coldvault nodes for bench/cluster.mjs, each a real `coldvault serve` (the built CLI) in
 * its own network namespace, as test/helpers/netns.ts builds them for the tests (that file is
 * TypeScript, so the bench has this small copy in plain JS):
 *
 *   <run>-br   a namespace holding only the bridge `br0` (no address: a switch)
 *   <run>-nK   node K: `lo` up and one veth `<tag>nK` with 198.18.<x>.K/24; its peer `<tag>nKb` is a
 *              port of br0. No default route, nothing made in the root namespace.
 *
 * Commands run as a node with `nsenter --net=/run/netns/<ns>` (only the network namespace changes;
 * `ip netns exec` would also give each a mount namespace of its own) and `COLDVAULT_CONFIG` set to the
 * node's config file. `destroy()` stops the serves, kills what runs in the namespaces, deletes them
 * (their veths go with them); it is also run synchronously on exit and on SIGINT / SIGTERM.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sh } from './exec.mjs';

const BRIDGE = 'br0';
const READY = /on (https?:\/\/\S+?)\/? \(node/;

const ip = (...args) => sh('ip', args);
const nsList = () =>
  sh('ip', ['netns', 'list'], { allowFail: true })
    .split('\n')
    .map((l) => l.split(' ')[0])
    .filter(Boolean);

/** SIGKILLs every process of namespace `ns` (bounded wait), then deletes it. */
function killNamespace(ns) {
  for (let round = 0; round < 50; round++) {
    const pids = sh('ip', ['netns', 'pids', ns], { allowFail: true }).split('\n').filter(Boolean).map(Number);
    if (pids.length === 0) break;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    execFileSync('sleep', ['0.1']);
  }
  sh('ip', ['netns', 'del', ns], { allowFail: true });
}

/** A /24 of 198.18.0.0/15 that the root namespace neither routes nor holds an address in. */
function pickSubnet() {
  const taken = sh('ip', ['-4', '-o', 'route', 'show', 'table', 'all']) + sh('ip', ['-4', '-o', 'addr', 'show']);
  for (let attempt = 0; attempt < 64; attempt++) {
    const third = Math.floor(Math.random() * 256);
    const prefix = `198.${18 + (attempt % 2)}.${third}`;
    if (!taken.includes(`${prefix}.`) && !/\b198\.1[89]\.0\.0\/15\b/.test(taken)) return prefix;
  }
  throw new Error('no free /24 in 198.18.0.0/15 in the root namespace');
}

export class BenchNode {
  constructor({ index, ns, veth, address, root, cli }) {
    Object.assign(this, { index, ns, veth, address, root, cli });
    this.name = `node${index}`;
    this.port = 8007;
    this.url = `https://${address}:${this.port}`;
    this.stateDir = join(root, 'state');
    this.guestsDir = join(root, 'guests');
    this.storageDir = join(root, 'vz');
    this.storeDir = join(root, 'store-main');
    this.configPath = join(root, 'coldvault.json');
    this.serve = undefined;
    this.fingerprint = '';
    /** CPUs this node's processes may run on (`taskset -c`), e.g. '0'; undefined: all */
    this.cpus = undefined;
  }

  get env() {
    return { ...process.env, COLDVAULT_CONFIG: this.configPath };
  }

  /** argv prefix that runs a command in this node's network namespace */
  nsArgv(command, args) {
    const pin = this.cpus === undefined ? [] : ['taskset', '-c', this.cpus];
    return ['nsenter', [`--net=/run/netns/${this.ns}`, ...pin, command, ...args]];
  }

  /** `coldvault ARGS` as this node, unmeasured; throws unless it exits 0 */
  run(args) {
    const [cmd, argv] = this.nsArgv(process.execPath, [this.cli, ...args]);
    return sh(cmd, argv, { env: this.env });
  }

  makeFolders(extra = {}) {
    for (const d of [this.root, this.stateDir, this.guestsDir, join(this.storageDir, 'images')]) mkdirSync(d, { recursive: true, mode: 0o700 });
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

  updateConfig(keys) {
    const now = JSON.parse(readFileSync(this.configPath, 'utf8'));
    writeFileSync(this.configPath, JSON.stringify({ ...now, ...keys }, null, 2), { mode: 0o600 });
  }

  /** Starts `coldvault serve` (`nodeArgs`: e.g. --cpu-prof); resolves once it printed its URL and fingerprint. */
  start(nodeArgs = [], timeoutMs = 30_000) {
    const [cmd, argv] = this.nsArgv(process.execPath, [...nodeArgs, this.cli, 'serve']);
    const env = { ...this.env, COLDVAULT_ADMIN_PASSWORD: randomBytes(12).toString('hex') };
    const child = spawn(cmd, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`${this.name}: serve did not start within ${timeoutMs} ms:\n${out}`));
      }, timeoutMs);
      const onData = (b) => {
        out += b.toString();
        if (!READY.test(out) || !/fingerprint \S+\n/.test(out)) return;
        clearTimeout(timer);
        this.serve = child;
        resolve(child);
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.once('exit', (code) => {
        clearTimeout(timer);
        if (this.serve === child) this.serve = undefined;
        reject(new Error(`${this.name}: serve exited with ${code}:\n${out}`));
      });
    });
  }

  /** SIGTERM to serve (SIGKILL after 10 s); resolves once it is gone. */
  async stop() {
    const child = this.serve;
    this.serve = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await gone;
    clearTimeout(timer);
  }

  /** CPU seconds (user + sys) serve used so far, from /proc (its pid is node's: nsenter execs it) */
  serveCpuSeconds() {
    if (!this.serve?.pid) return NaN;
    const fields = readFileSync(`/proc/${this.serve.pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  }
}

export class BenchCluster {
  constructor(root, cli) {
    this.tag = randomBytes(2).toString('hex');
    this.id = `cvb-${process.pid}-${this.tag}`;
    this.root = root;
    this.cli = cli;
    this.nodes = [];
    this.destroyed = false;
    this.onExit = () => this.destroySync();
    process.on('exit', this.onExit);
  }

  get bridgeNs() {
    return `${this.id}-br`;
  }

  /** namespaces, bridge, veths, addresses, folders, configs, datastore `main`, certificates */
  build(count) {
    const prefix = pickSubnet();
    this.subnet = `${prefix}.0/24`;
    ip('netns', 'add', this.bridgeNs);
    ip('-n', this.bridgeNs, 'link', 'add', BRIDGE, 'type', 'bridge');
    ip('-n', this.bridgeNs, 'link', 'set', BRIDGE, 'up');
    for (let index = 1; index <= count; index++) {
      const node = new BenchNode({
        index,
        ns: `${this.id}-n${index}`,
        veth: `cvb${this.tag}n${index}`,
        address: `${prefix}.${index}`,
        root: join(this.root, `node${index}`),
        cli: this.cli,
      });
      this.nodes.push(node);
      ip('netns', 'add', node.ns);
      ip('-n', this.bridgeNs, 'link', 'add', `${node.veth}b`, 'type', 'veth', 'peer', 'name', node.veth, 'netns', node.ns);
      ip('-n', this.bridgeNs, 'link', 'set', `${node.veth}b`, 'master', BRIDGE, 'up');
      ip('-n', node.ns, 'link', 'set', 'lo', 'up');
      ip('-n', node.ns, 'addr', 'add', `${node.address}/24`, 'dev', node.veth);
      ip('-n', node.ns, 'link', 'set', node.veth, 'up');
      node.makeFolders();
      node.run(['datastore', 'init', node.storeDir]);
      node.fingerprint = JSON.parse(node.run(['cert', 'fingerprint', '--json'])).fingerprint;
    }
    return this;
  }

  /** veth MTU and qdisc of a node (what the link is) */
  linkInfo(node) {
    return sh('ip', ['-n', node.ns, '-o', 'link', 'show', node.veth]).replace(/\\\s+/g, ' ');
  }

  async destroy() {
    await Promise.allSettled(this.nodes.map((n) => n.stop()));
    this.destroySync();
  }

  destroySync() {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const ns of new Set([...this.nodes.map((n) => n.ns), this.bridgeNs, ...nsList().filter((n) => n.startsWith(`${this.id}-`))])) killNamespace(ns);
    process.off('exit', this.onExit);
  }
}

/** Namespaces of earlier bench runs whose process is dead (a kill -9 of the bench): removed. */
export function sweepStaleBenchNamespaces() {
  for (const ns of nsList()) {
    const pid = Number(/^cvb-(\d+)-[0-9a-f]{4}-(br|n\d+)$/.exec(ns)?.[1] ?? 0);
    if (!pid) continue;
    let alive = true;
    try {
      process.kill(pid, 0);
    } catch (err) {
      alive = err.code === 'EPERM';
    }
    if (!alive) killNamespace(ns);
  }
}
