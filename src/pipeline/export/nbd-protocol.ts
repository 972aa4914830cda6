/**
 * The NBD protocol's numbers and messages, as far as a read-only export needs them (the NetworkBlockDevice
 * doc/proto.md; ../shared/specs/interfaces.md section 5): the fixed-newstyle handshake, option
 * replies, the 28-byte request, simple replies and structured replies (OFFSET_DATA, OFFSET_HOLE,
 * BLOCK_STATUS, ERROR), the one metadata context a read-only export of chunked disks can tell
 * (`base:allocation`: which ranges are holes that read as zeros). Network byte order throughout.
 * Encoders only: nbd-connection.ts reads.
 */

export const NBDMAGIC = 0x4e42444d41474943n;
export const IHAVEOPT = 0x49484156454f5054n;
export const OPTION_REPLY_MAGIC = 0x3e889045565a9n;
export const REQUEST_MAGIC = 0x25609513;
export const SIMPLE_REPLY_MAGIC = 0x67446698;
export const STRUCTURED_REPLY_MAGIC = 0x668e33ef;

/** handshake flags (server) and client flags */
export const FLAG_FIXED_NEWSTYLE = 1;
export const FLAG_NO_ZEROES = 2;

export const OPT = { EXPORT_NAME: 1, ABORT: 2, LIST: 3, STARTTLS: 5, INFO: 6, GO: 7, STRUCTURED_REPLY: 8, LIST_META_CONTEXT: 9, SET_META_CONTEXT: 10 } as const;
export const REP = { ACK: 1, SERVER: 2, INFO: 3, META_CONTEXT: 4 } as const;
export const REP_ERR = { UNSUP: 0x80000001, POLICY: 0x80000002, INVALID: 0x80000003, UNKNOWN: 0x80000006 } as const;
export const INFO = { EXPORT: 0, NAME: 1, DESCRIPTION: 2, BLOCK_SIZE: 3 } as const;

/** transmission flags of a read-only export that many clients may read at once */
export const TRANSMISSION_FLAGS = 1 /* HAS_FLAGS */ | 2 /* READ_ONLY */ | 256; /* CAN_MULTI_CONN */

export const CMD = { READ: 0, WRITE: 1, DISC: 2, FLUSH: 3, TRIM: 4, CACHE: 5, WRITE_ZEROES: 6, BLOCK_STATUS: 7 } as const;
export const CMD_FLAG_DF = 4;
export const CMD_FLAG_REQ_ONE = 8;

/** the one metadata context served, and the id it is answered under */
export const BASE_ALLOCATION = 'base:allocation';
export const BASE_ALLOCATION_ID = 1;
/** base:allocation's flags: a hole that reads as zeros */
export const STATE_HOLE_ZERO = 1 /* HOLE */ | 2; /* ZERO */
export const ERRNO = { EPERM: 1, EIO: 5, ENOMEM: 12, EINVAL: 22, ENOTSUP: 95, ESHUTDOWN: 108 } as const;

export const REPLY_FLAG_DONE = 1;
export const REPLY_TYPE = { NONE: 0, OFFSET_DATA: 1, OFFSET_HOLE: 2, BLOCK_STATUS: 5, ERROR: 0x8001 } as const;

/** block sizes advertised: any byte, 4 KiB preferred, 32 MiB per request at most */
export const MIN_BLOCK = 1;
export const PREFERRED_BLOCK = 4096;
export const MAX_PAYLOAD = 32 * 1024 * 1024;

export const REQUEST_BYTES = 28;

export interface NbdRequest {
  flags: number;
  type: number;
  cookie: Buffer;
  offset: bigint;
  length: number;
}

export function serverGreeting(): Buffer {
  const b = Buffer.alloc(18);
  b.writeBigUInt64BE(NBDMAGIC, 0);
  b.writeBigUInt64BE(IHAVEOPT, 8);
  b.writeUInt16BE(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES, 16);
  return b;
}

export function optionReply(option: number, type: number, data: Buffer = Buffer.alloc(0)): Buffer {
  const b = Buffer.alloc(20);
  b.writeBigUInt64BE(OPTION_REPLY_MAGIC, 0);
  b.writeUInt32BE(option, 8);
  b.writeUInt32BE(type, 12);
  b.writeUInt32BE(data.length, 16);
  return Buffer.concat([b, data]);
}

/** REP_SERVER's data: the export's name */
export function serverEntry(name: string): Buffer {
  const n = Buffer.from(name, 'utf8');
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n.length, 0);
  return Buffer.concat([b, n]);
}

