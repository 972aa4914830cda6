#!/usr/bin/env node
/**
 * The link's floor for bench/cluster.mjs: how fast plain Node TLS moves bytes between two network
 * namespaces, with nothing of coldvault around it (no HTTP, no hashing, no files). Two processes:
 *   node tls-probe.mjs server HOST PORT CERT KEY   accepts one connection, reads it to the end, answers
 *                                                  one JSON line {bytes, cpuSeconds, cipher}, exits
 *   node tls-probe.mjs client HOST PORT BYTES      sends BYTES in 4 MiB writes, prints one JSON line
 *                                                  {seconds, cpuSeconds, server}
 * and the other direction, as a remote restore reads:
 *   node tls-probe.mjs source HOST PORT CERT KEY BYTES CONNS  sends BYTES / CONNS on each of CONNS
 *                                                  connections in 4 MiB writes, then exits
 *   node tls-probe.mjs sink HOST PORT BYTES CONNS [land|reuse]
 *                                                  reads them over CONNS connections at once with
 *                                                  `onread` (no Buffer per TLS record): `land` (the
 *                                                  default) straight into two 4 MiB buffers per
 *                                                  connection in turn, as coldvault's remote reads
 *                                                  land blobs; `reuse` into one 64 KiB buffer that
 *                                                  stays in the cache; prints {seconds, cpuSeconds,
 *                                                  bytes} (from the first handshake on)
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

/** 4 MiB of bytes that do not compress (TLS does not compress, but no shortcut either way) */
function block() {
  const b = Buffer.alloc(4 * 2 ** 20, 0x5a);
  for (let i = 0; i < b.length; i += 4096) b.writeUInt32LE((i * 2654435761) >>> 0, i);
  return b;
}

/**
 * `onread` options that land the bytes as a restore's reads do: one after the other in two 4 MiB
 * buffers per connection (a chunk's blob buffers), each read into the next free part, not into one
 * small buffer that never leaves the cache.
 */
function landingReads(counted) {
  const LAND = 4 * 2 ** 20;
  const lands = [Buffer.alloc(LAND), Buffer.alloc(LAND)];
  let which = 0;
  let at = 0;
  const next = () => {
    if (at === LAND) {
      which ^= 1;
      at = 0;
    }
    return lands[which].subarray(at, Math.min(at + 64 * 1024, LAND));
  };
  return {
    buffer: next,
    callback: (n) => {
      at += n;
      counted(n);
    },
  };
}

async function send(socket, total, data) {
  for (let sent = 0; sent < total; sent += data.length) {
    const n = Math.min(data.length, total - sent);
    if (!socket.write(n === data.length ? data : data.subarray(0, n))) await new Promise((r) => socket.once('drain', r));
  }
  socket.end();
}

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
  const data = block();
  const cpu0 = cpu();
  const t0 = process.hrtime.bigint();
  const socket = connect({ host, port: Number(port), rejectUnauthorized: false }, () => send(socket, total, data));
  let answer = '';
  socket.on('data', (d) => {
    answer += d;
  });
  socket.on('end', () => {
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    process.stdout.write(`${JSON.stringify({ seconds, cpuSeconds: cpu() - cpu0, server: JSON.parse(answer) })}\n`);
  });
} else if (mode === 'source') {
  const [cert, key, bytes, conns] = rest;
  const each = Math.ceil(Number(bytes) / Number(conns));
  const data = block();
  let left = Number(conns);
  const server = createServer({ cert: readFileSync(cert), key: readFileSync(key) }, (socket) => {
    socket.on('error', () => undefined);
    send(socket, each, data);
    if (--left === 0) server.close();
  });
  server.listen(Number(port), host, () => process.stdout.write('ready\n'));
} else if (mode === 'sink') {
  const [bytes, conns] = rest.slice(0, 2).map(Number);
  const land = rest[2] !== 'reuse';
  const cpu0 = cpu();
  const t0 = process.hrtime.bigint();
  let received = 0;
  let open = conns;
  for (let i = 0; i < conns; i++) {
    const count = (n) => {
      received += n;
    };
    const onread = land ? landingReads(count) : { buffer: Buffer.alloc(64 * 1024), callback: count };
    const socket = connect({ host, port: Number(port), rejectUnauthorized: false, onread });
    socket.on('end', () => {
      if (--open > 0) return;
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      process.stdout.write(`${JSON.stringify({ seconds, cpuSeconds: cpu() - cpu0, bytes: received, expected: bytes, land })}\n`);
    });
  }
} else {
  process.stderr.write(
    'usage: tls-probe.mjs server HOST PORT CERT KEY | client HOST PORT BYTES | source HOST PORT CERT KEY BYTES CONNS | sink HOST PORT BYTES CONNS [land|reuse]\n',
  );
  process.exit(2);
}
