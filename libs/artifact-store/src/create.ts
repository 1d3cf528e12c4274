import http from 'node:http';
import https from 'node:https';
import * as Minio from 'minio';
import type { ArtifactStore } from './artifact-store.ts';
import type { ArtifactStoreConfig } from './config.ts';
import { createFilesystemArtifactStore } from './filesystem.ts';
import { createS3ArtifactStore, ensureBucket } from './s3.ts';

const DEFAULT_IDLE_TIMEOUT_MS = 30_000;

/**
 * Builds the store; for s3 also makes sure the bucket exists. An S3 request fails once its
 * connection has carried no traffic for `idleTimeoutMs` (default 30 s).
 */
export async function createArtifactStore(config: ArtifactStoreConfig, options: { idleTimeoutMs?: number } = {}): Promise<ArtifactStore> {
  if (config.kind === 'filesystem') return createFilesystemArtifactStore({ dir: config.dir });
  const client = createS3Client(config, options);
  await ensureBucket(client, config.bucket, config.region);
  return createS3ArtifactStore({ client, bucket: config.bucket, prefix: config.prefix });
}

/** A minio client for the store's S3 server (for other objects in its bucket), with the same idle timeout. */
export function createS3Client(config: Extract<ArtifactStoreConfig, { kind: 's3' }>, options: { idleTimeoutMs?: number } = {}): Minio.Client {
  const { endPoint, port, useSSL, accessKey, secretKey, region } = config;
  const transportAgent = idleTimeoutAgent(useSSL ? https.Agent : http.Agent, options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS);
  return new Minio.Client({ endPoint, port, useSSL, accessKey, secretKey, region, transportAgent });
}

/**
 * minio sets no timeouts, so an S3 server that accepts a connection and never answers would
 * hold a request forever: these sockets destroy themselves after `idleTimeoutMs` of silence,
 * which fails the request in flight.
 */
function idleTimeoutAgent(Agent: typeof http.Agent, idleTimeoutMs: number): http.Agent {
  const agent = new Agent({ keepAlive: true, timeout: idleTimeoutMs });
  const createConnection = agent.createConnection.bind(agent);
  agent.createConnection = (connectionOptions, callback) => {
    const socket = createConnection(connectionOptions, callback);
    socket?.on('timeout', () => socket.destroy(new Error(`no answer from the S3 server for ${idleTimeoutMs} ms`)));
    return socket;
  };
  return agent;
}
