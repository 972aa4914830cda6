import type { DatastoreIdentity, Manifest } from '../format/index.js';

/** Placeholder; the real implementation follows. */
export interface DatastoreReader {
  readonly dir: string;
  readonly identity: DatastoreIdentity;
  listGuestIds(): Promise<string[]>;
  listVersionNumbers(guestId: string): Promise<number[]>;
  readManifest(guestId: string, version: number): Promise<Manifest>;
}
