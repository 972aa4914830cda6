/**
 * The admin password (the web UI's login): set at the first start from COLDVAULT_ADMIN_PASSWORD, or
 * generated and handed back once so `coldvault serve` can print it; only its scrypt hash is stored.
 * Later starts keep the stored one (delete the `admin-password` row of server_settings to reset it).
 */
import type { StateDb } from '../../jobs/index.js';
import { hashPassword, randomToken, verifyPassword } from './secrets.js';
import { ensureServerTables } from './tables.js';

const KEY = 'admin-password';

/** Sets the admin password if none is stored; returns the generated one, when it made one. */
export async function ensureAdminPassword(db: StateDb, fromEnv?: string): Promise<{ generated?: string }> {
  ensureServerTables(db);
  if (storedHash(db)) return {};
  const generated = fromEnv ? undefined : randomToken().slice(0, 24);
  const hash = await hashPassword(fromEnv ?? (generated as string));
  db.prepare('INSERT OR IGNORE INTO server_settings (key, value) VALUES (?, ?)').run(KEY, hash);
  return { generated };
}

export async function checkAdminPassword(db: StateDb, password: string): Promise<boolean> {
  const hash = storedHash(db);
  return hash ? verifyPassword(password, hash) : false;
}

function storedHash(db: StateDb): string | undefined {
  ensureServerTables(db);
  return (db.prepare('SELECT value FROM server_settings WHERE key = ?').get(KEY) as { value: string } | undefined)?.value;
}
