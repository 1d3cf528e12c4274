import { readFile } from 'node:fs/promises';
import { compile, type JSONSchema } from 'json-schema-to-typescript';
import YAML from 'yaml';
import { lambdaCrdPath } from './crd.ts';

const banner = `// Generated from crd/lambdas.kublambda.io.yaml by \`npm run generate:crd-types\`. Do not edit:
// change the CRD and regenerate; a test fails while this file and the CRD disagree.`;

/** TypeScript declarations for the Lambda resource, derived from the CRD's openAPIV3Schema. */
export async function generateLambdaTypes(): Promise<string> {
  const crd = YAML.parse(await readFile(lambdaCrdPath, 'utf8'));
  const version = crd.spec.versions.find((v: { storage: boolean }) => v.storage);
  const schema = structuredClone(version.schema.openAPIV3Schema) as JSONSchema;
  // metadata is validated by the API server, not by this schema; use the Kubernetes type.
  schema.properties!.metadata = { tsType: 'V1ObjectMeta' } as JSONSchema;
  schema.properties!.apiVersion = { const: 'kublambda.io/v1alpha1' };
  schema.properties!.kind = { const: 'Lambda' };
  schema.required = ['apiVersion', 'kind', 'metadata', 'spec'];
  const body = await compile(schema, 'Lambda', {
    bannerComment: '',
    additionalProperties: false,
    maxItems: -1,
  });
  return `${banner}\nimport type { V1ObjectMeta } from '@kubernetes/client-node';\n\n${body}`;
}
