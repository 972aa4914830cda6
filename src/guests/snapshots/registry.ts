/** The providers in the order they are tried, and the choice of one for a disk. */
import type { SnapshotProvider, SnapshotSource } from '../../core/index.js';
import { ReflinkProvider } from './reflink.js';

export type ProviderChoice = { provider: SnapshotProvider; refusal?: undefined } | { provider?: undefined; refusal: string };

/**
 * Every snapshot provider coldvault ships, in the order they are tried: reflink clones of disk
 * files. (LVM-thin `lvcreate -s` of a thin LV and ZFS zvol snapshots slot in here, after it, once
 * they can be tested.) One set per run: each provider caches what it learnt about filesystems.
 */
export function snapshotProviders(opts: { storageDirs: readonly string[] }): SnapshotProvider[] {
  return [new ReflinkProvider(opts)];
}

/** The first provider that can snapshot `source`; else why none can (each provider's refusal). */
export async function snapshotProviderFor(providers: readonly SnapshotProvider[], source: SnapshotSource): Promise<ProviderChoice> {
  const refusals: string[] = [];
  for (const provider of providers) {
    const refusal = await provider.refusal(source);
    if (refusal === undefined) return { provider };
    refusals.push(providers.length > 1 ? `${provider.name}: ${refusal}` : refusal);
  }
  return { refusal: refusals.join('; ') || 'no snapshot provider' };
}
