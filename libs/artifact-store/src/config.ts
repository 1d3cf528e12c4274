import { fileURLToPath } from 'node:url';
import { asKeyPrefix, DEFAULT_PREFIX } from './s3.ts';

export type ArtifactStoreConfig =
  | { kind: 'filesystem'; dir: string }
  | {
      kind: 's3';
      bucket: string;
      prefix: string;
      endPoint: string;
      port: number;
      useSSL: boolean;
      accessKey: string;
      secretKey: string;
      region: string;
    };

type Env = Record<string, string | undefined>;
type S3Connection = Pick<Extract<ArtifactStoreConfig, { kind: 's3' }>, 'endPoint' | 'port' | 'useSSL'>;

const DEFAULT_REGION = 'us-east-1';
// S3's rules for new buckets: 3 to 63 lowercase letters, digits, dots and hyphens.
const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/**
 * Reads ARTIFACT_STORE_URL (file:///path or s3://bucket/optional/prefix, the prefix "assets/"
 * when absent) and, for s3, S3_ENDPOINT (http(s)://host:port), S3_ACCESS_KEY, S3_SECRET_KEY,
 * S3_REGION (default us-east-1). Throws one Error listing every missing/invalid variable.
 */
export function parseArtifactStoreConfig(env: Env): ArtifactStoreConfig {
  const problems: string[] = [];
  const config = readConfig(env, problems);
  if (config === undefined || problems.length > 0) {
    throw new Error(`invalid artifact store configuration: ${problems.join('; ')}`);
  }
  return config;
}

function readConfig(env: Env, problems: string[]): ArtifactStoreConfig | undefined {
  const value = required(env, 'ARTIFACT_STORE_URL', problems);
  if (value === undefined) return undefined;
  const url = URL.parse(value);
  if (url?.protocol === 'file:') return filesystemConfig(url, problems);
  if (url?.protocol === 's3:') return s3Config(url, env, problems);
  problems.push(`ARTIFACT_STORE_URL must be file:///path or s3://bucket/optional/prefix, got ${JSON.stringify(value)}`);
  return undefined;
}

function filesystemConfig(url: URL, problems: string[]): ArtifactStoreConfig | undefined {
  if (url.host !== '') {
    problems.push(`ARTIFACT_STORE_URL must be file:///absolute/path, without a host, got ${JSON.stringify(url.href)}`);
    return undefined;
  }
  return { kind: 'filesystem', dir: fileURLToPath(url) };
}

function s3Config(url: URL, env: Env, problems: string[]): ArtifactStoreConfig | undefined {
  // url.host, not hostname, so that a port (an endpoint mistaken for a bucket) is refused too.
  const bucket = url.host;
  if (!BUCKET_NAME.test(bucket)) {
    problems.push(`ARTIFACT_STORE_URL must name a valid S3 bucket (3-63 of a-z 0-9 . -), got ${JSON.stringify(bucket)} in ${JSON.stringify(url.href)}`);
  }
  const connection = s3Connection(env, problems);
  const accessKey = required(env, 'S3_ACCESS_KEY', problems);
  const secretKey = required(env, 'S3_SECRET_KEY', problems);
  if (problems.length > 0 || connection === undefined || accessKey === undefined || secretKey === undefined) return undefined;
  return {
    kind: 's3',
    bucket,
    prefix: asKeyPrefix(url.pathname.slice(1) || DEFAULT_PREFIX),
    ...connection,
    accessKey,
    secretKey,
    region: env.S3_REGION || DEFAULT_REGION,
  };
}

function s3Connection(env: Env, problems: string[]): S3Connection | undefined {
  const value = required(env, 'S3_ENDPOINT', problems);
  if (value === undefined) return undefined;
  const url = URL.parse(value);
  const isHttp = url?.protocol === 'http:' || url?.protocol === 'https:';
  if (url === null || !isHttp || url.pathname !== '/' || url.search !== '' || url.username !== '') {
    problems.push(`S3_ENDPOINT must be http(s)://host:port, got ${JSON.stringify(value)}`);
    return undefined;
  }
  const useSSL = url.protocol === 'https:';
  return { endPoint: url.hostname, port: url.port === '' ? (useSSL ? 443 : 80) : Number(url.port), useSSL };
}

/** An empty value counts as unset: Kubernetes renders a missing optional value as "". */
function required(env: Env, name: string, problems: string[]): string | undefined {
  const value = env[name];
  if (value) return value;
  problems.push(`${name} is not set`);
  return undefined;
}
