/**
 * The clock: not behind the newest time coldvault wrote (a task's start or end, the newest version of
 * each readable datastore: a clock set back makes the scheduler, prune and garbage collection err),
 * and close to the clocks of the services it talks to (the Date of an S3 service's answer, of each
 * cluster node's `/api/v1/health`). More than SKEW_MS apart: a warning; behind coldvault's own
 * records by more than that: a failure.
 */
import { Datastore, S3Datastore } from '../../datastore/index.js';
import { PinnedAgent, pinnedFetch, type ClusterNodeConfig } from '../../targets/index.js';
import { folderStores } from './folder-stores.js';
import { within } from './probe.js';
import { type DoctorCheck, type DoctorSetup, type Finding, fail, ok, warn } from './types.js';

const CHECK = 'clock';
export const SKEW_MS = 5 * 60_000;
const ASK_MS = 10_000;

interface Stamp {
  time: Date;
  what: string;
}

export const clockCheck: DoctorCheck = {
  name: CHECK,
  async run(setup): Promise<Finding[]> {
    const [newest, others] = await Promise.all([newestRecord(setup), otherClocks(setup)]);
    const now = Date.now();
    const findings: Finding[] = [];
    if (newest && newest.time.getTime() > now + SKEW_MS) {
      findings.push(
        fail(
          CHECK,
          `this node's clock says ${new Date(now).toISOString()}, before ${newest.what} at ${newest.time.toISOString()}`,
          'set the clock right and keep it so (NTP: timedatectl set-ntp true, or chrony)',
        ),
      );
    }
    const skewed = others.filter((o) => Math.abs(o.time.getTime() - now) > SKEW_MS);
    for (const o of skewed) {
      findings.push(
        warn(
          CHECK,
          `${o.what} says ${o.time.toISOString()}, ${Math.round((o.time.getTime() - now) / 1000)} s from this node's clock`,
          'keep the clocks of all nodes and services in step (NTP)',
        ),
      );
    }
    if (findings.length > 0) return findings;
    const compared = others.length ? `; ${others.map((o) => o.what).join(', ')} agree within ${SKEW_MS / 60_000} min` : '';
    return [ok(CHECK, `${new Date(now).toISOString()}${newest ? `, after ${newest.what} (${newest.time.toISOString()})` : ''}${compared}`)];
  },
};

/** The newest task time and version time this node's records hold. */
async function newestRecord(setup: DoctorSetup): Promise<Stamp | undefined> {
  const stamps: Stamp[] = setup.tasks.flatMap((t) =>
    [t.start, t.end].filter((x): x is string => Boolean(x)).map((x) => ({ time: new Date(x), what: `task ${t.id}` })),
  );
  for (const store of folderStores(setup)) {
    const newest = await within(newestVersion(store.dir), ASK_MS, store.dir).catch(() => undefined); // an unreadable store is the datastores check's
    if (newest) stamps.push({ time: newest.time, what: `version ${newest.what} in '${store.dir}'` });
  }
  return stamps.filter((s) => !Number.isNaN(s.time.getTime())).sort((a, b) => b.time.getTime() - a.time.getTime())[0];
}

async function newestVersion(dir: string): Promise<Stamp | undefined> {
  const store = await Datastore.open(dir);
  let newest: Stamp | undefined;
  for (const guest of await store.listGuestIds()) {
    const last = (await store.listVersionNumbers(guest)).at(-1);
    if (last === undefined) continue;
    const time = new Date((await store.readManifest(guest, last)).time);
    if (!newest || time > newest.time) newest = { time, what: `${guest}/${last}` };
  }
  return newest;
}

/** The clocks of the S3 services and cluster nodes this node talks to (those that answer). */
async function otherClocks(setup: DoctorSetup): Promise<Stamp[]> {
  const asks = [
    ...Object.entries(setup.s3Datastores).map(([name, settings]) => s3Clock(name, settings)),
    ...(setup.cluster?.nodes ?? []).filter((n) => n.name !== setup.node).map(nodeClock),
  ];
  return (await Promise.all(asks.map((ask) => within(ask, ASK_MS, 'a clock').catch(() => undefined)))).filter((s): s is Stamp => s !== undefined);
}

async function s3Clock(name: string, settingsOf: DoctorSetup['s3Datastores'][string]): Promise<Stamp> {
  const store = await S3Datastore.open(settingsOf());
  try {
    return { time: await store.client.serverTime(), what: `the S3 service of datastore ${name}` };
  } finally {
    store.close();
  }
}

async function nodeClock(node: ClusterNodeConfig): Promise<Stamp | undefined> {
  const url = new URL('/api/v1/health', node.url);
  let agent: PinnedAgent | undefined;
  try {
    if (url.protocol === 'https:' && !node.fingerprint) return undefined;
    agent = url.protocol === 'https:' ? new PinnedAgent({ fingerprint: node.fingerprint as string, connectTimeoutMs: ASK_MS }) : undefined;
    const res = agent ? await pinnedFetch(url, { agent, idleTimeoutMs: ASK_MS }) : await fetch(url, { signal: AbortSignal.timeout(ASK_MS) });
    await res.text(); // read to the end: cancelling pinnedFetch's body stream makes Node throw once more data arrives
    const date = res.headers.get('date');
    return date ? { time: new Date(date), what: `node ${node.name}` } : undefined;
  } catch {
    return undefined; // an unreachable node is the cluster check's
  } finally {
    agent?.destroy();
  }
}
