// Which namespace a host+path belongs to, by rule rather than by who claimed it first. Runners
// hold one route table for every namespace and send a request to the longest prefix on its
// host, so a lambda below another namespace's path takes that namespace's requests, credentials
// and all. Rules say where each namespace may go:
//
// - "/<namespace>/" on any host belongs to that namespace (default paths are
//   "/<namespace>/<name>", so no tenant can block another's);
// - grants in platform configuration give a namespace a whole host, a host's path prefix or a
//   path prefix on any host;
// - with grants-only on, a namespace may use nothing else.
//
// The most specific rule covering the path decides: an exact host before a wildcard host before
// any host, then the longest prefix; a namespace's own prefix before a grant of the same prefix.
// This is a pure function; claims held in Redis (routeClaim) settle the rest.

import { isPathAtOrBelow } from '@kublambda/route-table';

export interface RouteGrant {
  namespace: string;
  /** "" for any host; "*.example.com" covers one more label, as an Ingress wildcard does. */
  host: string;
  /** Normalised as the runner matches it: "/" for a whole host, no trailing slash. */
  pathPrefix: string;
}

export interface PathPolicy {
  grants: readonly RouteGrant[];
  /** Each namespace may use only its grants and its own "/<namespace>/". */
  grantsOnly: boolean;
}

export interface PathRequest {
  /** The lambda's namespace. */
  namespace: string;
  /** The trigger's host, "" for any host. */
  host: string;
  /** The lambda's path, normalised (normalizePathPrefix). */
  path: string;
  /** Whether the path's first segment names a namespace that exists (the lambda's own always does). */
  firstSegmentIsNamespace: boolean;
}

export type PathDecision =
  /** `owned`: a rule gives this place to the lambda's namespace, so paths other namespaces hold above it do not stand in its way. */
  | { allowed: true; owned: boolean }
  /** `why` follows a description of the host+path: "path /x (any host) <why>". */
  | { allowed: false; why: string };

interface PathRule {
  namespace: string;
  host: string;
  pathPrefix: string;
  source: 'namespace' | 'grant';
}

/** The first segment of a path ("/shop/cart" -> "shop"), if it has one. */
export function firstPathSegment(path: string): string | undefined {
  return path.split('/')[1] || undefined;
}

const NAMESPACE_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** Whether a string could name a namespace (an RFC 1123 label), so asking the API server makes sense. */
export function isNamespaceName(name: string): boolean {
  return name.length <= 63 && NAMESPACE_NAME.test(name);
}

/** Decides whether the lambda's namespace may have this host+path, and whether it owns it by rule. */
export function decidePath(request: PathRequest, policy: PathPolicy): PathDecision {
  const rule = mostSpecificRule(rulesFor(request, policy), request);
  if (rule && rule.namespace !== request.namespace) {
    const by = rule.source === 'namespace' ? '' : `: platform configuration grants it ${formatGrant(rule)}`;
    return { allowed: false, why: `belongs to namespace ${rule.namespace}${by}` };
  }
  if (rule) return { allowed: true, owned: true };
  if (!policy.grantsOnly) return { allowed: true, owned: false };
  const granted = policy.grants.filter((grant) => grant.namespace === request.namespace).map(formatGrant);
  const mayUse = [`paths under /${request.namespace}/`, ...granted].join(', ');
  return { allowed: false, why: `is outside what platform configuration lets namespace ${request.namespace} use: ${mayUse}` };
}

/** How a grant is written in ROUTE_GRANTS: "host", "host/prefix" or "/prefix". */
export function formatGrant(grant: { host: string; pathPrefix: string }): string {
  if (!grant.host) return grant.pathPrefix;
  return grant.pathPrefix === '/' ? grant.host : `${grant.host}${grant.pathPrefix}`;
}

function rulesFor(request: PathRequest, policy: PathPolicy): PathRule[] {
  const rules: PathRule[] = policy.grants.map((grant) => ({ ...grant, source: 'grant' }));
  const segment = firstPathSegment(request.path);
  if (segment !== undefined && (segment === request.namespace || request.firstSegmentIsNamespace)) {
    rules.push({ namespace: segment, host: '', pathPrefix: `/${segment}`, source: 'namespace' });
  }
  return rules;
}

function mostSpecificRule(rules: PathRule[], request: PathRequest): PathRule | undefined {
  let best: { rule: PathRule; rank: [number, number, number] } | undefined;
  for (const rule of rules) {
    const tier = hostTier(rule.host, request.host);
    if (tier === undefined || !isPathAtOrBelow(request.path, rule.pathPrefix)) continue;
    const rank: [number, number, number] = [tier, rule.pathPrefix.length, rule.source === 'namespace' ? 1 : 0];
    if (!best || isHigher(rank, best.rank)) best = { rule, rank };
  }
  return best?.rule;
}

function isHigher(a: readonly number[], b: readonly number[]): boolean {
  const differing = a.findIndex((value, i) => value !== b[i]);
  return differing !== -1 && a[differing]! > b[differing]!;
}

/**
 * How specifically a rule's host covers the requested host, as the runner ranks host rules:
 * 2 the same host, 1 a wildcard covering it, 0 any host; undefined when it does not cover it.
 * A lambda for any host is covered only by rules for any host: it does not serve a host's
 * requests that the host's own routes match.
 */
function hostTier(ruleHost: string, requestHost: string): number | undefined {
  if (ruleHost === '') return 0;
  if (ruleHost === requestHost) return 2;
  if (!ruleHost.startsWith('*.') || requestHost === '' || requestHost.startsWith('*.')) return undefined;
  const firstDot = requestHost.indexOf('.');
  return firstDot > 0 && requestHost.slice(firstDot) === ruleHost.slice(1) ? 1 : undefined;
}

