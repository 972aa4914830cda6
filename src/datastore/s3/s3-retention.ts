/**
 * Object Lock on an S3 datastore (`datastore init s3://... --object-lock-days N`): every object a
 * version is made of is written with COMPLIANCE retention, which nobody can shorten or bypass, not even
 * the bucket's owner: the service refuses to delete a version of it before its date.
 * - a version's own files (indexes, config, log, manifest): N days from its backup;
 * - its chunks: N + GENERATION days. A chunk a nightly reuses keeps its date unless the previous
 *   version's chunks would run out before the new version's N days: then the run lengthens every
 *   chunk it reuses to N + GENERATION days from now (one request per chunk, at most once per
 *   GENERATION days, as Veeam extends immutable blocks by "generations"). The manifest object carries
 *   `x-amz-meta-chunks-until`, the earliest date any of the version's chunks is kept to, so the next
 *   run knows without a request per chunk.
 * So every chunk a version names is kept at least as long as the version itself.
 * Prune and gc skip what is still retained and say so; the service would refuse anyway.
 */

export const GENERATION_DAYS = 7;
export const DAY_MS = 86_400_000;

export interface RetentionPlan {
  /** the version's own files are kept to this date */
  versionUntil: Date;
  /** chunks this run writes or lengthens are kept to this date */
  chunkUntil: Date;
}

/** `dayMs`: the length of a day (tests make it seconds, to see retention end) */
export function retentionPlan(days: number, now = new Date(), dayMs = DAY_MS): RetentionPlan {
  return { versionUntil: new Date(now.getTime() + days * dayMs), chunkUntil: new Date(now.getTime() + (days + GENERATION_DAYS) * dayMs) };
}

export const CHUNKS_UNTIL_META = 'chunks-until';

/** Whether an object's retention (from HEAD) still holds at `now`. */
export function retained(retainUntil: Date | undefined, now: Date): boolean {
  return retainUntil !== undefined && retainUntil.getTime() > now.getTime();
}
