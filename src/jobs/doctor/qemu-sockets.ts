/**
 * The qemu driver (QMP sockets and a start command): `startCommand` is set, the folder of the
 * `qmpSocket` template is there, and every socket of a guest of the guests dir answers QMP
 * (`query-status`). A guest without a socket counts as stopped, as the driver counts it; a socket
 * that refuses (no QEMU behind it: a stale file, or a template that points at the wrong place) fails.
 */
import { dirname } from 'node:path';
import { describeError, type HypervisorConfig } from '../../core/index.js';
import { isQmpGone, QmpClient } from '../../guests/hypervisor/index.js';
import { guestIdsOf } from './guests.js';
import { pathKind, within } from './probe.js';
import { type DoctorSetup, type Finding, fail, ok, warn } from './types.js';

const CHECK = 'hypervisor';
const DEFAULT_QMP_SOCKET = '/var/run/qemu-server/{vmid}.qmp';
const ASK_MS = 10_000;

type SocketAnswer = { vmid: string; path: string; state: 'stopped' | 'answers'; status?: string } | { vmid: string; path: string; problem: Finding };

export async function qemuFindings(setup: DoctorSetup, config: HypervisorConfig | undefined): Promise<Finding[]> {
  const template = config?.qmpSocket ?? DEFAULT_QMP_SOCKET;
  const findings = [startCommandFinding(config)];
  const folder = dirname(template);
  if (!folder.includes('{vmid}') && (await pathKind(folder)) !== 'folder') {
    return [...findings, fail(CHECK, `the QMP socket folder '${folder}' (hypervisor.qmpSocket '${template}') does not exist`, socketFix(template))];
  }
  const answers = await Promise.all((await guestIdsOf(setup)).map((vmid) => askSocket(vmid, template.replaceAll('{vmid}', vmid))));
  const problems = answers.flatMap((a) => ('problem' in a ? [a.problem] : []));
  return [...findings, ...problems, summary(template, answers)];
}

function startCommandFinding(config: HypervisorConfig | undefined): Finding {
  if (config?.startCommand) return ok(CHECK, `qemu driver: guests are started with '${config.startCommand}'`);
  const what = config ? 'hypervisor.startCommand is not set' : "the config has no 'hypervisor' section, so the qemu driver is used, without a startCommand";
  return fail(
    CHECK,
    `qemu driver: ${what}: a job that shuts a running guest down cannot start it again`,
    'on a Proxmox VE node set "hypervisor": {"driver": "proxmox"}; for plain QEMU set hypervisor.startCommand to the command that starts ' +
      "a guest's QEMU ({vmid} replaced), e.g. 'systemctl start qemu@{vmid}' (a QEMU it starts must not live in coldvault's own service: README, Run as a service)",
  );
}

async function askSocket(vmid: string, path: string): Promise<SocketAnswer> {
  const kind = await pathKind(path);
  if (kind === 'missing') return { vmid, path, state: 'stopped' };
  if (kind !== 'socket') return { vmid, path, problem: fail(CHECK, `guest ${vmid}: '${path}' is a ${kind}, not a QMP socket`, socketFix(path)) };
  let client: QmpClient | undefined;
  try {
    client = await within(QmpClient.connect(path), ASK_MS, `QMP socket '${path}'`);
    const { status } = await within(client.execute<{ status: string }>('query-status'), ASK_MS, `QMP socket '${path}'`);
    return { vmid, path, state: 'answers', status };
  } catch (err) {
    return { vmid, path, problem: socketProblem(vmid, path, err) };
  } finally {
    await client?.close();
  }
}

function socketProblem(vmid: string, path: string, err: unknown): Finding {
  if (!isQmpGone(err)) {
    return warn(
      CHECK,
      `guest ${vmid}: QMP socket '${path}' did not answer: ${describeError(err)}`,
      'run doctor again; a QMP socket serves one client at a time',
    );
  }
  return fail(
    CHECK,
    `guest ${vmid}: nothing answers on the QMP socket '${path}' (${describeError(err)})`,
    `if guest ${vmid} runs, its QEMU's -qmp socket is elsewhere: correct hypervisor.qmpSocket; if it does not run, the socket file is left over from a QEMU that died: remove it`,
  );
}

function summary(template: string, answers: SocketAnswer[]): Finding {
  const where = `qemu driver, QMP sockets '${template}'`;
  if (answers.length === 0) return ok(CHECK, `${where}: no guest config in the guests dir to ask about`);
  const answering = answers.flatMap((a) => ('state' in a && a.state === 'answers' ? [`${a.vmid} (${a.status ?? '?'})`] : []));
  const stopped = answers.flatMap((a) => ('state' in a && a.state === 'stopped' ? [a.vmid] : []));
  const parts = [
    answering.length ? `answering: ${answering.join(', ')}` : 'none answering',
    ...(stopped.length ? [`no socket (stopped): ${stopped.join(', ')}`] : []),
  ];
  return ok(CHECK, `${where}: ${parts.join('; ')}`);
}

const socketFix = (where: string): string =>
  `set hypervisor.qmpSocket to where the guests' QEMU keeps its QMP socket ({vmid} replaced; Proxmox: ${DEFAULT_QMP_SOCKET}); now '${where}'`;
