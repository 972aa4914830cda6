/**
 * Jobs: GET|POST /api/v1/jobs, GET|PUT|DELETE /api/v1/jobs/{id}, POST /api/v1/jobs/{id}/run[?full=true] -> 202
 * {taskId} (`full`: this run reads every chunk). The body is the job JSON of jobs/job-model.ts; PUT replaces the whole job (fields left
 * out take their defaults). A job is answered with `nextRun` (ISO time or null), which a body may carry back and which is ignored. Paths in it must stay inside what is configured (paths.ts); the job model
 * validates the rest (JOB_INVALID -> 400). `encrypt` holds paths only (a key file and a passphrase file
 * inside the config's keyDirs, or as the job has them: paths.ts checkKeyPath); no route takes or answers
 * a key, a passphrase or a file's contents. A run goes through the shared TaskRunner; 409 when the job
 * is already running (here or in another process).
 *
 * `webhook` (jobs/notify): its secret is write-only. Answers show `webhook.hasSecret`, never the
 * secret; a body without `webhook.secret` keeps the stored one if the URL stays the same, a new URL
 * needs the secret again (JOB_INVALID otherwise); `secret: null` or '' removes it.
 *
 * Roles: reading needs `read`; create, replace and delete need `job.edit` (operator); setting or
 * changing a job's scripts, hook, external device or webhook URL or secret needs `job.edit-privileged`
 * (admin: a webhook makes this server post to an address of the editor's choosing): an operator
 * may resend a job's existing values, not change them. A run records who started it.
 */
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ColdvaultError } from '../../core/index.js';
import { parseSyncSource, SYNC_SOURCE_FORMS } from '../../pipeline/index.js';
import { jobView, mergeWebhook, nextRunOfJob, type Job as JobModel } from '../../jobs/index.js';
import { authorize, may, startedBy } from '../auth/index.js';
import type { RouteContext } from '../context.js';
import { ApiError } from '../errors.js';
import { checkDevice, checkKeyPath, checkScript, resolveStore } from '../paths.js';
import { Job, JOB_BODY_KEYS, JobCreate, JobParams, JobReplace, JobRunQuery, responses, TaskAccepted, type JobBody } from '../schemas.js';

type Params = { Params: Static<typeof JobParams> };

export function jobRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const { jobs } = ctx.state;
  const tags = ['jobs'];
  const read = { access: { action: 'read' } } as const;
  const edit = { access: { action: 'job.edit' } } as const;
  /** The job as answered (never its webhook's secret: jobView), with `nextRun` (ISO), when the scheduler starts it next by the server's clock. */
  const answer = (job: JobModel) => ({ ...jobView(job), nextRun: nextRunOfJob(job, new Date(ctx.clock()))?.toISOString() ?? null });
  app.get('/api/v1/jobs', { config: read, schema: { summary: 'all jobs', tags, response: responses({ 200: Type.Array(Job) }) } }, async () =>
    jobs.list().map(answer),
  );

  app.post<{ Body: Static<typeof JobCreate> }>(
    '/api/v1/jobs',
    {
      config: edit,
      schema: { summary: 'creates a job', tags, body: JobCreate, response: responses({ 201: Job }) },
    },
    async (request, reply) => {
      if (jobs.has(request.body.id))
        throw new ApiError('JOB_EXISTS', `job '${request.body.id}' already exists; PUT /api/v1/jobs/${request.body.id} changes it`);
      checkPrivilegedFields(request, request.body);
      const job = jobs.add(checkedFields(ctx, request.body));
      return reply.code(201).send(answer(job));
    },
  );

  app.get<Params>(
    '/api/v1/jobs/:id',
    { config: read, schema: { summary: 'one job', tags, params: JobParams, response: responses({ 200: Job }) } },
    async (request) => answer(jobs.get(request.params.id)),
  );

  app.put<Params & { Body: JobBody }>(
    '/api/v1/jobs/:id',
    {
      config: edit,
      schema: { summary: 'replaces a job (fields left out take their defaults)', tags, params: JobParams, body: JobReplace, response: responses({ 200: Job }) },
    },
    async (request) => {
      const { id } = request.params;
      if (request.body.id !== undefined && request.body.id !== id)
        throw new ApiError('INVALID_REQUEST', `the body's id '${request.body.id}' is not the job '${id}' of the URL`);
      checkPrivilegedFields(request, request.body, jobs.get(id));
      const fields = checkedFields(ctx, request.body, id);
      return answer(jobs.edit(id, Object.fromEntries(JOB_BODY_KEYS.map((k) => [k, fields[k] ?? null]))));
    },
  );

  app.delete<Params>(
    '/api/v1/jobs/:id',
    {
      config: edit,
      schema: { summary: 'removes a job', tags, params: JobParams, response: responses({ 204: Type.Null() }) },
    },
    async (request, reply) => {
      jobs.remove(request.params.id);
      return reply.code(204).send();
    },
  );

  app.post<Params & { Querystring: Static<typeof JobRunQuery> }>(
    '/api/v1/jobs/:id/run',
    {
      config: { access: { action: 'job.run' } },
      schema: {
        summary: '"start now": runs the job in the background as a task (`?full=true`: reading every chunk)',
        tags,
        params: JobParams,
        querystring: JobRunQuery,
        response: responses({ 202: TaskAccepted }),
      },
    },
    async (request, reply) => {
      const job = jobs.get(request.params.id);
      if (ctx.runner.isJobRunning(job.id)) throw new ColdvaultError('JOB_RUNNING', `job '${job.id}' is already running`);
      const { taskId, done } = await ctx.runner.startJob(job, startedBy(request), { full: request.query.full });
      done.catch((err: unknown) => request.log.error({ err }, `job ${job.id} (task ${taskId}) failed`));
      return reply.code(202).send({ taskId });
    },
  );
}

