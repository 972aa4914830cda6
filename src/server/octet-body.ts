/**
 * The body parser of application/octet-stream (chunk and file uploads): the body lands in ONE buffer
 * of its Content-Length, made before the first byte arrives, instead of a list of socket pieces
 * concatenated at the end (fastify's `parseAs: 'buffer'`), which copied every pushed byte once more
 * and left the pieces to the garbage collector. The buffer comes from chunk-buffers.ts (aligned,
 * alone on its ArrayBuffer, a spare one when chunk-sized: see there why). The route's bodyLimit holds
 * (413 before reading when the announced length is larger, and while reading); a body shorter or
 * longer than it announced is a 400. Without Content-Length (chunked) the pieces are collected.
 */
import type { FastifyRequest } from 'fastify';
import { copyBytes } from '../core/index.js';
import { bodyBuffer } from './chunk-buffers.js';
import { ApiError } from './errors.js';

type Done = (err: Error | null, body?: Buffer) => void;

export function readOctetBody(request: FastifyRequest, payload: NodeJS.ReadableStream, done: Done): void {
  const limit = request.routeOptions.bodyLimit ?? Number.POSITIVE_INFINITY;
  const announced = request.headers['content-length'] === undefined ? undefined : Number(request.headers['content-length']);
  if (announced !== undefined && !(Number.isSafeInteger(announced) && announced >= 0)) {
    done(new ApiError('INVALID_REQUEST', `Content-Length '${request.headers['content-length']}' is not a byte count`));
    return;
  }
  if (announced !== undefined && announced > limit) {
    done(tooLarge(announced, limit));
    return;
  }
  const sink = announced === undefined ? new GrowingBody() : new FixedBody(announced);
  const finish = (err: Error | null, body?: Buffer): void => {
    payload.removeListener('data', onData);
    payload.removeListener('end', onEnd);
    payload.removeListener('error', onError);
    done(err, body);
  };
  const onData = (piece: Buffer | string): void => {
    const bytes = typeof piece === 'string' ? Buffer.from(piece) : piece;
    const total = sink.received + bytes.length;
    if (total > limit) finish(tooLarge(total, limit));
    else if (announced !== undefined && total > announced) finish(mismatch(announced, `${total} or more`));
    else sink.add(bytes);
  };
  const onEnd = (): void => {
    if (announced !== undefined && sink.received !== announced) finish(mismatch(announced, `${sink.received}`));
    else finish(null, sink.body());
  };
  const onError = (err: Error): void => finish(new ApiError('INVALID_REQUEST', `the request body could not be read: ${err.message}`, { cause: err }));
  payload.on('data', onData);
  payload.on('end', onEnd);
  payload.on('error', onError);
  payload.resume();
}

/** The body of an announced length: one buffer, filled in place. */
class FixedBody {
  received = 0;
  private readonly buf: Buffer;

  constructor(length: number) {
    this.buf = bodyBuffer(length);
  }

  add(bytes: Buffer): void {
    this.received += copyBytes(this.buf, this.received, bytes);
  }

  body(): Buffer {
    return this.buf;
  }
}

/** A chunked body: the pieces, joined once at the end into a buffer of its own. */
class GrowingBody {
  received = 0;
  private readonly pieces: Buffer[] = [];

  add(bytes: Buffer): void {
    this.pieces.push(bytes);
    this.received += bytes.length;
  }

  body(): Buffer {
    const buf = bodyBuffer(this.received);
    let at = 0;
    for (const piece of this.pieces) at += piece.copy(buf, at);
    return buf;
  }
}

function tooLarge(bytes: number, limit: number): ApiError {
  return new ApiError('PAYLOAD_TOO_LARGE', `the request body has ${bytes} bytes or more, more than the ${limit} this route takes`);
}

function mismatch(announced: number, got: string): ApiError {
  return new ApiError('INVALID_REQUEST', `the request body has ${got} bytes, its Content-Length said ${announced}`);
}
