/**
 * External disks at the receiving node (cluster mode): a sending node's job with `--device` has the
 * disk mounted HERE, on a configured datastore's folder, for its push, since the disk is plugged into
 * the node that receives the backups (the seed: "attaching the disk to the first node will not work").
 *
 * Vocabulary: an *attachment* is one such mount, made for one principal (the sender's `backup` token)
 * on one store, with an id of 128 random bits; while it lasts the store's folder is the disk.
 *
 * Rules:
 * - Nothing is mounted that this node's admin did not list: config `storeDevices: {"<store>":
 *   ["UUID=...", "LABEL=...", "/dev/..."]}` names, per configured datastore, the disks a sender may
 *   have mounted there. Every disk of a request (rotated disks: `UUID=a,UUID=b`) must be listed
 *   (UUIDs compared without case), else DEVICE_NOT_ALLOWED, nothing mounted. A listed store is the
 *   disk's: an upload into it is refused (DEVICE_NOT_ATTACHED) unless a disk is attached, so a push
 *   never lands on the folder under the mount.
 * - The mount is a local job's (jobs/device.ts mountStoreDevice): found by spec, looked at read-only
 *   first, refused untouched when it holds another datastore than the sender's job is bound to
 *   (WRONG_DATASTORE) or is empty without `init`, initialised when empty with `init`, then mounted
 *   read-write nosuid,nodev,noexec; a disk not plugged in here is DEVICE_NOT_FOUND. Every refusal
 *   names this node and the disk.
 * - One attachment per store: a second attach while one lasts is LOCKED (naming who holds it).
 * - It ends by the sender's detach (LOCKED while an upload into the store is open), by the server's
 *   shutdown (after its uploads are aborted), or by itself when nothing was heard of the sender for
 *   `uploadIdleSeconds` (default 300) and no upload into the store is open: the sender's client
 *   sends a keep-alive every third of that time, so a sender killed or cut off lets the disk go.
 *   An upload still open keeps it (until the upload's own idle timeout aborts it). Each end syncs and
 *   unmounts. A detach of an attachment that already ended is fine (idempotent).
 * - Each attachment is a task `device` on this node, whose log says what was mounted and when it
 *   was let go; its INFO lines up to the mount are answered to the sender for its job's log.
 */
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { ColdvaultError, describeError, isColdvaultError, type TaskLog } from '../core/index.js';
import { type DeviceSightings, mountStoreDevice, type MountedStoreDevice, type TaskHandle, type TaskStore } from '../jobs/index.js';

export interface StoreDevicesOptions {
  /** this node's name (config `node`), for messages */
  node: string;
  tasks: TaskStore;
  /** a sender unheard of this long lets its disk go (config uploadIdleSeconds) */
  idleMs: number;
  /** configured datastore name -> its folder */
  datastores: Readonly<Record<string, string>>;
  /** store -> the disk specs a sender may have mounted there (config storeDevices) */
  allowed: ReadonlyMap<string, readonly string[]>;
  /** how many uploads into the store are open (the disk is never let go under one) */
  openUploads: (store: string) => number;
  /** where what is seen on an attached disk is recorded (the Restore tab's disks) */
  sightings?: DeviceSightings;
}

export interface AttachRequest {
  store: string;
  principal: string;
  /** one disk or rotated disks separated by commas, as the sender's job has them */
  device: string;
  init: boolean;
  /** the datastores the sender's job is bound to, one per disk met */
  datastoreIds: readonly string[];
}

export interface AttachAnswer {
  attachment: string;
  /** the spec of the disk mounted (of those asked for, the first one attached) */
  device: string;
  datastoreId: string;
  initialised: boolean;
  idleTimeoutSeconds: number;
  /** what this node logged up to the mount */
  log: string[];
}

/** Who asks about an attachment: the store of the URL and the principal. */
export interface DeviceAsker {
  store: string;
  principal: string;
}

interface Attachment {
  id: string;
  store: string;
  principal: string;
  /** undefined while the disk is being mounted */
  mounted?: MountedStoreDevice;
  task: TaskHandle;
  since: number;
  timer?: NodeJS.Timeout;
}

const REMEMBERED_ENDS = 1000;
const SPEC = /^(?:(?:UUID|LABEL)=[^/\0,]{1,128}|\/dev\/[^\0,]{1,200})$/;

export class StoreDevices {
  /** by store: at most one each */
  private readonly attached = new Map<string, Attachment>();
  private readonly ends = new Map<string, string>();

  constructor(private readonly opts: StoreDevicesOptions) {}

