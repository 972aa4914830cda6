/**
 * `coldvault cert fingerprint [--json]`, `coldvault cert show [--json]`: the certificate `serve` speaks
 * HTTPS with (config `tls: {cert, key}`, else the self-signed one serve makes in the state dir, made
 * here when there is none yet, exactly as serve would). The fingerprint (SHA-256, `AB:CD:...` as PBS
 * shows it) is what the other nodes of a cluster pin (`cluster.nodes[].fingerprint`).
 */
import { ColdvaultError } from '../../core/index.js';
import type { OptionSpec } from '../args.js';
import type { CommandContext } from '../context.js';

export const certOptions: OptionSpec = {};
export const certHelp = `coldvault cert fingerprint [--json]   SHA-256 fingerprint (AB:CD:...) of the certificate serve uses; other nodes pin it
coldvault cert show [--json]          that certificate: file, subject, names, validity, fingerprint
  Without "tls": {"cert", "key"} in the config, serve uses a self-signed certificate that it makes in
  the state dir (tls/) at first use; these commands make it too when it is not there yet.`;

export async function certCommand(ctx: CommandContext): Promise<number> {
  const [sub, ...rest] = ctx.args.positionals;
  if ((sub !== 'fingerprint' && sub !== 'show') || rest.length > 0) {
    throw new ColdvaultError('USAGE', `coldvault cert: expected 'fingerprint' or 'show', got '${ctx.args.positionals.join(' ')}'`);
  }
  const { serveCertificate } = await import('../../server/tls/index.js'); // not the server's index: no Fastify
  const cert = await serveCertificate(ctx.config);
  if (cert.created) ctx.log.info(`made serve's self-signed TLS certificate ${cert.cert} (key ${cert.key})`);
  const { info } = cert;
  if (ctx.json) ctx.printJson({ ...info, cert: cert.cert, key: cert.key, source: cert.source, created: cert.created });
  else if (sub === 'fingerprint') ctx.print(info.fingerprint);
  else
    ctx.print(
      [
        `certificate  ${cert.cert} (${cert.source === 'configured' ? 'config tls' : "serve's own, self-signed"})`,
        `subject      ${info.subject}`,
        `names        ${info.subjectAltName}`,
        `valid        ${info.validFrom} to ${info.validTo}`,
        `fingerprint  ${info.fingerprint} (SHA-256)`,
      ].join('\n'),
    );
  return 0;
}
