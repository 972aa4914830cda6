/**
 * A real webhook receiver for the notification tests: a node:http server on 127.0.0.1 (port 0) that
 * keeps every request (method, path, headers, raw body) and answers with the status the test's
 * `answer` gives for the n-th request (default 200), or never answers (`hang`: a timeout test).
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Delivery {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  raw: string;
}

export interface Receiver {
  url: string;
  port: number;
  got: Delivery[];
  /** the status for the n-th request (1-based) of this receiver, or 'hang' to never answer */
  answer: (n: number) => number | 'hang';
  close(): Promise<void>;
}

export async function startReceiver(answer: Receiver['answer'] = () => 200): Promise<Receiver> {
  const got: Delivery[] = [];
  const hanging = new Set<() => void>();
  const receiver = { got, answer } as Receiver;
  const server: Server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (b: Buffer) => parts.push(b));
    req.on('end', () => {
      got.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, raw: Buffer.concat(parts).toString('utf8') });
      const status = receiver.answer(got.length);
      if (status === 'hang') {
        hanging.add(() => res.destroy());
        return;
      }
      res.writeHead(status, { 'content-type': 'application/json' }).end(status < 300 ? '{"ok":true}' : '{"error":"receiver says no"}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  receiver.port = (server.address() as AddressInfo).port;
  receiver.url = `http://127.0.0.1:${receiver.port}/hook/t0ken-in-path`;
  receiver.close = async () => {
    for (const end of hanging) end();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return receiver;
}
