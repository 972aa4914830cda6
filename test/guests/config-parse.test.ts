import { describe, expect, it } from 'vitest';
import { isColdvaultError } from '../../src/core/errors.js';
import { configValue, guestName, parseGuestConfig, printGuestConfig, type ConfigSection, type GuestConfig } from '../../src/guests/index.js';
import { listConfigFixtures, readFixture } from './fixtures.js';

const fixtures = listConfigFixtures();

/** The effective content of a config: what Proxmox's parser would hand on. */
function effective(config: GuestConfig): Record<string, Record<string, string>> {
  const result: Record<string, Record<string, string>> = {};
  for (const s of config.sections.filter((x) => !x.skipped)) {
    result[`${s.kind}:${s.name}`] = Object.fromEntries(s.values);
  }
  return result;
}

function section(config: GuestConfig, kind: string, name: string): ConfigSection | undefined {
  return config.sections.find((s) => s.kind === kind && s.name === name && !s.skipped);
}

function malformedMessage(text: string): string {
  try {
    parseGuestConfig(text, 'guest 101 (/x/101.conf)');
  } catch (err) {
    expect(isColdvaultError(err, 'GUEST_CONFIG_MALFORMED')).toBe(true);
    return (err as Error).message;
  }
  throw new Error('expected GUEST_CONFIG_MALFORMED');
}

describe('parseGuestConfig on the 229 Proxmox fixtures', () => {
  it('finds all of them', () => {
    expect(fixtures).toHaveLength(229);
  });

  it.each(fixtures)('%s: parses, prints back byte for byte, reparses to an equal model', (name) => {
    const text = readFixture(name);
    const config = parseGuestConfig(text, name);
    const printed = printGuestConfig(config);
    expect(printed).toBe(text);
    expect(parseGuestConfig(printed, name)).toEqual(config);
    expect(config.sections[0]?.kind).toBe('main');
  });
});

describe('parseGuestConfig against Proxmox parse-config-expected', () => {
  // Proxmox also type-checks values and drops e.g. `numa: verify meee~ :)` (not a boolean); we keep
  // values as text, so that one key is left out of the comparison.
  const typeChecked = (c: GuestConfig): Record<string, Record<string, string>> => {
    const e = effective(c);
    for (const values of Object.values(e)) if (values.numa && !/^[01]$/.test(values.numa)) delete values.numa;
    return e;
  };
  it.each(['cloudinit-snapshot.conf', 'duplicate-sections.conf', 'unknown-sections.conf', 'verify-snapshot.conf'])(
    '%s: same sections and values as Proxmox',
    (name) => {
      const input = parseGuestConfig(readFixture(`parse-config-input/${name}`), name);
      const expected = parseGuestConfig(readFixture(`parse-config-expected/${name}`), name);
      expect(typeChecked(input)).toEqual(effective(expected));
    },
  );

  it('skips unknown sections with a warning naming the line', () => {
    const config = parseGuestConfig(readFixture('parse-config-input/unknown-sections.conf'), 'guest 8006');
    expect(config.warnings).toEqual([
      "guest 8006 line 20: skipping unknown section 'special:unknown123'",
      "guest 8006 line 26: skipping unknown section 'special:unknown124'",
      "guest 8006 line 33: skipping unknown section 'special:unknown125'",
      "guest 8006 line 55: skipping unknown section ':3'",
    ]);
    expect(config.sections.filter((s) => s.kind === 'unknown').every((s) => s.skipped)).toBe(true);
  });

  it('lets the later of duplicate sections win, with a warning', () => {
    const config = parseGuestConfig(readFixture('parse-config-input/duplicate-sections.conf'), 'g');
    expect(section(config, 'pending', 'pending')?.values.get('vga')).toBe('qxl');
    expect(section(config, 'pending', 'pending')?.values.has('bios')).toBe(false);
    expect(section(config, 'special', 'cloudinit')?.values.get('name')).toBe('deb123');
    expect(section(config, 'snapshot', 'foo')?.values.get('cores')).toBe('4');
    expect(config.warnings).toHaveLength(3);
    expect(config.warnings[0]).toMatch(/^g line 20: duplicate section 'pending'/);
  });

  it('tells [special:cloudinit] from a snapshot named cloudinit', () => {
    const config = parseGuestConfig(readFixture('parse-config-input/cloudinit-snapshot.conf'), 'g');
    expect(section(config, 'special', 'cloudinit')?.values.get('name')).toBe('deb122');
    expect(section(config, 'snapshot', 'cloudinit')?.values.get('snaptime')).toBe('1737549549');
    expect(configValue(config, 'name')).toBe('deb1223');
  });

  it('reads [special:fleecing]', () => {
    const config = parseGuestConfig(readFixture('parse-config-input/fleecing-section.conf'), 'g');
    expect(section(config, 'special', 'fleecing')?.values.get('fleecing-images')).toBe('zfs:vm-120-fleece-0');
    expect(config.warnings).toEqual([]);
  });
});

