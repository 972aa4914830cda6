/**
 * The ring: config `cluster: {nodes: [{name, url, fingerprint, token | tokenFile}]}` in ring order.
 * Each node's backups land on the previous node, the first node's on the last (the seed's cluster
 * mode), so every node's guests survive the loss of that node; a node receives from the next one.
 * `name` is each node's config `node`; `token` (or `tokenFile`, a file holding it, better kept 0600)
 * is the scoped token the node named there issued for this node (`coldvault token create NAME --role
 * backup --store STORE` on that node). A backup token reaches one datastore: for pushes into several
 * datastores of one node (`main` and a carried-away disk's `usb`), `tokens: {"usb": "..."}` gives the
 * token per datastore (`token` stays the one for any other). This node's own entry needs only `name`
 * and `url`.
 * Every refusal is CONFIG_INVALID naming the entry and the field.
 */
import { readFileSync } from 'node:fs';
import { ColdvaultError, parseFingerprint } from '../../core/index.js';
import type { RemoteStoreOptions } from './store-options.js';

export interface ClusterNodeConfig {
  name: string;
  /** `https://HOST:PORT` of that node's `coldvault serve` */
  url: string;
  /** SHA-256 fingerprint of its certificate (`coldvault cert fingerprint` there) */
  fingerprint?: string;
  /** the token that node issued for this one */
  token?: string;
  /** a file holding that token (instead of `token`) */
  tokenFile?: string;
  /** tokens per datastore of that node, where one token does not reach them all */
  tokens?: Record<string, string>;
}

export interface ClusterConfig {
  nodes: ClusterNodeConfig[];
  /** seconds without a byte either way before a request to a node fails (default 60): a cut link ends a push then */
  timeoutSeconds?: number;
}

/** Where this node's backups go and whose it receives, in a ring of at least two nodes. */
export interface RingPlace {
  self: ClusterNodeConfig;
  /** the previous node: this node's backups land there */
  sendsTo: ClusterNodeConfig;
  /** the next node: its backups land here */
  receivesFrom: ClusterNodeConfig;
}

const NODE_KEYS = new Set(['name', 'url', 'fingerprint', 'token', 'tokenFile', 'tokens']);
const NODE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

function invalid(where: string, message: string): ColdvaultError {
  return new ColdvaultError('CONFIG_INVALID', `${where}: ${message}`);
}

/** Checks the config's `cluster` value (`where`: "config file '/etc/coldvault.json'"). */
export function checkClusterConfig(value: unknown, where: string): ClusterConfig {
  const nodes = (value as { nodes?: unknown } | null)?.nodes;
  if (typeof value !== 'object' || value === null || Object.keys(value).some((k) => k !== 'nodes' && k !== 'timeoutSeconds') || !Array.isArray(nodes)) {
    throw invalid(where, `'cluster' must be {"nodes": [{"name", "url", "fingerprint", "token"}, ...], "timeoutSeconds"?: N} in ring order`);
  }
  const timeoutSeconds = (value as { timeoutSeconds?: unknown }).timeoutSeconds;
  if (timeoutSeconds !== undefined && (typeof timeoutSeconds !== 'number' || !Number.isInteger(timeoutSeconds) || timeoutSeconds < 1)) {
    throw invalid(where, `cluster.timeoutSeconds must be a whole number of seconds >= 1, got ${JSON.stringify(timeoutSeconds)}`);
  }
  const checked = nodes.map((node, i) => checkNode(node, `${where}: cluster.nodes[${i}]`));
  const names = checked.map((n) => n.name);
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice) throw invalid(where, `cluster node '${twice}' is listed twice`);
  return timeoutSeconds === undefined ? { nodes: checked } : { nodes: checked, timeoutSeconds };
}

