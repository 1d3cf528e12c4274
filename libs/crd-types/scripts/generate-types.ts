import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { generateLambdaTypes } from '../src/generate-types.ts';

const target = path.resolve(import.meta.dirname, '../src/lambda.generated.ts');
await writeFile(target, await generateLambdaTypes());
console.log(`wrote ${target}`);