describe('parseGuestConfig details', () => {
  it('reads descriptions percent-decoded, per section', () => {
    const text = '#first %3A line\n#caf%C3%A9 100%25\ncores: 2\n\n[snap]\n#snap note\nsnaptime: 1\n';
    const config = parseGuestConfig(text, 'g');
    expect(config.sections[0]?.description).toBe('first : line\ncafé 100%');
    expect(section(config, 'snapshot', 'snap')?.description).toBe('snap note');
  });

  it('keeps values as Proxmox trims them, `cdrom` as ide2, later duplicates winning', () => {
    const config = parseGuestConfig('name:   web  \ncdrom: none,media=cdrom\nboot: \ncores: 1\ncores: 4\n', 'g');
    expect(guestName(config)).toBe('web');
    expect(configValue(config, 'ide2')).toBe('none,media=cdrom');
    expect(configValue(config, 'boot')).toBe(' ');
    expect(configValue(config, 'cores')).toBe('4');
    expect(configValue(config, 'constructor')).toBeUndefined();
    expect(guestName(parseGuestConfig('cores: 1', 'g'))).toBe('');
  });

  it('keeps text without a final newline, and empty text', () => {
    expect(printGuestConfig(parseGuestConfig('cores: 1', 'g'))).toBe('cores: 1');
    expect(printGuestConfig(parseGuestConfig('', 'g'))).toBe('');
    expect(printGuestConfig(parseGuestConfig('\n\ncores: 1\r\n', 'g'))).toBe('\n\ncores: 1\r\n');
  });

  it('accepts [PENDING] in any case', () => {
    const config = parseGuestConfig('cores: 1\n\n[pending]\ndelete: vga\n', 'g');
    expect(section(config, 'pending', 'pending')?.values.get('delete')).toBe('vga');
  });
});

describe('malformed configs', () => {
  it('refuses a main-section line without `key: value`, naming what and the line', () => {
    expect(malformedMessage('cores: 1\nthis is not a key\n')).toBe(
      "cannot parse guest 101 (/x/101.conf) line 2: expected 'key: value', got 'this is not a key'",
    );
    expect(malformedMessage('cores: 1\nmemory:\n')).toMatch(/ line 2: /);
    expect(malformedMessage('  cores: 1\n')).toMatch(/ line 1: /);
    expect(malformedMessage('Cores: 1\n')).toMatch(/ line 1: /);
  });

  it('refuses a drive line without a volume', () => {
    expect(malformedMessage('cores: 1\nscsi0: size=32G,cache=none\n')).toBe('cannot parse guest 101 (/x/101.conf) line 2: drive scsi0: no volume');
    expect(malformedMessage('virtio0: a:1/x.raw,b:1/y.raw\n')).toMatch(/line 1: drive virtio0: more than one volume/);
    expect(malformedMessage('ide0: local:1/x.raw,backup=maybe\n')).toMatch(/line 1: drive ide0: backup=maybe/);
    expect(malformedMessage('sata0: local:1/x.raw,size=\n')).toMatch(/line 1: drive sata0: missing key or value/);
    expect(malformedMessage('cores: 1\n\n[snap]\nscsi1: ,size=1G\n')).toMatch(/line 4: drive scsi1: no volume/);
  });

  it('does not look into skipped sections', () => {
    const config = parseGuestConfig('cores: 1\n\n[special:other]\nnot a key\n', 'g');
    expect(config.sections[1]?.lines.map((l) => l.kind)).toEqual(['header', 'ignored']);
  });
});
