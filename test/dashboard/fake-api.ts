/**
 * A stand-in for `coldvault serve`'s API v1, for the dashboard's tmux test until the server's tests can
 * drive the real one: a real HTTP server (node:http, port 0) serving the routes the dashboard reads
 * (status, jobs, backups, the overview's guests, tasks, task log),
 * from fixture JSON. Each GET /api/v1/status advances the running backup by one step (1 s of elapsed
 * time, 48 MiB read, 16 MiB written) and adds a log line, so the throughput is 48 / 16 MiB/s.
 * Auth and errors as the API: `Authorization: Bearer <token>`, else 401 `{error: {code, message}}`.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;
export const STEP = { readBytes: 48 * MiB, writtenBytes: 16 * MiB, elapsedSeconds: 1 };
export const TOTAL = 4 * GiB;
export const TASK_ID = '20250301T020000Z-backup-a1b2c3';

export interface FakeApi {
  url: string;
  /** requests seen, as `METHOD path?query` */
  requests: string[];
  /** requests refused for want of the token */
  refused: number;
  close(): Promise<void>;
}

const jobs = [
  { id: 'daily', store: 'usb1', vmid: ['101', '102'], all: false, exclude: [], days: ['mon', 'tue', 'wed', 'thu', 'fri'], at: '02:00', keep: 3, enabled: true },
  { id: 'weekly', store: 'usb1', vmid: [], all: true, exclude: ['101', '102'], days: ['sun'], at: '03:00', keep: 5, enabled: true },
];

function version(id: string, n: number, day: number, logical: number, stored: number): Record<string, unknown> {
  return {
    id,
    version: n,
    time: `2025-02-${String(day).padStart(2, '0')}T02:0${n}:00.000Z`,
    name: `vm${id}`,
    node: 'pve1',
    store: '/mnt/usb1',
    disks: [{ key: 'scsi0', size: logical, sha256: 'ab'.repeat(32), zeroBytes: 0 }],
    verified: true,
    verifyState: 'ok',
    logicalBytes: logical,
    zeroBytes: 0,
    newBytes: stored * 2,
    storedBytes: stored,
    protected: false,
  };
}

const backups = [
  version('101', 1, 24, 8 * GiB, 2 * GiB),
  version('101', 2, 25, 8 * GiB, 256 * MiB),
  version('101', 3, 26, 8 * GiB, 256 * MiB),
  version('102', 1, 25, 32 * GiB, 4 * GiB),
  version('102', 2, 26, 32 * GiB, 1 * GiB),
  version('103', 1, 2, 4 * GiB, 1 * GiB),
  version('103', 2, 9, 4 * GiB, 128 * MiB),
  version('103', 3, 16, 4 * GiB, 128 * MiB),
  version('103', 4, 23, 4 * GiB, 128 * MiB),
];

/** GET /api/v1/overview's guests: 101 fine, 102 failed last night, 103 overdue, 104 in no job. */
const overviewGuests = [
  {
    id: '101',
    name: 'web',
    covered: true,
    lastBackup: { time: '2025-02-26T02:03:00.000Z', result: 'ok', durationMs: 300_000, downtimeMs: 42_000 },
    versions: 3,
    flags: [],
  },
  {
    id: '102',
    name: 'db',
    covered: true,
    lastBackup: { time: '2025-02-27T02:05:00.000Z', result: 'failed', durationMs: 3000, downtimeMs: 2000 },
    versions: 2,
    flags: ['failed', 'overdue'],
  },
  {
    id: '103',
    name: 'mail',
    covered: true,
    lastBackup: { time: '2025-02-23T03:04:00.000Z', result: 'ok', durationMs: 60_000, downtimeMs: null },
    flags: ['overdue'],
  },
  { id: '104', name: 'scratch', covered: false, lastBackup: null, versions: 0, flags: ['not-backed-up'] },
];

export async function startFakeApi(options: { token?: string } = {}): Promise<FakeApi> {
  let step = 0;
  const started = Date.now();
  const log: Array<{ n: number; time: string; level: string; message: string }> = [
    { n: 0, time: new Date().toISOString(), level: 'INFO', message: 'Starting Backup of VM 101 (qemu)' },
    { n: 1, time: new Date().toISOString(), level: 'INFO', message: 'stopping guest 101' },
  ];
  const api: FakeApi = { url: '', requests: [], refused: 0, close: async () => {} };

  const routes: Array<[RegExp, (m: RegExpMatchArray, q: URLSearchParams) => unknown]> = [
    [
      /^\/api\/v1\/status$/,
      () => {
        step++;
        log.push({
          n: log.length,
          time: new Date().toISOString(),
          level: 'INFO',
          message: `scsi0: ${Math.min(100, Math.round((step * STEP.readBytes * 100) / TOTAL))}% read`,
        });
        return {
          node: 'pve1',
          version: '0.1.0',
          uptime: Math.round((Date.now() - started) / 1000) + 3600,
          running: [
            {
              taskId: TASK_ID,
              type: 'backup',
              jobId: 'daily',
              progress: {
                phase: 'backup',
                item: 'scsi0',
                totalBytes: TOTAL,
                readBytes: Math.min(TOTAL, step * STEP.readBytes),
                writtenBytes: step * STEP.writtenBytes,
                zeroBytes: 0,
                dedupBytes: step * 8 * MiB,
                elapsedSeconds: step * STEP.elapsedSeconds,
              },
            },
          ],
          datastores: [{ name: 'usb1', dir: '/mnt/usb1', used: 300 * GiB, free: 700 * GiB, total: 1000 * GiB, versions: backups.length }],
        };
      },
    ],
    [/^\/api\/v1\/jobs$/, () => jobs],
    [/^\/api\/v1\/overview$/, () => ({ guests: overviewGuests, datastores: [], history: { days: 1, since: '', jobs: [] }, rotation: [] })],
    [
      /^\/api\/v1\/backups$/,
      (_m, q) => {
        const store = q.get('store');
        if (store && store !== 'usb1' && store !== '/mnt/usb1') return [];
        const guest = q.get('guest');
        return guest ? backups.filter((b) => b.id === guest) : backups;
      },
    ],
    [
      /^\/api\/v1\/tasks$/,
      (_m, q) =>
        [
          { id: TASK_ID, status: 'running', type: 'backup', jobId: 'daily', start: '2025-03-01T02:00:00.000Z', end: null },
          {
            id: '20250228T020000Z-backup-0f0f0f',
            status: 'ok',
            type: 'backup',
            jobId: 'daily',
            start: '2025-02-28T02:00:00.000Z',
            end: '2025-02-28T02:10:00.000Z',
          },
        ].slice(0, Number(q.get('limit') ?? 50)),
    ],
    [/^\/api\/v1\/tasks\/([^/]+)\/log$/, (m, q) => (decodeURIComponent(m[1] ?? '') === TASK_ID ? log.filter((l) => l.n >= Number(q.get('from') ?? 0)) : [])],
  ];

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    api.requests.push(`${req.method} ${url.pathname}${url.search}`);
    const send = (code: number, body: unknown): void => {
      res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    if (options.token && req.headers.authorization !== `Bearer ${options.token}`) {
      api.refused++;
      send(401, { error: { code: 'UNAUTHORIZED', message: 'a valid token is required' } });
      return;
    }
    for (const [re, handler] of routes) {
      const m = url.pathname.match(re);
      if (m && req.method === 'GET') {
        send(200, handler(m, url.searchParams));
        return;
      }
    }
    send(404, { error: { code: 'NOT_FOUND', message: `no route ${req.method} ${url.pathname}` } });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  api.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  api.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return api;
}
