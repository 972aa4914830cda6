/** The source of a sync as the command line and a job name it: `NODE:STORE` (a node of cluster.nodes, a datastore name there). */
export interface SyncSource {
  node: string;
  store: string;
}

const SOURCE = /^([A-Za-z0-9][A-Za-z0-9_.-]{0,62}):([^/\\\s]{1,128})$/;

/** `NODE:STORE` split, or undefined when `text` is not of that form. */
export function parseSyncSource(text: string): SyncSource | undefined {
  const m = SOURCE.exec(text);
  return m ? { node: m[1] as string, store: m[2] as string } : undefined;
}
