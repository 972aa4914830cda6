/**
 * Prometheus text exposition (format 0.0.4) of what the catalogs and the task table know, so runs by
 * the CLI and other processes count too:
 *   coldvault_backup_bytes_total{guest,store}                  disk bytes of the guest's versions in the store
 *                                                              (goes down when versions are pruned)
 *   coldvault_backup_throughput_bytes_per_second{guest,store}  disk bytes / duration of the newest version
 *   coldvault_last_success_timestamp_seconds{guest,store}      end of the newest version's backup
 *   coldvault_guest_downtime_seconds{guest,store}              how long the newest version's backup held the guest
 *                                                              off (none when that backup did not stop it)
 *   coldvault_backup_downtime_seconds{guest,store}             summary (sum, count) over the kept versions that
 *                                                              recorded a downtime
 *   coldvault_datastore_free_bytes{store}, coldvault_datastore_size_bytes{store}   (folders; a bucket has no size)
 *   coldvault_task_duration_seconds{type}                      summary (sum, count) of the kept finished tasks
 *   coldvault_task_last_duration_seconds{type}                 the newest finished task of each type
 *   coldvault_tasks_running                                    tasks running now (any process)
 *   coldvault_push_wire_bytes{job}                             bytes on the wire of the newest run of a cluster-mode
 *                                                              job (sent and received), next to its guests'
 *   coldvault_push_logical_bytes{job}                          disk bytes (logical) in that run
 */
import type { CatalogVersion } from '../catalog/index.js';
import type { TaskInfo } from '../jobs/index.js';
import type { ServerConfig } from './deps.js';
import type { KnownStore } from './paths.js';
import { withStore } from './stores.js';

type Labels = Record<string, string>;
interface Sample {
  labels: Labels;
  value: number;
  suffix?: string;
}
interface Family {
  name: string;
  type: 'counter' | 'gauge' | 'summary';
  help: string;
  samples: Sample[];
}

export async function collectMetrics(stores: KnownStore[], tasks: TaskInfo[], config: ServerConfig): Promise<string> {
  const families = familiesOf();
  for (const s of stores) await addStore(families, s, config).catch(() => undefined);
  addTasks(families, tasks);
  addPushes(families, tasks);
  return render(Object.values(families));
}

function familiesOf(): Record<string, Family> {
  const f = (name: string, type: Family['type'], help: string): Family => ({ name, type, help, samples: [] });
  return {
    bytes: f('coldvault_backup_bytes_total', 'counter', 'Disk bytes backed up in the versions a store keeps of a guest (drops when versions are pruned).'),
    rate: f('coldvault_backup_throughput_bytes_per_second', 'gauge', 'Disk bytes per second of the newest backup of a guest.'),
    last: f('coldvault_last_success_timestamp_seconds', 'gauge', 'Unix time at which the newest successful backup of a guest ended.'),
    downtime: f('coldvault_guest_downtime_seconds', 'gauge', 'Seconds the newest backup of a guest held it off (shutdown request to started again).'),
    downtimes: f('coldvault_backup_downtime_seconds', 'summary', 'Seconds guests were held off, over the kept versions that recorded it.'),
    free: f('coldvault_datastore_free_bytes', 'gauge', 'Free bytes on the filesystem of a datastore.'),
    size: f('coldvault_datastore_size_bytes', 'gauge', 'Size in bytes of the filesystem of a datastore.'),
    duration: f('coldvault_task_duration_seconds', 'summary', 'Durations of the finished tasks kept in the state database.'),
    lastDuration: f('coldvault_task_last_duration_seconds', 'gauge', 'Duration of the newest finished task of a type.'),
    running: f('coldvault_tasks_running', 'gauge', 'Tasks running now.'),
    wire: f('coldvault_push_wire_bytes', 'gauge', 'Bytes on the wire (sent and received) of the newest run of a cluster-mode job.'),
    logical: f('coldvault_push_logical_bytes', 'gauge', 'Disk bytes of the guests pushed by the newest run of a cluster-mode job.'),
  };
}

