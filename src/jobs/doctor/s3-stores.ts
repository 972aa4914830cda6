/**
 * S3 datastores: the credentials are there, the service answers, they may read the datastore's
 * identity and list its guests (nothing is written). The service's clock is the clock check's.
 */
import { describeError, isColdvaultError } from '../../core/index.js';
import { S3Datastore, type S3StoreSettings } from '../../datastore/index.js';
import { within } from './probe.js';
import { type DoctorCheck, type Finding, fail, ok } from './types.js';

const LOOK_MS = 30_000;

export const s3StoresCheck: DoctorCheck = {
  name: 'S3 datastores',
  run: async ({ s3Datastores }) => Promise.all(Object.entries(s3Datastores).map(([name, settings]) => checkBucket(name, settings))),
};

async function checkBucket(name: string, settingsOf: () => S3StoreSettings): Promise<Finding> {
  const label = `datastore ${name}`;
  let store: S3Datastore | undefined;
  try {
    const settings = settingsOf();
    const where = `s3://${settings.bucket}/${settings.prefix} at ${settings.endpoint}`;
    store = await within(S3Datastore.open(settings), LOOK_MS, where);
    const guests = (await within(store.listGuestIds(), LOOK_MS, where)).length;
    return ok(label, `datastore ${store.identity.id} in ${where}: ${guests} guest(s), readable with the configured credentials`);
  } catch (err) {
    return fail(label, describeError(err), fixFor(name, err));
  } finally {
    store?.close();
  }
}

function fixFor(name: string, err: unknown): string {
  if (isColdvaultError(err, 'CONFIG_INVALID')) return `give datastores.${name} accessKeyId and secretAccessKeyFile (0600) in the config`;
  if (isColdvaultError(err, 'S3_UNAUTHORIZED') || isColdvaultError(err, 'S3_FORBIDDEN')) {
    return `check datastores.${name}'s accessKeyId and the secret in its secretAccessKeyFile, and that the key may read and list the bucket`;
  }
  if (isColdvaultError(err, 'NOT_A_DATASTORE') || isColdvaultError(err, 'S3_NO_BUCKET')) {
    return `check bucket and prefix of datastores.${name}, or create the datastore with 'coldvault datastore init s3://BUCKET/PREFIX --endpoint URL'`;
  }
  if (isColdvaultError(err, 'S3_CLOCK_SKEW')) return "set this node's clock right (NTP: timedatectl set-ntp true)";
  return `check that the endpoint of datastores.${name} is reachable from this node (address, port, firewall, TLS)`;
}
