/** Types of scripts/radosgw.mjs (a real Ceph radosgw for tests and benches). */
export declare const RGW_TOOL: string;
export declare function startRadosgw(dir?: string): Promise<{
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  dir: string;
  stop(): void;
  killGateway(): void;
  restartGateway(): Promise<void>;
}>;
