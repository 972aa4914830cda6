/**
 * `coldvault boot-test <vmid> --version N --store S [--expect REGEX | --agent | --script FILE]
 * [--timeout SECONDS] [--accel tcg]`: boots the version in isolation (pipeline/boot-test) and exits 0
 * when the guest gave its signal, 1 when not (the reason on stderr, the screenshot kept either way).
 * Sources as `coldvault export` takes them: a folder, an external disk (--device), a cluster node
 * (--remote NODE), an S3 datastore; encrypted versions with --keyfile. The verdict is recorded in the
 * store's catalog (not for a remote store: its catalog is that node's). SIGINT / SIGTERM end the test
 * and tear everything down.
 */
import { ColdvaultError, parseGuestId, parsePositiveInt } from '../../core/index.js';
import type { Catalog } from '../../catalog/index.js';
import { DEFAULT_EXPECT, remoteSource, runBootTest, s3Source, type BootSignal, type BootTestRequest, type SourceRef } from '../../pipeline/index.js';
import { flag, intOption, required, str, type OptionSpec } from '../args.js';
import type { CommandContext } from '../context.js';
import { keyFileOptions, keyOption } from '../key-option.js';
import { S3_HELP, s3Options } from '../s3-option.js';
import { attachDevice } from './export.js';
import { REMOTE_HELP, remoteRef, remoteStore } from './remote-read.js';

export const DEFAULT_BOOT_TIMEOUT_SECONDS = 300;

export const bootTestOptions: OptionSpec = {
  store: { type: 'string' },
  version: { type: 'string' },
  expect: { type: 'string' },
  agent: { type: 'boolean' },
  script: { type: 'string' },
  timeout: { type: 'string' },
  accel: { type: 'string' },
  device: { type: 'string' },
  remote: { type: 'string' },
  ...keyFileOptions,
  ...s3Options,
};

export const bootTestHelp = `coldvault boot-test <vmid> --version N --store <dir> [--expect REGEX | --agent | --script FILE]
     [--timeout SECONDS] [--accel kvm:tcg|tcg] [--device DEV | --remote NODE] [--keyfile FILE] [--json]
  Boots the version in an isolated QEMU (its archived config; disks from an NBD export of the version
  with snapshot=on, so nothing is written to the store or to the guest's disks; no network) and waits
  up to --timeout seconds (default ${DEFAULT_BOOT_TIMEOUT_SECONDS}) for its signal: a serial console line matching
  --expect (default a login prompt, /${DEFAULT_EXPECT}/), the guest agent answering guest-ping (--agent), or
  --script FILE exiting 0 (run every 2 s; COLDVAULT_SERIAL_LOG, COLDVAULT_GUEST_AGENT_SOCKET set).
  Exit 0 when the guest came up, 1 when not. The result is recorded in the catalog (list, API, web
  UI); a screenshot of the guest's screen is kept in <stateDir>/boot-tests/<datastore id>/. At most
  bootTest.maxConcurrent (config, default 2) tests run at once on this host; --accel (or config
  bootTest.accel): QEMU's accelerators, kvm:tcg (default) or tcg.
${REMOTE_HELP}
${S3_HELP}`;

export async function bootTestCommand(ctx: CommandContext): Promise<number> {
  const [first, ...rest] = ctx.args.positionals;
  if (!first || rest.length > 0) throw new ColdvaultError('USAGE', 'coldvault boot-test: name exactly one vmid');
  const guestId = parseGuestId(first, 'vmid');
  const version = parsePositiveInt(required(ctx.args, 'version', 'boot-test'), '--version');
  const signal = signalOf(ctx);
  const accel = accelOf(ctx);
  const timeoutSeconds = intOption(ctx.args, 'timeout', 1) ?? DEFAULT_BOOT_TIMEOUT_SECONDS;
  const key = await keyOption(ctx, 'keyfile');
  const pool = ctx.pool();
  const abort = new AbortController();
  const stop = (): void => abort.abort();
  process.once('SIGINT', stop).once('SIGTERM', stop);
  const detach = await attachDevice(ctx);
  let from: Awaited<ReturnType<typeof storeFor>> | undefined;
  try {
    from = await storeFor(ctx);
    const request: BootTestRequest = {
      ...{ ...from.source, pool, guestId, version, key, signal, timeoutSeconds, accel, stateDir: ctx.config.stateDir },
      ...{ storeName: from.storeName, catalog: from.catalog, maxConcurrent: ctx.config.bootTest?.maxConcurrent, log: ctx.log, abort: abort.signal },
    };
    const outcome = await runBootTest(request);
    if (ctx.json) ctx.printJson(outcome);
    else
      ctx.print(
        `boot test of guest ${guestId} version ${version}: ${outcome.ok ? 'passed' : 'FAILED'} after ${outcome.seconds} s (${outcome.detail})${outcome.screenshot ? `\nscreenshot: ${outcome.screenshot}` : ''}`,
      );
    return outcome.ok ? 0 : 1;
  } finally {
    process.off('SIGINT', stop).off('SIGTERM', stop);
    from?.source.source?.close(); // a remote node's kept-alive connections (or S3's) would hold the process up to 30 s
    await detach?.();
  }
}

function accelOf(ctx: CommandContext): string | undefined {
  const accel = str(ctx.args, 'accel');
  if (accel !== undefined && !/^(kvm|tcg)(:(kvm|tcg))?$/.test(accel)) throw new ColdvaultError('USAGE', `--accel '${accel}': expected kvm:tcg, kvm or tcg`);
  return accel ?? ctx.config.bootTest?.accel;
}

function signalOf(ctx: CommandContext): BootSignal {
  const expect = str(ctx.args, 'expect');
  const script = str(ctx.args, 'script');
  const agent = flag(ctx.args, 'agent');
  if ([expect !== undefined, script !== undefined, agent].filter(Boolean).length > 1) {
    throw new ColdvaultError('USAGE', 'coldvault boot-test: give one signal: --expect REGEX, --agent or --script FILE');
  }
  if (agent) return { kind: 'agent' };
  if (script !== undefined) return { kind: 'script', path: script };
  const pattern = expect ?? DEFAULT_EXPECT;
  try {
    new RegExp(pattern, 'm');
  } catch (err) {
    throw new ColdvaultError('USAGE', `--expect '${pattern}' is not a regular expression: ${(err as Error).message}`);
  }
  return { kind: 'serial', expect: pattern };
}

/** The version source, the catalog that records the verdict (none for a remote store), and the screenshots' folder name. */
async function storeFor(ctx: CommandContext): Promise<{ source: SourceRef; catalog?: Catalog; storeName: string }> {
  const remote = remoteRef(ctx);
  if (remote) return { source: { source: remoteSource(remoteStore(ctx, remote), remote.node) }, storeName: `remote-${remote.node}-${remote.store}` };
  const s3 = ctx.s3Settings();
  if (s3) {
    const { store, catalog } = await ctx.openS3Store(s3);
    return { source: { source: s3Source(store) }, catalog, storeName: store.identity.id };
  }
  const { store, catalog } = await ctx.openStore();
  return { source: { store }, catalog, storeName: store.identity.id };
}