/** A job's fields that run or mount something as root: only an admin sets or changes them. */
const PRIVILEGED_FIELDS = ['hook', 'scriptBefore', 'scriptAfter', 'device', 'initDevice', 'deviceDatastoreId'] as const;

/** 403 when the principal may not edit privileged fields and the body sets or changes one (against the existing job). */
function checkPrivilegedFields(request: FastifyRequest, body: JobBody, existing?: JobModel): void {
  if (may(request, 'job.edit-privileged')) return;
  const plain = (v: unknown): unknown => (v === undefined || v === null || v === '' || v === false ? null : v);
  const changed: string[] = PRIVILEGED_FIELDS.filter((k) => plain(body[k]) !== plain(existing?.[k]));
  if (webhookChanged(body.webhook, existing?.webhook)) changed.push('webhook');
  if (changed.length > 0) authorize(request, 'job.edit-privileged', undefined, ` (this request ${existing ? 'changes' : 'sets'} ${changed.join(', ')})`);
}

/**
 * The webhook's URL is set, changed or removed, or a secret is given (any: comparing it with the stored
 * one would tell who may not see it whether a guess is right). Its notification and topic are not privileged.
 */
function webhookChanged(body: JobBody['webhook'], existing: JobModel['webhook']): boolean {
  return (body?.url ?? null) !== (existing?.url ?? null) || body?.secret !== undefined;
}

/** The body with its store resolved to a folder (or a configured S3 datastore's name) and its paths checked against the config. */
function checkedFields(ctx: RouteContext, body: JobBody, id?: string): Record<string, unknown> {
  const others: JobModel[] = ctx.state.jobs.list();
  // cluster mode: a datastore's name on the receiving node, not a folder here
  const store = body.mode === 'cluster' ? body.store : jobStore(ctx, body);
  checkScript(body.hook, 'hook', ctx.config, others);
  checkScript(body.scriptBefore, 'scriptBefore', ctx.config, others);
  checkScript(body.scriptAfter, 'scriptAfter', ctx.config, others);
  checkDevice(body.device);
  const { nextRun: _readOnly, ...fields } = body;
  const webhook = mergeWebhook(id === undefined ? undefined : ctx.state.jobs.get(id).webhook, body.webhook, id ?? body.id ?? '');
  return { ...fields, id: id ?? body.id, store, from: syncFrom(ctx, body.from), encrypt: checkedEncryption(ctx, body.encrypt, id), webhook };
}

/** The job's key and passphrase file paths, each inside keyDirs or as the job (`id`) has it. */
function checkedEncryption(ctx: RouteContext, encrypt: JobBody['encrypt'], id?: string): JobModel['encrypt'] {
  if (!encrypt) return undefined;
  const current = id === undefined ? undefined : ctx.state.jobs.get(id).encrypt;
  const keyFile = checkKeyPath(encrypt.keyFile, 'encrypt.keyFile', ctx.config, current?.keyFile);
  const passphraseFile = checkKeyPath(encrypt.passphraseFile, 'encrypt.passphraseFile', ctx.config, current?.passphraseFile);
  return keyFile === undefined ? undefined : { keyFile, ...(passphraseFile === undefined ? {} : { passphraseFile }) };
}

/** A job's store here: a folder, or a configured S3 datastore by name (no external disk goes with it). */
function jobStore(ctx: RouteContext, body: JobBody): string {
  const ref = resolveStore(body.store, ctx.config, ctx.state.jobs);
  if (ref.kind !== 's3') {
    if (body.objectLockDays !== undefined) throw new ApiError('INVALID_REQUEST', `objectLockDays goes with an S3 datastore; store '${body.store}' is a folder`);
    return ref.dir;
  }
  if (body.device)
    throw new ApiError('INVALID_REQUEST', `store '${ref.name}' is an S3 datastore: device does not go with it (an external disk holds a folder datastore)`);
  return ref.name;
}

/**
 * A sync job's source as stored: NODE:STORE as given; a datastore of this server by its folder (a
 * configured folder's name or path, a job's folder) or, for an S3 datastore, its configured name. A
 * folder or bucket the config does not name is PATH_NOT_ALLOWED, as every path in a request.
 */
function syncFrom(ctx: RouteContext, from: string | undefined): string | undefined {
  if (from === undefined) return undefined;
  const form = parseSyncSource(from);
  if (!form) throw new ApiError('INVALID_REQUEST', `from '${from}': expected ${SYNC_SOURCE_FORMS}`);
  if (form.kind === 'node' && !Object.hasOwn(ctx.config.datastores, from)) return from;
  const ref = resolveStore(from, ctx.config, ctx.state.jobs);
  return ref.kind === 's3' ? ref.name : ref.dir;
}
