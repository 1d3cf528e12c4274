import type { Lambda } from './lambda.generated.ts';

/** The path prefix a lambda's HTTP trigger serves: spec.triggers.http.path, else /<namespace>/<name>. */
export function lambdaPath(lambda: Pick<Lambda, 'metadata' | 'spec'>): string {
  return lambda.spec.triggers?.http?.path ?? `/${lambda.metadata.namespace}/${lambda.metadata.name}`;
}
