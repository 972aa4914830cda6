/**
 * A version's downtime through the API (createServer from dist/, fastify.inject): GET /api/v1/backups
 * carries `downtimeMs` (null for a version without one), its schema and the OpenAPI document say so,
 * /metrics exposes the newest backup's downtime per guest and store and a summary over the kept
 * versions, and a task's result keeps each guest's `downtimeMs`.
 * The versions come from the engine's backupGuest in process, with a request whose `downtime`
 * answers directly (test/helpers/downtime.ts). The server lab's hypervisor driver is `none`, which
 * stops no guest, so the task is recorded through the same TaskStore the job runner finishes its
 * task with, holding a result of the runner's shape; a real job's result: test/jobs/job-downtime.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GuestReport } from '../../src/jobs/mail.js';
import { backupInProcess, DOWNTIME, DOWNTIME_MS } from '../helpers/downtime.js';
import { makeServerLab, type ServerLab } from './helpers-server.js';

let lab: ServerLab;

beforeAll(async () => {
  lab = await makeServerLab();
});
afterAll(async () => lab?.close());

const backup = (downtime?: () => typeof DOWNTIME | undefined) => backupInProcess({ ...lab, guestId: '101', downtime });

const metricValue = (text: string, name: string): string | undefined => new RegExp(`^${name.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1];

describe('downtime in the API', () => {
  it('GET /backups: downtimeMs per version, null without one', async () => {
    await backup();
    await backup(() => DOWNTIME);
    const res = await lab.api('GET', '/api/v1/backups?store=main&guest=101');
    expect(res.statusCode, res.body).toBe(200);
    const versions = res.json() as Array<{ version: number; downtimeMs: number | null }>;
    expect(versions.map((v) => [v.version, v.downtimeMs])).toEqual([
      [1, null],
      [2, DOWNTIME_MS],
    ]);
  });

  it('/metrics: the newest backup downtime per guest and store, and a summary over the versions that have one', async () => {
    const text = (await lab.api('GET', '/metrics')).body;
    expect(text).toContain('# TYPE coldvault_guest_downtime_seconds gauge');
    expect(text).toContain('# TYPE coldvault_backup_downtime_seconds summary');
    expect(Number(metricValue(text, 'coldvault_guest_downtime_seconds{guest="101",store="main"}'))).toBe(DOWNTIME_MS / 1000);
    expect(Number(metricValue(text, 'coldvault_backup_downtime_seconds_sum{guest="101",store="main"}'))).toBe(DOWNTIME_MS / 1000);
    expect(metricValue(text, 'coldvault_backup_downtime_seconds_count{guest="101",store="main"}')).toBe('1');

    // a newer backup that did not stop the guest: no downtime for the last backup; the summary keeps the older one
    await backup();
    const after = (await lab.api('GET', '/metrics')).body;
    expect(metricValue(after, 'coldvault_guest_downtime_seconds{guest="101",store="main"}')).toBeUndefined();
    expect(metricValue(after, 'coldvault_backup_downtime_seconds_count{guest="101",store="main"}')).toBe('1');
  });

  it('a task keeps each guest downtimeMs in its result', async () => {
    const guests: GuestReport[] = [
      { vmid: '101', name: 'test-101', status: 'ok', seconds: 20.5, bytes: 1024, downtimeMs: DOWNTIME_MS },
      { vmid: '102', name: 'idle', status: 'ok', seconds: 1, bytes: 0 },
    ];
    const task = lab.state.tasks.create('backup', { jobId: 'nightly', node: 'testnode', summary: 'job nightly' });
    task.finish(true, { guests });
    const one = await lab.api('GET', `/api/v1/tasks/${task.id}`);
    expect(one.statusCode, one.body).toBe(200);
    expect((one.json() as { result: { guests: GuestReport[] } }).result.guests).toEqual(guests);
    const listed = (await lab.api('GET', '/api/v1/tasks')).json() as Array<{ id: string; result: { guests: GuestReport[] } }>;
    expect(listed.find((t) => t.id === task.id)?.result.guests[0]?.downtimeMs).toBe(DOWNTIME_MS);
  });

  it('/metrics: bytes on the wire and logical bytes of the newest run of each cluster-mode job; local runs have none', async () => {
    const push = (wireBytes: number) => {
      const task = lab.state.tasks.create('backup', { jobId: 'ring', node: 'testnode', summary: 'job ring' });
      const guests: GuestReport[] = [
        { vmid: '101', name: 'a', status: 'ok', seconds: 2, bytes: 10, logicalBytes: 1000, wireBytes },
        { vmid: '102', name: 'b', status: 'ok', seconds: 2, bytes: 10, logicalBytes: 500, wireBytes: 5 },
      ];
      task.finish(true, { guests });
    };
    push(700);
    await new Promise((r) => setTimeout(r, 20)); // the newer run starts later
    push(300);
    const local = lab.state.tasks.create('backup', { jobId: 'nightly', node: 'testnode', summary: 'job nightly' });
    local.finish(true, { guests: [{ vmid: '101', name: 'a', status: 'ok', seconds: 1, bytes: 1, logicalBytes: 1000 }] });
    const text = (await lab.api('GET', '/metrics')).body;
    expect(metricValue(text, 'coldvault_push_wire_bytes{job="ring"}')).toBe('305');
    expect(metricValue(text, 'coldvault_push_logical_bytes{job="ring"}')).toBe('1500');
    expect(metricValue(text, 'coldvault_push_wire_bytes{job="nightly"}')).toBeUndefined();
  });

  it('the OpenAPI document describes downtimeMs of versions and of task results', async () => {
    interface Schema {
      properties: Record<string, { anyOf?: Array<{ type: string; minimum?: number }>; description?: string }>;
      items: Schema;
    }
    type Doc = { paths: Record<string, { get: { responses: Record<string, { content: Record<string, { schema: Schema }> }> } }> };
    const doc = (await lab.api('GET', '/api/v1/openapi.json')).json() as Doc;
    const schemaOf = (path: string): Schema => doc.paths[path]!.get.responses['200']!.content['application/json']!.schema;
    expect(schemaOf('/api/v1/backups').items.properties.downtimeMs?.anyOf).toEqual([
      expect.objectContaining({ type: 'integer', minimum: 0 }),
      { type: 'null' },
    ]);
    expect(schemaOf('/api/v1/tasks/{id}').properties.result?.description).toContain('downtimeMs');
  });
});
