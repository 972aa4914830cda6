/**
 * The sending side of an external disk at the receiving node (cluster mode; the node's rules are in
 * server/store-devices.ts). RemoteStore.attachDevice has the node mount the job's disk on the store's
 * folder (the same checks as a local job's disk: identity, init, rotation) and answers which disk it
 * mounted and the datastore on it; from then on a keep-alive goes to the node every third of its
 * idle time (a timer that does not hold the process), so the node lets the disk go by itself only
 * when this process is gone or cut off. RemoteStore.detachDevice stops the keep-alive and has the
 * node sync and unmount the disk.
 *
 * Contracts: attach is not retried (a lost answer would leave it unknown whether the disk is
 * mounted: a second attach gets LOCKED, and the node lets the first go after its idle time); detach
 * and keep-alive are idempotent and retried; detach of an attachment the node already let go is fine.
 * Refusals keep the node's code and name the node and the disk: DEVICE_NOT_FOUND (not plugged in
 * there), WRONG_DATASTORE (another datastore, or empty without init), DEVICE_NOT_ALLOWED (not in
 * that node's storeDevices), DEVICE_MOUNT_FAILED, LOCKED (attached already; detach: an upload open).
 */
import { startKeepAlive } from './keep-alive.js';
import { answerJson, badAnswer } from './remote-errors.js';
import type { WireAnswer, WireRequest } from './wire.js';

export interface AttachDeviceRequest {
  /** the job's disk, or its rotated disks separated by commas (`UUID=a,UUID=b`), as the job's `device` */
  device: string;
  /** an empty disk may be initialised (the job's initDevice) */
  init?: boolean;
  /** the datastores the job is bound to, one per disk met (the job's deviceDatastoreId split at commas) */
  datastoreIds?: readonly string[];
  signal?: AbortSignal;
}

export interface AttachedRemoteDevice {
  /** the id detachDevice takes */
  attachment: string;
  /** the disk the node mounted: of those asked for, the first one attached there */
  device: string;
  /** the datastore on it (made now when `initialised`): a job binds itself to it at its first meeting */
  datastoreId: string;
  initialised: boolean;
  /** the node lets the disk go after this long without a keep-alive and without an open upload */
  idleTimeoutSeconds: number;
  /** what the node logged up to the mount (which disk, whose datastore), for the job's log */
  log: string[];
}

/** What the calls need of their RemoteStore. */
export interface DeviceCalls {
  node: string;
  storePath: string;
  finishMs: number;
  call(req: Omit<WireRequest, 'place' | 'timeoutMs'> & { timeoutMs?: number }, doing: string): Promise<WireAnswer>;
}

const keepAlives = new Map<string, NodeJS.Timeout>();

export async function attachRemoteDevice(calls: DeviceCalls, req: AttachDeviceRequest): Promise<AttachedRemoteDevice> {
  const { signal, device, init, datastoreIds } = req;
  const answer = await calls.call(
    { method: 'POST', path: `${calls.storePath}/device`, json: { device, init, datastoreIds }, idempotent: false, signal },
    `attaching external disk ${device}`,
  );
  const attached = checkedAnswer(answerJson(answer.body, calls.node, 'the attach'), calls.node, answer.body);
  keepAttached(calls, attached);
  return attached;
}

export async function detachRemoteDevice(calls: DeviceCalls, attachment: string): Promise<void> {
  stopKeepAlive(attachment);
  await calls.call(
    { method: 'DELETE', path: attachmentPath(calls, attachment), idempotent: true, timeoutMs: calls.finishMs },
    `detaching external disk (attachment ${attachment})`,
  );
}

function checkedAnswer(json: Record<string, unknown>, node: string, body: Buffer): AttachedRemoteDevice {
  const { attachment, device, datastoreId, initialised, idleTimeoutSeconds, log } = json;
  if (typeof attachment !== 'string' || typeof device !== 'string' || typeof datastoreId !== 'string') throw badAnswer(node, 'the attach', body);
  if (typeof initialised !== 'boolean' || typeof idleTimeoutSeconds !== 'number' || !Array.isArray(log)) throw badAnswer(node, 'the attach', body);
  return { attachment, device, datastoreId, initialised, idleTimeoutSeconds, log: log.map(String) };
}

/** A keep-alive every third of the node's idle time; it stops when the node no longer knows the attachment. */
function keepAttached(calls: DeviceCalls, attached: AttachedRemoteDevice): void {
  const path = `${attachmentPath(calls, attached.attachment)}/keepalive`;
  const timer = startKeepAlive((req, doing) => calls.call(req, doing), path, attached.idleTimeoutSeconds, 'keeping the external disk attached', [
    'DEVICE_NOT_ATTACHED',
  ]);
  keepAlives.set(attached.attachment, timer);
}

function stopKeepAlive(attachment: string): void {
  clearInterval(keepAlives.get(attachment));
  keepAlives.delete(attachment);
}

function attachmentPath(calls: DeviceCalls, attachment: string): string {
  return `${calls.storePath}/device/${encodeURIComponent(attachment)}`;
}
