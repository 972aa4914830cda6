/**
 * Webhooks: the receiver of every enabled job's webhook takes a connection, and for an https URL its
 * TLS certificate is one this node trusts (the handshake a report's POST makes). Nothing is posted:
 * a test message would reach whoever reads the channel. One finding per receiver (scheme, host and
 * port; the path may hold a token and is never shown), naming the jobs that report to it.
 */
import { connect as tcpConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { describeError } from '../../core/index.js';
import { describeWebhookTarget } from '../notify/index.js';
import { type DoctorCheck, type Finding, fail, ok } from './types.js';

const CHECK = 'webhook';
const CONNECT_MS = 10_000;

export const webhookCheck: DoctorCheck = {
  name: CHECK,
  async run(setup): Promise<Finding[]> {
    const byOrigin = new Map<string, { url: URL; jobs: string[] }>();
    for (const job of setup.jobs.filter((j) => j.enabled && j.webhook)) {
      const url = new URL(job.webhook?.url ?? '');
      const entry = byOrigin.get(url.origin) ?? { url, jobs: [] };
      entry.jobs.push(job.id);
      byOrigin.set(url.origin, entry);
    }
    if (byOrigin.size === 0) return [ok(CHECK, 'no enabled job posts to a webhook')];
    return Promise.all([...byOrigin.values()].map(({ url, jobs }) => receiverFinding(url, jobs)));
  },
};

async function receiverFinding(url: URL, jobs: string[]): Promise<Finding> {
  const target = describeWebhookTarget(url.href);
  const who = `job(s) ${jobs.join(', ')}`;
  try {
    await reach(url);
    return ok(
      CHECK,
      `the webhook receiver ${target} of ${who} takes connections${url.protocol === 'https:' ? ' (TLS certificate trusted)' : ''}; nothing posted`,
    );
  } catch (err) {
    const message = describeError(err);
    const fix = /certificate|self[- ]signed|altname/i.test(message)
      ? `give ${url.host} a certificate this node trusts (NODE_EXTRA_CA_CERTS for a private CA), or change the webhook URL of ${who}`
      : `check that the receiver at ${url.host} runs and this node may reach it (firewall, DNS), or change the webhook URL of ${who} (coldvault job edit ID --webhook URL)`;
    return fail(CHECK, `the webhook receiver ${target} of ${who} cannot be reached: ${message}`, fix);
  }
}

/** Connects to the URL's host and port (with a TLS handshake that checks the certificate for https), then hangs up. */
function reach(url: URL): Promise<void> {
  const secure = url.protocol === 'https:';
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = Number(url.port || (secure ? 443 : 80));
  return new Promise((resolve, reject) => {
    const socket: Socket = secure
      ? tlsConnect({ host, port, servername: /^[\d.]+$|:/.test(host) ? undefined : host }, () => done())
      : tcpConnect({ host, port }, () => done());
    const timer = setTimeout(() => done(new Error(`no answer within ${CONNECT_MS / 1000} s`)), CONNECT_MS);
    function done(err?: Error): void {
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve();
    }
    socket.once('error', (err) => done(err));
  });
}
