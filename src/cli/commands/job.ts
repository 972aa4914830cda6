/**
 * `coldvault job add|edit|show|list|rm|run`. `--encrypt KEYFILE [--encrypt-passphrase-file F]` sets
 * the job's `encrypt` (paths, resolved, never read here: root on the node may name any file, as for
 * scripts); on edit, `--no-encrypt` (or `--encrypt ''`) removes it, `--encrypt-passphrase-file ''` the passphrase file.
 * `--webhook URL [--webhook-secret TEXT | --webhook-secret-file F] [--webhook-notification always|failure]
 * [--webhook-topic T]` sets the job's `webhook` (jobs/notify); on edit, `--no-webhook` (or `--webhook ''`)
 * removes it, `--webhook-secret ''` the secret. The secret is never printed (jobView).
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ColdvaultError, formatLogLine } from '../../core/index.js';
import {
  describeLanding,
  describeWebhookTarget,
  DeviceSightings,
  jobLanding,
  jobView,
  mergeWebhook,
  nextRunOfJob,
  runJob,
  runTimeText,
  WEEKDAYS,
  type Job,
} from '../../jobs/index.js';
import { flag, list, str, type OptionSpec, type Parsed } from '../args.js';
import type { CommandContext } from '../context.js';
import { storeDir } from '../config.js';
import { s3StoresOf } from '../s3-config.js';
import { jobSyncFrom } from '../sync-sides.js';

export const jobOptions: OptionSpec = {
  store: { type: 'string' },
  vmid: { type: 'string', multiple: true },
  all: { type: 'boolean' },
  exclude: { type: 'string', multiple: true },
  days: { type: 'string' },
  at: { type: 'string' },
  schedule: { type: 'string' },
  keep: { type: 'string' },
  mode: { type: 'string' },
  mailto: { type: 'string', multiple: true },
  'mail-notification': { type: 'string' },
  'script-before': { type: 'string' },
  'script-after': { type: 'string' },
  hook: { type: 'string' },
  'stop-timeout': { type: 'string' },
  'force-stop': { type: 'boolean' },
  'no-force-stop': { type: 'boolean' },
  'lock-wait': { type: 'string' },
  device: { type: 'string' },
  compress: { type: 'string' },
  disabled: { type: 'boolean' },
  enabled: { type: 'boolean' },
  node: { type: 'string' },
  'guests-dir': { type: 'string' },
  storage: { type: 'string', multiple: true },
  'init-device': { type: 'boolean' },
  snapshot: { type: 'string' },
  'full-every': { type: 'string' },
  bwlimit: { type: 'string' },
  full: { type: 'boolean' },
  kind: { type: 'string' },
  from: { type: 'string' },
  encrypt: { type: 'string' },
  'encrypt-passphrase-file': { type: 'string' },
  'no-encrypt': { type: 'boolean' },
  'object-lock-days': { type: 'string' },
  'no-object-lock-days': { type: 'boolean' },
  'boot-test': { type: 'boolean' },
  'no-boot-test': { type: 'boolean' },
  'boot-test-expect': { type: 'string' },
  'boot-test-timeout': { type: 'string' },
  webhook: { type: 'string' },
  'webhook-secret': { type: 'string' },
  'webhook-secret-file': { type: 'string' },
  'webhook-notification': { type: 'string' },
  'webhook-topic': { type: 'string' },
  'no-webhook': { type: 'boolean' },
};

export const jobHelp = `coldvault job add <id> --store <dir> (--vmid 101,102 | --all [--exclude 103]) [--days mon,tue,wed,thu,fri,sat,sun] [--at HH:MM]
     [--schedule 'EVENT'|'CRON'] [--keep N] [--mode stop|cluster] [--bwlimit MB/s] [--mailto ADDR] [--mail-notification always|failure] [--script-before PATH]
     [--script-after PATH] [--hook PATH] [--stop-timeout SECONDS] [--force-stop] [--lock-wait MINUTES] [--device DEV]
     [--compress zstd|none] [--disabled] [--node NAME] [--init-device] [--snapshot auto|off] [--full-every DAYS]
     [--encrypt KEYFILE [--encrypt-passphrase-file FILE]] [--object-lock-days N] [--boot-test [--boot-test-expect REGEX] [--boot-test-timeout S]]
     [--webhook URL [--webhook-secret TEXT | --webhook-secret-file FILE] [--webhook-notification always|failure] [--webhook-topic TOPIC]]
coldvault job add <id> --kind sync --from SOURCE --store <dir|s3-name> (--vmid 101 | --all [--exclude 103]) [--keep N] [--device DEV] ...
coldvault job edit <id> ...same flags (only those given change); --no-encrypt (or --encrypt '') removes the encryption,
     --encrypt-passphrase-file '' the passphrase file, --no-object-lock-days the job's own Object Lock days,
     --no-webhook (or --webhook '') the webhook, --webhook-secret '' its secret
coldvault job show <id> [--json]
coldvault job list [--json]
coldvault job rm <id>
coldvault job run <id> [--full]  runs now in the foreground ("start now"), streams the log; exit 0 only if every guest succeeded
  --schedule: a Proxmox VE calendar event ('mon..fri 22:30', 'sat 02:00', '*/4:00', '*-*-01 00:00', 'daily') or a
  5-field cron expression ('30 22 * * 1-5': exactly five fields is cron); it replaces --days/--at, in local time.
  --full-every DAYS: a changed-extent nightly reads every chunk again that many days after the last full read (default 7);
  --full (job run): this run reads every chunk.
  --encrypt KEYFILE: every version is encrypted with the key in KEYFILE (coldvault key create); the job stores
  the path, never the key. A key file with a passphrase is opened with the first line of
  --encrypt-passphrase-file FILE, else with COLDVAULT_KEY_PASSPHRASE of 'serve' / 'job run' (a job never
  prompts); one made with --kdf none needs neither. The key is opened before any guest is stopped: a missing
  key file or passphrase, or a wrong one, fails the run untouched. Not for sync jobs (they copy versions as they are).
  --kind sync --from SOURCE: a sync job, which copies the versions --store lacks from SOURCE (as 'coldvault sync'):
  NODE:STORE, a folder datastore (its path or configured name) or a configured S3 datastore; --all: every guest there.
  --mode cluster: the guests are stopped and started as in stop mode, and their versions are pushed to the
  datastore named --store on the previous node of the config's cluster ring (the first node's to the last);
  --bwlimit caps the push (MB/s); --device names a disk plugged into that node, which mounts it for the run.
  --device /dev/sdb1 | UUID=... | LABEL=...: an external disk mounted on --store for the run; rotated disks
  separated by commas (UUID=a,UUID=b): the first one attached is used, each bound to its own datastore.
  --snapshot auto (default): a running guest is shut down, its disks get cold snapshots (reflink clones on
  XFS reflink=1 or btrfs), it is started again at once and the snapshots are backed up; where a disk cannot
  have one (ext4, NTFS ...) the guest stays off while its disks are read, as with --snapshot off.
  --object-lock-days N: into an S3 datastore made with Object Lock, the job's versions are kept immutable N
  days (at least the datastore's own days; checked when the job runs).
  --boot-test: after the backup each new version is booted in isolation (as 'coldvault boot-test') and must
  print a serial line matching --boot-test-expect (default a login prompt) within --boot-test-timeout seconds
  (default 300); a failed boot test is reported (log, mail, catalog) and does not fail the backup. --no-boot-test.
  --webhook URL: when the job ends, its result is posted as JSON to URL (always, or with --webhook-notification
  failure only on failure), retried a few times; a failing target never fails the job. --webhook-secret TEXT (or
  the first line of --webhook-secret-file FILE, which keeps it out of the shell history) is sent as
  'Authorization: Bearer TEXT' and signs the body (X-Coldvault-Signature); it needs an https:// URL (or http:// to
  a loopback address) and is never shown. --webhook-topic: the topic for ntfy's JSON form (URL = the ntfy server's root).`;

/** Job fields from flags; undefined where the flag was not given (so `edit` keeps the old value). */
function jobFields(ctx: CommandContext, p: Parsed, existing?: Job): Record<string, unknown> {
  const ids = list(p, 'vmid').flatMap((v) => v.split(','));
  const store = str(p, 'store');
  const days = str(p, 'days');
  const cluster = (str(p, 'mode') ?? existing?.mode) === 'cluster'; // the store is a name on the receiving node then
  if (store && Object.hasOwn(ctx.config.s3Datastores, store) && (str(p, 'device') ?? existing?.device)) {
    throw new ColdvaultError('USAGE', `--store ${store} is an S3 datastore: --device (an external disk mounted on a folder) does not go with it`);
  }
  const target = store ?? existing?.store;
  if (str(p, 'object-lock-days') !== undefined && !cluster && target !== undefined && !Object.hasOwn(ctx.config.s3Datastores, target)) {
    throw new ColdvaultError('USAGE', `--object-lock-days goes with an S3 datastore of the config (S3 Object Lock); '${target}' is a folder`);
  }
  return {
    store: store ? (cluster || Object.hasOwn(ctx.config.s3Datastores, store) ? store : storeDir(ctx.config, store)) : undefined,
    bwlimit: str(p, 'bwlimit'),
    vmid: ids.length > 0 ? ids : undefined,
    all: flag(p, 'all') || undefined,
    exclude: p.values.exclude ? list(p, 'exclude').flatMap((v) => v.split(',')) : undefined,
    days: days === undefined ? undefined : days === 'all' || days === 'daily' ? [...WEEKDAYS] : days.split(','),
    at: str(p, 'at'),
    schedule: str(p, 'schedule'),
    keep: str(p, 'keep'),
    mode: str(p, 'mode'),
    mailto: p.values.mailto ? list(p, 'mailto').flatMap((v) => v.split(',')) : undefined,
    mailNotification: str(p, 'mail-notification'),
    scriptBefore: pathOf(str(p, 'script-before')),
    scriptAfter: pathOf(str(p, 'script-after')),
    hook: pathOf(str(p, 'hook')),
    stopTimeout: str(p, 'stop-timeout'),
    forceStop: flag(p, 'force-stop') ? true : flag(p, 'no-force-stop') ? false : undefined,
    lockWait: str(p, 'lock-wait'),
    device: str(p, 'device'),
    compress: str(p, 'compress'),
    node: str(p, 'node'),
    enabled: flag(p, 'disabled') ? false : flag(p, 'enabled') ? true : undefined,
    initDevice: flag(p, 'init-device') || undefined,
    snapshot: str(p, 'snapshot'),
    fullEvery: str(p, 'full-every'),
    kind: str(p, 'kind'),
    from: jobSyncFrom(ctx.config, str(p, 'from')),
    encrypt: encryptFields(p, existing),
    objectLockDays: flag(p, 'no-object-lock-days') ? null : str(p, 'object-lock-days'),
    bootTest: flag(p, 'boot-test') ? true : flag(p, 'no-boot-test') ? false : undefined,
    bootTestExpect: str(p, 'boot-test-expect'),
    bootTestTimeout: str(p, 'boot-test-timeout'),
    webhook: webhookFields(p, existing),
  };
}

/** `webhook` from the --webhook flags: undefined keeps it, null removes it; an edit keeps what is not given (the secret for the same URL only). */
function webhookFields(p: Parsed, existing?: Job): Record<string, unknown> | null | undefined {
  const url = str(p, 'webhook');
  const secret = webhookSecret(p);
  const notification = str(p, 'webhook-notification');
  const topic = str(p, 'webhook-topic');
  const extras = secret !== undefined || notification !== undefined || topic !== undefined;
  if (flag(p, 'no-webhook') || url === '') {
    if (extras) throw new ColdvaultError('USAGE', '--webhook-secret, --webhook-notification and --webhook-topic go with a webhook, not with removing it');
    return null;
  }
  if (url === undefined && !extras) return undefined;
  const current = existing?.webhook;
  const target = url ?? current?.url;
  if (target === undefined)
    throw new ColdvaultError('USAGE', '--webhook-secret, --webhook-notification and --webhook-topic go with --webhook URL (the job has no webhook)');
  const change = {
    url: target,
    secret: secret === undefined ? undefined : secret || null,
    notification: (notification ?? current?.notification) as 'always' | 'failure' | undefined,
    topic: topic === undefined ? current?.topic : topic || null,
  };
  return mergeWebhook(current, change, existing?.id ?? '');
}

/** --webhook-secret TEXT, or the first line of --webhook-secret-file FILE ('' for either: none). */
function webhookSecret(p: Parsed): string | undefined {
  const text = str(p, 'webhook-secret');
  const file = str(p, 'webhook-secret-file');
  if (text !== undefined && file !== undefined) throw new ColdvaultError('USAGE', 'give --webhook-secret or --webhook-secret-file, not both');
  if (!file) return file === '' ? '' : text;
  try {
    return (readFileSync(file, 'utf8').split(/\r?\n/)[0] ?? '').trim();
  } catch (err) {
    throw new ColdvaultError('USAGE', `--webhook-secret-file '${file}' cannot be read: ${(err as Error).message}`, { cause: err });
  }
}

/** `encrypt` from --encrypt / --encrypt-passphrase-file / --no-encrypt: undefined keeps it, null removes it ('' removes too). */
function encryptFields(p: Parsed, existing?: Job): Record<string, unknown> | null | undefined {
  const keyFile = str(p, 'encrypt');
  const passphraseFile = str(p, 'encrypt-passphrase-file');
  if (flag(p, 'no-encrypt') || keyFile === '') {
    if (passphraseFile) throw new ColdvaultError('USAGE', '--encrypt-passphrase-file goes with a key file, not with removing it');
    return null;
  }
  if (keyFile === undefined && passphraseFile === undefined) return undefined;
  const current = existing?.encrypt;
  const next = {
    keyFile: keyFile === undefined ? current?.keyFile : resolve(keyFile),
    passphraseFile: passphraseFile === undefined ? current?.passphraseFile : pathOf(passphraseFile), // '': none
  };
  if (next.keyFile === undefined) throw new ColdvaultError('USAGE', '--encrypt-passphrase-file goes with --encrypt KEYFILE (the job has no key file)');
  return next;
}

const pathOf = (v: string | undefined): string | undefined => (v ? resolve(v) : undefined);

export async function jobCommand(ctx: CommandContext): Promise<number> {
  const [sub, id] = ctx.args.positionals;
  const { jobs } = ctx.state();
  const needId = (): string => {
    if (!id) throw new ColdvaultError('USAGE', `coldvault job ${sub}: name the job`);
    return id;
  };
  switch (sub) {
    case 'add':
      return printJob(ctx, jobs.add({ ...jobFields(ctx, ctx.args), id: needId() }), 'added');
    case 'edit':
      return printJob(ctx, jobs.edit(needId(), jobFields(ctx, ctx.args, jobs.get(needId()))), 'changed');
    case 'show':
      return printJob(ctx, jobs.get(needId()));
    case 'list':
      return listJobs(ctx, jobs.list());
    case 'rm':
      jobs.remove(needId());
      ctx.print(`job ${id} removed`);
      return 0;
    case 'run':
      return runNow(ctx, jobs.get(needId()));
    default:
      throw new ColdvaultError('USAGE', `coldvault job: unknown subcommand '${sub ?? ''}' (add, edit, show, list, rm, run)`);
  }
}

function printJob(ctx: CommandContext, job: Job, verb?: string): number {
  if (ctx.json) ctx.printJson(withNextRun(job));
  else ctx.print(`job ${job.id}${verb ? ` ${verb}` : ''}: ${describeJob(job, landingOf(ctx, job))}`);
  return 0;
}

/** Where the job's backups land (cluster mode: the previous node of the ring), in words. */
function landingOf(ctx: CommandContext, job: Job): string {
  if (job.kind === 'sync') return job.store;
  return describeLanding(jobLanding(job, ctx.config.cluster, job.node ?? ctx.config.node));
}

/** The job's JSON with `nextRun`: when the scheduler starts it next (ISO time), null when it is disabled or has no schedule. */
function withNextRun(job: Job): ReturnType<typeof jobView> & { nextRun: string | null } {
  return { ...jobView(job), nextRun: nextRunOfJob(job, new Date())?.toISOString() ?? null };
}

/** When the job runs next, in local time; '-' when it does not. */
function nextRunText(job: Job): string {
  const next = nextRunOfJob(job, new Date());
  return next ? runTimeText(next) : '-';
}

export function describeJob(job: Job, landing: string = job.store): string {
  const schedule = job.schedule ? `schedule '${job.schedule}'` : job.days.length > 0 ? `${job.days.join(',')} at ${job.at}` : '';
  const when = schedule ? `${schedule}${job.enabled ? ` (next run ${nextRunText(job)})` : ''}` : 'no schedule (run by hand)';
  const guests = job.all ? `all guests${job.exclude.length ? ` except ${job.exclude.join(',')}` : ''}` : `guests ${job.vmid.join(',')}`;
  const source = job.kind === 'sync' ? `sync from ${job.from ?? ''}: ` : '';
  const device = job.device && job.mode !== 'cluster' ? ` (device ${job.device})` : '';
  const limit = job.bwlimit ? `, at most ${job.bwlimit} MB/s` : '';
  const locked = job.objectLockDays ? `, immutable ${job.objectLockDays} day(s)` : '';
  return `${source}${guests} -> ${landing}${device}${limit}, ${when}, keep ${job.keep ?? 'all'}${locked}${encryption(job)}${webhookOf(job)}, ${job.enabled ? 'enabled' : 'disabled'}`;
}

/** `, webhook https://ntfy.example.com/… on failure (secret set)`: the target's origin, never the secret. */
function webhookOf(job: Job): string {
  if (!job.webhook) return '';
  const when = job.webhook.notification === 'failure' ? ' on failure' : '';
  return `, webhook ${describeWebhookTarget(job.webhook.url)}${when}${job.webhook.secret ? ' (secret set)' : ''}`;
}

