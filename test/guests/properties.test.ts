import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseGuestConfig, printGuestConfig, rewriteConfigForRestore } from '../../src/guests/index.js';

// ---- generators shared by both properties ----

const SPECIAL_KEY = /^(ide\d+|sata\d+|scsi\d+|virtio\d+|efidisk\d+|tpmstate\d+|net\d+|unused\d+|cdrom|smbios1|vmgenid|lock|parent|description)$/;
const plainKey = fc.stringMatching(/^[a-z][a-z_-]{0,8}\d{0,2}$/).filter((k) => !SPECIAL_KEY.test(k));
const token = fc.stringMatching(/^[A-Za-z0-9.:/_~+-]{1,12}$/);
const propertyString = fc
  .array(
    fc.oneof(
      token,
      fc.tuple(fc.stringMatching(/^[a-z][a-z0-9_-]{0,6}$/), token).map(([k, v]) => `${k}=${v}`),
    ),
    { minLength: 1, maxLength: 5 },
  )
  .map((parts) => parts.join(','));
// Proxmox trims values, so generated ones neither start nor end with a space.
const freeText = fc.stringMatching(/^[A-Za-z0-9]([A-Za-z0-9 ;.~'"-]{0,20}[A-Za-z0-9.])?$/);
const value = fc.oneof(propertyString, freeText);

/** Proxmox's writer: escape control chars, bytes >= 0x80, '%' and ':' as %XX. */
function encodeDescription(text: string): string {
  return [...Buffer.from(text, 'utf8')]
    .map((b) =>
      b < 0x20 || b === 0x7f || b >= 0x80 || b === 0x25 || b === 0x3a ? `%${b.toString(16).toUpperCase().padStart(2, '0')}` : String.fromCharCode(b),
    )
    .join('');
}
const descriptionText = fc.string({ unit: 'binary', maxLength: 20 }).filter((s) => Buffer.from(s, 'utf8').toString('utf8') === s);

/** A deterministic random source from a seed (mulberry32). */
function seeded(seed: number): (n: number) => Buffer {
  let a = seed >>> 0;
  const byte = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) & 0xff;
  };
  return (n) => Buffer.from(Array.from({ length: n }, byte));
}

// ---- parse -> print -> parse ----

type Entry = { kind: 'kv'; key: string; value: string } | { kind: 'desc'; text: string } | { kind: 'blank' };

const entry: fc.Arbitrary<Entry> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('kv' as const), key: plainKey, value }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('desc' as const), text: descriptionText }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'blank' as const }) },
);

interface GenSection {
  header: string | null;
  kind: string;
  name: string;
  entries: Entry[];
}

const snapshotName = fc.stringMatching(/^[a-z][a-z0-9_-]{1,10}$/).filter((n) => n !== 'pending');
const genConfig = fc
  .record({
    main: fc.array(entry, { maxLength: 15 }),
    pending: fc.option(fc.array(entry, { maxLength: 5 }), { nil: undefined }),
    cloudinit: fc.option(fc.array(entry, { maxLength: 5 }), { nil: undefined }),
    snapshots: fc.uniqueArray(fc.tuple(snapshotName, fc.array(entry, { maxLength: 8 })), { selector: ([n]) => n, maxLength: 3 }),
    finalNewline: fc.boolean(),
  })
  .map((g): GenSection[] => [
    { header: null, kind: 'main', name: '', entries: g.main },
    ...(g.pending ? [{ header: '[PENDING]', kind: 'pending', name: 'pending', entries: g.pending }] : []),
    ...(g.cloudinit ? [{ header: '[special:cloudinit]', kind: 'special', name: 'cloudinit', entries: g.cloudinit }] : []),
    ...g.snapshots.map(([name, entries]) => ({ header: `[${name}]`, kind: 'snapshot', name, entries })),
  ]);

function entryText(e: Entry): string {
  if (e.kind === 'kv') return `${e.key}: ${e.value}`;
  if (e.kind === 'desc') return `#${encodeDescription(e.text)}`;
  return '';
}

function configText(sections: GenSection[], finalNewline: boolean): string {
  const lines = sections.flatMap((s, i) => [...(i > 0 ? [''] : []), ...(s.header ? [s.header] : []), ...s.entries.map(entryText)]);
  const text = lines.join('\n');
  return finalNewline && text !== '' ? `${text}\n` : text;
}

