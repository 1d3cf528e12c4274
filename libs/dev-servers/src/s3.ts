import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as Minio from 'minio';
import { versitygwBinary } from './binaries.ts';
import { startManagedProcess, type ManagedProcess } from './managed-process.ts';
import { withFreshPorts } from './with-fresh-ports.ts';

export interface S3Server {
  endPoint: string;
  port: number;
  useSSL: false;
  accessKey: string;
  secretKey: string;
  region: string;
  url: string;
  dir: string;
  /** A minio client for this server, with its credentials. */
  client(): Minio.Client;
  /** Stops the gateway, keeping its data; start() brings it back on the same port. */
  pause(): Promise<void>;
  start(): Promise<void>;
  /** Safe to call twice. */
  stop(): Promise<void>;
}

const HOST = '127.0.0.1';
const REGION = 'us-east-1';
const HEALTH_PATH = '/healthz';

/**
 * versitygw, an S3 gateway over a directory, on a free loopback port with fresh credentials.
 * If a bucket is named, it exists before this returns.
 */
export async function startS3(options: { bucket?: string; /** Objects kept here across restarts; default a new temporary directory, removed on stop. */ dir?: string } = {}): Promise<S3Server> {
  const ownsDir = !options.dir;
  const dir = options.dir ?? (await mkdtemp(path.join(os.tmpdir(), 'kublambda-s3-')));
  let gateway: ManagedProcess | undefined;
  const stop = async () => {
    await gateway?.stop();
    if (ownsDir) await rm(dir, { recursive: true, force: true });
  };

  try {
    const accessKey = `kublambda${randomBytes(6).toString('hex')}`;
    const secretKey = randomBytes(24).toString('base64url');
    const port = await withFreshPorts(1, async ([port]) => {
      gateway = await startGateway(port!, dir, accessKey, secretKey);
      return port!;
    });
    const server: S3Server = {
      endPoint: HOST,
      port,
      useSSL: false,
      accessKey,
      secretKey,
      region: REGION,
      url: `http://${HOST}:${port}`,
      dir,
      client: () => new Minio.Client({ endPoint: HOST, port, useSSL: false, accessKey, secretKey, region: REGION }),
      pause: async () => {
        await gateway?.stop();
      },
      start: async () => {
        gateway = await startGateway(port, dir, accessKey, secretKey);
      },
      stop,
    };
    if (options.bucket) await createBucket(server.client(), options.bucket);
    return server;
  } catch (error) {
    await stop();
    throw error;
  }
}

async function startGateway(port: number, dir: string, accessKey: string, secretKey: string): Promise<ManagedProcess> {
  // Object metadata goes to a sidecar directory rather than extended attributes, which
  // tmpfs and some overlay filesystems (a common os.tmpdir()) do not support.
  const dataDir = path.join(dir, 'data');
  const metadataDir = path.join(dir, 'metadata');
  await Promise.all([mkdir(dataDir, { recursive: true }), mkdir(metadataDir, { recursive: true })]);
  return startManagedProcess({
    name: 'versitygw',
    command: await versitygwBinary(),
    args: [
      '--port', `${HOST}:${port}`,
      '--access', accessKey,
      '--secret', secretKey,
      '--region', REGION,
      '--health', HEALTH_PATH,
      '--quiet',
      'posix', '--sidecar', metadataDir, dataDir,
    ],
    // versitygw also reads its settings from VGW_*, ROOT_* and LOGFILE variables; an empty
    // environment keeps a developer's own from changing this server.
    env: {},
    logFile: path.join(dir, 'versitygw.log'),
    isReady: async () => (await fetch(`http://${HOST}:${port}${HEALTH_PATH}`, { signal: AbortSignal.timeout(2_000) })).ok,
  });
}

async function createBucket(client: Minio.Client, bucket: string): Promise<void> {
  try {
    // A directory kept from an earlier start may hold it already.
    if (!(await client.bucketExists(bucket))) await client.makeBucket(bucket, REGION);
  } catch (cause) {
    throw new Error(`versitygw: cannot create bucket ${bucket}`, { cause });
  }
}
