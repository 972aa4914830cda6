/**
 * The parts of an HTTP/1.1 answer that direct-connection.ts reads itself: the head (status line and
 * headers: status, Content-Length, chunked or not, whether the node closes the connection after it)
 * and a chunked body's framing. Anything else a node would not send (HTTP/1.0 framing by close, a
 * transfer coding other than chunked, a head over 16 KiB, a malformed line) is an AnswerSyntaxError:
 * the connection is dropped and the request fails as a broken connection does.
 */
import { ColdvaultError } from '../../core/index.js';

/** the longest head accepted (a node's heads are a few hundred bytes) */
export const HEAD_MAX = 16 * 1024;

export interface AnswerHead {
  status: number;
  /** bytes of the body; undefined for a chunked one */
  contentLength: number | undefined;
  chunked: boolean;
  /** the node closes the connection after this answer */
  close: boolean;
}

export class AnswerSyntaxError extends ColdvaultError {
  constructor(message: string) {
    super('CONNECTION_FAILED', `the node's answer is not HTTP/1.1 as expected: ${message}`);
    this.name = 'AnswerSyntaxError';
  }
}

const HEAD_END = Buffer.from('\r\n\r\n');

/** The offset just past the head's blank line in `bytes`, or -1 while it has not come yet. */
export function headEnd(bytes: Buffer): number {
  const at = bytes.indexOf(HEAD_END);
  if (at < 0) {
    if (bytes.length > HEAD_MAX) throw new AnswerSyntaxError(`no end of the head within ${HEAD_MAX} bytes`);
    return -1;
  }
  return at + HEAD_END.length;
}

/** Parses a head (the bytes up to and including its blank line). */
export function parseHead(head: Buffer, method: string): AnswerHead {
  const lines = head.toString('latin1', 0, head.length - HEAD_END.length).split('\r\n');
  const statusLine = /^HTTP\/1\.([01]) (\d{3})(?: .*)?$/.exec(lines[0] ?? '');
  if (!statusLine) throw new AnswerSyntaxError(`status line '${(lines[0] ?? '').slice(0, 80)}'`);
  const status = Number(statusLine[2]);
  let contentLength: number | undefined;
  let chunked = false;
  let close = statusLine[1] === '0';
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw new AnswerSyntaxError(`header line '${line.slice(0, 80)}'`);
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === 'content-length') contentLength = parseLength(value, contentLength);
    else if (name === 'transfer-encoding') chunked = parseCoding(value);
    else if (name === 'connection') close = close || /(^|,)\s*close\s*(,|$)/i.test(value);
  }
  if (method === 'HEAD' || status === 204 || status === 304 || (status >= 100 && status < 200)) return { status, contentLength: 0, chunked: false, close };
  if (chunked) return { status, contentLength: undefined, chunked, close };
  if (contentLength === undefined) throw new AnswerSyntaxError(`HTTP ${status} without Content-Length or chunked framing`);
  return { status, contentLength, chunked, close };
}

function parseLength(value: string, before: number | undefined): number {
  if (!/^\d{1,15}$/.test(value)) throw new AnswerSyntaxError(`Content-Length '${value.slice(0, 40)}'`);
  const length = Number(value);
  if (before !== undefined && before !== length) throw new AnswerSyntaxError('two different Content-Length headers');
  return length;
}

function parseCoding(value: string): boolean {
  if (value.toLowerCase() !== 'chunked') throw new AnswerSyntaxError(`Transfer-Encoding '${value.slice(0, 40)}'`);
  return true;
}

/**
 * A chunked body's framing, fed the bytes as they come: `feed` hands each piece of data to `sink` and
 * answers how many of the bytes it consumed (all until the last chunk's end, then only up to there).
 */
export class ChunkedBody {
  private state: 'size' | 'data' | 'data-end' | 'trailer' | 'done' = 'size';
  private line = '';
  private left = 0;

  constructor(private readonly sink: (piece: Buffer) => void) {}

  get done(): boolean {
    return this.state === 'done';
  }

  feed(bytes: Buffer): number {
    let at = 0;
    while (at < bytes.length && this.state !== 'done') {
      if (this.state === 'data') {
        const take = Math.min(this.left, bytes.length - at);
        this.sink(bytes.subarray(at, at + take));
        at += take;
        this.left -= take;
        if (this.left === 0) this.state = 'data-end';
        continue;
      }
      const nl = bytes.indexOf(10, at);
      const end = nl < 0 ? bytes.length : nl + 1;
      this.line += bytes.toString('latin1', at, end);
      at = end;
      if (this.line.length > 1024) throw new AnswerSyntaxError('a chunked framing line over 1 KiB');
      if (nl >= 0) this.onLine(this.line.replace(/\r?\n$/, ''));
    }
    return at;
  }

  private onLine(line: string): void {
    this.line = '';
    if (this.state === 'data-end') {
      if (line !== '') throw new AnswerSyntaxError('chunk data not followed by CRLF');
      this.state = 'size';
    } else if (this.state === 'size') {
      const size = /^([0-9a-fA-F]{1,12})(;.*)?$/.exec(line);
      if (!size) throw new AnswerSyntaxError(`chunk size line '${line.slice(0, 40)}'`);
      this.left = Number.parseInt(size[1] as string, 16);
      this.state = this.left === 0 ? 'trailer' : 'data';
    } else if (this.state === 'trailer' && line === '') {
      this.state = 'done';
    }
  }
}