function checkNode(node: unknown, where: string): ClusterNodeConfig {
  if (typeof node !== 'object' || node === null || Array.isArray(node)) throw invalid(where, 'must be an object {"name", "url", "fingerprint", "token"}');
  const entry = node as Record<string, unknown>;
  const unknown = Object.keys(entry).filter((k) => !NODE_KEYS.has(k));
  if (unknown.length > 0) throw invalid(where, `unknown key(s) ${unknown.join(', ')}`);
  for (const key of NODE_KEYS)
    if (key !== 'tokens' && entry[key] !== undefined && typeof entry[key] !== 'string') throw invalid(where, `'${key}' must be a string`);
  const tokens = entry.tokens;
  if (tokens !== undefined && (typeof tokens !== 'object' || tokens === null || Object.values(tokens).some((t) => typeof t !== 'string'))) {
    throw invalid(where, `'tokens' must map datastore names to tokens`);
  }
  const { name, url, fingerprint, token, tokenFile } = entry as Partial<ClusterNodeConfig>;
  if (!name || !NODE_NAME.test(name)) throw invalid(where, `'name' must be the node's name (its config 'node'), got '${name ?? ''}'`);
  if (!url || !/^https?:\/\/[^/]+\/?$/.test(url)) throw invalid(`${where} (${name})`, `'url' must be https://HOST:PORT, got '${url ?? ''}'`);
  if (token !== undefined && tokenFile !== undefined) throw invalid(`${where} (${name})`, "give 'token' or 'tokenFile', not both");
  const pinned = fingerprint === undefined ? undefined : parseFingerprint(fingerprint, `${where} (${name}) fingerprint`);
  return { name, url, token, tokenFile, fingerprint: pinned, ...(tokens === undefined ? {} : { tokens: tokens as Record<string, string> }) };
}

/** This node's place in the ring; CONFIG_INVALID when it has no cluster, is not in it, or the ring has one node. */
export function ringPlace(cluster: ClusterConfig | undefined, self: string): RingPlace {
  const nodes = cluster?.nodes ?? [];
  const at = nodes.findIndex((n) => n.name === self);
  if (at < 0) {
    const listed = nodes.map((n) => n.name).join(', ') || 'none';
    throw new ColdvaultError(
      'CONFIG_INVALID',
      `this node '${self}' is not in the config's cluster.nodes (listed: ${listed}): cluster mode needs it there, in ring order`,
    );
  }
  if (nodes.length < 2) throw new ColdvaultError('CONFIG_INVALID', `the cluster has only node '${self}': a ring needs at least two nodes`);
  const n = nodes.length;
  return {
    self: nodes[at] as ClusterNodeConfig,
    sendsTo: nodes[(at - 1 + n) % n] as ClusterNodeConfig,
    receivesFrom: nodes[(at + 1) % n] as ClusterNodeConfig,
  };
}

/** The node named `name` in the cluster config; CONFIG_INVALID naming the known ones otherwise. */
export function clusterNode(cluster: ClusterConfig | undefined, name: string): ClusterNodeConfig {
  const node = cluster?.nodes.find((n) => n.name === name);
  if (node) return node;
  const listed = cluster?.nodes.map((n) => n.name).join(', ') || 'none';
  throw new ColdvaultError('CONFIG_INVALID', `no node '${name}' in the config's cluster.nodes (listed: ${listed})`);
}

/** Options for a RemoteStore of datastore `store` on `node`; the token is read from tokenFile when given. */
export function remoteStoreOptions(node: ClusterNodeConfig, store: string, extra: Partial<RemoteStoreOptions> = {}): RemoteStoreOptions {
  return { url: node.url, fingerprint: node.fingerprint, token: node.tokens?.[store] ?? nodeToken(node), store, ...extra };
}

/**
 * Options for a RemoteStore of datastore `store` on node `nodeName` of the ring, with the ring's request
 * timeout (config cluster.timeoutSeconds): for every client of a node (push, restore, verify, list,
 * export, boot test, sync) but `cluster status`'s probe, which has short ones of its own.
 * CONFIG_INVALID naming the listed nodes when there is no such node.
 */
export function ringStoreOptions(
  cluster: ClusterConfig | undefined,
  nodeName: string,
  store: string,
  extra: Partial<RemoteStoreOptions> = {},
): RemoteStoreOptions {
  return remoteStoreOptions(clusterNode(cluster, nodeName), store, { timeouts: clusterTimeouts(cluster), ...extra });
}

/** The request timeouts of the ring (config cluster.timeoutSeconds), for RemoteStoreOptions.timeouts. */
export function clusterTimeouts(cluster: ClusterConfig | undefined): { idleMs?: number } {
  return cluster?.timeoutSeconds ? { idleMs: cluster.timeoutSeconds * 1000 } : {};
}

function nodeToken(node: ClusterNodeConfig): string {
  if (node.token) return node.token;
  if (!node.tokenFile) {
    throw new ColdvaultError(
      'CONFIG_INVALID',
      `cluster node '${node.name}' has no 'token': create one there (coldvault token create NAME --role backup --store STORE) and put it here`,
    );
  }
  try {
    return readFileSync(node.tokenFile, 'utf8').trim();
  } catch (err) {
    throw new ColdvaultError('CONFIG_INVALID', `the token file '${node.tokenFile}' of cluster node '${node.name}' cannot be read`, { cause: err });
  }
}