export function infoExport(size: bigint): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt16BE(INFO.EXPORT, 0);
  b.writeBigUInt64BE(size, 2);
  b.writeUInt16BE(TRANSMISSION_FLAGS, 10);
  return b;
}

export function infoBlockSize(): Buffer {
  const b = Buffer.alloc(14);
  b.writeUInt16BE(INFO.BLOCK_SIZE, 0);
  b.writeUInt32BE(MIN_BLOCK, 2);
  b.writeUInt32BE(PREFERRED_BLOCK, 6);
  b.writeUInt32BE(MAX_PAYLOAD, 10);
  return b;
}

export function infoDescription(text: string): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(INFO.DESCRIPTION, 0);
  return Buffer.concat([b, Buffer.from(text, 'utf8')]);
}

/** The answer to EXPORT_NAME (the old way in): size and flags, then 124 zero bytes unless NO_ZEROES was agreed. */
export function exportNameReply(size: bigint, noZeroes: boolean): Buffer {
  const b = Buffer.alloc(noZeroes ? 10 : 134);
  b.writeBigUInt64BE(size, 0);
  b.writeUInt16BE(TRANSMISSION_FLAGS, 8);
  return b;
}

export function parseRequest(b: Buffer): NbdRequest | undefined {
  if (b.readUInt32BE(0) !== REQUEST_MAGIC) return undefined;
  return {
    flags: b.readUInt16BE(4),
    type: b.readUInt16BE(6),
    cookie: Buffer.from(b.subarray(8, 16)),
    offset: b.readBigUInt64BE(16),
    length: b.readUInt32BE(24),
  };
}

export function simpleReply(cookie: Buffer, error: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt32BE(SIMPLE_REPLY_MAGIC, 0);
  b.writeUInt32BE(error, 4);
  cookie.copy(b, 8);
  return b;
}

/** A structured reply chunk's 20-byte header; its payload follows. */
export function structuredHeader(cookie: Buffer, flags: number, type: number, length: number): Buffer {
  const b = Buffer.alloc(20);
  b.writeUInt32BE(STRUCTURED_REPLY_MAGIC, 0);
  b.writeUInt16BE(flags, 4);
  b.writeUInt16BE(type, 6);
  cookie.copy(b, 8);
  b.writeUInt32BE(length, 16);
  return b;
}

export function offsetDataHeader(cookie: Buffer, done: boolean, offset: bigint, dataLength: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(offset, 0);
  return Buffer.concat([structuredHeader(cookie, done ? REPLY_FLAG_DONE : 0, REPLY_TYPE.OFFSET_DATA, 8 + dataLength), b]);
}

export function offsetHole(cookie: Buffer, done: boolean, offset: bigint, length: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeBigUInt64BE(offset, 0);
  b.writeUInt32BE(length, 8);
  return Buffer.concat([structuredHeader(cookie, done ? REPLY_FLAG_DONE : 0, REPLY_TYPE.OFFSET_HOLE, 12), b]);
}

export function structuredError(cookie: Buffer, error: number, message: string): Buffer {
  const text = Buffer.from(message.slice(0, 4000), 'utf8');
  const b = Buffer.alloc(6);
  b.writeUInt32BE(error, 0);
  b.writeUInt16BE(text.length, 4);
  return Buffer.concat([structuredHeader(cookie, REPLY_FLAG_DONE, REPLY_TYPE.ERROR, 6 + text.length), b, text]);
}

export function structuredDone(cookie: Buffer): Buffer {
  return structuredHeader(cookie, REPLY_FLAG_DONE, REPLY_TYPE.NONE, 0);
}

/** REP_META_CONTEXT's data: the context's id and name */
export function metaContextEntry(id: number, name: string): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(id, 0);
  return Buffer.concat([b, Buffer.from(name, 'utf8')]);
}

/** A BLOCK_STATUS reply chunk (the last): the context id, then (length, flags) per extent. */
export function blockStatusReply(cookie: Buffer, contextId: number, extents: ReadonlyArray<{ length: number; flags: number }>): Buffer {
  const b = Buffer.alloc(4 + 8 * extents.length);
  b.writeUInt32BE(contextId, 0);
  extents.forEach((e, i) => {
    b.writeUInt32BE(e.length, 4 + 8 * i);
    b.writeUInt32BE(e.flags, 8 + 8 * i);
  });
  return Buffer.concat([structuredHeader(cookie, REPLY_FLAG_DONE, REPLY_TYPE.BLOCK_STATUS, b.length), b]);
}
