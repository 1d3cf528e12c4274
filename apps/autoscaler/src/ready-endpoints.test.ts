import { describe, expect, it } from '@jest/globals';
import type * as k8s from '@kubernetes/client-node';
import { metricsUrl, readyEndpoints, readyPodEndpoints } from './ready-endpoints.ts';

const endpoint = (pod: string, address: string, ready: boolean | undefined): k8s.V1Endpoint => ({
  addresses: [address],
  conditions: ready === undefined ? {} : { ready },
  targetRef: { kind: 'Pod', name: pod, namespace: 'kublambda-system' },
});
const slice = (endpoints: k8s.V1Endpoint[], ports: k8s.DiscoveryV1EndpointPort[] = [{ name: 'http', port: 8080 }], addressType = 'IPv4'): k8s.V1EndpointSlice => ({
  addressType,
  endpoints,
  ports,
});

describe('readyEndpoints', () => {
  it('lists the ready endpoints with the named port, one per pod, sorted', () => {
    const slices = [
      slice([endpoint('runner-b', '127.1.0.3', true), endpoint('runner-c', '127.1.0.4', false), endpoint('runner-a', '127.1.0.2', undefined)]),
      slice([endpoint('runner-b', '127.1.0.3', true), endpoint('runner-d', '127.1.0.5', true)]),
    ];
    expect(readyEndpoints(slices, 'http')).toEqual([
      { pod: 'runner-a', address: '127.1.0.2', port: 8080 },
      { pod: 'runner-b', address: '127.1.0.3', port: 8080 },
      { pod: 'runner-d', address: '127.1.0.5', port: 8080 },
    ]);
  });

  it('picks the named port among several, the only one otherwise, and skips slices without it', () => {
    const two = slice([endpoint('runner-a', '127.1.0.2', true)], [{ name: 'admin', port: 9000 }, { name: 'http', port: 8080 }]);
    const unnamed = slice([endpoint('runner-b', '127.1.0.3', true)], [{ port: 8081 }]);
    const other = slice([endpoint('runner-c', '127.1.0.4', true)], [{ name: 'admin', port: 9000 }, { name: 'grpc', port: 9001 }]);
    const none = slice([endpoint('runner-d', '127.1.0.5', true)], []);
    expect(readyEndpoints([two, unnamed, other, none], 'http')).toEqual([
      { pod: 'runner-a', address: '127.1.0.2', port: 8080 },
      { pod: 'runner-b', address: '127.1.0.3', port: 8081 },
    ]);
  });

  it('skips FQDN slices and names an endpoint without a pod by its address', () => {
    const fqdn = slice([{ addresses: ['runner.example.com'] }], undefined, 'FQDN');
    const bare = slice([{ addresses: ['fd00::5'], conditions: { ready: true } }], undefined, 'IPv6');
    expect(readyEndpoints([fqdn, bare], 'http')).toEqual([{ pod: 'fd00::5', address: 'fd00::5', port: 8080 }]);
  });
});

describe('readyPodEndpoints', () => {
  const pod = (name: string, ip: string | undefined, ready: 'True' | 'False', extra: Partial<k8s.V1Pod['metadata']> = {}, portName = 'http'): k8s.V1Pod => ({
    metadata: { name, ...extra },
    spec: { containers: [{ name: 'runner', ports: [{ name: 'admin', containerPort: 9000 }, { name: portName, containerPort: 8080 }] }] },
    status: { podIP: ip, phase: 'Running', conditions: [{ type: 'Ready', status: ready }] },
  });

  it('lists Ready pods with an IP and the named container port, not terminating ones', () => {
    const pods = [
      pod('runner-b', '127.1.0.3', 'True'),
      pod('runner-a', '127.1.0.2', 'True'),
      pod('runner-c', '127.1.0.4', 'False'),
      pod('runner-d', undefined, 'True'),
      pod('runner-e', '127.1.0.6', 'True', { deletionTimestamp: new Date() }),
      pod('runner-f', '127.1.0.7', 'True', {}, 'web'),
    ];
    expect(readyPodEndpoints(pods, 'http')).toEqual([
      { pod: 'runner-a', address: '127.1.0.2', port: 8080 },
      { pod: 'runner-b', address: '127.1.0.3', port: 8080 },
    ]);
  });
});

describe('metricsUrl', () => {
  it('puts IPv6 addresses in brackets', () => {
    expect(metricsUrl({ pod: 'a', address: '127.1.0.2', port: 8080 })).toBe('http://127.1.0.2:8080/metrics');
    expect(metricsUrl({ pod: 'a', address: 'fd00::5', port: 8080 })).toBe('http://[fd00::5]:8080/metrics');
  });
});
