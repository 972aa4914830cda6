/**
 * API tokens for scripts and the dashboard (`Authorization: Bearer cv_...`): 32 random bytes, shown
 * once at creation; only their SHA-256 is stored, with name, role (roles.ts; `backup` with its
 * datastore), creation time, optional expiry and the time of last use. An expired token is refused
 * (and kept, so `token list` shows it as expired). The last use is written at most once a minute
 * per token: a push authenticates every chunk request, and a state-database write (an fsync of its
 * log) per request cost a node about 1 s per 2 GiB received (bench/RESULTS.md, cluster-notes).
 */
import { ColdvaultError } from '../../core/index.js';
import type { StateDb } from '../../jobs/index.js';
import type { Clock } from '../deps.js';
import { grantProblem, type Grant, type Role } from './roles.js';
import { randomToken, sha256 } from './secrets.js';
import { ensureServerTables } from './tables.js';

export interface TokenInfo {
  name: string;
  role: Role;
  /** the datastore a scoped role (backup) is limited to; null for the others */
  store: string | null;
  created: string;
  expires: string | null;
  lastUsed: string | null;
  expired: boolean;
}

export interface TokenOptions {
  /** default operator */
  role?: string;
  /** the datastore (configured name) of a `backup` token */
  store?: string;
  /** days until it expires; none: never */
  expiresDays?: number;
}

interface TokenRow {
  name: string;
  role: Role;
  store: string | null;
  created: string;
  expires: string | null;
  last_used: string | null;
}

export const TOKEN_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
export const DEFAULT_TOKEN_ROLE: Role = 'operator';
const DAY = 86_400_000;
const COLUMNS = 'name, role, store, created, expires, last_used';
/** a token's last use is written again only this long after the one recorded */
const LAST_USED_EVERY_MS = 60_000;

export class TokenStore {
  constructor(
    private readonly db: StateDb,
    private readonly clock: Clock = Date.now,
  ) {
    ensureServerTables(db);
  }

  /** Creates a token; the returned secret is never available again. */
  create(name: string, opts: TokenOptions = {}): { token: string; info: TokenInfo } {
    const { role = DEFAULT_TOKEN_ROLE, store, expiresDays } = opts;
    if (!TOKEN_NAME.test(name))
      throw new ColdvaultError('USAGE', `token name '${name}' must start with a letter or digit and hold only letters, digits, '_', '.', '-' (up to 64)`);
    if (expiresDays !== undefined && !(Number.isInteger(expiresDays) && expiresDays > 0))
      throw new ColdvaultError('USAGE', `--expires '${expiresDays}': expected a number of days >= 1`);
    const problem = grantProblem(role, store);
    if (problem) throw new ColdvaultError('USAGE', `creating token '${name}' failed: ${problem}`);
    if (this.find(name)) throw new ColdvaultError('USAGE', `token '${name}' already exists; remove it first with 'coldvault token rm ${name}'`);
    const token = randomToken('cv_');
    const created = new Date(this.clock()).toISOString();
    const expires = expiresDays ? new Date(this.clock() + expiresDays * DAY).toISOString() : null;
    const row: TokenRow = { name, role: role as Role, store: store ?? null, created, expires, last_used: null };
    this.db
      .prepare('INSERT INTO api_tokens (name, hash, role, store, created, expires) VALUES (?, ?, ?, ?, ?, ?)')
      .run(name, sha256(token), row.role, row.store, created, expires);
    return { token, info: this.toInfo(row) };
  }

  list(): TokenInfo[] {
    return (this.db.prepare(`SELECT ${COLUMNS} FROM api_tokens ORDER BY name`).all() as TokenRow[]).map((r) => this.toInfo(r));
  }

  remove(name: string): void {
    if (this.db.prepare('DELETE FROM api_tokens WHERE name = ?').run(name).changes === 0) throw new ColdvaultError('USAGE', `token '${name}' does not exist`);
  }

  /** The token's name and grant when it is known and not expired (its last use is recorded, to the minute), else undefined. */
  authenticate(token: string): { name: string; grant: Grant } | undefined {
    const row = this.db.prepare(`SELECT ${COLUMNS} FROM api_tokens WHERE hash = ?`).get(sha256(token)) as TokenRow | undefined;
    if (!row || this.toInfo(row).expired) return undefined;
    const now = this.clock();
    if (row.last_used === null || !(now - Date.parse(row.last_used) < LAST_USED_EVERY_MS)) {
      this.db.prepare('UPDATE api_tokens SET last_used = ? WHERE name = ?').run(new Date(now).toISOString(), row.name);
    }
    return { name: row.name, grant: row.store === null ? { role: row.role } : { role: row.role, store: row.store } };
  }

  private find(name: string): TokenRow | undefined {
    return this.db.prepare(`SELECT ${COLUMNS} FROM api_tokens WHERE name = ?`).get(name) as TokenRow | undefined;
  }

  private toInfo(r: TokenRow): TokenInfo {
    return {
      name: r.name,
      role: r.role,
      store: r.store,
      created: r.created,
      expires: r.expires,
      lastUsed: r.last_used,
      expired: r.expires !== null && Date.parse(r.expires) <= this.clock(),
    };
  }
}
