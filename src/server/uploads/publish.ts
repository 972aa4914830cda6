/**
 * Finish: the pushed version is checked (version-check.ts), every chunk its indexes name is looked
 * at once more (the last look of the gc rule, see index.ts), then the receiving store writes the
 * manifest and makes the version visible (a folder: the staging folder renamed; S3: the manifest
 * PUT last). Then the catalog records it and the keep-N rotation runs; their failures are warnings:
 * the version exists.
 */
import { describeError } from '../../core/index.js';
import { chunksMissing } from './files.js';
import type { Upload } from './upload.js';
import { checkFiles, checkIndexes, checkManifest } from './version-check.js';

export async function publishUpload(upload: Upload, input: unknown): Promise<void> {
  const { receiving } = upload;
  const { id: uploadId, guestId, version, node } = upload.info;
  const manifest = checkManifest(input, { uploadId, guestId, version, node });
  await checkFiles(manifest, receiving, upload.files);
  const digests = await checkIndexes(manifest, receiving);
  const missing = await receiving.lastLook(digests);
  if (missing.length > 0) throw chunksMissing("the version's indexes name", missing);
  try {
    await receiving.publish(manifest, upload.task);
  } catch (err) {
    upload.markEnded('aborted');
    await upload.discard(`publishing version ${version} failed: ${describeError(err)}`);
    throw err;
  }
  upload.published = true;
  upload.markEnded('finished');
  const pruned = await receiving.record(manifest, upload.task);
  await upload.release();
  upload.task.info(`published version ${version} of guest ${guestId} in '${receiving.published}'`);
  upload.task.info(upload.describeStats());
  upload.task.finish(true, { ...upload.result(), pruned });
}