describe('property: parse -> print -> parse', () => {
  it('is the identity on generated configs, and reads values and descriptions as written', () => {
    fc.assert(
      fc.property(genConfig, fc.boolean(), (sections, finalNewline) => {
        const text = configText(sections, finalNewline);
        const config = parseGuestConfig(text, 'generated');
        expect(printGuestConfig(config)).toBe(text);
        expect(parseGuestConfig(printGuestConfig(config), 'generated')).toEqual(config);
        // generated keys are random (most unknown to Proxmox: warned about, see config-parse-warnings.test.ts); nothing else warns
        expect(config.warnings.filter((w) => !/: unknown key '/.test(w))).toEqual([]);
        expect(config.sections.map((s) => [s.kind, s.name, s.skipped])).toEqual(sections.map((s) => [s.kind, s.name, false]));
        sections.forEach((gen, i) => {
          const parsed = config.sections[i];
          const kvs = gen.entries.flatMap((e) => (e.kind === 'kv' ? [[e.key, e.value] as const] : []));
          expect(parsed?.values).toEqual(new Map(kvs));
          const comments = gen.entries.flatMap((e) => (e.kind === 'desc' ? [e.text] : []));
          expect(parsed?.lines.flatMap((l) => (l.kind === 'description' ? [l.comment] : []))).toEqual(comments);
        });
      }),
      { numRuns: 300 },
    );
  });
});

// ---- the restore rewrite ----

type Line =
  | { type: 'other'; text: string }
  | { type: 'disk'; key: string; volume: string; options: string[]; backup0: boolean; cdrom: boolean; format: string | null }
  | { type: 'net'; key: string; model: string; mac: string; options: string[] }
  | { type: 'smbios1'; before: string[]; after: string[] }
  | { type: 'vmgenid'; zero: boolean }
  | { type: 'dropped'; text: string };

const other: fc.Arbitrary<Line> = fc.oneof(
  fc.tuple(plainKey, value).map(([k, v]) => ({ type: 'other' as const, text: `${k}: ${v}` })),
  descriptionText
    .map((t) => `#${encodeDescription(t)}`)
    .filter((t) => !/^#(qmdump#|vzdump#)/.test(t))
    .map((text) => ({ type: 'other' as const, text })),
  fc.constant({ type: 'other' as const, text: '' }),
);
const option = fc.stringMatching(/^(cache=(none|writeback)|discard=on|size=[1-9][0-9]?[KMG]|iothread=1|ssd=1|serial=[A-Z0-9]{1,8})$/);
const diskKey = fc.oneof(
  fc.integer({ min: 0, max: 3 }).map((n) => `ide${n}`),
  fc.integer({ min: 0, max: 5 }).map((n) => `sata${n}`),
  fc.integer({ min: 0, max: 30 }).map((n) => `scsi${n}`),
  fc.integer({ min: 0, max: 15 }).map((n) => `virtio${n}`),
  fc.constantFrom('efidisk0', 'tpmstate0'),
);
const disk = fc.record({
  type: fc.constant('disk' as const),
  key: diskKey,
  volume: fc.oneof(fc.stringMatching(/^[a-z][a-z0-9-]{0,6}[a-z0-9]:1\d\d\/vm-1\d\d-disk-\d\.(raw|qcow2|vmdk)$/), fc.stringMatching(/^\/dev\/sd[a-z]$/)),
  options: fc.array(option, { maxLength: 4 }),
  backup0: fc.boolean(),
  cdrom: fc.boolean(),
  format: fc.option(fc.constantFrom('raw', 'qcow2', 'vmdk'), { nil: null }),
});
const mac = fc.uint8Array({ minLength: 6, maxLength: 6 }).map((b) => [...b].map((x) => x.toString(16).padStart(2, '0').toUpperCase()).join(':'));
const net = fc.record({
  type: fc.constant('net' as const),
  key: fc.integer({ min: 0, max: 31 }).map((n) => `net${n}`),
  model: fc.constantFrom('virtio', 'e1000', 'vmxnet3', 'rtl8139'),
  mac,
  options: fc.array(fc.constantFrom('bridge=vmbr0', 'firewall=1', 'tag=5', 'link_down=1', 'mtu=1400'), { maxLength: 3 }),
});
const smbios: fc.Arbitrary<Line> = fc.record({
  type: fc.constant('smbios1' as const),
  before: fc.array(fc.constantFrom('manufacturer=QUJD', 'base64=1', 'family=eA=='), { maxLength: 2 }),
  after: fc.array(fc.constantFrom('product=eA==', 'sku=eA==', 'version=eA=='), { maxLength: 2 }),
});
const dropped: fc.Arbitrary<Line> = fc
  .oneof(
    fc.constant('lock: backup'),
    fc.constant('parent: snap1'),
    fc.integer({ min: 0, max: 255 }).map((n) => `unused${n}: local:101/vm-101-disk-${n}.raw`),
    fc.constant('#qmdump#map:scsi0:drive-scsi0:local:raw:'),
    fc.constant('#vzdump#whatever'),
  )
  .map((text) => ({ type: 'dropped' as const, text }));

const restoreLines = fc
  .record({
    others: fc.array(other, { maxLength: 12 }),
    disks: fc.uniqueArray(disk, { selector: (d) => d.key, maxLength: 6 }),
    nets: fc.uniqueArray(net, { selector: (n) => n.key, maxLength: 4 }),
    singles: fc.subarray<Line>([{ type: 'vmgenid', zero: false }]),
    zeroGenid: fc.boolean(),
    smbios: fc.option(smbios, { nil: undefined }),
    dropped: fc.array(dropped, { maxLength: 4 }),
  })
  .chain((g) => {
    const all: Line[] = [...g.others, ...g.disks, ...g.nets, ...g.dropped, { type: 'vmgenid', zero: g.zeroGenid }];
    if (g.smbios) all.push(g.smbios);
    return fc.shuffledSubarray(all, { minLength: all.length, maxLength: all.length });
  });

function lineText(l: Line): string {
  switch (l.type) {
    case 'other':
    case 'dropped':
      return l.text;
    case 'disk':
      return `${l.key}: ${[l.volume, ...(l.cdrom ? ['media=cdrom'] : []), ...(l.format ? [`format=${l.format}`] : []), ...l.options, ...(l.backup0 ? ['backup=0'] : [])].join(',')}`;
    case 'net':
      return `${l.key}: ${[`${l.model}=${l.mac}`, ...l.options].join(',')}`;
    case 'smbios1':
      return `smbios1: ${[...l.before, 'uuid=1819ead7-a55d-4544-8d38-29ca94869a9c', ...l.after].join(',')}`;
    case 'vmgenid':
      return `vmgenid: ${l.zero ? '0' : '54d1c06c-8f5b-440f-b5b2-6eab1380e13d'}`;
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function checkMac(newMac: string, oldMac: string, prefix: string): void {
  expect(newMac).toMatch(/^[0-9A-F]{2}(:[0-9A-F]{2}){5}$/);
  expect(newMac).not.toBe(oldMac);
  expect(newMac.startsWith(prefix.toUpperCase())).toBe(true);
  const first = parseInt(newMac.slice(0, 2), 16);
  expect(first & 1).toBe(0); // unicast
  const prefixFirst = prefix === '' ? 0x02 : parseInt(prefix.slice(0, 2), 16);
  expect(first & 2).toBe(prefixFirst & 2); // locally administered unless the prefix (e.g. Proxmox's OUI BC:24:11) says otherwise
}

/** What the output line for `l` must look like; `out` is the line the rewrite produced. */
function checkLine(l: Line, out: string, volumes: Map<string, string>, unique: boolean, prefix: string): void {
  const text = lineText(l);
  if (l.type === 'disk' && l.backup0) return void expect(out).toBe(`#${text}`);
  if (l.type === 'disk' && volumes.has(l.key)) {
    return void expect(out).toBe(`${l.key}: ${[volumes.get(l.key), ...(l.cdrom ? ['media=cdrom'] : []), ...l.options].join(',')}`);
  }
  if (l.type === 'vmgenid' && !l.zero) {
    expect(out).toMatch(/^vmgenid: /);
    expect(out.slice(9)).toMatch(UUID);
    return void expect(out).not.toBe(text);
  }
  if (l.type === 'net' && unique) {
    const [head, ...rest] = out.slice(l.key.length + 2).split(',');
    expect(head?.startsWith(`${l.model}=`)).toBe(true);
    checkMac(head?.slice(l.model.length + 1) ?? '', l.mac, prefix);
    return void expect(rest).toEqual(l.options);
  }
  if (l.type === 'smbios1' && unique) {
    const parts = out.slice('smbios1: '.length).split(',');
    expect(parts[l.before.length]).toMatch(/^uuid=/);
    expect(parts[l.before.length]?.slice(5)).toMatch(UUID);
    return void expect(parts.filter((p) => !p.startsWith('uuid='))).toEqual([...l.before, ...l.after]);
  }
  expect(out).toBe(text);
}

describe('property: the restore rewrite', () => {
  it('changes only disks, vmgenid and (with unique) MACs and the smbios1 uuid, keeping every other line in place', () => {
    fc.assert(
      fc.property(
        restoreLines,
        fc.boolean(),
        fc.constantFrom('BC:24:11', '', 'AA', '02:AB:CD:', 'BC:24:11:00:00'),
        fc.integer(),
        (lines, unique, prefix, seed) => {
          const withEnd: Line[] = [...lines, { type: 'other', text: 'name: last' }];
          const text = `${withEnd.map(lineText).join('\n')}\n`;
          const restorable = withEnd.flatMap((l) => (l.type === 'disk' && !l.backup0 && !l.cdrom ? [l.key] : []));
          const volumes = new Map(restorable.map((k, i) => [k, `target:200/vm-200-disk-${i}.raw`]));
          const out = rewriteConfigForRestore(text, { volumes, unique, macPrefix: prefix, random: seeded(seed) });
          const kept = withEnd.filter((l) => l.type !== 'dropped');
          const outLines = out.split('\n');
          expect(outLines.pop()).toBe('');
          expect(outLines).toHaveLength(kept.length);
          kept.forEach((l, i) => checkLine(l, outLines[i] ?? '', volumes, unique, prefix));
          const newMacs = outLines.filter((o) => /^net\d+: /.test(o)).map((o) => /=([0-9A-F:]{17})/.exec(o)?.[1]);
          expect(new Set(newMacs).size).toBe(newMacs.length);
        },
      ),
      { numRuns: 300 },
    );
  });
});
