import { describe, expect, it } from '@jest/globals';
import { generateEnvEncryptionKey } from '@kublambda/route-table';
import { parseApiControllerConfig } from './config.ts';
import { DEFAULT_WATCHABLE_RESOURCES } from './desired-watcher.ts';

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
    ['EXTERNAL_HOST_SUFFIX', 'localhost', 'EXTERNAL_HOST_SUFFIX must be a domain suffix with an optional port, for example .localhost:8080, not "localhost"'],
    ['EXTERNAL_HOST_SUFFIX', '.localhost:port', 'EXTERNAL_HOST_SUFFIX must be a domain suffix'],
    ['EXTERNAL_HOST_SUFFIX', '.local host', 'EXTERNAL_HOST_SUFFIX must be a domain suffix'],
    ['RUNNER_URL', 'http://127.0.0.1:8080/runner', 'RUNNER_URL must be an http:// or https:// URL with no path'],
    ['ADMIN_PORT', '70000', 'ADMIN_PORT must be a whole number from 1 to 65535, not "70000"'],
  ])('refuses %s=%s', (name, value, message) => {
    expect(() => parseApiControllerConfig({ ...required, ADMIN_PORT: '9091', [name]: value })).toThrow(message);
  });

  it('takes the admin API and host suffix settings', () => {
    const config = parseApiControllerConfig({ ...required, ADMIN_PORT: '9091', RUNNER_URL: 'http://127.0.0.1:8080', EXTERNAL_HOST_SUFFIX: '.localhost:8080' });
    expect(config.admin).toEqual({ host: '127.0.0.1', port: 9091, runnerUrl: 'http://127.0.0.1:8080' });
    expect(config.http.externalHostSuffix).toBe('.localhost:8080');
    expect(parseApiControllerConfig(required).admin).toBeUndefined();
    expect(parseApiControllerConfig({ ...required, ADMIN_PORT: '9091' }).admin!.runnerUrl).toBe('http://kublambda-runner.kublambda-system.svc.cluster.local');
    expect(() => parseApiControllerConfig({ ...required, RUNNER_URL: 'http://127.0.0.1:8080' })).toThrow('RUNNER_URL is set but ADMIN_PORT is not');
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

describe('parseApiControllerConfig: route grants', () => {
  it('has no grants and grants-only off by default', () => {
    expect(parseApiControllerConfig(required).paths).toEqual({ grants: [], grantsOnly: false });
  });

  it('reads hosts, host path prefixes and path prefixes, normalising trailing slashes', () => {
    const config = parseApiControllerConfig({
      ...required,
      ROUTE_GRANTS: '{"shop":["shop.example.com","api.example.com/shop/","/shop"],"tenants":["*.tenants.example.com/"],"root":["/"],"none":[]}',
      ROUTE_GRANTS_ONLY: 'true',
    });
    expect(config.paths).toEqual({
      grants: [
        { namespace: 'shop', host: 'shop.example.com', pathPrefix: '/' },
        { namespace: 'shop', host: 'api.example.com', pathPrefix: '/shop' },
        { namespace: 'shop', host: '', pathPrefix: '/shop' },
        { namespace: 'tenants', host: '*.tenants.example.com', pathPrefix: '/' },
        { namespace: 'root', host: '', pathPrefix: '/' },
      ],
      grantsOnly: true,
    });
  });

  it('takes the same place granted twice to one namespace once, and a name without a slash as a host', () => {
    expect(parseApiControllerConfig({ ...required, ROUTE_GRANTS: '{"shop":["/shop","/shop/","intranet"]}' }).paths.grants).toEqual([
      { namespace: 'shop', host: '', pathPrefix: '/shop' },
      { namespace: 'shop', host: 'intranet', pathPrefix: '/' },
    ]);
  });

  it.each([
    ['ROUTE_GRANTS', '{"shop":', 'ROUTE_GRANTS must be a JSON object of namespace -> list of hosts and paths, for example {"shop":'],
    ['ROUTE_GRANTS', '["/shop"]', 'ROUTE_GRANTS must be a JSON object of namespace -> list of hosts and paths, for example'],
    ['ROUTE_GRANTS', '{"Shop":["/shop"]}', 'ROUTE_GRANTS: "Shop" is not a namespace name'],
    ['ROUTE_GRANTS', '{"shop":"/shop"}', 'ROUTE_GRANTS: the grants of namespace shop must be a list of strings'],
    ['ROUTE_GRANTS', '{"shop":[1]}', 'ROUTE_GRANTS: the grants of namespace shop must be a list of strings'],
    ['ROUTE_GRANTS', '{"shop":["Shop.example.com"]}', 'ROUTE_GRANTS: "Shop.example.com" (namespace shop) is not "host", "host/path-prefix" or "/path-prefix"'],
    ['ROUTE_GRANTS', '{"shop":["/shop?x=1"]}', 'ROUTE_GRANTS: "/shop?x=1" (namespace shop) is not'],
    ['ROUTE_GRANTS', '{"shop":["/a//b"]}', 'ROUTE_GRANTS: "/a//b" (namespace shop) is not'],
    ['ROUTE_GRANTS', '{"shop":[""]}', 'ROUTE_GRANTS: "" (namespace shop) is not'],
    ['ROUTE_GRANTS', '{"shop":["https://shop.example.com"]}', 'ROUTE_GRANTS: "https://shop.example.com" (namespace shop) is not'],
    ['ROUTE_GRANTS', '{"shop":["/shop"],"evil":["/shop/"]}', 'ROUTE_GRANTS: /shop is granted to both namespace shop and namespace evil'],
    ['ROUTE_GRANTS_ONLY', 'yes', 'ROUTE_GRANTS_ONLY must be true or false, not "yes"'],
  ])('refuses %s=%s', (name, value, message) => {
    expect(() => parseApiControllerConfig({ ...required, [name]: value })).toThrow(message);
  });
});

describe('parseApiControllerConfig: event-watchers', () => {
  it('defaults to the published image, the default watchable resources and no grants', () => {
    const { watchers } = parseApiControllerConfig(required);
    expect(watchers).toEqual({ image: 'ghcr.io/kublambda/event-watcher:0.1.0', watchableResources: DEFAULT_WATCHABLE_RESOURCES, namespaceGrants: {}, redisUrl: undefined });
    expect(watchers.watchableResources).not.toContain('secrets');
  });

  it('reads every setting', () => {
    const { watchers } = parseApiControllerConfig({
      ...required,
      EVENT_WATCHER_IMAGE: 'registry.example/watcher:2',
      WATCHABLE_RESOURCES: 'configmaps, apps/deployments,example.com/widgets,configmaps',
      WATCH_NAMESPACE_GRANTS: '{"ops":["shop","billing"]}',
      WATCHER_REDIS_URL: 'rediss://redis.kublambda-system:6380',
    });
    expect(watchers).toEqual({
      image: 'registry.example/watcher:2',
      watchableResources: ['configmaps', 'apps/deployments', 'example.com/widgets'],
      namespaceGrants: { ops: ['shop', 'billing'] },
      redisUrl: 'rediss://redis.kublambda-system:6380',
    });
  });

  it.each([
    ['WATCHABLE_RESOURCES', 'configmaps,secrets', 'WATCHABLE_RESOURCES must not list secrets'],
    ['WATCHABLE_RESOURCES', 'apps/deployments/scale', 'WATCHABLE_RESOURCES: "apps/deployments/scale" is not "group/resource"'],
    ['WATCHABLE_RESOURCES', 'ConfigMaps', 'WATCHABLE_RESOURCES: "ConfigMaps" is not'],
    ['WATCH_NAMESPACE_GRANTS', '{"ops":', 'WATCH_NAMESPACE_GRANTS must be a JSON object of namespace -> list of namespaces'],
    ['WATCH_NAMESPACE_GRANTS', '["ops"]', 'WATCH_NAMESPACE_GRANTS must be a JSON object'],
    ['WATCH_NAMESPACE_GRANTS', '{"ops":"shop"}', 'WATCH_NAMESPACE_GRANTS: the grants of namespace ops must be a list of namespace names'],
    ['WATCH_NAMESPACE_GRANTS', '{"Ops":["shop"]}', 'WATCH_NAMESPACE_GRANTS: "Ops" is not a namespace name'],
    ['WATCHER_REDIS_URL', 'redis://user:pw@redis:6379', 'WATCHER_REDIS_URL must be a redis://, rediss://, redis+cluster:// or rediss+cluster:// URL without credentials'],
    ['WATCHER_REDIS_URL', 'redis+cluster://user:pw@redis-0:6379,redis-1:6379', 'must be a redis://, rediss://, redis+cluster:// or rediss+cluster:// URL without credentials (each watcher gets its own user), for example redis://redis.kublambda-system:6379, not "redis+cluster://user:***@redis-0:6379,redis-1:6379"'],
    ['REDIS_URL', 'redis+cluster://a:p@redis-0:99999', 'REDIS_URL: the Redis URL redis+cluster://a:***@redis-0:99999 has the seed node "redis-0:99999", which is not host or host:port (port 1 to 65535)'],
    ['REDIS_WRITE_REPLICAS', 'two', 'REDIS_WRITE_REPLICAS must be a whole number from 0 to 16, not "two"'],
    ['WATCHER_REDIS_URL', 'http://redis:6379', 'WATCHER_REDIS_URL must be a redis://'],
  ])('refuses %s=%s', (name, value, message) => {
    expect(() => parseApiControllerConfig({ ...required, [name]: value })).toThrow(message);
  });
});

describe('parseApiControllerConfig: image builds', () => {
  const on = { ...required, IMAGE_BUILDS: 'on', IMAGE_REGISTRY_URL: 'https://registry.example.com' };

  it('is off unless asked for', () => {
    expect(parseApiControllerConfig(required).images).toBeUndefined();
    expect(parseApiControllerConfig({ ...required, IMAGE_BUILDS: 'off', IMAGE_REGISTRY_URL: 'nonsense' }).images).toBeUndefined();
  });

  it('reads the registry and the repository prefix', () => {
    expect(parseApiControllerConfig(on).images).toEqual({ registry: { url: 'https://registry.example.com', insecure: false }, repositoryPrefix: 'kublambda' });
    expect(
      parseApiControllerConfig({
        ...on,
        IMAGE_REGISTRY_URL: 'http://127.0.0.1:5000/',
        IMAGE_REGISTRY_INSECURE: 'true',
        IMAGE_REGISTRY_USERNAME: 'kublambda',
        IMAGE_REGISTRY_PASSWORD: 'secret',
        IMAGE_REPOSITORY_PREFIX: 'team/lambdas',
      }).images,
    ).toEqual({ registry: { url: 'http://127.0.0.1:5000', username: 'kublambda', password: 'secret', insecure: true }, repositoryPrefix: 'team/lambdas' });
  });

  it.each([
    [{ IMAGE_BUILDS: 'yes' }, 'IMAGE_BUILDS must be on or off, not "yes"'],
    [{ IMAGE_REGISTRY_URL: '' }, 'IMAGE_REGISTRY_URL is required with IMAGE_BUILDS=on'],
    [{ IMAGE_REGISTRY_URL: 'registry.example.com' }, "IMAGE_REGISTRY_URL must be the registry's http:// or https:// base URL"],
    [{ IMAGE_REGISTRY_URL: 'https://registry.example.com/v2' }, "IMAGE_REGISTRY_URL must be the registry's http:// or https:// base URL"],
    [{ IMAGE_REGISTRY_URL: 'http://127.0.0.1:5000' }, 'is plain http: set IMAGE_REGISTRY_INSECURE=true to allow it'],
    [{ IMAGE_REGISTRY_INSECURE: 'maybe' }, 'IMAGE_REGISTRY_INSECURE must be true or false, not "maybe"'],
    [{ IMAGE_REGISTRY_USERNAME: 'kublambda' }, 'IMAGE_REGISTRY_USERNAME and IMAGE_REGISTRY_PASSWORD go together'],
    [{ IMAGE_REPOSITORY_PREFIX: 'Kublambda' }, 'IMAGE_REPOSITORY_PREFIX must be a repository path of lowercase components'],
    [{ IMAGE_REPOSITORY_PREFIX: 'a//b' }, 'IMAGE_REPOSITORY_PREFIX must be a repository path of lowercase components'],
    [{ IMAGE_REPOSITORY_PREFIX: 'p'.repeat(110) }, 'a reference would be 259 characters, more than 255'],
  ])('refuses %j', (extra, message) => {
    expect(() => parseApiControllerConfig({ ...on, ...extra })).toThrow(message);
  });
});
