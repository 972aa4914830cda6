/**
 * Web sessions: the cookie holds 32 random bytes; the state database holds their SHA-256, the time of
 * creation and the time of last use. A session is over when it has been unused for `idleMs` (default
 * 12 h) or, used or not, when it is older than `maxMs` (default 12 h): refused and deleted. Sessions
 * survive a restart of the server; logout deletes one.
 */
import type { StateDb } from '../../jobs/index.js';
import type { Clock } from '../deps.js';
import { randomToken, sha256 } from './secrets.js';
import { ensureServerTables } from './tables.js';

export interface SessionLifetime {
  /** unused for this long: over */
  idleMs: number;
  /** this long after the login: over, however busy */
  maxMs: number;
}

export class SessionStore {
  constructor(
    private readonly db: StateDb,
    private readonly clock: Clock,
    private readonly lifetime: SessionLifetime,
  ) {
    ensureServerTables(db);
  }

  /** A new session; returns the cookie value. */
  create(): string {
    const now = this.clock();
    this.db
      .prepare('DELETE FROM web_sessions WHERE last_seen <= ? OR created <= ?')
      .run(now - this.lifetime.idleMs, new Date(now - this.lifetime.maxMs).toISOString());
    const id = randomToken();
    this.db.prepare('INSERT INTO web_sessions (hash, created, last_seen) VALUES (?, ?, ?)').run(sha256(id), new Date(now).toISOString(), now);
    return id;
  }

  /** True (and the idle time restarts) for a live session; an expired one is deleted. */
  touch(id: string): boolean {
    const hash = sha256(id);
    const row = this.db.prepare('SELECT created, last_seen FROM web_sessions WHERE hash = ?').get(hash) as { created: string; last_seen: number } | undefined;
    if (!row) return false;
    const now = this.clock();
    if (now - row.last_seen >= this.lifetime.idleMs || !(now - Date.parse(row.created) < this.lifetime.maxMs)) {
      this.remove(id);
      return false;
    }
    this.db.prepare('UPDATE web_sessions SET last_seen = ? WHERE hash = ?').run(now, hash);
    return true;
  }

  remove(id: string): void {
    this.db.prepare('DELETE FROM web_sessions WHERE hash = ?').run(sha256(id));
  }
}
