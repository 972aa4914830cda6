/**
 * The cluster ring (config `cluster`), as `coldvault cluster status` sees it (jobs/cluster-status.ts):
 * each node answers and presents its pinned certificate, and the node this one pushes to takes the
 * token for each datastore a cluster job pushes into. The node pushed to matters most: trouble there
 * fails tonight's pushes; trouble with the others is a warning. No `cluster`: nothing to check.
 */
import { describeError } from '../../core/index.js';
import { clusterStatus, type ClusterStatus, type NodeStatus } from '../cluster-status.js';
import { type DoctorCheck, type Finding, fail, ok, warn } from './types.js';

const CHECK = 'cluster';

export const clusterCheck: DoctorCheck = {
  name: CHECK,
  async run({ cluster, node, jobs, tasks }): Promise<Finding[]> {
    if (!cluster) return [];
    let status: ClusterStatus;
    try {
      status = await clusterStatus(cluster, node, jobs, tasks);
    } catch (err) {
      return [fail(CHECK, describeError(err), `give this node (config 'node': '${node}') its place in cluster.nodes`)];
    }
    const nodes = status.nodes.filter((n) => n.role !== 'self').map(nodeFinding);
    const stores = status.stores.map((s) =>
      s.ok
        ? ok(`${CHECK} node ${status.sendsTo}`, `datastore '${s.store}' takes this node's token (jobs ${s.jobs.join(', ')})`)
        : fail(
            `${CHECK} node ${status.sendsTo}`,
            `datastore '${s.store}' refuses this node's token (jobs ${s.jobs.join(', ')}): ${s.problem ?? ''}`,
            `on node ${status.sendsTo}: 'coldvault token create ${node} --role backup --store ${s.store}', and put the token in cluster.nodes (token, tokenFile or tokens.${s.store}) here`,
          ),
    );
    return [...nodes, ...stores];
  },
};

function nodeFinding(n: NodeStatus): Finding {
  const check = `${CHECK} node ${n.name}`;
  const judge = n.role.includes('sends-to') ? fail : warn;
  if (!n.reachable) {
    return judge(
      check,
      `${n.url} (${n.role}) does not answer: ${n.problem ?? ''}`,
      `start coldvault serve on ${n.name}, or correct its url in cluster.nodes (address, port, firewall)`,
    );
  }
  if (n.fingerprintOk === false) {
    return judge(
      check,
      `${n.url} (${n.role}) presents another certificate: ${n.problem ?? ''}`,
      `run 'coldvault cert fingerprint' on ${n.name}; if it prints the presented one, put it in cluster.nodes (fingerprint); if not, something else answers at ${n.url}`,
    );
  }
  return ok(check, `${n.url} (${n.role}) answers${n.fingerprintOk ? ' with its pinned certificate' : ''}`);
}
