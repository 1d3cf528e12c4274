import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { generateLambdaTypes } from './generate-types.ts';

describe('Lambda TypeScript types', () => {
  it('match the CRD schema they are generated from', async () => {
    const committed = await readFile(path.join(import.meta.dirname, 'lambda.generated.ts'), 'utf8');
    // When this fails, run `npm run generate:crd-types` and commit the result.
    expect(committed).toBe(await generateLambdaTypes());
  });
});
