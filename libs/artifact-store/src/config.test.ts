import { describe, expect, it } from '@jest/globals';
import { parseArtifactStoreConfig } from './index.ts';

const S3_ENV = {
  ARTIFACT_STORE_URL: 's3://kublambda-assets/lambdas/v1',
  S3_ENDPOINT: 'http://minio.storage:9000',
  S3_ACCESS_KEY: 'access',
  S3_SECRET_KEY: 'very-secret',
};

function problemsOf(env: Record<string, string | undefined>): string {
  try {
    parseArtifactStoreConfig(env);
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('expected the configuration to be refused');
}

describe('parseArtifactStoreConfig', () => {
  it('reads a file:// URL as a filesystem store', () => {
    expect(parseArtifactStoreConfig({ ARTIFACT_STORE_URL: 'file:///var/lib/kublambda/assets' })).toEqual({ kind: 'filesystem', dir: '/var/lib/kublambda/assets' });
  });

  it('reads an s3:// URL and the S3_* variables as an S3 store', () => {
    expect(parseArtifactStoreConfig({ ...S3_ENV, S3_REGION: 'eu-west-1' })).toEqual({
      kind: 's3',
      bucket: 'kublambda-assets',
      prefix: 'lambdas/v1/',
      endPoint: 'minio.storage',
      port: 9000,
      useSSL: false,
      accessKey: 'access',
      secretKey: 'very-secret',
      region: 'eu-west-1',
    });
  });

  it.each([
    ['s3://kublambda-assets', 'assets/'],
    ['s3://kublambda-assets/', 'assets/'],
    ['s3://kublambda-assets/lambdas/', 'lambdas/'],
  ])('takes the key prefix of %s as %j', (url, prefix) => {
    expect(parseArtifactStoreConfig({ ...S3_ENV, ARTIFACT_STORE_URL: url })).toMatchObject({ prefix });
  });

  it.each([
    ['https://s3.example.com', { endPoint: 's3.example.com', port: 443, useSSL: true }],
    ['https://s3.example.com:8443/', { endPoint: 's3.example.com', port: 8443, useSSL: true }],
    ['http://127.0.0.1', { endPoint: '127.0.0.1', port: 80, useSSL: false }],
  ])('reads S3_ENDPOINT %s', (endpoint, connection) => {
    expect(parseArtifactStoreConfig({ ...S3_ENV, S3_ENDPOINT: endpoint })).toMatchObject(connection);
  });

  it.each([undefined, ''])('defaults S3_REGION %j to us-east-1', (region) => {
    expect(parseArtifactStoreConfig({ ...S3_ENV, S3_REGION: region })).toMatchObject({ region: 'us-east-1' });
  });

  it.each<[string, Record<string, string | undefined>, string[]]>([
    ['no ARTIFACT_STORE_URL', {}, ['ARTIFACT_STORE_URL is not set']],
    ['an empty ARTIFACT_STORE_URL', { ARTIFACT_STORE_URL: '' }, ['ARTIFACT_STORE_URL is not set']],
    ['an ARTIFACT_STORE_URL that is no URL', { ARTIFACT_STORE_URL: '/var/lib/assets' }, ['ARTIFACT_STORE_URL must be file:///path or s3://bucket/optional/prefix, got "/var/lib/assets"']],
    ['an unsupported scheme', { ARTIFACT_STORE_URL: 'https://bucket.example.com' }, ['ARTIFACT_STORE_URL must be file:///path or s3://', '"https://bucket.example.com"']],
    ['a file URL with a host', { ARTIFACT_STORE_URL: 'file://relative/dir' }, ['ARTIFACT_STORE_URL must be file:///absolute/path', '"file://relative/dir"']],
    ['an s3 URL with no bucket', { ...S3_ENV, ARTIFACT_STORE_URL: 's3:///prefix' }, ['ARTIFACT_STORE_URL must name a valid S3 bucket', 'got ""']],
    ['an invalid bucket name', { ...S3_ENV, ARTIFACT_STORE_URL: 's3://Assets_Bucket' }, ['ARTIFACT_STORE_URL must name a valid S3 bucket', '"Assets_Bucket"']],
    ['an endpoint in place of the bucket', { ...S3_ENV, ARTIFACT_STORE_URL: 's3://minio:9000/assets' }, ['ARTIFACT_STORE_URL must name a valid S3 bucket', '"minio:9000"']],
    ['an S3_ENDPOINT that is no URL', { ...S3_ENV, S3_ENDPOINT: 'minio:9000' }, ['S3_ENDPOINT must be http(s)://host:port, got "minio:9000"']],
    ['an S3_ENDPOINT with a path', { ...S3_ENV, S3_ENDPOINT: 'http://minio:9000/bucket' }, ['S3_ENDPOINT must be http(s)://host:port']],
    ['an S3_ENDPOINT with credentials', { ...S3_ENV, S3_ENDPOINT: 'http://user:pass@minio:9000' }, ['S3_ENDPOINT must be http(s)://host:port']],
    ['an S3_ENDPOINT with another scheme', { ...S3_ENV, S3_ENDPOINT: 'ftp://minio:9000' }, ['S3_ENDPOINT must be http(s)://host:port']],
    ['an empty S3_SECRET_KEY', { ...S3_ENV, S3_SECRET_KEY: '' }, ['S3_SECRET_KEY is not set']],
    [
      'an s3 URL and nothing else',
      { ARTIFACT_STORE_URL: 's3://assets' },
      ['S3_ENDPOINT is not set', 'S3_ACCESS_KEY is not set', 'S3_SECRET_KEY is not set'],
    ],
    [
      'several invalid variables',
      { ARTIFACT_STORE_URL: 's3://A', S3_ENDPOINT: 'tcp://x', S3_ACCESS_KEY: 'access' },
      ['ARTIFACT_STORE_URL must name a valid S3 bucket', 'S3_ENDPOINT must be http(s)://host:port', 'S3_SECRET_KEY is not set'],
    ],
  ])('refuses %s, naming each problem in one error', (_case, env, problems) => {
    const message = problemsOf(env);
    expect(message).toMatch(/^invalid artifact store configuration: /);
    for (const problem of problems) expect(message).toContain(problem);
  });

  it('never repeats the secret key in its error', () => {
    expect(problemsOf({ ...S3_ENV, S3_ENDPOINT: 'nope' })).not.toContain(S3_ENV.S3_SECRET_KEY);
  });
});
