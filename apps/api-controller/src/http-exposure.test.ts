import { describe, expect, it } from '@jest/globals';
import type { Lambda } from '@kublambda/crd-types';
import {
  APPLIED_DIGEST_ANNOTATION,
  desiredIngress,
  desiredLambdaService,
  desiredRunnerService,
  holdsApplied,
  lambdaKeyOfOwned,
  lambdaPath,
  lambdaUrl,
  ownedObjectName,
  type HttpExposureConfig,
} from './http-exposure.ts';

const config: HttpExposureConfig = {
  platformNamespace: 'kublambda-system',
  clusterDomain: 'cluster.local',
  ingressClassName: '',
  ingressAnnotations: {},
};

const lambda = (http: NonNullable<Lambda['spec']['triggers']>['http'], name = 'orders'): Lambda => ({
  apiVersion: 'kublambda.io/v1alpha1',
  kind: 'Lambda',
  metadata: { namespace: 'shop', name, uid: 'uid-1' },
  spec: { source: { inline: 'x' }, ...(http ? { triggers: { http } } : {}) },
});

const owner = { apiVersion: 'kublambda.io/v1alpha1', kind: 'Lambda', name: 'orders', uid: 'uid-1', controller: true, blockOwnerDeletion: true };

describe('owned object names', () => {
  it('prefix the lambda name, and lead back to the lambda', () => {
    expect(ownedObjectName('orders')).toBe('kublambda-orders');
    expect(lambdaKeyOfOwned('shop', 'kublambda-orders')).toBe('shop/orders');
    expect(lambdaKeyOfOwned('shop', 'orders')).toBeUndefined();
    expect(ownedObjectName('a'.repeat(53))).toHaveLength(63);
  });
});

describe('lambdaPath', () => {
  it.each([
    [undefined, '/shop/orders'],
    [{}, '/shop/orders'],
    [{ path: '/buy' }, '/buy'],
  ])('for trigger %j is %s', (http, path) => {
    expect(lambdaPath(lambda(http))).toBe(path);
  });
});

describe('desiredIngress', () => {
  it('routes the default path for any host to the lambda\'s Service, owned by the lambda', () => {
    const ingress = desiredIngress(lambda({}), config);
    expect(ingress).toEqual({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'Ingress',
      metadata: {
        name: 'kublambda-orders',
        namespace: 'shop',
        labels: { 'app.kubernetes.io/managed-by': 'kublambda-api-controller', 'kublambda.io/lambda': 'orders' },
        annotations: { [APPLIED_DIGEST_ANNOTATION]: expect.stringMatching(/^[a-f0-9]{16}$/) },
        ownerReferences: [owner],
      },
      spec: {
        rules: [{ http: { paths: [{ path: '/shop/orders', pathType: 'Prefix', backend: { service: { name: 'kublambda-orders', port: { number: 80 } } } }] } }],
      },
    });
  });

  it('takes host, TLS and the lambda\'s ingress class, with the platform\'s annotations', () => {
    const ingress = desiredIngress(
      lambda({ path: '/buy', host: 'shop.example.com', tlsSecretName: 'shop-tls', ingressClassName: 'internal' }),
      { ...config, ingressClassName: 'nginx', ingressAnnotations: { 'nginx.ingress.kubernetes.io/proxy-body-size': '32m' } },
    );
    expect(ingress.metadata!.annotations).toMatchObject({ 'nginx.ingress.kubernetes.io/proxy-body-size': '32m' });
    expect(ingress.spec).toEqual({
      ingressClassName: 'internal',
      tls: [{ hosts: ['shop.example.com'], secretName: 'shop-tls' }],
      rules: [
        { host: 'shop.example.com', http: { paths: [{ path: '/buy', pathType: 'Prefix', backend: { service: { name: 'kublambda-orders', port: { number: 80 } } } }] } },
      ],
    });
  });

  it.each([
    ['', '', undefined],
    ['nginx', '', 'nginx'],
    ['nginx', 'internal', 'internal'],
  ])('with platform class "%s" and lambda class "%s" uses %s', (platformClass, lambdaClass, expected) => {
    expect(desiredIngress(lambda({ ingressClassName: lambdaClass }), { ...config, ingressClassName: platformClass }).spec!.ingressClassName).toBe(expected);
  });

  it('changes its applied digest with anything that changes the object', () => {
    const digest = (http: object, c = config) => desiredIngress(lambda(http), c).metadata!.annotations![APPLIED_DIGEST_ANNOTATION];
    const base = digest({ path: '/a' });
    expect(digest({ path: '/a' })).toBe(base);
    expect(digest({ path: '/b' })).not.toBe(base);
    expect(digest({ path: '/a', host: 'x.example.com' })).not.toBe(base);
    expect(digest({ path: '/a' }, { ...config, ingressAnnotations: { a: 'b' } })).not.toBe(base);
  });
});

