// A sending node's stand-in for test/server/store-devices.test.ts: attaches an external disk at a
// receiving `coldvault serve` with the real client (dist/), prints the answer as one JSON line, then
// lives on (its keep-alives hold the disk) until the test kills it.
// argv: URL TOKEN STORE DEVICE [init]
import { RemoteStore } from '../../dist/targets/index.js';

const [url, token, store, device, init] = process.argv.slice(2);
const remote = new RemoteStore({ url, token, store });
try {
  const attached = await remote.attachDevice({ device, init: init === 'init' });
  process.stdout.write(`${JSON.stringify(attached)}\n`);
  setInterval(() => undefined, 1 << 30); // the keep-alive timer does not hold the process: this does
} catch (err) {
  process.stdout.write(`${JSON.stringify({ error: err.code, message: err.message })}\n`);
  process.exit(1);
}