  /** Mounts the first attached disk of the request on the store's folder; see the header for every refusal. */
  async attach(req: AttachRequest): Promise<AttachAnswer> {
    const specs = this.allowedSpecs(req.store, req.device);
    this.checkFree(req.store);
    const att = this.begin(req, specs);
    const log = recording(att.task);
    try {
      att.mounted = await mountStoreDevice(
        {
          specs,
          dir: this.dir(req.store),
          init: req.init,
          bound: req.datastoreIds,
          whose: "the sending job's",
          initHint: initHint(req.store),
          sightings: this.opts.sightings,
          seenBy: `push from ${req.principal}`,
        },
        log,
      );
    } catch (err) {
      this.attached.delete(req.store);
      throw this.refused(att, req, err);
    }
    this.arm(att);
    const { spec, datastoreId, initialised } = att.mounted;
    return { attachment: att.id, device: spec, datastoreId, initialised, idleTimeoutSeconds: this.opts.idleMs / 1000, log: log.lines };
  }

  /** The sender is alive: its disk stays for another idle time. */
  keepAlive(id: string, asker: DeviceAsker): void {
    this.arm(this.get(id, asker));
  }

  /** Syncs and unmounts; LOCKED while an upload into the store is open; an attachment that ended already: nothing to do. */
  async detach(id: string, asker: DeviceAsker): Promise<void> {
    if (this.ends.has(id) && !this.findById(id)) return;
    const att = this.get(id, asker);
    const open = this.opts.openUploads(att.store);
    if (open > 0)
      throw new ColdvaultError(
        'LOCKED',
        `the disk on datastore '${att.store}' of node ${this.opts.node} is not detached: ${open} upload(s) into it are open; finish or abort them first`,
      );
    await this.end(att, `detached by ${asker.principal}`);
  }

  /** Uploads into a store listed in storeDevices go to its disk only: DEVICE_NOT_ATTACHED while none is mounted. */
  checkAttached(dir: string): void {
    const store = [...this.opts.allowed.keys()].find((s) => this.dir(s) === resolve(dir));
    if (store === undefined || this.attached.get(store)?.mounted) return;
    throw new ColdvaultError(
      'DEVICE_NOT_ATTACHED',
      `datastore '${store}' on node ${this.opts.node} is an external disk's folder (config storeDevices) and no disk is attached to it: the sending job attaches one first (--device)`,
    );
  }

  /** The server shuts down: every disk synced and unmounted (call after the uploads were aborted). */
  async detachAll(): Promise<void> {
    const all = [...this.attached.values()].filter((a) => a.mounted);
    await Promise.allSettled(all.map((a) => this.end(a, 'the server is shutting down')));
  }

  private allowedSpecs(store: string, device: string): string[] {
    const listed = this.opts.allowed.get(store);
    const specs = device.split(',').map((s) => s.trim());
    if (!listed) throw this.notAllowed(`datastore '${store}' takes no external disk (no storeDevices.${store} in that node's config)`);
    const refused = specs.filter((s) => !listed.some((l) => sameSpec(l, s)));
    if (refused.length === 0 && specs.every((s) => SPEC.test(s))) return specs;
    return this.notAllowedSpecs(store, refused.length > 0 ? refused : specs, listed);
  }

  private notAllowedSpecs(store: string, refused: string[], listed: readonly string[]): never {
    throw this.notAllowed(
      `it may not mount ${refused.join(', ')} on datastore '${store}': the disks it lets a sender mount there are ${listed.join(', ')} (config storeDevices.${store} on node ${this.opts.node})`,
    );
  }

  private notAllowed(why: string): ColdvaultError {
    return new ColdvaultError('DEVICE_NOT_ALLOWED', `node ${this.opts.node} refuses to mount an external disk: ${why}; nothing was mounted`);
  }

  private checkFree(store: string): void {
    const held = this.attached.get(store);
    if (!held) return;
    const what = held.mounted ? `disk ${held.mounted.spec} is attached` : 'a disk is being attached';
    throw new ColdvaultError(
      'LOCKED',
      `datastore '${store}' on node ${this.opts.node}: ${what} for ${held.principal} since ${new Date(held.since).toISOString()} (attachment ${held.id}); it is let go when that sender detaches it or after ${this.opts.idleMs / 1000} s without a word from it`,
    );
  }

  private begin(req: AttachRequest, specs: string[]): Attachment {
    const task = this.opts.tasks.create('device', {
      node: this.opts.node,
      summary: `external disk ${specs.join(', ')} on datastore '${req.store}' for ${req.principal}`,
      startedBy: req.principal,
    });
    const att: Attachment = { id: randomBytes(16).toString('base64url'), store: req.store, principal: req.principal, task, since: Date.now() };
    this.attached.set(req.store, att);
    task.info(`attachment ${att.id}: mounting the first attached of ${specs.join(', ')} on '${this.dir(req.store)}'`);
    return att;
  }

