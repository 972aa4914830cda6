/**
 * Named blocks in a Markdown results file, between `<!-- begin NAME -->` and `<!-- end NAME -->`
 * lines: a bench that owns one block replaces just it (appended at the end the first time), and
 * bench/run.mjs, which writes RESULTS.md whole, carries the blocks of other benches over.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

const BLOCK = /^<!-- begin ([\w-]+) -->\n[\s\S]*?^<!-- end \1 -->\n?/gm;
const wrap = (name, content) => `<!-- begin ${name} -->\n${content.trimEnd()}\n<!-- end ${name} -->\n`;

/** Replaces block `name` of `file` with `content` (appended when the file has no such block). */
export function replaceBlock(file, name, content) {
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
  let found = false;
  const next = text.replace(BLOCK, (block, blockName) => {
    if (blockName !== name) return block;
    found = true;
    return wrap(name, content);
  });
  writeFileSync(file, found ? next : `${text.trimEnd()}${text ? '\n\n' : ''}${wrap(name, content)}`);
}

/** Every named block of `file`, in order, as one string ('' when none or no file). */
export function namedBlocks(file) {
  if (!existsSync(file)) return '';
  return (readFileSync(file, 'utf8').match(BLOCK) ?? []).map((b) => (b.endsWith('\n') ? b : `${b}\n`)).join('\n');
}
