/**
 * Roles: what a principal may do. Every API token has a role (`coldvault token create --role`); the
 * web login and the CLI run as root are `admin`.
 *
 *   admin     everything
 *   operator  reads everything; runs jobs, verifies, restores to new guest ids; creates and edits jobs
 *             but not their scripts, hook, external device or webhook URL and secret; no `force`, no prune; a restore by an
 *             operator leaves out the archived `args:` and `hookscript:` lines (Proxmox lets only
 *             root set them: QEMU arguments and a script run as root when the guest starts)
 *   audit     reads everything (GETs, task logs, metrics); changes nothing, starts nothing
 *   backup    scoped to one datastore: reads that store's versions and nothing else; cluster mode's
 *             push into that store will be the action `store.write`
 *
 * `decide` is the one place these rules live: role + scope + action + store -> allowed, or a refusal
 * naming the role, the action and the store. A scoped role asked about a store-scoped action without
 * a store is allowed with `onlyStore` set: the caller must narrow what it answers to that store.
 */

export const ROLES = ['admin', 'operator', 'audit', 'backup'] as const;
export type Role = (typeof ROLES)[number];

/** A role, and for `backup` the one datastore (its configured name) it is scoped to. */
export interface Grant {
  role: Role;
  store?: string;
}

export type Action =
  | 'session' // logout, who am I, the OpenAPI document
  | 'read' // status, guests, jobs, tasks and their logs, metrics, devices
  | 'versions.read' // the versions of a store (store-scoped)
  | 'versions.lease' // hold a version against prune while another node reads it (store-scoped)
  | 'store.write' // push versions into a store (cluster mode; store-scoped)
  | 'job.edit' // create, replace, delete a job
  | 'job.edit-privileged' // set or change a job's scripts, hook, external device or webhook URL and secret
  | 'job.run'
  | 'devices.probe' // mount external disks read-only for a moment, to see whose datastore they hold
  | 'verify'
  | 'prune'
  | 'restore' // to a new guest id
  | 'restore.force' // over an existing guest
  | 'restore.privileged-config'; // keep the archived args: and hookscript: lines

interface Rule {
  roles: readonly Role[];
  /** the action concerns one store: a scoped grant allows it on its own store only */
  scoped?: boolean;
  /** for messages: "may not <does>" */
  does: string;
}

const ALL: readonly Role[] = ROLES;
const READERS: readonly Role[] = ['admin', 'operator', 'audit'];
const OPERATORS: readonly Role[] = ['admin', 'operator'];
const ADMIN: readonly Role[] = ['admin'];

export const RULES: Readonly<Record<Action, Rule>> = {
  session: { roles: ALL, does: 'use its session' },
  read: { roles: READERS, does: "read the server's state (status, guests, jobs, tasks, metrics, devices)" },
  'versions.read': { roles: ALL, scoped: true, does: 'read the versions' },
  // a lease changes what prune does, so audit (which changes nothing) may not take one
  'versions.lease': { roles: ['admin', 'operator', 'backup'], scoped: true, does: 'hold versions against prune' },
  'store.write': { roles: ['admin', 'backup'], scoped: true, does: 'write versions' },
  'job.edit': { roles: OPERATORS, does: 'create, change or delete jobs' },
  'job.edit-privileged': { roles: ADMIN, does: "set or change a job's scripts, hook, external device or webhook" },
  'job.run': { roles: OPERATORS, does: 'run jobs' },
  'devices.probe': { roles: OPERATORS, does: 'mount external disks read-only to see whose datastore they hold' },
  verify: { roles: OPERATORS, does: 'verify versions' },
  prune: { roles: ADMIN, does: 'prune versions' },
  restore: { roles: OPERATORS, does: 'restore guests' },
  'restore.force': { roles: ADMIN, does: 'restore over an existing guest (force)' },
  'restore.privileged-config': { roles: ADMIN, does: 'restore the archived args: and hookscript: lines' },
};

/** Roles whose grant names one store. */
const SCOPED_ROLES: ReadonlySet<Role> = new Set(['backup']);

export type Decision = { allowed: true; onlyStore?: string } | { allowed: false; message: string };

/** The one decision: may `grant` do `action` (on `store`, a configured datastore's name, when the action concerns one)? */
export function decide(grant: Grant, action: Action, store?: string): Decision {
  const rule = RULES[action];
  const who = describeGrant(grant);
  const on = store === undefined ? '' : rule.scoped ? ` of store '${store}'` : ` (store '${store}')`;
  if (!rule.roles.includes(grant.role)) return { allowed: false, message: `${who} may not ${rule.does}${on}` };
  if (!SCOPED_ROLES.has(grant.role) || !rule.scoped) return { allowed: true };
  if (store === undefined) return { allowed: true, onlyStore: grant.store };
  if (store === grant.store) return { allowed: true };
  return { allowed: false, message: `${who} may not ${rule.does}${on}` };
}

/** The keys a restore leaves out of the config when the grant may not restore them. */
export const PRIVILEGED_CONFIG_KEYS = ['args', 'hookscript'] as const;

function describeGrant(grant: Grant): string {
  return SCOPED_ROLES.has(grant.role) ? `role '${grant.role}' (store '${grant.store ?? '?'}')` : `role '${grant.role}'`;
}

export function isRole(value: string): value is Role {
  return (ROLES as readonly string[]).includes(value);
}

/** Why a role / store pair cannot make a grant, or undefined when it can. */
export function grantProblem(role: string, store: string | undefined): string | undefined {
  if (!isRole(role)) return `role '${role}' is unknown (roles: ${ROLES.join(', ')})`;
  if (SCOPED_ROLES.has(role) && !store) return `role '${role}' is scoped to one datastore: give --store STORE`;
  if (!SCOPED_ROLES.has(role) && store !== undefined) return `role '${role}' is not scoped to a datastore: --store is only for the role backup`;
  return undefined;
}
