#!/usr/bin/env node
// The layer rule of DESIGN.md, enforced: an import in src/ may only point down this line
//   cli > server | dashboard > jobs > pipeline > catalog > datastore > targets | guests > format > core
// (siblings on one level talk through core). A folder is used through its index: a static import of a
// module in a folder that does not contain the importer must name that folder's index.js (a lazy
// import() of one module may not: the CLI loads a command's module when it runs). Every layer folder
// opens with a header comment in its index.ts. Exits 1 and lists each offending import.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, normalize, relative, sep } from 'node:path';

const RANK = { core: 0, format: 1, guests: 2, targets: 2, datastore: 3, catalog: 4, pipeline: 5, jobs: 6, server: 7, dashboard: 7, cli: 8 };
const IMPORT = /(?:import|export)[^'"]*?from\s*['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g;
/** A module inside folder `dir` (at any depth), or the folder itself. */
const within = (path, dir) => path === dir || path.startsWith(`${dir}${sep}`);
const src = process.argv[2] ?? new URL('../src', import.meta.url).pathname; // a tree to check; default: src/

function* files(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* files(path);
    else if (/\.(ts|mts|tsx)$/.test(name)) yield path;
  }
}

const layerOf = (path) => {
  const parts = relative(src, path).split(sep);
  return parts.length > 1 ? parts[0] : undefined;
};

const problems = [];
for (const file of files(src)) {
  const me = layerOf(file);
  if (!(me in RANK)) continue;
  for (const m of readFileSync(file, 'utf8').matchAll(IMPORT)) {
    const spec = m[1] ?? m[2];
    const target = normalize(join(dirname(file), spec));
    const other = layerOf(target);
    if (other in RANK && other !== me && RANK[other] >= RANK[me]) {
      problems.push(`${relative(process.cwd(), file)} imports ${spec} (${me} -> ${other}: may only import lower layers)`);
    }
    // A folder is used through its index by every module outside it. A lazy `import()` of one module
    // is the exception (the CLI loads a command's module only when that command runs).
    const lazy = m[2] !== undefined;
    if (!lazy && !within(file, dirname(target)) && !/^index\.(js|ts)$/.test(basename(target))) {
      problems.push(`${relative(process.cwd(), file)} imports ${spec} (a folder is used through its index.js from outside it)`);
    }
  }
}
for (const layer of readdirSync(src)) {
  const index = join(src, layer, 'index.ts');
  try {
    if (!readFileSync(index, 'utf8').trimStart().startsWith('/**')) problems.push(`src/${layer}/index.ts does not open with a header comment`);
  } catch {
    if (statSync(join(src, layer)).isDirectory() && layer !== 'cli') problems.push(`src/${layer}/ has no index.ts with a header comment`);
  }
}
if (problems.length > 0) {
  console.error(`layer rule violated:\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.log('layer rule: ok');
