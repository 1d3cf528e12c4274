import type { Lambda } from '@kublambda/crd-types';
import type { EnvKeyRing, RouteEnvEntry } from '@kublambda/route-table';
import type { ReadConfigMap } from './source.ts';

/** A Secret's data, decoded; undefined when the Secret does not exist. */
export type ReadSecret = (namespace: string, name: string) => Promise<Record<string, string> | undefined>;

/** Env entries whose valueFrom names a Secret, ConfigMap or key that does not exist (yet). */
export class EnvReferenceError extends Error {
  readonly reason = 'EnvReferenceNotFound';
}

/** An env variable with its value resolved; `fromSecret` values must not be stored in plaintext. */
export interface ResolvedEnvEntry {
  name: string;
  value: string;
  fromSecret: boolean;
}

/**
 * The lambda's env with every valueFrom replaced by the value it names, read from the
 * lambda's namespace, so the runner need not read them. Reports every missing reference at once.
 */
export async function resolveEnv(lambda: Lambda, read: { secret: ReadSecret; configMap: ReadConfigMap }): Promise<ResolvedEnvEntry[]> {
  const namespace = lambda.metadata.namespace!;
  const loaded = new Map<string, Promise<Record<string, string> | undefined>>();
  const load = (kind: 'Secret' | 'ConfigMap', name: string) => {
    const id = `${kind}/${name}`;
    if (!loaded.has(id)) loaded.set(id, kind === 'Secret' ? read.secret(namespace, name) : read.configMap(namespace, name));
    return loaded.get(id)!;
  };
  const missing: string[] = [];
  const env: ResolvedEnvEntry[] = [];
  for (const entry of lambda.spec.env ?? []) {
    const secretRef = entry.valueFrom?.secretKeyRef;
    const configMapRef = entry.valueFrom?.configMapKeyRef;
    const ref = secretRef ?? configMapRef;
    if (!ref) {
      env.push({ name: entry.name, value: entry.value ?? '', fromSecret: false });
      continue;
    }
    const kind = secretRef ? 'Secret' : 'ConfigMap';
    const data = await load(kind, ref.name);
    const value = data?.[ref.key];
    if (value === undefined) {
      missing.push(data ? `${kind} ${namespace}/${ref.name} has no key "${ref.key}" (env ${entry.name})` : `${kind} ${namespace}/${ref.name} does not exist (env ${entry.name})`);
      continue;
    }
    env.push({ name: entry.name, value, fromSecret: kind === 'Secret' });
  }
  if (missing.length > 0) throw new EnvReferenceError(missing.join('; '));
  return env;
}

/**
 * The env as the route record holds it: Secret values encrypted with the current key, the rest
 * plain. A value already published encrypted, unchanged and under the current key, keeps its
 * ciphertext, so the record changes only when something in it did.
 */
export function encryptSecretValues(env: readonly ResolvedEnvEntry[], lambdaKey: string, keys: EnvKeyRing, published: readonly RouteEnvEntry[] = []): RouteEnvEntry[] {
  return env.map(({ name, value, fromSecret }) => {
    if (!fromSecret) return { name, value };
    const before = published.find((entry) => entry.name === name);
    const previous = before && 'encrypted' in before ? before.encrypted : undefined;
    return { name, encrypted: keys.encryptUnlessUnchanged(value, { lambdaKey, name }, previous) };
  });
}
