/**
 * The server's tables in the state database (`<stateDir>/coldvault.sqlite`, beside jobs and tasks):
 * settings (the admin password's scrypt hash), API tokens (SHA-256 of the token, its role and, for a
 * scoped role, its datastore) and web sessions (SHA-256 of the cookie value). Secrets are never stored
 * in the clear. Idempotent. Tokens made before roles existed were full administrators: the added
 * `role` column gives them `admin`, so they keep working as they did (`token list` shows it).
 */
import type { StateDb } from '../../jobs/index.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS server_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS api_tokens (name TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, created TEXT NOT NULL, expires TEXT, last_used TEXT);
CREATE TABLE IF NOT EXISTS web_sessions (hash TEXT PRIMARY KEY, created TEXT NOT NULL, last_seen INTEGER NOT NULL);
`;

/** Columns added after the first release: name -> its definition (the default is what older rows get). */
const ADDED_TOKEN_COLUMNS: Record<string, string> = {
  role: "role TEXT NOT NULL DEFAULT 'admin'",
  store: 'store TEXT',
};

const ready = new WeakSet<StateDb>();

export function ensureServerTables(db: StateDb): void {
  if (ready.has(db)) return;
  db.transaction(() => {
    db.exec(SCHEMA);
    const have = new Set((db.prepare('PRAGMA table_info(api_tokens)').all() as Array<{ name: string }>).map((c) => c.name));
    for (const [name, definition] of Object.entries(ADDED_TOKEN_COLUMNS)) if (!have.has(name)) db.exec(`ALTER TABLE api_tokens ADD COLUMN ${definition}`);
  }).immediate();
  ready.add(db);
}
