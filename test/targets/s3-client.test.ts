/**
 * The S3 client against a REAL Ceph radosgw (one for the file, test/helpers/radosgw.ts), and its
 * SigV4 signer against AWS's published examples. No mock S3 server.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isColdvaultError } from '../../src/core/errors.js';
import { authorization, S3Client, uriPath, type S3ClientOptions } from '../../src/targets/index.js';
import { freshBucket, startRadosgw, type Radosgw } from '../helpers/radosgw.js';

describe('SigV4 (AWS examples: "Signature Calculations for the Authorization Header", single chunk)', () => {
  const credentials = { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' };
  const date = new Date('2013-05-24T00:00:00Z');
  const empty = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

  it('GET Object with a Range header', () => {
    const headers = { Host: 'examplebucket.s3.amazonaws.com', Range: 'bytes=0-9', 'x-amz-content-sha256': empty, 'x-amz-date': '20130524T000000Z' };
    const auth = authorization({ method: 'GET', path: '/test.txt', query: {}, headers, payloadHash: empty }, credentials, 'us-east-1', date);
    expect(auth).toBe(
      'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41',
    );
  });

  it('GET Bucket (list objects) with query parameters, sorted and encoded', () => {
    const headers = { host: 'examplebucket.s3.amazonaws.com', 'x-amz-content-sha256': empty, 'x-amz-date': '20130524T000000Z' };
    const auth = authorization(
      { method: 'GET', path: '/', query: { prefix: 'J', 'max-keys': '2' }, headers, payloadHash: empty },
      credentials,
      'us-east-1',
      date,
    );
    expect(auth).toContain('Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7');
  });

  it('encodes a key once, keeping its slashes', () => {
    expect(uriPath('b', 'guests/101/a b+c~ä.conf')).toBe('/b/guests/101/a%20b%2Bc~%C3%A4.conf');
  });
});

describe('S3Client on a real radosgw', () => {
  let rgw: Radosgw;
  let options: S3ClientOptions;
  let client: S3Client;

  beforeAll(async () => {
    rgw = await startRadosgw();
    options = {
      endpoint: rgw.endpoint,
      region: rgw.region,
      bucket: freshBucket('client'),
      credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey },
    };
    client = new S3Client(options);
    await client.createBucket(rgw.region, false);
  }, 600_000);

  afterAll(() => {
    client?.close();
    rgw?.stop();
  });

  it('puts and gets objects byte for byte, into a caller buffer too; head and delete', async () => {
    const blob = randomBytes(4 * 1024 * 1024 + 17);
    const put = await client.put('chunks/ab12/ab12cd', blob, { metadata: { kind: 'chunk' } });
    expect(put.etag).toMatch(/^[0-9a-f]{32}$/);
    expect((await client.get('chunks/ab12/ab12cd')).equals(blob)).toBe(true);
    const into = Buffer.alloc(5 * 1024 * 1024);
    const got = await client.get('chunks/ab12/ab12cd', { into });
    expect(got.buffer).toBe(into.buffer);
    expect(got.equals(blob)).toBe(true);
    const head = await client.head('chunks/ab12/ab12cd');
    expect(head?.size).toBe(blob.length);
    expect(head?.metadata.kind).toBe('chunk');
    expect(Math.abs((head?.lastModified.getTime() ?? 0) - Date.now())).toBeLessThan(120_000);
    await client.delete('chunks/ab12/ab12cd');
    expect(await client.head('chunks/ab12/ab12cd')).toBeUndefined();
    await expect(client.get('chunks/ab12/ab12cd')).rejects.toMatchObject({ code: 'S3_NOT_FOUND' });
    await client.delete('chunks/ab12/ab12cd'); // a missing object: deleting it again is fine
  });

  it('keeps keys with spaces, plus signs and non-ASCII letters as they are', async () => {
    const key = 'guests/101/a b+c~ä.conf';
    await client.put(key, Buffer.from('x'), { signBody: true });
    expect((await client.get(key)).toString()).toBe('x');
    const keys = [];
    for await (const o of client.list('guests/101/')) keys.push(o.key);
    expect(keys).toEqual([key]);
  });

  it('lists more than one page (1000 keys), in key order, and the folders one level down', async () => {
    const keys = Array.from({ length: 1010 }, (_, i) => `many/${String(i).padStart(5, '0')}`);
    for (let i = 0; i < keys.length; i += 32) await Promise.all(keys.slice(i, i + 32).map((k) => client.put(k, Buffer.from(k))));
    const listed = [];
    for await (const o of client.list('many/')) listed.push(o);
    expect(listed.map((o) => o.key)).toEqual(keys);
    expect(listed[7]?.size).toBe(keys[7]?.length);
    const after = [];
    for await (const o of client.list('many/', 'many/01005')) after.push(o.key);
    expect(after).toEqual(keys.slice(1006));
    await client.put('tree/101/1/manifest.json', Buffer.from('{}'));
    await client.put('tree/205/3/manifest.json', Buffer.from('{}'));
    const folders = [];
    for await (const f of client.listFolders('tree/')) folders.push(f);
    expect(folders).toEqual(['tree/101/', 'tree/205/']);
  });

  it('names a wrong secret, an unknown access key and a missing bucket, each with its own code', async () => {
    const wrongSecret = new S3Client({ ...options, credentials: { ...options.credentials, secretAccessKey: 'x'.repeat(40) } });
    const err = await wrongSecret.get('any').catch((e: unknown) => e);
    expect(isColdvaultError(err, 'S3_UNAUTHORIZED')).toBe(true);
    expect(String(err)).toMatch(/SignatureDoesNotMatch.*secret access key/);
    expect(String(err)).not.toContain(options.credentials.secretAccessKey);
    const unknownKey = new S3Client({ ...options, credentials: { accessKeyId: 'NOSUCHKEY0000000000', secretAccessKey: 'y'.repeat(40) } });
    await expect(unknownKey.get('any')).rejects.toMatchObject({ code: 'S3_UNAUTHORIZED' });
    const noBucket = new S3Client({ ...options, bucket: freshBucket('none') });
    expect(await noBucket.bucketExists()).toBe(false);
    const e2 = await noBucket.put('x', Buffer.from('x')).catch((e: unknown) => e);
    expect(isColdvaultError(e2, 'S3_NO_BUCKET')).toBe(true);
    expect(String(e2)).toContain(noBucket.bucket);
    for (const c of [wrongSecret, unknownKey, noBucket]) c.close();
  });

  it('Object Lock: a bucket made without it says so; one made with it refuses to delete a retained version early', async () => {
    expect((await client.lockConfiguration()).enabled).toBe(false);
    const locked = new S3Client({ ...options, bucket: freshBucket('lock') });
    await locked.createBucket(rgw.region, true);
    expect((await locked.lockConfiguration()).enabled).toBe(true);
    const until = new Date(Date.now() + 3600_000);
    const put = await locked.put('guests/101/1/manifest.json', Buffer.from('{"v":1}'), { retention: { mode: 'COMPLIANCE', until } });
    expect(put.versionId).toBeTruthy();
    const head = await locked.head('guests/101/1/manifest.json');
    expect(head?.lockMode).toBe('COMPLIANCE');
    expect(Math.abs((head?.retainUntil?.getTime() ?? 0) - until.getTime())).toBeLessThan(1000);
    await expect(locked.delete('guests/101/1/manifest.json', put.versionId)).rejects.toMatchObject({ code: 'S3_FORBIDDEN' });
    expect((await locked.get('guests/101/1/manifest.json', { versionId: put.versionId })).toString()).toBe('{"v":1}');
    locked.close();
  });

  it('retries while radosgw is down and succeeds once it is back', async () => {
    const patient = new S3Client({ ...options, retry: { attempts: 12, baseMs: 400, capMs: 2_000 } });
    rgw.killGateway();
    const blob = randomBytes(100_000);
    const putting = patient.put('during-outage', blob);
    await new Promise((r) => setTimeout(r, 1500));
    await rgw.restartGateway();
    await putting;
    expect((await client.get('during-outage')).equals(blob)).toBe(true);
    const impatient = new S3Client({ ...options, retry: { attempts: 2, baseMs: 10, capMs: 10 } });
    rgw.killGateway();
    const err = await impatient.get('during-outage').catch((e: unknown) => e);
    await rgw.restartGateway();
    expect(isColdvaultError(err, 'S3_FAILED')).toBe(true);
    expect(String(err)).toMatch(/did not answer .*2 attempt/);
    patient.close();
    impatient.close();
  });
});
