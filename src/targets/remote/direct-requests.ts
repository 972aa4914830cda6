/**
 * DirectRequests: the kept-alive DirectConnections to one node that the Wire sends its requests over
 * (reads of chunks, indexes, manifests, lists; an upload's open, known, chunks, files and finish; all
 * but bodies under a bandwidth limit): a connection per request in flight (the Wire's gate bounds
 * them), idle ones reused, each new one checked against the pinned fingerprint before its first
 * request. Answers are read by the socket
 * straight into their destination, bodies written as they are (direct-connection.ts).
 */
import { ColdvaultError } from '../../core/index.js';
import { type DirectAnswer, DirectConnection, type DirectRequest, type DirectTarget } from './direct-connection.js';

export type { DirectAnswer, DirectRequest, DirectTarget } from './direct-connection.js';

export class DirectRequests {
  private readonly idle: DirectConnection[] = [];
  private readonly open = new Set<DirectConnection>();
  private closed = false;

  constructor(private readonly target: DirectTarget) {}

  /** One request (a new connection is told by req.onConnect). Failures: CONNECTION_FAILED, TLS_FAILED, FINGERPRINT_MISMATCH, ABORTED, or the request's tooLarge error. */
  async send(req: DirectRequest): Promise<DirectAnswer> {
    const conn = await this.connection(req.onConnect);
    try {
      const answer = await conn.request(req);
      if (this.closed || !conn.usable) conn.destroy();
      else this.idle.push(conn);
      return answer;
    } catch (err) {
      conn.destroy();
      throw err;
    }
  }

  /** Closes every connection; requests in flight fail with ABORTED. */
  close(): void {
    this.closed = true;
    this.idle.length = 0;
    for (const conn of this.open) conn.destroy(new ColdvaultError('ABORTED', 'the client was closed'));
  }

  private async connection(onConnect: () => void): Promise<DirectConnection> {
    if (this.closed) throw new ColdvaultError('ABORTED', 'the client was closed');
    for (let conn = this.idle.pop(); conn; conn = this.idle.pop()) if (conn.usable) return conn;
    onConnect();
    const conn = await DirectConnection.open(this.target, (gone) => this.forget(gone));
    this.open.add(conn);
    if (this.closed) {
      conn.destroy();
      throw new ColdvaultError('ABORTED', 'the client was closed');
    }
    return conn;
  }

  private forget(conn: DirectConnection): void {
    this.open.delete(conn);
    const at = this.idle.indexOf(conn);
    if (at >= 0) this.idle.splice(at, 1);
  }
}