/** The key file's path (and the passphrase file's), never what they hold. */
function encryption(job: Job): string {
  if (!job.encrypt) return '';
  const passphrase = job.encrypt.passphraseFile ? `, passphrase file ${job.encrypt.passphraseFile}` : '';
  return `, encrypted (key file ${job.encrypt.keyFile}${passphrase})`;
}

function listJobs(ctx: CommandContext, jobs: Job[]): number {
  if (ctx.json) {
    ctx.printJson(
      jobs.map((j) => ({ ...withNextRun(j), landing: j.kind === 'sync' ? { target: j.store } : jobLanding(j, ctx.config.cluster, j.node ?? ctx.config.node) })),
    );
    return 0;
  }
  const head = `${'ID'.padEnd(14)} ${'NODE'.padEnd(10)} ${WEEKDAYS.map((d) => d.slice(0, 2)).join(' ')} ${'AT'.padEnd(5)} ${'NEXT RUN'.padEnd(23)} ${'TARGET'.padEnd(28)} SELECTION`;
  const rows = jobs.map(
    (j) =>
      `${j.id.padEnd(14)} ${(j.node ?? ctx.config.node).slice(0, 10).padEnd(10)} ${WEEKDAYS.map((d) => (j.days.includes(d) && !j.schedule ? 'x ' : '- ')).join(' ')} ${(j.schedule ? '-' : j.at).padEnd(5)} ${nextRunText(j).padEnd(23)} ${landingOf(ctx, j).padEnd(28)} ${j.all ? `all${j.exclude.length ? ` -${j.exclude.join(',')}` : ''}` : j.vmid.join(',')}${j.enabled ? '' : ' (disabled)'}${j.encrypt ? ` (encrypted: ${j.encrypt.keyFile})` : ''}${j.schedule ? ` (schedule '${j.schedule}')` : ''}`,
  );
  ctx.print(jobs.length === 0 ? 'no jobs' : [head, ...rows].join('\n'));
  return 0;
}

