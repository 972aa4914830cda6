/** Schemas of the remote datastore protocol's routes (store-uploads.ts, store-reads.ts). */
import { Type } from '@sinclair/typebox';
import { PUSHED_FILE_PATTERN, VERSION_FILE_PATTERN } from '../uploads/index.js';
import { Vmid } from '../schemas.js';

/** Most digests one `known` request may ask about. */
export const KNOWN_BATCH = 4096;

const StoreName = Type.String({ minLength: 1, maxLength: 128, description: 'a configured datastore name (config `datastores`)' });
const UploadId = Type.String({ pattern: '^[A-Za-z0-9_-]{22}$', description: 'the id POST .../uploads answered' });
const Digest = Type.String({ pattern: '^[0-9a-f]{64}$', description: "a chunk's SHA-256, 64 lowercase hex digits" });

export const StoreParams = Type.Object({ store: StoreName });
export const UploadParams = Type.Object({ store: StoreName, upload: UploadId });
export const ChunkParams = Type.Object({ store: StoreName, upload: UploadId, digest: Digest });
export const FileParams = Type.Object({
  store: StoreName,
  upload: UploadId,
  name: Type.String({ pattern: PUSHED_FILE_PATTERN, description: 'qemu-server.conf, backup.log or <disk key>.fidx' }),
});

export const OpenBody = Type.Object(
  {
    guestId: Vmid,
    node: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$', description: 'the pushing node (the manifest must name it)' }),
    bytesEstimate: Type.Optional(Type.Integer({ minimum: 0, description: 'bytes the upload may add at most: refused early (NO_SPACE) when they do not fit' })),
    keep: Type.Optional(Type.Integer({ minimum: 1, description: 'keep-N rotation of the guest after the publish' })),
  },
  { additionalProperties: false },
);
export const Opened = Type.Object({
  upload: Type.String(),
  version: Type.Integer({ description: 'the number the version gets; the manifest must carry it' }),
  idleTimeoutSeconds: Type.Number(),
});

export const KnownBody = Type.Object({ digests: Type.Array(Digest, { maxItems: KNOWN_BATCH }) }, { additionalProperties: false });
export const KnownAnswer = Type.Object({ missing: Type.Array(Type.String(), { description: 'the digests the store lacks, in the order asked' }) });

export const FinishBody = Type.Object(
  {
    manifest: Type.Object({}, { additionalProperties: true, description: 'a format-1 manifest without `checksum` (the server adds it); checked strictly' }),
  },
  { additionalProperties: false },
);
export const Finished = Type.Object({ version: Type.Integer(), bytesReceived: Type.Integer({ description: 'request body bytes of the whole upload' }) });

export const StoreInfo = Type.Object({
  store: Type.String(),
  kind: Type.Union([Type.Literal('folder'), Type.Literal('s3')], {
    description: "'s3': a datastore in an S3 bucket (no free space to ask about, no external disk)",
  }),
});

export const GuestVersionsParams = Type.Object({ store: StoreName, id: Vmid });
export const VersionFileParams = Type.Object({
  store: StoreName,
  id: Vmid,
  version: Type.Integer({ minimum: 1 }),
  name: Type.String({ pattern: VERSION_FILE_PATTERN, description: 'manifest.json, qemu-server.conf, backup.log or <disk key>.fidx' }),
});
export const ChunkReadParams = Type.Object({ store: StoreName, digest: Digest });
export const VersionParams = Type.Object({ store: StoreName, id: Vmid, version: Type.Integer({ minimum: 1 }) });
export const LeaseParams = Type.Object({ store: StoreName, lease: Type.String({ pattern: '^[A-Za-z0-9_-]{22}$' }) });
export const Leased = Type.Object({
  lease: Type.String(),
  idleTimeoutSeconds: Type.Number({ description: 'the lease ends after this long without a keepalive' }),
});
