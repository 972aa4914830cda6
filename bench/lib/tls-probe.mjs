#!/usr/bin/env node
/**
 * The link's floor for bench/cluster.mjs: how fast plain Node TLS moves bytes between two network
 * namespaces, with nothing of coldvault around it (no HTTP, no hashing, no files). Two processes:
 *   node tls-probe.mjs server HOST PORT CERT KEY   accepts one connection, reads it to the end, answers
 *                                                  one JSON line {bytes, cpuSeconds, cipher}, exits
 *   node tls-probe.mjs client HOST PORT BYTES      sends BYTES in 4 MiB writes, prints one JSON line
 *                                                  {seconds, cpuSeconds, server}
 * The client does not check the certificate (a probe of throughput, not of trust); TLS version and
 * cipher are what Node negotiates by default, as for coldvault's own connections.
 */
import { readFileSync } from 'node:fs';
import { connect, createServer } from 'node:tls';

const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
const [mode, host, port, ...rest] = process.argv.slice(2);

if (mode === 'server') {
  const [cert, key] = rest;
  const server = createServer({ cert: readFileSync(cert), key: readFileSync(key) }, (socket) => {
    let bytes = 0;
    socket.on('data', (d) => {
      bytes += d.length;
    });
    socket.on('end', () => {
      socket.end(`${JSON.stringify({ bytes, cpuSeconds: cpu(), cipher: socket.getCipher()?.standardName, protocol: socket.getProtocol() })}\n`);
      server.close();
    });
  });
  server.listen(Number(port), host, () => process.stdout.write('ready\n'));
} else if (mode === 'client') {
  const total = Number(rest[0]);
  const block = Buffer.alloc(4 * 2 ** 20, 0x5a);
  for (let i = 0; i < block.length; i += 4096) block.writeUInt32LE((i * 2654435761) >>> 0, i);
  const cpu0 = cpu();
  const t0 = process.hrtime.bigint();
  const socket = connect({ host, port: Number(port), rejectUnauthorized: false }, async () => {
    for (let sent = 0; sent < total; sent += block.length) {
      const n = Math.min(block.length, total - sent);
      if (!socket.write(n === block.length ? block : block.subarray(0, n))) await new Promise((r) => socket.once('drain', r));
    }
    socket.end();
  });
  let answer = '';
  socket.on('data', (d) => {
    answer += d;
  });
  socket.on('end', () => {
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    process.stdout.write(`${JSON.stringify({ seconds, cpuSeconds: cpu() - cpu0, server: JSON.parse(answer) })}\n`);
  });
} else {
  process.stderr.write('usage: tls-probe.mjs server HOST PORT CERT KEY | client HOST PORT BYTES\n');
  process.exit(2);
}