async function runNow(ctx: CommandContext, job: Job): Promise<number> {
  const { tasks, journal } = ctx.state();
  const abort = abortOnSignals(ctx);
  const result = await runJob(
    job,
    {
      signal: abort.signal,
      full: flag(ctx.args, 'full'),
      node: job.node ?? ctx.config.node,
      stateDir: ctx.config.stateDir,
      guestsDir: ctx.config.guestsDir,
      storages: ctx.config.storages,
      allowDiskPaths: ctx.config.allowDiskPaths,
      zstdLevel: ctx.config.zstdLevel,
      tasks,
      journal,
      jobs: ctx.state().jobs,
      driver: ctx.driver(),
      mail: ctx.config.mail,
      webhook: ctx.config.webhook,
      sightings: new DeviceSightings(ctx.state().db),
      bootTest: ctx.config.bootTest,
      cluster: ctx.config.cluster,
      s3Stores: s3StoresOf(ctx.config),
      onProgress: (p) => ctx.bar.update(p),
    },
    (task) => {
      ctx.print(`task ${task.id}`);
      task.onLine((line) => ctx.print(formatLogLine(line)));
    },
  );
  abort.dispose();
  if (ctx.json) ctx.printJson(result);
  return result.ok ? 0 : 1;
}

/**
 * Ctrl-C / SIGTERM during a run: the guest being backed up is started again and the job ends failed.
 * A second signal exits at once; the stop journal then brings the guest back at the next run.
 */
export function abortOnSignals(ctx: CommandContext): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const second = (): void => process.exit(130);
  const first = (): void => {
    ctx.log.warn('interrupted: aborting the run and starting stopped guests again (signal again to exit at once)');
    controller.abort();
    process.once('SIGINT', second);
    process.once('SIGTERM', second);
  };
  process.once('SIGINT', first);
  process.once('SIGTERM', first);
  return {
    signal: controller.signal,
    dispose: () => {
      for (const f of [first, second]) {
        process.removeListener('SIGINT', f);
        process.removeListener('SIGTERM', f);
      }
    },
  };
}
