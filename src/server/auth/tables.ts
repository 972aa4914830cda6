/**
 * The server's tables in the state database (`<stateDir>/coldvault.sqlite`, beside jobs and tasks):
 * settings (the admin password's scrypt hash), API tokens (SHA-256 of the token) and web sessions
 * (SHA-256 of the cookie value). Secrets are never stored in the clear. Idempotent.
 */
import type { StateDb } from '../../jobs/index.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS server_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS api_tokens (name TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, created TEXT NOT NULL, expires TEXT, last_used TEXT);
CREATE TABLE IF NOT EXISTS web_sessions (hash TEXT PRIMARY KEY, created TEXT NOT NULL, last_seen INTEGER NOT NULL);
`;

const ready = new WeakSet<StateDb>();

export function ensureServerTables(db: StateDb): void {
  if (ready.has(db)) return;
  db.exec(SCHEMA);
  ready.add(db);
}