async function addStore(families: Record<string, Family>, s: KnownStore, config: ServerConfig): Promise<void> {
  await withStore(s, config, async (opened) => {
    const { store, catalog } = opened;
    if (opened.kind === 'folder') {
      const { free, total } = await opened.store.space();
      families.free!.samples.push({ labels: { store: s.name }, value: free });
      families.size!.samples.push({ labels: { store: s.name }, value: total });
    }
    const byGuest = groupBy(catalog.listVersions(), (v) => v.guestId);
    for (const [guest, versions] of byGuest) {
      const labels = { guest, store: s.name };
      families.bytes!.samples.push({ labels, value: versions.reduce((sum, v) => sum + v.logicalBytes, 0) });
      const newest = versions.reduce((a, b) => (Date.parse(b.time) > Date.parse(a.time) ? b : a));
      const seconds = (await store.readManifest(guest, newest.version)).durationSeconds;
      families.last!.samples.push({ labels, value: Date.parse(newest.time) / 1000 + seconds });
      families.rate!.samples.push({ labels, value: newest.logicalBytes / Math.max(seconds, 0.001) });
      addDowntimes(families, labels, newest, versions);
    }
  });
}

function addDowntimes(families: Record<string, Family>, labels: Labels, newest: CatalogVersion, versions: CatalogVersion[]): void {
  if (newest.downtimeMs !== null) families.downtime!.samples.push({ labels, value: newest.downtimeMs / 1000 });
  const recorded = versions.flatMap((v) => (v.downtimeMs === null ? [] : [v.downtimeMs / 1000]));
  if (recorded.length === 0) return;
  families.downtimes!.samples.push(
    { labels, value: recorded.reduce((a, b) => a + b, 0), suffix: '_sum' },
    { labels, value: recorded.length, suffix: '_count' },
  );
}

function addTasks(families: Record<string, Family>, tasks: TaskInfo[]): void {
  families.running!.samples.push({ labels: {}, value: tasks.filter((t) => t.status === 'running').length });
  const finished = tasks.filter((t) => t.end !== null);
  for (const [type, list] of groupBy(finished, (t) => t.type)) {
    const seconds = list.map((t) => (Date.parse(t.end as string) - Date.parse(t.start)) / 1000);
    families.duration!.samples.push(
      { labels: { type }, value: seconds.reduce((a, b) => a + b, 0), suffix: '_sum' },
      { labels: { type }, value: list.length, suffix: '_count' },
    );
    families.lastDuration!.samples.push({ labels: { type }, value: seconds[0] as number });
  }
}

/** The newest finished run of each job whose guests went over the wire (cluster mode). */
function addPushes(families: Record<string, Family>, tasks: TaskInfo[]): void {
  const seen = new Set<string>();
  for (const task of [...tasks].sort((a, b) => b.start.localeCompare(a.start))) {
    const guests = (task.result as { guests?: Array<{ wireBytes?: number; logicalBytes?: number }> } | null)?.guests ?? [];
    const pushed = guests.filter((g) => g.wireBytes !== undefined);
    if (task.type !== 'backup' || !task.jobId || task.end === null || pushed.length === 0 || seen.has(task.jobId)) continue;
    seen.add(task.jobId);
    const labels = { job: task.jobId };
    families.wire!.samples.push({ labels, value: pushed.reduce((sum, g) => sum + (g.wireBytes ?? 0), 0) });
    families.logical!.samples.push({ labels, value: pushed.reduce((sum, g) => sum + (g.logicalBytes ?? 0), 0) });
  }
}

function groupBy<T>(items: T[], key: (item: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const item of items) out.set(key(item), [...(out.get(key(item)) ?? []), item]);
  return out;
}

const escape = (v: string): string => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

function render(families: Family[]): string {
  const out: string[] = [];
  for (const f of families) {
    out.push(`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} ${f.type}`);
    for (const s of f.samples) {
      const labels = Object.entries(s.labels)
        .map(([k, v]) => `${k}="${escape(v)}"`)
        .join(',');
      out.push(`${f.name}${s.suffix ?? ''}${labels ? `{${labels}}` : ''} ${Number.isFinite(s.value) ? s.value : 'NaN'}`);
    }
  }
  return `${out.join('\n')}\n`;
}
