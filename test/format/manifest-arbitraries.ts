/** fast-check arbitraries of manifests as the backup writes them (valid under the strict schema). */
import fc from 'fast-check';
import { CHUNK_SIZE, DATASTORE_FORMAT, type Manifest, type ManifestDisk } from '../../src/format/index.js';

export const hex64 = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('hex'));
const bytes = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const KEYS = ['scsi0', 'scsi1', 'virtio0', 'sata2', 'ide0', 'efidisk0', 'tpmstate0'] as const;

/** A disk as backup writes one: index `<key>.fidx`, chunk count from the size, zeros within bounds. */
const diskOf = (key: string): fc.Arbitrary<ManifestDisk> =>
  fc
    .record({
      volume: fc.string({ minLength: 1, maxLength: 60 }),
      storage: fc.option(fc.string({ minLength: 1, maxLength: 12 }), { nil: null }),
      format: fc.constantFrom('raw', 'qcow2', 'vmdk'),
      size: bytes,
      sha256: hex64,
      zeroShare: fc.double({ min: 0, max: 1, noNaN: true }),
    })
    .map(({ zeroShare, ...d }) => {
      const chunkCount = Math.ceil(d.size / CHUNK_SIZE);
      const zeroChunks = Math.floor(chunkCount * zeroShare);
      return { key, ...d, index: `${key}.fidx`, chunkSize: CHUNK_SIZE, chunkCount, zeroChunks, zeroBytes: Math.min(d.size, zeroChunks * CHUNK_SIZE) };
    });

const disks = fc.uniqueArray(fc.constantFrom(...KEYS), { maxLength: 4 }).chain((keys) => fc.tuple(...keys.map(diskOf)));

/** The optional fields format 1 gained later: present or not, as a backup with or without them writes it. */
const optionalFields = fc.record({ downtimeMs: fc.integer({ min: 0, max: 1_000_000_000 }) }, { requiredKeys: [] });

const requiredFields = fc.record({
  format: fc.integer({ min: 1, max: DATASTORE_FORMAT }),
  guestId: fc.integer({ min: 100, max: 999_999_999 }).map(String),
  guestName: fc.string({ maxLength: 40 }),
  version: fc.integer({ min: 1, max: 1_000_000 }),
  time: fc.date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true }).map((d) => d.toISOString()),
  node: fc.string({ maxLength: 20 }),
  config: fc.string({ maxLength: 400 }),
  disks: disks.map((d) => [...d]),
  excluded: fc.array(fc.record({ key: fc.string({ maxLength: 8 }), volume: fc.string({ maxLength: 30 }), reason: fc.string({ maxLength: 30 }) }), {
    maxLength: 2,
  }),
  storedBytes: bytes,
  newBytes: bytes,
  durationSeconds: fc.integer({ min: 0, max: 10_000_000 }).map((ms) => ms / 1000),
});

export const manifest: fc.Arbitrary<Manifest> = fc.tuple(requiredFields, optionalFields).map(([required, optional]) => ({ ...required, ...optional }));

/** Fields a manifest may lack (older manifests do). */
export const OPTIONAL_FIELDS: readonly string[] = ['downtimeMs'];
