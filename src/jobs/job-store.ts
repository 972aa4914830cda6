/** Jobs in the state database: add, edit, list, remove. */
import { ColdvaultError } from '../core/index.js';
import { validateJob, type Job } from './job-model.js';
import type { StateDb } from './state-db.js';

export class JobStore {
  constructor(private readonly db: StateDb) {}

  list(): Job[] {
    const rows = this.db.prepare('SELECT json FROM jobs ORDER BY id').all() as Array<{ json: string }>;
    return rows.map((r) => validateJob(JSON.parse(r.json) as Record<string, unknown>));
  }

  get(id: string): Job {
    const row = this.db.prepare('SELECT json FROM jobs WHERE id = ?').get(id) as { json: string } | undefined;
    if (!row) throw new ColdvaultError('JOB_NOT_FOUND', `job '${id}' does not exist`);
    return validateJob(JSON.parse(row.json) as Record<string, unknown>);
  }

  has(id: string): boolean {
    return this.db.prepare('SELECT 1 FROM jobs WHERE id = ?').get(id) !== undefined;
  }

  add(input: Record<string, unknown>): Job {
    const job = validateJob(input);
    if (this.has(job.id)) throw new ColdvaultError('JOB_INVALID', `job '${job.id}' already exists; use 'job edit'`);
    const now = new Date().toISOString();
    this.db.prepare('INSERT INTO jobs (id, json, created, updated) VALUES (?, ?, ?, ?)').run(job.id, JSON.stringify(job), now, now);
    return job;
  }

  /** Replaces fields of an existing job (undefined fields keep their value). */
  edit(id: string, changes: Record<string, unknown>): Job {
    const merged: Record<string, unknown> = { ...this.get(id) };
    for (const [k, v] of Object.entries(changes)) if (v !== undefined) merged[k] = v;
    if (changes.all === true) merged.vmid = [];
    if (Array.isArray(changes.vmid) && changes.vmid.length > 0) {
      merged.all = false;
      merged.exclude = [];
    }
    const job = validateJob({ ...merged, id });
    this.db.prepare('UPDATE jobs SET json = ?, updated = ? WHERE id = ?').run(JSON.stringify(job), new Date().toISOString(), id);
    return job;
  }

  remove(id: string): void {
    const r = this.db.prepare('DELETE FROM jobs WHERE id = ?').run(id);
    if (r.changes === 0) throw new ColdvaultError('JOB_NOT_FOUND', `job '${id}' does not exist`);
    this.db.prepare('DELETE FROM job_runs WHERE job_id = ?').run(id);
  }
}
