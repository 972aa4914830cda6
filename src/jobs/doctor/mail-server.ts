/**
 * Mail: the SMTP server of the config's `mail` answers EHLO (with STARTTLS and AUTH as a report would
 * use them; nothing is sent), or the sendmail binary is there. No `mail` section is fine unless a job
 * mails its reports (`--mailto`): those would not go out.
 */
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { delimiter, isAbsolute, join } from 'node:path';
import { describeError } from '../../core/index.js';
import { type MailConfig, smtpAddress, verifyMailServer } from '../mail.js';
import { type DoctorCheck, type DoctorSetup, type Finding, fail, ok, warn } from './types.js';

const CHECK = 'mail';

export const mailCheck: DoctorCheck = {
  name: CHECK,
  async run(setup): Promise<Finding[]> {
    if (!setup.mail) return [noMail(setup)];
    return [setup.mail.transport === 'sendmail' ? await sendmailFinding(setup.mail) : await smtpFinding(setup.mail)];
  },
};

function noMail(setup: DoctorSetup): Finding {
  const mailing = setup.jobs.filter((j) => j.enabled && j.mailto.length > 0).map((j) => j.id);
  if (mailing.length === 0) return ok(CHECK, "no 'mail' section, and no job mails its reports");
  return warn(
    CHECK,
    `job(s) ${mailing.join(', ')} mail their reports, but the config has no 'mail' section: no report goes out`,
    "add a 'mail' section to the config (README: Mail)",
  );
}

async function smtpFinding(config: MailConfig): Promise<Finding> {
  const address = smtpAddress(config);
  try {
    await verifyMailServer(config);
    return ok(CHECK, `the SMTP server ${address} answers${config.user ? ` and takes the login of '${config.user}'` : ''} (no mail sent)`);
  } catch (err) {
    return fail(CHECK, describeError(err), smtpFix(describeError(err), config, address));
  }
}

function smtpFix(message: string, config: MailConfig, address: string): string {
  if (/STARTTLS/.test(message)) return 'enable STARTTLS on the server, or use secure: true (port 465); a relay that needs no login needs no user and pass';
  if (/certificate|self[- ]signed/i.test(message)) {
    return `give the server at ${address} a certificate this node trusts (for a test server only: mail.tlsRejectUnauthorized: false)`;
  }
  if (/auth|login|credentials|535/i.test(message)) return 'check mail.user and mail.pass';
  return `check mail.host and mail.port (now ${address}), that the server runs and this node may reach it (firewall)${config.user ? ', and mail.user / mail.pass' : ''}`;
}

async function sendmailFinding(config: MailConfig): Promise<Finding> {
  const program = config.sendmailPath ?? 'sendmail';
  const found = await findProgram(program);
  if (found) return ok(CHECK, `reports go through sendmail '${found}'`);
  return fail(
    CHECK,
    `the sendmail program '${program}' is not there or not executable`,
    'install a mail transfer agent (Proxmox ships postfix) or set mail.sendmailPath',
  );
}

/** The executable file `program` is (an absolute path), or the first one on PATH, as nodemailer would run it. */
async function findProgram(program: string): Promise<string | undefined> {
  const candidates = isAbsolute(program)
    ? [program]
    : (process.env.PATH ?? '')
        .split(delimiter)
        .filter(Boolean)
        .map((d) => join(d, program));
  for (const candidate of candidates) {
    if (
      await access(candidate, constants.X_OK).then(
        () => true,
        () => false,
      )
    )
      return candidate;
  }
  return undefined;
}
