// A garbage collection in its own process, for tests that kill it at a chosen step: runs
// `collectGarbage` (built code, dist/) on the store in argv[2]; at each checkpoint named in argv[3]
// (comma-separated) it prints "parked <step>" and waits for a line on stdin before going on.
import { createInterface } from 'node:readline';
import { collectGarbage, Datastore } from '../../dist/datastore/index.js';
import { createTaskLog } from '../../dist/core/index.js';

const [storeDir, stops = ''] = process.argv.slice(2);
const held = new Set(stops.split(',').filter(Boolean));
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

const checkpoint = async (step) => {
  if (!held.has(step)) return;
  held.delete(step);
  process.stdout.write(`parked ${step}\n`);
  await lines.next();
};

const store = await Datastore.open(storeDir, { checkpoint });
const result = await collectGarbage(store, createTaskLog());
process.stdout.write(`done ${JSON.stringify(result)}\n`);
process.exit(0);
