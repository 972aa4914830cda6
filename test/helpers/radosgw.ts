/**
 * A real Ceph radosgw for a test file (scripts/radosgw.mjs: the shared tool's one-node cluster on
 * 127.0.0.1, its gateway with tcp_nodelay=1). One per test file: share it across the file's tests
 * (memstore: objects in RAM, up to 4 GiB).
 */
import { startRadosgw as start } from '../../scripts/radosgw.mjs';

/** endpoint, keys and region of the gateway; `dir` where the tool keeps the cluster; killGateway (kill -9 of radosgw alone) and restartGateway (as it ran, same port) */
export type Radosgw = Awaited<ReturnType<typeof start>>;

export function startRadosgw(): Promise<Radosgw> {
  return start();
}

/** A bucket name no other test of this run uses. */
export const freshBucket = (what: string): string => `cv-${what}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
