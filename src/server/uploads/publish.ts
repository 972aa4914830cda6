/**
 * Finish: the pushed version is checked (version-check.ts), every chunk its indexes name is looked
 * at once more after the chunk folders are synced (the last look of the gc rule, see index.ts), the
 * manifest is written, and the staging folder is renamed to its version number (atomic). Then the
 * catalog records it and the keep-N rotation runs; their failures are warnings: the version exists.
 */
import { describeError } from '../../core/index.js';
import { Catalog } from '../../catalog/index.js';
import { encodeManifest, MANIFEST_FILE, type Manifest } from '../../format/index.js';
import { rotateGuest } from '../../pipeline/index.js';
import { chunksMissing } from './files.js';
import type { Upload } from './upload.js';
import { checkFiles, checkIndexes, checkManifest } from './version-check.js';

export async function publishUpload(upload: Upload, input: unknown): Promise<void> {
  const { store, staging } = upload.held;
  const { id: uploadId, guestId, version, node } = upload.info;
  const manifest = checkManifest(input, { uploadId, guestId, version, node });
  await checkFiles(manifest, staging, upload.files);
  const digests = await checkIndexes(manifest, staging);
  await store.chunks.syncDirs();
  const missing = await store.chunks.missing(digests);
  if (missing.length > 0) throw chunksMissing("the version's indexes name", missing);
  try {
    await staging.writeFile(MANIFEST_FILE, encodeManifest(manifest));
    await store.checkpoint('upload:publish');
    await store.publish(staging, version);
  } catch (err) {
    upload.markEnded('aborted');
    await upload.discard(`publishing version ${version} failed: ${describeError(err)}`);
    throw err;
  }
  upload.published = true;
  upload.markEnded('finished');
  await store.checkpoint('upload:published');
  const pruned = await recordVersion(upload, manifest);
  await upload.release();
  upload.task.info(`published version ${version} of guest ${guestId} in '${store.versionDir(guestId, version)}'`);
  upload.task.info(upload.describeStats());
  upload.task.finish(true, { ...upload.result(), pruned });
}

/** The catalog and the keep-N rotation; a failure is a WARN line (the catalog catches up when next opened). */
async function recordVersion(upload: Upload, manifest: Manifest): Promise<number[]> {
  const { store } = upload.held;
  try {
    const catalog = await Catalog.open(store, { log: upload.task });
    try {
      catalog.recordVersion(manifest);
      const keep = upload.info.keep;
      return keep ? await rotateGuest({ store, catalog, guestId: manifest.guestId, options: { keepLast: keep }, log: upload.task }) : [];
    } finally {
      catalog.close();
    }
  } catch (err) {
    upload.task.warn(`version ${manifest.version} is published, but recording it in the catalog or rotating failed: ${describeError(err)}`);
    return [];
  }
}
