/** Frozen constants of datastore format 1. Never change a value here; add new ones. */

/** The datastore format this build writes. A store with a higher number is refused. */
export const DATASTORE_FORMAT = 1;

/** Disk images are cut into fixed chunks of this size (the last one may be shorter). */
export const CHUNK_SIZE = 4 * 1024 * 1024;

/** The largest plain chunk any reader accepts (guards allocations against corrupt headers). */
export const MAX_CHUNK_SIZE = 16 * 1024 * 1024;

/** Chunk blob magics, 8 bytes each. */
export const BLOB_MAGIC_RAW = Buffer.from('CVBLOB\x00R', 'latin1');
export const BLOB_MAGIC_ZSTD = Buffer.from('CVBLOB\x00Z', 'latin1');
export const BLOB_HEADER_SIZE = 12; // magic[8] | crc32 u32 LE (of magic and payload)
/** An encrypted blob's header adds a nonce (12) and a GCM tag (16) to BLOB_HEADER_SIZE (encrypted-blob.ts). */
export const SEAL_OVERHEAD = 28;

/** Fixed index magic and header size. */
export const INDEX_MAGIC = Buffer.from('CVFIDX\x00\x01', 'latin1');
export const INDEX_HEADER_SIZE = 64;
export const DIGEST_SIZE = 32;

/** The digest slot of an all-zero chunk in an index: nothing is stored for it. */
export const ZERO_DIGEST_MARKER = Buffer.alloc(DIGEST_SIZE);

/** File names inside a datastore. */
export const DATASTORE_ID_FILE = 'coldvault-datastore.json';
export const MANIFEST_FILE = 'manifest.json';
export const VERSION_LOG_FILE = 'backup.log';
export const VERSION_CONFIG_FILE = 'qemu-server.conf';
export const INDEX_SUFFIX = '.fidx';
