/**
 * Where a restore writes a disk image: through O_DIRECT where the filesystem allows it, straight from
 * the decoded chunk into the device instead of through the page cache.
 *
 * Why (bench/RESULTS.md): writing 920 MB of restored data into the page cache cost 2.3-2.9 s of
 * system time on the bench machine (a VM that has to back every newly used page), O_DIRECT 0.13 s
 * (`dd bs=4M oflag=direct`); a restore also no longer pushes the host's other cached data out, and
 * the final fsync has little left to do. O_DIRECT needs the buffer's address, the file offset and the
 * length aligned to the device's block size: the chunk reader's buffers are aligned (alignedOffset),
 * chunks start at multiples of 4 MiB, and the one short last chunk of an odd-sized image goes through
 * the page cache. Where O_DIRECT is refused (tmpfs, some FUSE filesystems, no native addon) every
 * write goes through the page cache: slower, the same bytes. Durability is unchanged: the restore
 * still fsyncs the file before it reports success.
 */
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { directAligned, errnoCode, ioError, loadNative } from '../core/index.js';

export { alignedOffset, DIRECT_ALIGN } from '../core/index.js';

export class DiskImageWriter {
  /** whether writes go through O_DIRECT (false after the filesystem refused it) */
  direct: boolean;

  private constructor(
    private readonly path: string,
    private readonly buffered: FileHandle,
    private directHandle: FileHandle | undefined,
  ) {
    this.direct = directHandle !== undefined;
  }

  /** Creates `path` (it must not exist) for writing, mode 0600 (a guest's private data); `direct: false` keeps to the page cache. */
  static async create(path: string, opts: { direct?: boolean } = {}): Promise<DiskImageWriter> {
    const buffered = await open(path, 'wx', 0o600).catch((err: unknown) => {
      throw ioError(`creating '${path}'`, err);
    });
    let directHandle: FileHandle | undefined;
    if (opts.direct !== false && loadNative() !== null) {
      directHandle = await open(path, constants.O_WRONLY | constants.O_DIRECT).catch(() => undefined);
    }
    return new DiskImageWriter(path, buffered, directHandle);
  }

  async truncate(size: number): Promise<void> {
    await this.buffered.truncate(size).catch((err: unknown) => {
      throw ioError(`sizing '${this.path}' to ${size} bytes`, err);
    });
  }

  async write(data: Uint8Array, position: number): Promise<void> {
    if (this.direct && this.directHandle && directAligned(data, position)) {
      try {
        await writeAll(this.directHandle, data, position);
        return;
      } catch (err) {
        if (errnoCode(err) !== 'EINVAL') throw ioError(`writing '${this.path}' at offset ${position}`, err);
        // the filesystem took the open but not the write: page cache from now on (the handle stays
        // open until close(): other writes may still be using it)
        this.direct = false;
      }
    }
    await writeAll(this.buffered, data, position).catch((err: unknown) => {
      throw ioError(`writing '${this.path}' at offset ${position}`, err);
    });
  }

  datasync(): Promise<void> {
    return this.buffered.datasync();
  }

  sync(): Promise<void> {
    return this.buffered.sync();
  }

  async close(): Promise<void> {
    this.direct = false;
    await this.directHandle?.close().catch(() => undefined);
    await this.buffered.close();
  }
}

async function writeAll(file: FileHandle, data: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await file.write(data, done, data.length - done, position + done);
    done += bytesWritten;
  }
}
