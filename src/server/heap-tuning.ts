/**
 * The heap growing factor of a serving process. A pushed chunk arrives through Node's HTTP parser,
 * which copies every 16 KiB body piece into a Buffer of its own: 35,000 short-lived buffers for a
 * 541 MiB push, allocated outside the JS heap. V8 frees them at a young-generation collection, which
 * it starts once such young buffers add up to tens of MiB. Until then they count as external memory
 * against the old generation's allocation limit, and serve's heap is small (about 20 MiB): with V8's
 * own growing factor the limit was sometimes less than that above the heap, so it was reached first,
 * and V8 ran a full mark-compact of the whole heap every ~100 ms of a push instead of the cheap young
 * collection (`node --trace-gc`: 20-40 per push in about half the runs, one in the others; a tenth
 * of the receiving core and more). A growing factor of 4 (V8's own for large heaps) keeps the limit
 * far enough above a small heap: one mark-compact per push in every run since. The cost is a heap
 * that may grow to 4x its live size before a full collection, about 80 MiB for serve.
 * An admin's own `node --heap-growing-percent=N` is left alone (node refuses it in NODE_OPTIONS).
 */
import { setFlagsFromString } from 'node:v8';

const FLAG = '--heap-growing-percent';
/** V8's factor is 1 + percent / 100 */
const SERVE_HEAP_GROWING_PERCENT = 300;

/** Whether node was started with its own heap growing factor (V8 takes _ for -). */
export function heapGrowingGiven(execArgv: readonly string[]): boolean {
  return execArgv.some((arg) => arg.replace(/_/g, '-').startsWith(FLAG));
}

/** Sets V8's heap growing factor for a server, unless the process was started with one; answers whether it did. */
export function tuneHeapForServing(execArgv: readonly string[] = process.execArgv): boolean {
  if (heapGrowingGiven(execArgv)) return false;
  setFlagsFromString(`${FLAG}=${SERVE_HEAP_GROWING_PERCENT}`);
  return true;
}
