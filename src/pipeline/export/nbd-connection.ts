/**
 * One NBD client: the fixed-newstyle handshake, the option haggling (LIST, INFO, GO, EXPORT_NAME,
 * STRUCTURED_REPLY, ABORT; everything else ERR_UNSUP), then transmission of a read-only export. Reads
 * run side by side (up to MAX_IN_FLIGHT per client; replies go out as each is ready, named by the
 * request's cookie, as the protocol allows); writes, trims and zeroing are refused with EPERM, a read
 * past the end with EINVAL, a read that meets a chunk that is not sound with EIO (never wrong data).
 * With structured replies an all-zero chunk goes out as a hole (OFFSET_HOLE), not as zeros, and the
 * metadata context `base:allocation` may be chosen (LIST/SET_META_CONTEXT): BLOCK_STATUS then names the
 * all-zero chunks as holes that read as zeros, from the index alone, so a copying client (nbdcopy,
 * QEMU's mirror of a live restore) skips them without reading.
 */
import type { Socket } from 'node:net';
import { describeError } from '../../core/index.js';
import {
  BASE_ALLOCATION,
  BASE_ALLOCATION_ID,
  blockStatusReply,
  CMD,
  CMD_FLAG_DF,
  CMD_FLAG_REQ_ONE,
  ERRNO,
  exportNameReply,
  FLAG_FIXED_NEWSTYLE,
  FLAG_NO_ZEROES,
  IHAVEOPT,
  INFO,
  infoBlockSize,
  infoDescription,
  infoExport,
  MAX_PAYLOAD,
  metaContextEntry,
  type NbdRequest,
  offsetDataHeader,
  offsetHole,
  OPT,
  optionReply,
  parseRequest,
  REP,
  REP_ERR,
  REQUEST_BYTES,
  serverEntry,
  serverGreeting,
  simpleReply,
  STATE_HOLE_ZERO,
  structuredDone,
  structuredError,
} from './nbd-protocol.js';
import type { DiskRead, Piece, VersionDisk } from './version-disk.js';

const MAX_IN_FLIGHT = 16;
/** the longest option we read (an export name and a few info types) */
const MAX_OPTION_BYTES = 64 * 1024;

export interface ExportTable {
  disks: ReadonlyMap<string, VersionDisk>;
  /** what INFO's description says of each disk */
  describe(disk: VersionDisk): string;
}

class Closed extends Error {}

/** Reads exact byte counts from a socket. */
class SocketReader {
  private buffered: Buffer[] = [];
  private length = 0;
  private waiting?: () => void;
  private ended = false;

  constructor(socket: Socket) {
    socket.on('data', (b: Buffer) => {
      this.buffered.push(b);
      this.length += b.length;
      this.waiting?.();
    });
    const end = (): void => {
      this.ended = true;
      this.waiting?.();
    };
    socket.on('end', end);
    socket.on('close', end);
    socket.on('error', end);
  }

  async read(n: number): Promise<Buffer> {
    while (this.length < n) {
      if (this.ended) throw new Closed('the client went away');
      await new Promise<void>((resolve) => {
        this.waiting = resolve;
      });
      this.waiting = undefined;
    }
    const all = this.buffered.length === 1 ? (this.buffered[0] as Buffer) : Buffer.concat(this.buffered);
    this.buffered = all.length > n ? [all.subarray(n)] : [];
    this.length -= n;
    return all.subarray(0, n);
  }
}

