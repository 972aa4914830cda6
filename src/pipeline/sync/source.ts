/**
 * How the command line and a sync job name a side of a sync: one syntax for both, told apart by its
 * form alone (what a form then means is looked up by the caller, who has the config):
 *   /PATH              a folder datastore, by its absolute path
 *   s3://BUCKET/PREFIX a datastore in an S3 bucket (the command line's --endpoint etc. describe it)
 *   NODE:STORE         datastore STORE on node NODE of cluster.nodes (a source only: a sync pulls)
 *   NAME               a datastore of the config file's `datastores` (a folder or an S3 datastore)
 * NAME has no ':' and no '/', so no text has two forms. The caller looks a text up among the
 * configured names first (a configured name is what it names, whatever its form).
 */
import { isS3Url } from '../../datastore/index.js';

export type SyncSource =
  | { kind: 'folder'; path: string }
  | { kind: 's3'; url: string }
  | { kind: 'node'; node: string; store: string }
  | { kind: 'name'; name: string };

const NODE_STORE = /^([A-Za-z0-9][A-Za-z0-9_.-]{0,62}):([^/\\\s]{1,128})$/;
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** The form of `text`, or undefined when it has none of them. */
export function parseSyncSource(text: string): SyncSource | undefined {
  if (text.startsWith('/')) return text.includes('\0') ? undefined : { kind: 'folder', path: text };
  if (isS3Url(text)) return { kind: 's3', url: text };
  const node = NODE_STORE.exec(text);
  if (node) return { kind: 'node', node: node[1] as string, store: node[2] as string };
  return NAME.test(text) ? { kind: 'name', name: text } : undefined;
}

/** What a side may be, in words, for the messages that refuse one. */
export const SYNC_SOURCE_FORMS =
  'a datastore name of the config file, a folder datastore by its absolute path, s3://BUCKET/PREFIX, or NODE:STORE (a node of cluster.nodes, a datastore name there)';
