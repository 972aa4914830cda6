/**
 * API tokens for scripts and the dashboard (`Authorization: Bearer cv_...`): 32 random bytes, shown
 * once at creation; only their SHA-256 is stored, with name, creation time, optional expiry and the
 * time of last use. An expired token is refused (and kept, so `token list` shows it as expired).
 */
import { ColdvaultError } from '../../core/errors.js';
import type { StateDb } from '../../jobs/index.js';
import type { Clock } from '../deps.js';
import { randomToken, sha256 } from './secrets.js';
import { ensureServerTables } from './tables.js';

export interface TokenInfo {
  name: string;
  created: string;
  expires: string | null;
  lastUsed: string | null;
  expired: boolean;
}

interface TokenRow { name: string; created: string; expires: string | null; last_used: string | null }

export const TOKEN_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const DAY = 86_400_000;

export class TokenStore {
  constructor(private readonly db: StateDb, private readonly clock: Clock = Date.now) {
    ensureServerTables(db);
  }

  /** Creates a token; the returned secret is never available again. */
  create(name: string, expiresDays?: number): { token: string; info: TokenInfo } {
    if (!TOKEN_NAME.test(name)) throw new ColdvaultError('USAGE', `token name '${name}' must start with a letter or digit and hold only letters, digits, '_', '.', '-' (up to 64)`);
    if (expiresDays !== undefined && !(Number.isInteger(expiresDays) && expiresDays > 0)) throw new ColdvaultError('USAGE', `--expires '${expiresDays}': expected a number of days >= 1`);
    if (this.find(name)) throw new ColdvaultError('USAGE', `token '${name}' already exists; remove it first with 'coldvault token rm ${name}'`);
    const token = randomToken('cv_');
    const now = this.clock();
    const expires = expiresDays ? new Date(now + expiresDays * DAY).toISOString() : null;
    this.db.prepare('INSERT INTO api_tokens (name, hash, created, expires) VALUES (?, ?, ?, ?)').run(name, sha256(token), new Date(now).toISOString(), expires);
    return { token, info: this.toInfo({ name, created: new Date(now).toISOString(), expires, last_used: null }) };
  }

  list(): TokenInfo[] {
    return (this.db.prepare('SELECT name, created, expires, last_used FROM api_tokens ORDER BY name').all() as TokenRow[]).map((r) => this.toInfo(r));
  }

  remove(name: string): void {
    if (this.db.prepare('DELETE FROM api_tokens WHERE name = ?').run(name).changes === 0) throw new ColdvaultError('USAGE', `token '${name}' does not exist`);
  }

  /** The token's name when it is known and not expired (its last use is recorded), else undefined. */
  authenticate(token: string): string | undefined {
    const row = this.db.prepare('SELECT name, created, expires, last_used FROM api_tokens WHERE hash = ?').get(sha256(token)) as TokenRow | undefined;
    if (!row || this.toInfo(row).expired) return undefined;
    this.db.prepare('UPDATE api_tokens SET last_used = ? WHERE name = ?').run(new Date(this.clock()).toISOString(), row.name);
    return row.name;
  }

  private find(name: string): TokenRow | undefined {
    return this.db.prepare('SELECT name, created, expires, last_used FROM api_tokens WHERE name = ?').get(name) as TokenRow | undefined;
  }

  private toInfo(r: TokenRow): TokenInfo {
    return { name: r.name, created: r.created, expires: r.expires, lastUsed: r.last_used, expired: r.expires !== null && Date.parse(r.expires) <= this.clock() };
  }
}
