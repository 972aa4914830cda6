/**
 * Whether a disk was left with a journal to replay (ext3/ext4: the superblock's needs_recovery flag,
 * set while mounted read-write and cleared by a clean unmount), read from the device without mounting
 * it. A read-only mount does not replay it, so the newest changes may be missing there: restores warn.
 * xfs keeps this state in its log, which cannot be told without mounting: undefined.
 */
import { open } from 'node:fs/promises';
import type { BlockDevice } from './lsblk.js';

const EXT_SUPERBLOCK = 1024;
const EXT_MAGIC = 0xef53;
const EXT_INCOMPAT_RECOVER = 0x0004;

/** True / false for ext3 and ext4; undefined where it cannot be told without mounting. */
export async function journalNeedsReplay(device: Pick<BlockDevice, 'path' | 'fstype'>): Promise<boolean | undefined> {
  if (device.fstype !== 'ext3' && device.fstype !== 'ext4') return undefined;
  const handle = await open(device.path, 'r');
  try {
    const sb = Buffer.alloc(1024);
    await handle.read(sb, 0, sb.length, EXT_SUPERBLOCK);
    if (sb.readUInt16LE(0x38) !== EXT_MAGIC) return undefined;
    return (sb.readUInt32LE(0x60) & EXT_INCOMPAT_RECOVER) !== 0;
  } finally {
    await handle.close();
  }
}

/** A warning for a restore's log when the disk's journal was not replayed, else undefined. */
export async function unreplayedJournalWarning(device: Pick<BlockDevice, 'path' | 'fstype'>): Promise<string | undefined> {
  if (!(await journalNeedsReplay(device).catch(() => undefined))) return undefined;
  return (
    `${device.path} was not cleanly unmounted: its journal holds changes that this read-only mount does not replay, so the disk stays as it is ` +
    'but the newest backups on it may be missing or unreadable; if so, let a backup job mount it read-write once (that replays the journal) and restore again'
  );
}
