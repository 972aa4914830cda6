// A relay for the cluster tests, run inside a node's network namespace (netns-relay.ts starts it):
// it serves plain HTTP on a unix socket (a file: reachable from the test process, whatever its
// namespace) and sends every request on to one node, from this namespace, through the pinning
// client of the built code (PinnedAgent + pinnedFetch, dist/). The node's answer comes back as it
// is; when the client itself fails (FINGERPRINT_MISMATCH, CONNECTION_FAILED, TLS_FAILED ...) the
// answer is status 599 with `{"error": {"code", "message"}}` and the header x-relay-error: 1.
// argv[2]: JSON {socket, url, fingerprint, connectTimeoutMs, idleTimeoutMs}. Prints "ready" once listening.
import { createServer } from 'node:http';
import { PinnedAgent, pinnedFetch } from '../../dist/targets/remote/index.js';

const { socket, url, fingerprint, connectTimeoutMs, idleTimeoutMs } = JSON.parse(process.argv[2]);
const agent = new PinnedAgent({ fingerprint, connectTimeoutMs });
const FORWARDED = ['authorization', 'content-type', 'accept'];

async function readBody(req) {
  const parts = [];
  for await (const part of req) parts.push(part);
  return parts.length === 0 ? undefined : new Uint8Array(Buffer.concat(parts));
}

async function relay(req, res) {
  const headers = Object.fromEntries(FORWARDED.filter((h) => req.headers[h]).map((h) => [h, String(req.headers[h])]));
  try {
    const answer = await pinnedFetch(new URL(req.url, url), { agent, method: req.method, headers, body: await readBody(req), idleTimeoutMs });
    const body = Buffer.from(await answer.arrayBuffer());
    res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/octet-stream' });
    res.end(body);
  } catch (err) {
    const error = { code: err?.code ?? 'RELAY_FAILED', message: err?.message ?? String(err) };
    res.writeHead(599, { 'content-type': 'application/json', 'x-relay-error': '1' });
    res.end(JSON.stringify({ error }));
  }
}

const server = createServer((req, res) => void relay(req, res));
server.listen(socket, () => process.stdout.write('ready\n'));
process.once('SIGTERM', () => {
  agent.destroy();
  server.close(() => process.exit(0));
});