export class NbdConnection {
  private readonly reader: SocketReader;
  private structured = false;
  /** the export whose base:allocation context SET_META_CONTEXT chose (undefined: none chosen) */
  private metaExport?: string;
  private baseAllocation = false;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly socket: Socket,
    private readonly table: ExportTable,
    private readonly log: (message: string) => void,
  ) {
    this.reader = new SocketReader(socket);
  }

  /** Serves the client until it disconnects; never throws. */
  async serve(): Promise<void> {
    try {
      const disk = await this.handshake();
      if (disk) await this.transmit(disk);
    } catch (err) {
      if (!(err instanceof Closed)) this.log(`NBD client: ${describeError(err)}`);
    } finally {
      await Promise.allSettled(this.inFlight);
      this.socket.end();
    }
  }

  private send(...parts: Buffer[]): void {
    if (!this.socket.destroyed) for (const p of parts) this.socket.write(p);
  }

  /** Sends `parts`, then calls `done` once the socket no longer needs their bytes (written out, or the socket is gone). */
  private sendThen(parts: Buffer[], done: () => void): void {
    const last = parts.length - 1;
    if (this.socket.destroyed || last < 0) return done();
    parts.forEach((p, i) => (i === last ? this.socket.write(p, () => done()) : this.socket.write(p)));
  }

  /** Greeting, client flags, options: the disk to serve, or undefined when the client ended (ABORT). */
  private async handshake(): Promise<VersionDisk | undefined> {
    this.send(serverGreeting());
    const flags = (await this.reader.read(4)).readUInt32BE(0);
    if ((flags & ~(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES)) !== 0 || !(flags & FLAG_FIXED_NEWSTYLE)) throw new Closed('unknown client flags');
    const noZeroes = (flags & FLAG_NO_ZEROES) !== 0;
    for (;;) {
      const head = await this.reader.read(16);
      if (head.readBigUInt64BE(0) !== IHAVEOPT) throw new Closed('bad option magic');
      const option = head.readUInt32BE(8);
      const length = head.readUInt32BE(12);
      if (length > MAX_OPTION_BYTES) throw new Closed('option too long');
      const data = await this.reader.read(length);
      const chosen = this.option(option, data, noZeroes);
      if (chosen === 'abort') return undefined;
      if (chosen) return chosen;
    }
  }

  /** Answers one option; the disk when transmission starts, 'abort' when the client ends. */
  private option(option: number, data: Buffer, noZeroes: boolean): VersionDisk | 'abort' | undefined {
    switch (option) {
      case OPT.EXPORT_NAME: {
        const disk = this.lookup(data.toString('utf8'));
        if (!disk) throw new Closed(`no export named '${data.toString('utf8')}'`);
        this.baseAllocation = false; // contexts need GO
        this.send(exportNameReply(BigInt(disk.size), noZeroes));
        return disk;
      }
      case OPT.ABORT:
        this.send(optionReply(option, REP.ACK));
        return 'abort';
      case OPT.LIST:
        if (data.length !== 0) return this.refuse(option, REP_ERR.INVALID, 'LIST takes no data');
        for (const name of this.table.disks.keys()) this.send(optionReply(option, REP.SERVER, serverEntry(name)));
        this.send(optionReply(option, REP.ACK));
        return undefined;
      case OPT.STRUCTURED_REPLY:
        if (data.length !== 0) return this.refuse(option, REP_ERR.INVALID, 'STRUCTURED_REPLY takes no data');
        this.structured = true;
        this.send(optionReply(option, REP.ACK));
        return undefined;
      case OPT.INFO:
      case OPT.GO:
        return this.infoOrGo(option, data);
      case OPT.LIST_META_CONTEXT:
      case OPT.SET_META_CONTEXT:
        return this.metaContext(option, data);
      default:
        return this.refuse(option, REP_ERR.UNSUP, 'not supported by this read-only export');
    }
  }

  private infoOrGo(option: number, data: Buffer): VersionDisk | undefined {
    if (data.length < 6) return this.refuse(option, REP_ERR.INVALID, 'short INFO/GO request');
    const nameLength = data.readUInt32BE(0);
    if (4 + nameLength + 2 > data.length) return this.refuse(option, REP_ERR.INVALID, 'bad INFO/GO request');
    const name = data.toString('utf8', 4, 4 + nameLength);
    const disk = this.lookup(name);
    if (!disk) return this.refuse(option, REP_ERR.UNKNOWN, `no export named '${name}' (exports: ${[...this.table.disks.keys()].join(', ')})`);
    this.send(optionReply(option, REP.INFO, infoExport(BigInt(disk.size))));
    this.send(optionReply(option, REP.INFO, infoBlockSize()));
    const asked = new Set<number>();
    for (let at = 4 + nameLength + 2; at + 2 <= data.length; at += 2) asked.add(data.readUInt16BE(at));
    if (asked.has(INFO.DESCRIPTION)) this.send(optionReply(option, REP.INFO, infoDescription(this.table.describe(disk))));
    this.send(optionReply(option, REP.ACK));
    if (option !== OPT.GO) return undefined;
    this.baseAllocation = this.metaExport !== undefined && this.lookup(this.metaExport) === disk; // contexts chosen for another export do not hold
    return disk;
  }

  /** LIST_META_CONTEXT / SET_META_CONTEXT: base:allocation is the one context (SET chooses it, or none, for the export named). */
  private metaContext(option: number, data: Buffer): undefined {
    if (!this.structured) return this.refuse(option, REP_ERR.INVALID, 'metadata contexts need structured replies (STRUCTURED_REPLY first)');
    const request = parseMetaRequest(data);
    if (!request) return this.refuse(option, REP_ERR.INVALID, 'bad META_CONTEXT request');
    if (!this.lookup(request.name)) return this.refuse(option, REP_ERR.UNKNOWN, `no export named '${request.name}'`);
    const listing = option === OPT.LIST_META_CONTEXT;
    const served = request.queries.some((q) => q === BASE_ALLOCATION || (listing && q === 'base:')) || (listing && request.queries.length === 0);
    if (!listing) {
      this.metaExport = served ? request.name : undefined;
      this.baseAllocation = false;
    }
    if (served) this.send(optionReply(option, REP.META_CONTEXT, metaContextEntry(BASE_ALLOCATION_ID, BASE_ALLOCATION)));
    this.send(optionReply(option, REP.ACK));
    return undefined;
  }

  /** The export named `name`; the empty name (the default export) when there is exactly one. */
  private lookup(name: string): VersionDisk | undefined {
    if (name === '' && this.table.disks.size === 1) return [...this.table.disks.values()][0];
    return this.table.disks.get(name);
  }

  private refuse(option: number, error: number, message: string): undefined {
    this.send(optionReply(option, error, Buffer.from(message, 'utf8')));
    return undefined;
  }

  private async transmit(disk: VersionDisk): Promise<void> {
    for (;;) {
      const request = parseRequest(await this.reader.read(REQUEST_BYTES));
      if (!request) throw new Closed('bad request magic');
      if (request.type === CMD.DISC) return;
      if (request.type === CMD.WRITE) {
        await this.reader.read(request.length); // the data of a write is read and dropped
        this.answerError(request, ERRNO.EPERM, 'the export is read-only');
        continue;
      }
      if (request.type === CMD.BLOCK_STATUS) {
        this.blockStatus(disk, request);
        continue;
      }
      if (request.type !== CMD.READ) {
        const readOnly = request.type === CMD.TRIM || request.type === CMD.WRITE_ZEROES;
        this.answerError(request, readOnly ? ERRNO.EPERM : ERRNO.EINVAL, readOnly ? 'the export is read-only' : 'not supported');
        continue;
      }
      while (this.inFlight.size >= MAX_IN_FLIGHT) await Promise.race(this.inFlight);
      const running = this.read(disk, request).finally(() => this.inFlight.delete(running));
      this.inFlight.add(running);
    }
  }

  private async read(disk: VersionDisk, request: NbdRequest): Promise<void> {
    const end = request.offset + BigInt(request.length);
    if (request.length > MAX_PAYLOAD || end > BigInt(disk.size)) {
      this.answerError(request, ERRNO.EINVAL, `read of ${request.length} bytes at ${request.offset} is out of the disk (${disk.size} bytes)`);
      return;
    }
    let read: DiskRead;
    try {
      read = await disk.read(Number(request.offset), request.length);
    } catch (err) {
      this.answerError(request, ERRNO.EIO, describeError(err));
      return;
    }
    this.sendThen(this.dataReply(request, read.pieces), read.release);
  }

  /** base:allocation of the range: all-zero chunks as holes that read as zeros, from the index (nothing read). */
  private blockStatus(disk: VersionDisk, request: NbdRequest): void {
    if (!this.baseAllocation) return this.answerError(request, ERRNO.EINVAL, 'no metadata context was chosen (SET_META_CONTEXT base:allocation)');
    const end = request.offset + BigInt(request.length);
    if (request.length === 0 || end > BigInt(disk.size)) {
      return this.answerError(request, ERRNO.EINVAL, `block status of ${request.length} bytes at ${request.offset} is out of the disk (${disk.size} bytes)`);
    }
    let extents = disk.extents(Number(request.offset), request.length).map((e) => ({ length: e.length, flags: e.zero ? STATE_HOLE_ZERO : 0 }));
    if (request.flags & CMD_FLAG_REQ_ONE) extents = extents.slice(0, 1);
    this.send(blockStatusReply(request.cookie, BASE_ALLOCATION_ID, extents));
  }

  /** The buffers of a read's reply: simple, or structured (holes as OFFSET_HOLE unless the client asked DF: one data chunk). */
  private dataReply(request: NbdRequest, pieces: Piece[]): Buffer[] {
    if (!this.structured) return [simpleReply(request.cookie, 0), ...pieces.map((p) => ('data' in p ? p.data : Buffer.alloc(p.hole)))];
    if (request.flags & CMD_FLAG_DF)
      pieces = [{ offset: Number(request.offset), data: Buffer.concat(pieces.map((p) => ('data' in p ? p.data : Buffer.alloc(p.hole)))) }];
    if (request.length === 0) return [structuredDone(request.cookie)];
    return pieces.flatMap((p, i) => {
      const done = i === pieces.length - 1;
      if ('data' in p) return [offsetDataHeader(request.cookie, done, BigInt(p.offset), p.data.length), p.data];
      return [offsetHole(request.cookie, done, BigInt(p.offset), p.hole)];
    });
  }

  private answerError(request: NbdRequest, errno: number, message: string): void {
    this.send(this.structured ? structuredError(request.cookie, errno, message) : simpleReply(request.cookie, errno));
  }
}

/** SET/LIST_META_CONTEXT's data: the export name and the queries (each a length-prefixed string). */
function parseMetaRequest(data: Buffer): { name: string; queries: string[] } | undefined {
  if (data.length < 8) return undefined;
  const nameLength = data.readUInt32BE(0);
  if (4 + nameLength + 4 > data.length) return undefined;
  const name = data.toString('utf8', 4, 4 + nameLength);
  const count = data.readUInt32BE(4 + nameLength);
  const queries: string[] = [];
  let at = 8 + nameLength;
  for (let i = 0; i < count; i++) {
    if (at + 4 > data.length) return undefined;
    const length = data.readUInt32BE(at);
    if (at + 4 + length > data.length) return undefined;
    queries.push(data.toString('utf8', at + 4, at + 4 + length));
    at += 4 + length;
  }
  return at === data.length ? { name, queries } : undefined;
}
