import { describeError } from '@kublambda/reconcile-runtime';

// What went wrong talking to the API server, said so that the user knows what to do next.
// Pure: the error as client-node throws it, and what the command was doing.

export interface KubeRequest {
  /** The API server's address, from the kubeconfig. */
  server: string;
  /** The kubeconfig context in use. */
  context?: string;
  /** The Kubernetes verb: get, list, create, patch, delete, watch. */
  verb: string;
  /** For example lambdas.kublambda.io, or events.events.k8s.io. */
  resource: string;
  namespace?: string;
  name?: string;
}

/** An error whose message is ready for the user: printed as it is. */
export class CommandError extends Error {
  override readonly name = 'CommandError';
}

const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_SOCKET']);
const TLS_CODES = /^(CERT_|ERR_TLS_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT)/;

function statusCode(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'number' ? code : undefined;
}

interface StatusBody {
  message?: string;
  reason?: string;
  details?: { name?: string; kind?: string; group?: string };
}

function statusBody(error: unknown): StatusBody | undefined {
  const body = (error as { body?: unknown } | undefined)?.body;
  if (typeof body === 'object' && body !== null) return body as StatusBody;
  if (typeof body !== 'string') return undefined;
  try {
    const parsed = JSON.parse(body) as unknown;
    return typeof parsed === 'object' && parsed !== null ? (parsed as StatusBody) : undefined;
  } catch {
    return body.trim() ? { message: body.trim() } : undefined;
  }
}

/** The network error under an error (fetch wraps it as the cause, sometimes twice). */
function networkCode(error: unknown): string | undefined {
  for (let current = error, depth = 0; current && depth < 5; current = (current as { cause?: unknown }).cause, depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && (CONNECTION_CODES.has(code) || TLS_CODES.test(code))) return code;
    const errno = (current as { errno?: unknown }).errno;
    if (typeof errno === 'string' && CONNECTION_CODES.has(errno)) return errno;
  }
  return undefined;
}

function where(request: KubeRequest): string {
  return request.namespace ? ` in namespace "${request.namespace}"` : '';
}

/** The user's message for an error of a request to the API server. */
export function explainKubeError(error: unknown, request: KubeRequest): string {
  const code = statusCode(error);
  const body = statusBody(error);
  const serverMessage = body?.message ?? describeError(error);
  const context = request.context ? ` (kubeconfig context "${request.context}")` : '';
  if (code === undefined) {
    const network = networkCode(error);
    if (network && TLS_CODES.test(network)) {
      return `cannot reach the Kubernetes API server at ${request.server}${context}: TLS failed (${network}): check the cluster's certificate-authority in the kubeconfig`;
    }
    if (network) return `cannot reach the Kubernetes API server at ${request.server}${context}: ${describeError(error)} (is the cluster running, and is this the right context?)`;
    return `${request.verb} ${request.resource}${where(request)} at ${request.server}: ${describeError(error)}`;
  }
  if (code === 401) {
    return `the Kubernetes API server at ${request.server} did not accept the credentials of the kubeconfig${context} (401 Unauthorized): log in again or renew the token`;
  }
  if (code === 403) {
    const user = /User "([^"]+)"/.exec(serverMessage)?.[1];
    const refused = /cannot (\S+) resource "([^"]+)"(?: in API group "([^"]*)")?/.exec(serverMessage);
    const verb = refused?.[1] ?? request.verb;
    const resource = refused ? (refused[3] ? `${refused[2]}.${refused[3]}` : refused[2]!) : request.resource;
    return `not allowed: ${user ? `user "${user}"` : 'this kubeconfig\'s user'} may not "${verb}" ${resource}${where(request)} (Kubernetes RBAC: ask for a Role that grants it): ${serverMessage}`;
  }
  if (code === 404) {
    // A missing object names itself in the Status details; a missing resource type does not.
    if (body?.details?.name) return `Lambda "${body.details.name}" not found${where(request)}`;
    if (request.resource.startsWith('lambdas.')) {
      return `the API server at ${request.server} has no ${request.resource} resource: the Lambda CRD is not installed (kubectl apply -f libs/crd-types/crd/lambdas.kublambda.io.yaml, or helm install kublambda charts/kublambda)`;
    }
    return `${request.verb} ${request.resource}${where(request)}: not found (${serverMessage})`;
  }
  if (code === 422) return `the API server refused the Lambda: ${serverMessage}`;
  if (code === 409) return `conflict: ${serverMessage}`;
  return `${request.verb} ${request.resource}${where(request)} at ${request.server}: HTTP ${code}: ${serverMessage}`;
}
