/**
 * The dashboard's API client: plain HTTP (fetch) against coldvault serve's API v1, `Authorization:
 * Bearer <token>`. Types here are the API's JSON as the dashboard reads it; every field the dashboard
 * does not strictly need is optional, so a server that sends less degrades a cell, not the screen.
 */
import type { TransferProgress } from '../core/index.js';

export interface RunningTask {
  taskId: string;
  type: string;
  jobId?: string | null;
  progress: TransferProgress | null;
}

export interface DatastoreStatus {
  name: string;
  dir?: string;
  /** 's3': a bucket (no size, no free space: `used` is what its versions store) */
  kind?: 's3';
  used?: number;
  free?: number;
  total?: number;
  versions?: number;
  error?: string;
}

export interface StatusJson {
  node?: string;
  version?: string;
  uptime?: number;
  running?: RunningTask[];
  datastores?: DatastoreStatus[];
}

export interface JobJson {
  id: string;
  store: string;
  vmid?: string[];
  all?: boolean;
  exclude?: string[];
  keep?: number | null;
  enabled?: boolean;
}

export interface BackupJson {
  /** the guest id */
  id: string;
  version: number;
  time: string | number;
  name?: string;
  logicalBytes?: number;
  zeroBytes?: number;
  newBytes?: number;
  storedBytes?: number;
  protected?: boolean;
  verifyState?: string;
  /** the store's folder */
  store?: string;
}

export interface TaskJson {
  id: string;
  status: string;
  type: string;
  jobId?: string | null;
  start?: string;
  end?: string | null;
}

/** One guest of GET /api/v1/overview, as far as the dashboard reads it. */
export interface OverviewGuestJson {
  id: string;
  name?: string;
  covered?: boolean;
  lastBackup?: { time?: string; result?: string; durationMs?: number | null; downtimeMs?: number | null } | null;
  nextRun?: { time?: string; job?: string } | null;
  versions?: number;
  daysSinceGood?: number | null;
  flags?: string[];
}

export interface OverviewJson {
  guests?: OverviewGuestJson[];
}

export interface TaskLogLineJson {
  n: number;
  time: string;
  level: string;
  message: string;
}

/** A refused or failed request: the method, path and what went wrong (the API's `code` when it sent one). */
export class ApiError extends Error {
  constructor(
    readonly path: string,
    readonly reason: string,
    readonly status?: number,
    readonly code?: string,
  ) {
    super(`GET ${path}: ${reason}`);
    this.name = 'ApiError';
  }
}

export interface ApiClientOptions {
  /** e.g. `http://127.0.0.1:8080` */
  url: string;
  token?: string;
  /** per request, default 5 s */
  timeoutMs?: number;
  /** aborts every request (the dashboard quitting) */
  signal?: AbortSignal;
}

export class ApiClient {
  private readonly base: string;

  constructor(private readonly options: ApiClientOptions) {
    this.base = options.url.replace(/\/+$/, '');
  }

  get url(): string {
    return this.base;
  }

  status(): Promise<StatusJson> {
    return this.get<StatusJson>('/api/v1/status');
  }

  jobs(): Promise<JobJson[]> {
    return this.get<JobJson[]>('/api/v1/jobs');
  }

  /** All guests' versions in one store (by name or folder); without a store, the server's default. */
  backups(store?: string): Promise<BackupJson[]> {
    return this.get<BackupJson[]>(`/api/v1/backups${store ? `?store=${encodeURIComponent(store)}` : ''}`);
  }

  /** The overview (every guest's backup state and flags); `days` of run history, which the dashboard does not draw: 1. */
  overview(days = 1): Promise<OverviewJson> {
    return this.get<OverviewJson>(`/api/v1/overview?days=${days}`);
  }

  tasks(limit: number): Promise<TaskJson[]> {
    return this.get<TaskJson[]>(`/api/v1/tasks?limit=${limit}`);
  }

  taskLog(id: string, from: number): Promise<TaskLogLineJson[]> {
    return this.get<TaskLogLineJson[]>(`/api/v1/tasks/${encodeURIComponent(id)}/log?from=${from}`);
  }

  async get<T>(path: string): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.options.token) headers.authorization = `Bearer ${this.options.token}`;
    let res: Response;
    try {
      const timeout = AbortSignal.timeout(this.options.timeoutMs ?? 5000);
      const signal = this.options.signal ? AbortSignal.any([timeout, this.options.signal]) : timeout;
      res = await fetch(`${this.base}${path}`, { headers, signal });
    } catch (err) {
      throw new ApiError(path, networkMessage(err));
    }
    const text = await res.text().catch(() => '');
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = undefined;
    }
    if (!res.ok) {
      // the API answers `{error: {code, message}}`; a bare `{code, message}` or `{error: "..."}` is read too
      const top = (body && typeof body === 'object' ? body : {}) as { code?: unknown; message?: unknown; error?: unknown };
      const o = (top.error && typeof top.error === 'object' ? top.error : top) as { code?: unknown; message?: unknown };
      const code = typeof o.code === 'string' ? o.code : undefined;
      const message = typeof o.message === 'string' ? o.message : typeof top.error === 'string' ? top.error : res.statusText;
      throw new ApiError(path, `${res.status}${code ? ` ${code}` : ''}: ${message}`, res.status, code);
    }
    if (body === undefined) throw new ApiError(path, 'the answer is not JSON', res.status);
    return body as T;
  }
}

function networkMessage(err: unknown): string {
  if (err instanceof Error) {
    if (err.name === 'TimeoutError') return 'no answer in time';
    const cause = (err as { cause?: unknown }).cause;
    if (cause instanceof Error) return (cause as { code?: string }).code ?? cause.message;
    return err.message;
  }
  return String(err);
}
