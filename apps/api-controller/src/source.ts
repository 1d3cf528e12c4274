import { createHash } from 'node:crypto';
import type { Lambda } from '@kublambda/crd-types';

export interface ResolvedSource {
  files: Record<string, string>;
  entrypoint: string;
  typeCheck: boolean;
  runtime: 'nodejs';
}

/** Why a lambda's source cannot be read; each maps to a Built=False reason. */
export class SourceUnavailableError extends Error {
  readonly reason: 'SourceNotFound' | 'SourceUnsupported';
  constructor(reason: 'SourceNotFound' | 'SourceUnsupported', message: string) {
    super(message);
    this.reason = reason;
  }
}

export type ReadConfigMap = (namespace: string, name: string) => Promise<Record<string, string> | undefined>;

/** The files a lambda is built from, whichever way the spec gives them. */
export async function resolveSource(lambda: Lambda, readConfigMap: ReadConfigMap): Promise<ResolvedSource> {
  const { spec } = lambda;
  const entrypoint = spec.entrypoint ?? 'index.ts';
  const common = { entrypoint, typeCheck: spec.build?.typeCheck ?? false, runtime: spec.runtime ?? 'nodejs' } as const;
  if (spec.source.inline !== undefined) return { ...common, files: { [entrypoint]: spec.source.inline } };
  if (spec.source.files) return { ...common, files: definedEntries(spec.source.files) };
  if (spec.source.configMapRef) {
    const { name } = spec.source.configMapRef;
    const namespace = lambda.metadata.namespace!;
    const data = await readConfigMap(namespace, name);
    if (!data) throw new SourceUnavailableError('SourceNotFound', `ConfigMap ${namespace}/${name} named in spec.source.configMapRef does not exist`);
    if (!(entrypoint in data)) {
      throw new SourceUnavailableError('SourceNotFound', `ConfigMap ${namespace}/${name} has no key "${entrypoint}" (spec.entrypoint); its keys: ${Object.keys(data).join(', ') || 'none'}`);
    }
    return { ...common, files: data };
  }
  throw new SourceUnavailableError('SourceUnsupported', 'spec.source.archive is not supported yet: use inline, files or configMapRef');
}

function definedEntries(files: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(Object.entries(files).filter((entry): entry is [string, string] => entry[1] !== undefined));
}

/** A digest over everything that shapes the asset, independent of key order. */
export function sourceDigest(source: ResolvedSource): string {
  const canonical = JSON.stringify({
    runtime: source.runtime,
    entrypoint: source.entrypoint,
    typeCheck: source.typeCheck,
    files: Object.keys(source.files)
      .sort()
      .map((path) => [path, source.files[path]]),
  });
  return `sha256:${createHash('sha256').update(canonical).digest('hex')}`;
}