  private refused(att: Attachment, req: AttachRequest, err: unknown): ColdvaultError {
    const code = isColdvaultError(err) ? err.code : 'DEVICE_MOUNT_FAILED';
    const plug = code === 'DEVICE_NOT_FOUND' ? `; plug it into node ${this.opts.node}, the node that receives the backups (datastore '${req.store}')` : '';
    const error = new ColdvaultError(code, `external disk ${req.device} on node ${this.opts.node}: ${describeError(err)}${plug}`, { cause: err });
    att.task.error(error.message);
    att.task.finish(false, { error: error.message, store: req.store });
    this.remember(att.id, 'refused');
    return error;
  }

  private arm(att: Attachment): void {
    clearTimeout(att.timer);
    att.timer = setTimeout(() => void this.idle(att), this.opts.idleMs);
    att.timer.unref();
  }

  /** The idle time passed without a word: let go, unless an upload into the store is still open (then look again later). */
  private async idle(att: Attachment): Promise<void> {
    if (this.opts.openUploads(att.store) > 0) return this.arm(att);
    await this.end(att, `nothing heard of ${att.principal} for ${this.opts.idleMs / 1000} s (uploadIdleSeconds) and no upload open`).catch(() => undefined);
  }

  /** Syncs and unmounts; the attachment is gone at once (no upload opens on it from now on). */
  private async end(att: Attachment, why: string): Promise<void> {
    clearTimeout(att.timer);
    if (this.attached.get(att.store) !== att) return;
    this.attached.delete(att.store);
    this.remember(att.id, why);
    try {
      await att.mounted?.detach();
    } catch (err) {
      att.task.warn(`${why}, but the unmount failed (tried again after the idle time, or by the next detach): ${describeError(err)}`);
      this.ends.delete(att.id);
      this.attached.set(att.store, att);
      this.arm(att);
      throw err;
    }
    att.task.info(`let go: ${why}`);
    att.task.finish(true, { store: att.store, device: att.mounted?.spec, datastoreId: att.mounted?.datastoreId });
  }

  private get(id: string, asker: DeviceAsker): Attachment {
    const att = this.findById(id);
    if (att?.mounted && att.store === asker.store && att.principal === asker.principal) return att;
    const ended = att ? undefined : this.ends.get(id);
    const how = ended ? ` (it ended: ${ended})` : '';
    throw new ColdvaultError(
      'DEVICE_NOT_ATTACHED',
      `there is no attachment ${id} of ${asker.principal} on datastore '${asker.store}' of node ${this.opts.node}${how}`,
    );
  }

  private findById(id: string): Attachment | undefined {
    return [...this.attached.values()].find((a) => a.id === id);
  }

  private remember(id: string, how: string): void {
    this.ends.set(id, how);
    for (const old of this.ends.keys()) {
      if (this.ends.size <= REMEMBERED_ENDS) break;
      this.ends.delete(old);
    }
  }

  private dir(store: string): string {
    return resolve(this.opts.datastores[store] ?? '');
  }
}

/** UUIDs without case (as lsblk's are matched), labels and paths exactly. */
function sameSpec(a: string, b: string): boolean {
  return a.startsWith('UUID=') && b.startsWith('UUID=') ? a.toLowerCase() === b.toLowerCase() : a === b;
}

const initHint = (store: string): string =>
  `the sending job may initialise it: 'coldvault job edit JOB --init-device' on the sending node (datastore '${store}')`;

/** A task log that also keeps its INFO lines (answered to the sender). */
function recording(task: TaskLog): TaskLog & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    info: (m) => {
      lines.push(m);
      task.info(m);
    },
    warn: (m) => task.warn(m),
    error: (m) => task.error(m),
  };
}

/**
 * Config `storeDevices`, checked: each key a configured folder datastore (`s3Names`: the S3 ones, which
 * no disk can be mounted on), each value a list of disk specs; CONFIG_INVALID naming what is wrong.
 */
export function storeDeviceList(value: unknown, datastores: Readonly<Record<string, string>>, s3Names: readonly string[] = []): Map<string, string[]> {
  const list = new Map<string, string[]>();
  if (value === undefined) return list;
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw invalidConfig(`expected {"<datastore>": ["UUID=...", ...]}, got ${JSON.stringify(value)}`);
  for (const [store, specs] of Object.entries(value)) {
    if (s3Names.includes(store)) throw invalidConfig(`'${store}' is an S3 datastore: an external disk is mounted on a folder datastore only`);
    if (!Object.hasOwn(datastores, store))
      throw invalidConfig(`'${store}' is not a configured datastore (datastores: ${Object.keys(datastores).join(', ') || 'none'})`);
    if (!Array.isArray(specs) || specs.length === 0 || !specs.every((s) => typeof s === 'string' && SPEC.test(s) && !s.split('/').includes('..')))
      throw invalidConfig(`storeDevices.${store}: expected a list of disks, each UUID=..., LABEL=... or /dev/..., got ${JSON.stringify(specs)}`);
    list.set(store, specs as string[]);
  }
  return list;
}

const invalidConfig = (why: string): ColdvaultError => new ColdvaultError('CONFIG_INVALID', `config key storeDevices: ${why}`);
