import { describe, expect, it } from '@jest/globals';
import { generateEnvEncryptionKey } from '@kublambda/route-table';
import { parseApiControllerConfig } from './config.ts';

const required = { REDIS_URL: 'redis://127.0.0.1:6379', ARTIFACT_STORE_URL: 'file:///tmp/assets', ENV_ENCRYPTION_KEYS: generateEnvEncryptionKey('k1') };

describe('parseApiControllerConfig: HTTP exposure', () => {
  it('defaults to the platform namespace of the pod, no ingress class, no annotations and no base URL', () => {
    expect(parseApiControllerConfig({ ...required, POD_NAMESPACE: 'platform' }).http).toEqual({
      platformNamespace: 'platform',
      clusterDomain: 'cluster.local',
      ingressClassName: '',
      ingressAnnotations: {},
      externalBaseUrl: undefined,
    });
  });

  it('reads every setting', () => {
    const config = parseApiControllerConfig({
      ...required,
      PLATFORM_NAMESPACE: 'kl',
      CLUSTER_DOMAIN: 'corp.local',
      INGRESS_CLASS_NAME: 'nginx',
      INGRESS_ANNOTATIONS: '{"nginx.ingress.kubernetes.io/proxy-body-size":"32m"}',
      EXTERNAL_BASE_URL: 'https://lambdas.example.com/',
    });
    expect(config.http).toEqual({
      platformNamespace: 'kl',
      clusterDomain: 'corp.local',
      ingressClassName: 'nginx',
      ingressAnnotations: { 'nginx.ingress.kubernetes.io/proxy-body-size': '32m' },
      externalBaseUrl: 'https://lambdas.example.com',
    });
  });

  it.each([
    ['INGRESS_ANNOTATIONS', '{"a":', 'INGRESS_ANNOTATIONS must be a JSON object of strings: '],
    ['INGRESS_ANNOTATIONS', '["a"]', 'INGRESS_ANNOTATIONS must be a JSON object of strings, for example'],
    ['INGRESS_ANNOTATIONS', '{"a":1}', 'INGRESS_ANNOTATIONS must be a JSON object of strings, for example'],
    ['EXTERNAL_BASE_URL', 'lambdas.example.com', 'EXTERNAL_BASE_URL must be an http:// or https:// URL'],
    ['EXTERNAL_BASE_URL', 'ftp://lambdas.example.com', 'EXTERNAL_BASE_URL must be an http:// or https:// URL'],
    ['EXTERNAL_BASE_URL', 'http://lambdas.example.com/fn', 'EXTERNAL_BASE_URL must be an http:// or https:// URL'],
  ])('refuses %s=%s', (name, value, message) => {
    expect(() => parseApiControllerConfig({ ...required, [name]: value })).toThrow(message);
  });
});

describe('parseApiControllerConfig: env encryption keys', () => {
  it('encrypts with the first key of ENV_ENCRYPTION_KEYS and keeps the others for reading', () => {
    const config = parseApiControllerConfig({ ...required, ENV_ENCRYPTION_KEYS: `${generateEnvEncryptionKey('new')},${generateEnvEncryptionKey('old')}` });
    expect(config.envKeys.current.id).toBe('new');
    expect(config.envKeys.ids).toEqual(['new', 'old']);
  });

  it.each([
    ['unset', undefined, 'api-controller: invalid configuration:\n  - ENV_ENCRYPTION_KEYS is required'],
    ['a short key', 'k1:AAAA', 'ENV_ENCRYPTION_KEYS entry 1 (key id "k1"): the key is 3 bytes, AES-256 needs 32'],
  ])('refuses ENV_ENCRYPTION_KEYS %s', (_label, value, message) => {
    expect(() => parseApiControllerConfig({ ...required, ENV_ENCRYPTION_KEYS: value })).toThrow(message);
  });
});
