import type { Lambda } from '@kublambda/crd-types';
import type { RouteRecord } from '@kublambda/route-table';
import type { ReadConfigMap } from './source.ts';

/** A Secret's data, decoded; undefined when the Secret does not exist. */
export type ReadSecret = (namespace: string, name: string) => Promise<Record<string, string> | undefined>;

/** Env entries whose valueFrom names a Secret, ConfigMap or key that does not exist (yet). */
export class EnvReferenceError extends Error {
  readonly reason = 'EnvReferenceNotFound';
}

/**
 * The lambda's env with every valueFrom replaced by the value it names, read from the
 * lambda's namespace, so the runner gets plain values. Reports every missing reference at once.
 */
export async function resolveEnv(lambda: Lambda, read: { secret: ReadSecret; configMap: ReadConfigMap }): Promise<RouteRecord['env']> {
  const namespace = lambda.metadata.namespace!;
  const loaded = new Map<string, Promise<Record<string, string> | undefined>>();
  const load = (kind: 'Secret' | 'ConfigMap', name: string) => {
    const id = `${kind}/${name}`;
    if (!loaded.has(id)) loaded.set(id, kind === 'Secret' ? read.secret(namespace, name) : read.configMap(namespace, name));
    return loaded.get(id)!;
  };
  const missing: string[] = [];
  const env: RouteRecord['env'] = [];
  for (const entry of lambda.spec.env ?? []) {
    const secretRef = entry.valueFrom?.secretKeyRef;
    const configMapRef = entry.valueFrom?.configMapKeyRef;
    const ref = secretRef ?? configMapRef;
    if (!ref) {
      env.push({ name: entry.name, value: entry.value ?? '' });
      continue;
    }
    const kind = secretRef ? 'Secret' : 'ConfigMap';
    const data = await load(kind, ref.name);
    const value = data?.[ref.key];
    if (value === undefined) {
      missing.push(data ? `${kind} ${namespace}/${ref.name} has no key "${ref.key}" (env ${entry.name})` : `${kind} ${namespace}/${ref.name} does not exist (env ${entry.name})`);
      continue;
    }
    env.push({ name: entry.name, value });
  }
  if (missing.length > 0) throw new EnvReferenceError(missing.join('; '));
  return env;
}
