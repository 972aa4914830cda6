/**
 * The store a URL of the remote datastore protocol names (/api/v1/stores/{store}/...): a datastore
 * configured on this node by name, a folder or an S3 datastore (its `s3://BUCKET/PREFIX/`, opened
 * with the config's credentials). Any other name is NOT_FOUND, naming this node and its datastores.
 */
import { resolve } from 'node:path';
import type { RouteContext } from '../context.js';
import { ApiError } from '../errors.js';
import type { KnownStore } from '../paths.js';

export function configuredStore(ctx: RouteContext, name: string): KnownStore {
  const { datastores, s3StoreUrls = {} } = ctx.config;
  const dir = Object.hasOwn(datastores, name) ? datastores[name] : undefined;
  if (dir !== undefined) return { name, dir: resolve(dir) };
  const url = Object.hasOwn(s3StoreUrls, name) ? s3StoreUrls[name] : undefined;
  if (url !== undefined) return { name, dir: url, kind: 's3' };
  const known = [...Object.keys(datastores), ...Object.keys(s3StoreUrls)].join(', ') || 'none';
  throw new ApiError('NOT_FOUND', `datastore '${name}' is not configured on node ${ctx.config.node} (datastores: ${known})`);
}
