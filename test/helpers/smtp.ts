/**
 * A real SMTP server on loopback for the mail tests (the smtp-server package, port 0) that keeps every
 * message it accepts, and a small decoder for the parts of a received message.
 */
import { SMTPServer, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';

export interface Received {
  raw: string;
  from: string;
  to: string[];
  secure: boolean;
  user: unknown;
}

export async function startSmtpSink(
  options: SMTPServerOptions = { authOptional: true },
): Promise<{ server: SMTPServer; port: number; got: Received[]; close: () => Promise<void> }> {
  const got: Received[] = [];
  const server = new SMTPServer({
    logger: false,
    ...options,
    onData(stream, session: SMTPServerSession, callback) {
      const parts: Buffer[] = [];
      stream.on('data', (b: Buffer) => parts.push(b));
      stream.on('end', () => {
        got.push({
          raw: Buffer.concat(parts).toString('utf8'),
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((a) => a.address),
          secure: session.secure,
          user: session.user,
        });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return { server, port: address.port, got, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/** the decoded body of the first MIME part of the given type (split at the real MIME boundary) */
export function part(raw: string, type: 'text/plain' | 'text/html'): string {
  const msg = raw.replace(/\r\n/g, '\n');
  const at = msg.search(new RegExp(`^Content-Type: ${type.replace('/', '\\/')}`, 'mi'));
  if (at < 0) throw new Error(`no ${type} part`);
  const rest = msg.slice(at);
  const headerEnd = rest.indexOf('\n\n');
  const headers = rest.slice(0, headerEnd);
  let body = rest.slice(headerEnd + 2);
  // the part ends at the MIME boundary (not at any line starting with `--`: a quoted-printable
  // soft break can put `--store ...` of the log at a line start)
  const marker = /boundary="?([^";\n]+)"?/i.exec(msg)?.[1];
  const end = marker ? body.indexOf(`\n--${marker}`) : -1;
  body = end < 0 ? body : body.slice(0, end);
  const cte = /^Content-Transfer-Encoding:\s*(\S+)/im.exec(headers)?.[1]?.toLowerCase() ?? '7bit';
  if (cte === 'base64') return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  if (cte === 'quoted-printable') {
    const bytes = body.replace(/=\n/g, '').replace(/=([0-9A-F]{2})/gi, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
    return Buffer.from(bytes, 'latin1').toString('utf8');
  }
  return body;
}

export const subjectOf = (raw: string): string => /^Subject: (.*)$/m.exec(raw.replace(/\r\n/g, '\n').replace(/\n[ \t]+/g, ' '))?.[1] ?? '';