describe('Services', () => {
  it('point the lambda\'s ExternalName Service at the runner Service in the platform namespace', () => {
    const service = desiredLambdaService(lambda({}), { ...config, clusterDomain: 'corp.local' });
    expect(service.metadata).toMatchObject({ name: 'kublambda-orders', namespace: 'shop', ownerReferences: [owner] });
    expect(service.spec).toEqual({ type: 'ExternalName', externalName: 'kublambda-runner.kublambda-system.svc.corp.local', ports: [{ name: 'http', port: 80, protocol: 'TCP' }] });
  });

  it('select the runner pods by their labels, to the named container port', () => {
    const service = desiredRunnerService(config);
    expect(service.metadata).toMatchObject({ name: 'kublambda-runner', namespace: 'kublambda-system' });
    expect(service.metadata!.ownerReferences).toBeUndefined();
    expect(service.spec).toEqual({
      type: 'ClusterIP',
      selector: { 'app.kubernetes.io/name': 'kublambda', 'app.kubernetes.io/component': 'runner' },
      ports: [{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' }],
    });
  });
});

describe('lambdaUrl', () => {
  const base = 'http://lambdas.example.com';
  it.each([
    ['its own host', { host: 'shop.example.com', path: '/buy', tls: false }, undefined, [], 'http://shop.example.com/buy'],
    ['its own host with TLS', { host: 'shop.example.com', path: '/buy', tls: true }, base, [], 'https://shop.example.com/buy'],
    ['its own host, scheme of the base URL', { host: 'shop.example.com', path: '/buy', tls: false }, 'https://lambdas.example.com', [], 'https://shop.example.com/buy'],
    ['the base URL', { path: '/shop/orders', tls: false }, base, [{ ip: '10.0.0.1' }], 'http://lambdas.example.com/shop/orders'],
    ['the load balancer host name', { path: '/buy', tls: false }, undefined, [{ hostname: 'lb.example.net' }], 'http://lb.example.net/buy'],
    ['the load balancer IP', { path: '/buy', tls: false }, undefined, [{}, { ip: '203.0.113.7' }], 'http://203.0.113.7/buy'],
    ['an IPv6 load balancer', { path: '/buy', tls: false }, undefined, [{ ip: '2001:db8::1' }], 'http://[2001:db8::1]/buy'],
    ['nothing known yet', { path: '/buy', tls: false }, undefined, [], undefined],
  ] as const)('from %s', (_, route, externalBaseUrl, loadBalancer, url) => {
    expect(lambdaUrl(route, externalBaseUrl, loadBalancer)).toBe(url);
  });

  it("puts EXTERNAL_HOST_SUFFIX after a host rule's host only", () => {
    expect(lambdaUrl({ host: 'shop.example.com', path: '/buy', tls: false }, 'http://127.0.0.1:8080', [], '.localhost:8080')).toBe('http://shop.example.com.localhost:8080/buy');
    expect(lambdaUrl({ path: '/buy', tls: false }, 'http://127.0.0.1:8080', [], '.localhost:8080')).toBe('http://127.0.0.1:8080/buy');
  });
});

describe('holdsApplied', () => {
  const desired = { metadata: { labels: { a: '1' } }, spec: { ports: [{ port: 80, name: 'http' }] } };
  it.each([
    ['the same object', true, desired],
    ['server defaults added', true, { metadata: { labels: { a: '1' }, uid: 'u' }, spec: { ports: [{ port: 80, name: 'http', protocol: 'TCP' }], sessionAffinity: 'None' } }],
    ['a changed value', false, { metadata: { labels: { a: '2' } }, spec: { ports: [{ port: 80, name: 'http' }] } }],
    ['a removed label', false, { metadata: {}, spec: { ports: [{ port: 80, name: 'http' }] } }],
    ['an extra list item', false, { metadata: { labels: { a: '1' } }, spec: { ports: [{ port: 80, name: 'http' }, { port: 81 }] } }],
    ['nothing', false, undefined],
  ])('with %s: %s', (_, holds, observed) => {
    expect(holdsApplied(observed, desired)).toBe(holds);
  });
});
