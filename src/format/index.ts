/**
 * format: the frozen on-disk formats of a coldvault datastore. Everything a future coldvault must
 * still read lives here: magic numbers, the chunk blob, the fixed index, the manifest and the
 * datastore's identity file; the key file and paper key of encrypted versions (kdf.ts, key-file.ts,
 * paper-key.ts). A change here is a format change: bump DATASTORE_FORMAT and keep the
 * old reader. The digest of a chunk is computed in exactly one place: `chunkDigest` in digest.ts.
 */
export * from './constants.js';
export * from './digest.js';
export * from './blob.js';
export * from './fixed-index.js';
export * from './manifest.js';
export * from './datastore-id.js';
export { checkManifestSchema, SchemaViolation } from './manifest-schema.js';
export * from './kdf.js';
export * from './key-file.js';
export * from './paper-key.js';
export * from './encrypted-blob.js';
export * from './sealed-manifest.js';
