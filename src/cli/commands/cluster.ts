/** `coldvault cluster status [--json]`: the ring as this node sees it (jobs/cluster-status.ts). */
import { ColdvaultError } from '../../core/index.js';
import { clusterStatus, type ClusterStatus } from '../../jobs/index.js';
import type { OptionSpec } from '../args.js';
import type { CommandContext } from '../context.js';

export const clusterOptions: OptionSpec = {};
export const clusterHelp = `coldvault cluster status [--json]
  The nodes of the config's cluster ring: which one this node sends its backups to (the previous one)
  and receives from (the next one), whether each answers and presents the pinned certificate, whether
  the token works for each store this node's cluster jobs push to, the last push each way, and on
  which node each cluster job's external disk must be plugged in.`;

export async function clusterCommand(ctx: CommandContext): Promise<number> {
  const [sub, ...rest] = ctx.args.positionals;
  if (sub !== 'status' || rest.length > 0) throw new ColdvaultError('USAGE', `coldvault cluster: expected 'status', got '${ctx.args.positionals.join(' ')}'`);
  const { jobs, tasks } = ctx.state();
  const status = await clusterStatus(ctx.config.cluster, ctx.config.node, jobs.list(), tasks.list(500));
  if (ctx.json) ctx.printJson(status);
  else ctx.print(render(status));
  const healthy = status.nodes.every((n) => n.reachable && n.fingerprintOk !== false) && status.stores.every((s) => s.ok);
  return healthy ? 0 : 1;
}

function render(s: ClusterStatus): string {
  const rows = s.nodes.map((n) => {
    const reach = n.reachable ? 'reachable' : 'UNREACHABLE';
    const pin = n.fingerprintOk === null ? '' : n.fingerprintOk ? ', fingerprint ok' : ', FINGERPRINT WRONG';
    return `${n.name.padEnd(12)} ${n.role.padEnd(24)} ${n.url.padEnd(28)} ${n.role === 'self' ? '' : `${reach}${pin}`}${n.problem ? ` (${n.problem})` : ''}`;
  });
  const stores = s.stores.map(
    (st) =>
      `  ${st.kind === 's3' ? 'S3 datastore' : 'datastore'} '${st.store}' on ${s.sendsTo} (jobs ${st.jobs.join(', ')}): ${st.ok ? 'token ok' : `REFUSED: ${st.problem ?? ''}`}`,
  );
  const last = (r: ClusterStatus['lastPush']): string => (r ? `${r.time} ${r.status} (task ${r.task})` : 'none yet');
  return [
    `node ${s.node}: sends its backups to ${s.sendsTo}, receives those of ${s.receivesFrom}`,
    '',
    ...rows,
    '',
    ...(stores.length ? ['pushes:', ...stores] : [`no cluster-mode job on this node`]),
    `last push to ${s.sendsTo}: ${last(s.lastPush)}`,
    `last push received from ${s.receivesFrom}: ${last(s.lastReceived)}`,
    ...s.disks.map((d) => `job ${d.job}: plug the external disk ${d.device} into node ${d.node}`),
  ].join('\n');
}
