import { describe, expect, it } from '@jest/globals';
import { explainKubeError, type KubeRequest } from './kube-errors.ts';

const request: KubeRequest = { server: 'https://127.0.0.1:6443', context: 'dev', verb: 'get', resource: 'lambdas.kublambda.io', namespace: 'shop', name: 'hello' };
/** As client-node 2.x throws it: ApiException with the HTTP code and the Status body as text. */
const apiError = (code: number, body: unknown) => Object.assign(new Error(`HTTP-Code: ${code}`), { code, body: typeof body === 'string' ? body : JSON.stringify(body) });
/** As fetch throws it: a TypeError with the socket error as its cause. */
const networkError = (code: string) => Object.assign(new TypeError('fetch failed'), { cause: Object.assign(new Error(`connect ${code} 127.0.0.1:6443`), { code }) });

describe('explainKubeError', () => {
  it.each([
    ['no cluster there', networkError('ECONNREFUSED'), request, /^cannot reach the Kubernetes API server at https:\/\/127\.0\.0\.1:6443 \(kubeconfig context "dev"\): fetch failed: connect ECONNREFUSED 127\.0\.0\.1:6443 \(is the cluster running/],
    ['a name that does not resolve', networkError('ENOTFOUND'), request, /^cannot reach the Kubernetes API server at https:\/\/127\.0\.0\.1:6443 .*ENOTFOUND/],
    ['a certificate the kubeconfig does not trust', networkError('DEPTH_ZERO_SELF_SIGNED_CERT'), request, /TLS failed \(DEPTH_ZERO_SELF_SIGNED_CERT\): check the cluster's certificate-authority/],
    [
      'the CRD missing (a 404 without details)',
      apiError(404, { kind: 'Status', status: 'Failure', message: 'the server could not find the requested resource', reason: 'NotFound', details: {}, code: 404 }),
      { ...request, verb: 'list', name: undefined },
      /^the API server at https:\/\/127\.0\.0\.1:6443 has no lambdas\.kublambda\.io resource: the Lambda CRD is not installed \(kubectl apply -f libs\/crd-types\/crd\/lambdas\.kublambda\.io\.yaml, or helm install kublambda charts\/kublambda\)$/,
    ],
    ['the CRD missing (a plain-text 404)', apiError(404, '404 page not found'), request, /Lambda CRD is not installed/],
    [
      'a lambda that is not there',
      apiError(404, { kind: 'Status', message: 'lambdas.kublambda.io "hello" not found', reason: 'NotFound', details: { name: 'hello', group: 'kublambda.io', kind: 'lambdas' }, code: 404 }),
      request,
      /^Lambda "hello" not found in namespace "shop"$/,
    ],
    [
      'RBAC refusing, naming the user, verb and resource',
      apiError(403, {
        kind: 'Status',
        message: 'lambdas.kublambda.io is forbidden: User "system:serviceaccount:shop:viewer" cannot list resource "lambdas" in API group "kublambda.io" in the namespace "shop"',
        reason: 'Forbidden',
        code: 403,
      }),
      { ...request, verb: 'list' },
      /^not allowed: user "system:serviceaccount:shop:viewer" may not "list" lambdas\.kublambda\.io in namespace "shop" \(Kubernetes RBAC: ask for a Role that grants it\): lambdas\.kublambda\.io is forbidden: /,
    ],
    ['RBAC refusing core events', apiError(403, { message: 'events.events.k8s.io is forbidden: User "jane" cannot list resource "events" in API group "events.k8s.io" in the namespace "shop"' }), { ...request, resource: 'events.events.k8s.io' }, /^not allowed: user "jane" may not "list" events\.events\.k8s\.io in namespace "shop"/],
    ['a 403 without the usual message', apiError(403, 'forbidden'), { ...request, verb: 'delete' }, /^not allowed: this kubeconfig's user may not "delete" lambdas\.kublambda\.io in namespace "shop" .*: forbidden$/],
    ['bad credentials', apiError(401, { message: 'Unauthorized' }), request, /^the Kubernetes API server at https:\/\/127\.0\.0\.1:6443 did not accept the credentials of the kubeconfig \(kubeconfig context "dev"\) \(401 Unauthorized\)/],
    ['a spec the schema refuses', apiError(422, { message: 'Lambda.kublambda.io "hello" is invalid: spec.memoryMiB: Invalid value: 1: spec.memoryMiB in body should be greater than or equal to 32' }), request, /^the API server refused the Lambda: Lambda\.kublambda\.io "hello" is invalid: spec\.memoryMiB/],
    ['anything else', apiError(500, { message: 'etcdserver: request timed out' }), request, /^get lambdas\.kublambda\.io in namespace "shop" at https:\/\/127\.0\.0\.1:6443: HTTP 500: etcdserver: request timed out$/],
  ])('%s', (_what, error, req, expected) => {
    expect(explainKubeError(error, req)).toMatch(expected);
  });
});
