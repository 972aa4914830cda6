/**
 * The web UI's dictionary (src/server/ui/js/strings.js): English and German have the same keys and
 * the same {placeholders}, and every key the UI's code names is in it (also those built at run time:
 * day.<weekday>, status.<task status>, guest.status.<guest status>, lang.<code>).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO } from '../helpers/fixtures.js';
// @ts-expect-error: a plain JS module of the web UI, without type declarations
import { STRINGS } from '../../src/server/ui/js/strings.js';

const dict = STRINGS as Record<'en' | 'de', Record<string, string>>;
const UI_JS = join(REPO, 'src/server/ui/js');
const placeholders = (text: string): string[] => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1] as string).sort();

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.js') && e.name !== 'strings.js' ? [join(dir, e.name)] : [],
  );
}

describe('the UI dictionary', () => {
  it('English and German have the same keys and placeholders, and no empty text', () => {
    expect(Object.keys(dict.de).sort()).toEqual(Object.keys(dict.en).sort());
    for (const [key, en] of Object.entries(dict.en)) {
      const de = dict.de[key] as string;
      expect(placeholders(de), key).toEqual(placeholders(en));
      expect(en.trim(), key).not.toBe('');
      expect(de.trim(), key).not.toBe('');
    }
  });

  it("holds the seed's German words", () => {
    expect(dict.de).toMatchObject({
      'backup.title': 'Datensicherung',
      'tabs.jobs': 'Jobs',
      'tabs.restore': 'Wiederherstellen',
      'jobs.new': 'Neuen Job erstellen',
      'jobs.startNow': 'Jetzt starten',
      'nav.guests': 'Gäste',
      'nav.logout': 'Abmelden',
      'form.store': 'Zielverzeichnis',
      'form.device': 'Externes Gerät',
      'form.at': 'Startzeit',
      'form.keep': 'Behalten (1-x)',
      'form.scriptBefore': 'Skript vorher',
      'form.scriptAfter': 'Skript nachher',
      'restore.fromPath': 'Von Pfad',
      'restore.fromId': 'Von ID',
      'restore.newId': 'Neue ID',
    });
  });

  it('every key the UI code names is in the dictionary', () => {
    const families = Object.keys(dict.en).map((k) => k.split('.')[0]);
    const keyLike = new RegExp(`^(${[...new Set(families)].join('|')})\\.[A-Za-z][\\w.]*$`);
    const used = new Set<string>();
    for (const file of sources(UI_JS)) {
      for (const m of readFileSync(file, 'utf8').matchAll(/'([a-zA-Z][\w.-]*)'/g))
        if (keyLike.test(m[1] as string) && !/\.(js|css|svg)$/.test(m[1] as string)) used.add(m[1] as string);
    }
    for (const d of ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun']) used.add(`day.${d}`).add(`day.long.${d}`);
    for (const s of ['running', 'ok', 'failed']) used.add(`status.${s}`);
    for (const s of ['running', 'stopped', 'paused', 'unknown']) used.add(`guest.status.${s}`);
    for (const l of ['en', 'de']) used.add(`lang.${l}`);
    expect(used.size).toBeGreaterThan(100);
    expect([...used].filter((k) => !(k in dict.en))).toEqual([]);
  });
});
