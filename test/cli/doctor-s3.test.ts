/**
 * `coldvault doctor` on an S3 datastore of a REAL Ceph radosgw (one for the file, on 127.0.0.1): a
 * datastore readable with the config's key file is ok and its service's clock agrees; a wrong secret,
 * missing credentials and a prefix without a datastore each fail, naming the datastore and what to do.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, type Lab, makeLab } from '../helpers/fixtures.js';
import { freshBucket, type Radosgw, startRadosgw } from '../helpers/radosgw.js';

interface Finding {
  check: string;
  status: string;
  found: string;
  fix?: string;
}

let rgw: Radosgw;
let lab: Lab;
let bucket: string;

beforeAll(async () => {
  rgw = await startRadosgw();
  lab = makeLab('cv-doctor-s3-');
  bucket = freshBucket('doctor');
  const init = await cli(['datastore', 'init', `s3://${bucket}/pve1`, '--endpoint', rgw.endpoint], {
    env: { AWS_ACCESS_KEY_ID: rgw.accessKeyId, AWS_SECRET_ACCESS_KEY: rgw.secretAccessKey },
  });
  expect(init.code, init.stderr).toBe(0);
}, 600_000);

afterAll(() => {
  rgw?.stop();
  lab?.cleanup();
});

/** doctor --json with datastore `offsite` (S3) in the config; credentials only from the config and the given key file. */
async function doctorOn(offsite: Record<string, unknown>, secret?: string): Promise<{ code: number; findings: Finding[] }> {
  const keyFile = join(lab.root, 's3-secret');
  if (secret !== undefined) writeFileSync(keyFile, `${secret}\n`, { mode: 0o600 });
  const store = { type: 's3', endpoint: rgw.endpoint, region: rgw.region, bucket, prefix: 'pve1', ...offsite };
  const config = join(lab.root, 'config.json');
  const settings = {
    node: 'pve1',
    stateDir: join(lab.root, 'state'),
    guestsDir: lab.guestsDir,
    datastores: { offsite: store },
    hypervisor: { driver: 'none' },
  };
  writeFileSync(config, JSON.stringify(settings), { mode: 0o600 });
  const r = await cli(['doctor', '--json', '--config', config], { env: { AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '' } });
  return { code: r.code, findings: (JSON.parse(r.stdout) as { findings: Finding[] }).findings };
}

const offsite = (findings: Finding[]): Finding | undefined => findings.find((f) => f.check === 'datastore offsite');

describe('coldvault doctor on an S3 datastore', () => {
  it('readable with the configured key: ok, and the service clock agrees', async () => {
    const { findings } = await doctorOn({ accessKeyId: rgw.accessKeyId, secretAccessKeyFile: join(lab.root, 's3-secret') }, rgw.secretAccessKey);
    expect(offsite(findings)).toEqual({
      check: 'datastore offsite',
      status: 'ok',
      found: expect.stringMatching(
        new RegExp(`^datastore [0-9a-f-]+ in s3://${bucket}/pve1/? at ${rgw.endpoint}: 0 guest\\(s\\), readable with the configured credentials$`),
      ) as string,
    });
    expect(findings.find((f) => f.check === 'clock')).toMatchObject({
      status: 'ok',
      found: expect.stringContaining('the S3 service of datastore offsite agree') as string,
    });
  });

  it('a wrong secret fails, naming the datastore and the key to check', async () => {
    const { code, findings } = await doctorOn({ accessKeyId: rgw.accessKeyId, secretAccessKeyFile: join(lab.root, 's3-secret') }, 'not-the-secret');
    expect(code).toBe(1);
    expect(offsite(findings)).toMatchObject({
      status: 'fail',
      fix: "check datastores.offsite's accessKeyId and the secret in its secretAccessKeyFile, and that the key may read and list the bucket",
    });
  });

  it('no credentials at all fails with the loader message', async () => {
    const { code, findings } = await doctorOn({});
    expect(code).toBe(1);
    expect(offsite(findings)).toMatchObject({
      status: 'fail',
      found: expect.stringContaining("datastore 'offsite' has no credentials") as string,
      fix: 'give datastores.offsite accessKeyId and secretAccessKeyFile (0600) in the config',
    });
  });

  it('a prefix that holds no datastore fails naming the address', async () => {
    const { findings } = await doctorOn(
      { prefix: 'elsewhere', accessKeyId: rgw.accessKeyId, secretAccessKeyFile: join(lab.root, 's3-secret') },
      rgw.secretAccessKey,
    );
    expect(offsite(findings)).toMatchObject({ status: 'fail', found: expect.stringContaining(`'s3://${bucket}/elsewhere`) as string });
  });
});
