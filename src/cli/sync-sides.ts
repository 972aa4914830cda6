/**
 * The two sides of `coldvault sync --from SOURCE --to TARGET` (the forms: pipeline/sync source.ts),
 * resolved with the config: a datastore name of the config file first (a folder or an S3 datastore),
 * then the forms. --endpoint, --region and --path-style describe the one side given as an s3://
 * address: with both sides given so they would be ambiguous, and are refused (name one of them by a
 * configured name, which brings its own); with no s3:// side they belong to nothing, and are refused.
 * --to never names another node (a sync pulls: run it on that node) and takes any other text as a
 * folder, as --store does everywhere; --from takes a folder only by its absolute path, so that a
 * mistyped name is not taken for a folder. A sync job names its source the same way (jobSyncFrom).
 */
import { resolve } from 'node:path';
import { ColdvaultError } from '../core/index.js';
import { isS3Url, type S3StoreSettings } from '../datastore/index.js';
import { parseSyncSource, SYNC_SOURCE_FORMS } from '../pipeline/index.js';
import { type Parsed, required } from './args.js';
import type { CliConfig } from './config.js';
import { configuredS3Settings, type S3DatastoreConfig } from './s3-config.js';
import { givenS3Flags, s3UrlSettings } from './s3-option.js';

/** A datastore of this node: a folder, or one in a bucket */
export type SyncTarget = { kind: 'folder'; dir: string } | { kind: 's3'; settings: S3StoreSettings };
/** ... or, as a source, one on another node */
export type SyncSide = SyncTarget | { kind: 'node'; node: string; store: string };

export interface SyncSides {
  from: SyncSide;
  to: SyncTarget;
  /** the texts given, as the log and the result name the sides */
  fromText: string;
  toText: string;
}

export function syncSides(args: Parsed, config: CliConfig, env: NodeJS.ProcessEnv = process.env): SyncSides {
  const fromText = required(args, 'from', 'sync');
  const toText = required(args, 'to', 'sync');
  checkS3Flags(args, fromText, toText);
  return { from: sourceSide(fromText, args, config, env), to: targetSide(toText, args, config, env), fromText, toText };
}

function checkS3Flags(args: Parsed, from: string, to: string): void {
  if (isS3Url(from) && isS3Url(to)) {
    throw new ColdvaultError(
      'USAGE',
      'coldvault sync: --from and --to are both s3:// addresses, and --endpoint, --region and --path-style would describe both: name one of them by a datastore name of the config file (datastores: {"NAME": {"type": "s3", ...}})',
    );
  }
  const flag = givenS3Flags(args)[0];
  if (flag && !isS3Url(from) && !isS3Url(to)) {
    throw new ColdvaultError(
      'USAGE',
      `coldvault sync: --${flag} goes with an s3://BUCKET/PREFIX address in --from or --to (a datastore of the config file has its own)`,
    );
  }
}

/** A datastore name of the config file: the S3 datastore or the folder it names. */
function configuredSide(text: string, config: CliConfig, env: NodeJS.ProcessEnv): SyncTarget | undefined {
  if (Object.hasOwn(config.s3Datastores, text))
    return { kind: 's3', settings: configuredS3Settings(text, config.s3Datastores[text] as S3DatastoreConfig, env) };
  if (Object.hasOwn(config.datastores, text)) return { kind: 'folder', dir: resolve(config.datastores[text] as string) };
  return undefined;
}

function sourceSide(text: string, args: Parsed, config: CliConfig, env: NodeJS.ProcessEnv): SyncSide {
  const named = configuredSide(text, config, env);
  if (named) return named;
  const form = parseSyncSource(text);
  if (form?.kind === 'folder') return { kind: 'folder', dir: resolve(form.path) };
  if (form?.kind === 's3') return { kind: 's3', settings: s3UrlSettings(form.url, args, env) };
  if (form?.kind === 'node') return { kind: 'node', node: form.node, store: form.store };
  const what = form ? 'is no datastore name of the config file' : 'is none of the forms';
  throw new ColdvaultError('USAGE', `coldvault sync: --from '${text}' ${what}; expected ${SYNC_SOURCE_FORMS}`);
}

function targetSide(text: string, args: Parsed, config: CliConfig, env: NodeJS.ProcessEnv): SyncTarget {
  const named = configuredSide(text, config, env);
  if (named) return named;
  const form = parseSyncSource(text);
  if (form?.kind === 's3') return { kind: 's3', settings: s3UrlSettings(form.url, args, env) };
  if (form?.kind === 'node') {
    throw new ColdvaultError(
      'USAGE',
      `coldvault sync: --to '${text}' names a datastore on node ${form.node}: a sync writes into a datastore of this node (a folder, s3://BUCKET/PREFIX or a datastore name of the config file); to fill that one, run the sync on node ${form.node}`,
    );
  }
  return { kind: 'folder', dir: resolve(text) };
}

/**
 * A sync job's `from` as the job CLI stores it: a configured folder datastore's name becomes its path
 * (a job names folders by path, S3 datastores by their configured name, as its `store`); an s3://
 * address is refused (a job has no --endpoint: configure the datastore and name it).
 */
export function jobSyncFrom(config: CliConfig, text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  if (isS3Url(text)) {
    throw new ColdvaultError('USAGE', `--from '${text}': a sync job names an S3 datastore by a datastore name of the config file, not by its s3:// address`);
  }
  return Object.hasOwn(config.datastores, text) && !Object.hasOwn(config.s3Datastores, text) ? resolve(config.datastores[text] as string) : text;
}
