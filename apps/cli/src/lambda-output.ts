// How the lambda commands show Lambdas: kubectl-like tables, JSON and YAML, describe's
// sections, and what deploy makes of a Lambda's conditions. Pure functions of the objects.
import YAML from 'yaml';
import { lambdaPath, type Condition, type Lambda } from '@kublambda/crd-types';
import { formatAge } from './builds-command.ts';
import type { LambdaEvent } from './lambda-client.ts';

export type OutputFormat = 'table' | 'json' | 'yaml';
export const OUTPUT_FORMATS: readonly OutputFormat[] = ['table', 'json', 'yaml'];

/** Build failures that stay until the source changes: deploy stops waiting on them. */
export const FINAL_BUILD_REASONS = new Set(['CompileFailed', 'DependencyInstallFailed', 'NoDefaultExport', 'InvalidSource', 'SourceNotFound', 'SourceUnsupported']);

export function conditionOf(lambda: Lambda | undefined, type: string): Condition | undefined {
  return lambda?.status?.conditions?.find((c) => c.type === type);
}

/** The platform has reported on this generation (conditions are about the spec as applied). */
export function isObserved(lambda: Lambda): boolean {
  return lambda.status?.observedGeneration !== undefined && lambda.status.observedGeneration === lambda.metadata.generation;
}

export type DeployState =
  | { state: 'ready' }
  | { state: 'failed'; reason: string; message: string }
  | { state: 'waiting'; summary: string };

/** Where a deployed Lambda stands: Ready, failed for good (a build failure), or still on its way. */
export function deployState(lambda: Lambda): DeployState {
  if (!isObserved(lambda)) return { state: 'waiting', summary: `waiting for the platform to see generation ${lambda.metadata.generation ?? '?'}` };
  const built = conditionOf(lambda, 'Built');
  if (built?.status === 'False' && FINAL_BUILD_REASONS.has(built.reason ?? '')) return { state: 'failed', reason: built.reason!, message: built.message ?? '' };
  if (conditionOf(lambda, 'Ready')?.status === 'True') return { state: 'ready' };
  return { state: 'waiting', summary: conditionSummary(lambda) };
}

/** Built=True Routed=Unknown(NotBuilt) Ready=False(Building) */
export function conditionSummary(lambda: Lambda): string {
  const conditions = lambda.status?.conditions ?? [];
  if (conditions.length === 0) return 'no conditions yet';
  return conditions.map((c) => `${c.type}=${c.status}${c.status === 'True' || !c.reason ? '' : `(${c.reason})`}`).join(' ');
}

/** status.url, else the path the runner serves it at. */
export function lambdaAddress(lambda: Lambda): string {
  if (lambda.status?.url) return lambda.status.url;
  return lambdaPath(lambda);
}

export function formatObjects(value: unknown, format: 'json' | 'yaml'): string {
  return format === 'json' ? JSON.stringify(value, null, 2) : YAML.stringify(value).trimEnd();
}

/** `kublambda get -o json|yaml`: one Lambda as it is, several as a List, as kubectl does. */
export function formatLambdas(lambdas: Lambda[], format: 'json' | 'yaml', single: boolean): string {
  return formatObjects(single ? lambdas[0] : { apiVersion: 'v1', kind: 'List', items: lambdas, metadata: { resourceVersion: '' } }, format);
}

export function formatTable(header: string[], rows: string[][], gap = '   '): string {
  const last = header.length - 1;
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  return [header, ...rows].map((row) => row.map((cell, column) => (column < last ? cell.padEnd(widths[column]!) : cell)).join(gap).trimEnd()).join('\n');
}

/** The columns of `kubectl get lam`: NAME READY URL IMAGE AGE, NAMESPACE first with -A. */
export function formatLambdaTable(lambdas: Lambda[], now: number, allNamespaces: boolean): string {
  const header = [...(allNamespaces ? ['NAMESPACE'] : []), 'NAME', 'READY', 'URL', 'IMAGE', 'AGE'];
  const rows = lambdas.map((lambda) => [
    ...(allNamespaces ? [lambda.metadata.namespace ?? ''] : []),
    lambda.metadata.name ?? '',
    conditionOf(lambda, 'Ready')?.status ?? '',
    lambda.status?.url ?? '',
    lambda.status?.image ?? '',
    lambda.metadata.creationTimestamp ? formatAge(now - new Date(lambda.metadata.creationTimestamp).getTime()) : '',
  ]);
  return formatTable(header, rows);
}

function sourceSummary(lambda: Lambda): string {
  const source = lambda.spec.source;
  if (source.inline !== undefined) return `inline (${Buffer.byteLength(source.inline)} bytes)`;
  if (source.files) return `files: ${Object.keys(source.files).join(', ')}`;
  if (source.configMapRef) return `ConfigMap ${source.configMapRef.name}`;
  if (source.archive) return `archive ${source.archive.url}`;
  return '(none)';
}

