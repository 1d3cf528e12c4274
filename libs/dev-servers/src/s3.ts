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
  /** A minio client for this server. */
  client(): Minio.Client;
  stop(): Promise<void>;
}

const REGION = 'us-east-1';

/**
 * versitygw, an S3 gateway over a directory, on a free loopback port with fresh credentials.
 * Object metadata goes to a sidecar directory, so the filesystem needs no extended attributes.
 */
export async function startS3(options: { bucket?: string } = {}): Promise<S3Server> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kublambda-s3-'));
  const dataDir = path.join(dir, 'data');
  const metadataDir = path.join(dir, 'metadata');
  await Promise.all([mkdir(dataDir), mkdir(metadataDir)]);
  const accessKey = `kublambda${randomBytes(6).toString('hex')}`;
  const secretKey = randomBytes(24).toString('base64url');
  const command = await versitygwBinary();

  let process: ManagedProcess | undefined;
  try {
    const port = await withFreshPorts(1, async ([port]) => {
      process = await startManagedProcess({
        name: 'versitygw',
        command,
        args: [
          '--port', `127.0.0.1:${port}`,
          '--access', accessKey,
          '--secret', secretKey,
          '--region', REGION,
          '--health', '/healthz',
          '--quiet',
          'posix', '--sidecar', metadataDir, dataDir,
        ],
        // Credentials are passed as flags; keep them out of any inherited environment.
        env: { PATH: globalThis.process.env.PATH },
        logFile: path.join(dir, 'versitygw.log'),
        isReady: async () => (await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2_000) })).ok,
      });
      return port!;
    });

    const server: S3Server = {
      endPoint: '127.0.0.1',
      port,
      useSSL: false,
      accessKey,
      secretKey,
      region: REGION,
      url: `http://127.0.0.1:${port}`,
      dir,
      client: () => new Minio.Client({ endPoint: '127.0.0.1', port, useSSL: false, accessKey, secretKey, region: REGION }),
      stop: async () => {
        await process?.stop();
        await rm(dir, { recursive: true, force: true });
      },
    };
    if (options.bucket) await server.client().makeBucket(options.bucket, REGION);
    return server;
  } catch (error) {
    await process?.stop();
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}