function triggerLines(lambda: Lambda): string[] {
  const http = lambda.spec.triggers?.http;
  const lines: string[] = [];
  if (http) lines.push(`HTTP ${http.host ?? '*'} ${http.path ?? `/${lambda.metadata.namespace}/${lambda.metadata.name}`}${http.tlsSecretName ? ` (TLS ${http.tlsSecretName})` : ''}`);
  for (const watch of lambda.spec.triggers?.watch ?? []) {
    const selectors = [watch.labelSelector && `labels ${watch.labelSelector}`, watch.fieldSelector && `fields ${watch.fieldSelector}`, watch.condition && `if ${watch.condition}`].filter(Boolean);
    lines.push(`watch ${watch.apiVersion} ${watch.kind}${watch.namespace ? ` in ${watch.namespace}` : ''} ${(watch.events ?? ['ADDED', 'MODIFIED', 'DELETED']).join(',')}${selectors.length ? ` (${selectors.join('; ')})` : ''}`);
  }
  return lines.length ? lines : ['none'];
}

function ago(time: string | Date | undefined, now: number): string {
  if (!time) return '-';
  return formatAge(now - new Date(time).getTime());
}

/** `kublambda describe`: the spec in short, status, conditions, failures in full, then Events. */
export function formatDescribe(lambda: Lambda, events: LambdaEvent[], now: number): string {
  const spec = lambda.spec;
  const status = lambda.status ?? {};
  const field = (label: string, value: string) => `${`${label}:`.padEnd(20)}${value}`;
  const lines = [
    field('Name', lambda.metadata.name ?? ''),
    field('Namespace', lambda.metadata.namespace ?? ''),
    field('Created', `${lambda.metadata.creationTimestamp ? new Date(lambda.metadata.creationTimestamp).toISOString() : '-'} (${ago(lambda.metadata.creationTimestamp, now)} ago)`),
    field('Generation', `${lambda.metadata.generation ?? '-'} (observed ${status.observedGeneration ?? '-'})`),
    ...(lambda.metadata.deletionTimestamp ? [field('Deleting', `since ${new Date(lambda.metadata.deletionTimestamp).toISOString()}`)] : []),
    'Spec:',
    `  ${field('Runtime', spec.runtime ?? 'nodejs')}`,
    `  ${field('Source', sourceSummary(lambda))}`,
    `  ${field('Entrypoint', spec.entrypoint ?? 'index.ts')}`,
    `  ${field('Type check', spec.build?.typeCheck ? 'on' : 'off')}`,
    ...triggerLines(lambda).map((line, i) => `  ${field(i === 0 ? 'Triggers' : '', line)}`),
    `  ${field('Limits', `memory ${spec.memoryMiB ?? 128} MiB, timeout ${spec.timeoutSeconds ?? 30} s, concurrency ${spec.concurrency ?? 50}, cpu ${spec.cpuMillis ?? 10000} ms`)}`,
    `  ${field('Network', spec.network ?? 'outbound')}`,
    `  ${field('Env', (spec.env ?? []).map((e) => (e.valueFrom ? `${e.name} (from ${e.valueFrom.secretKeyRef ? 'Secret' : 'ConfigMap'})` : e.name)).join(', ') || 'none')}`,
    `  ${field('State tables', (spec.stateTables ?? []).join(', ') || 'none')}`,
    'Status:',
    `  ${field('URL', status.url ?? `none (served at ${lambdaAddress(lambda)})`)}`,
    `  ${field('Image', status.image ?? 'none')}`,
    `  ${field('Artifact', status.artifact ? `${status.artifact.digest}${status.artifact.size !== undefined ? ` (${status.artifact.size} bytes)` : ''}` : 'none')}`,
    `  ${field('Source digest', status.sourceDigest ?? '-')}`,
    'Conditions:',
  ];
  const conditions = status.conditions ?? [];
  if (conditions.length === 0) lines.push('  none yet');
  else {
    const table = formatTable(
      ['TYPE', 'STATUS', 'REASON', 'AGE', 'MESSAGE'],
      conditions.map((c) => [c.type, c.status, c.reason ?? '', ago(c.lastTransitionTime, now), firstLine(c.message ?? '')]),
    );
    lines.push(...table.split('\n').map((line) => `  ${line}`));
  }
  const failures = conditions.filter((c) => c.status === 'False' && c.type !== 'Ready' && c.message);
  if (failures.length > 0) {
    lines.push('Last failures:');
    for (const c of failures) lines.push(`  ${c.type} (${c.reason ?? 'no reason'}):`, ...c.message!.split('\n').map((line) => `    ${line}`));
  }
  lines.push('Events:');
  if (events.length === 0) lines.push('  none');
  else {
    const table = formatTable(
      ['TYPE', 'REASON', 'AGE', 'FROM', 'MESSAGE'],
      events.slice(-20).map((e) => [e.type, e.reason, `${ago(e.time, now)}${e.count > 1 ? ` (x${e.count})` : ''}`, e.source, firstLine(e.note)]),
    );
    lines.push(...table.split('\n').map((line) => `  ${line}`));
  }
  return lines.join('\n');
}

function firstLine(text: string): string {
  const [first = '', ...rest] = text.split('\n');
  return rest.length > 0 ? `${first} (+${rest.length} lines)` : first;
}
