// The one lambda a standalone runner serves (libs/route-table standalone.ts): lambda.json read
// and checked field by field, and the asset beside it checked against the digest lambda.json
// names, before anything is served. Parsing and checking are pure; loadStandaloneLambda reads.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { digestHex, digestOf } from '@kublambda/artifact-store';
import type { StandaloneLambda } from '@kublambda/route-table';
import type { AssetSource } from './lambda-workers.ts';

/** The asset's file name, beside lambda.json (in the image, /lambda/lambda.mjs). */
export const STANDALONE_ASSET_NAME = 'lambda.mjs';

/** Given at run time or by the pool, never in lambda.json. */
const NOT_IN_LAMBDA_JSON = ['key', 'pathPrefix', 'host', 'env', 'generation'];
const FIELDS = ['namespace', 'name', 'artifact', 'runtime', 'timeoutSeconds', 'memoryMiB', 'concurrency', 'cpuMillis', 'network', 'stateTables'];

/** The path of the asset that goes with a lambda.json. */
export function standaloneAssetPath(lambdaFile: string): string {
  return path.join(path.dirname(lambdaFile), STANDALONE_ASSET_NAME);
}

/** Checks lambda.json's text; every error names the file and the field. */
export function parseStandaloneLambda(text: string, file: string): StandaloneLambda {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new Error(`${file}: not JSON: ${(error as Error).message}`, { cause: error });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${file}: expected a JSON object`);
  const json = value as Record<string, unknown>;
  const problem = (field: string, expected: string) => new Error(`${file}: ${field} must be ${expected}, not ${JSON.stringify(json[field]) ?? 'missing'}`);
  for (const field of Object.keys(json)) {
    if (NOT_IN_LAMBDA_JSON.includes(field)) throw new Error(`${file}: ${field} does not belong in lambda.json (the standalone runner serves every path; env comes from LAMBDA_ENV_* variables)`);
    if (!FIELDS.includes(field)) throw new Error(`${file}: unknown field ${field}`);
  }
  const name = (field: string) => {
    const given = json[field];
    if (typeof given !== 'string' || given === '') throw problem(field, 'a non-empty string');
    return given;
  };
  const integer = (field: string, min: number) => {
    const given = json[field];
    if (typeof given !== 'number' || !Number.isInteger(given) || given < min) throw problem(field, `a whole number of at least ${min}`);
    return given;
  };
  const artifact = json.artifact as { digest?: unknown; size?: unknown } | undefined;
  if (typeof artifact !== 'object' || artifact === null) throw problem('artifact', 'an object { digest, size }');
  if (typeof artifact.digest !== 'string' || !isDigest(artifact.digest)) {
    throw new Error(`${file}: artifact.digest must be "sha256:" followed by 64 lowercase hex digits, not ${JSON.stringify(artifact.digest) ?? 'missing'}`);
  }
  if (typeof artifact.size !== 'number' || !Number.isInteger(artifact.size) || artifact.size < 0) {
    throw new Error(`${file}: artifact.size must be a whole number of bytes, not ${JSON.stringify(artifact.size) ?? 'missing'}`);
  }
  if (json.runtime !== 'nodejs') throw problem('runtime', '"nodejs"');
  if (json.network !== 'outbound' && json.network !== 'none') throw problem('network', '"outbound" or "none"');
  const stateTables = json.stateTables;
  if (!Array.isArray(stateTables) || !stateTables.every((table) => typeof table === 'string' && table !== '')) throw problem('stateTables', 'an array of table names');
  return {
    namespace: name('namespace'),
    name: name('name'),
    artifact: { digest: artifact.digest, size: artifact.size },
    runtime: 'nodejs',
    timeoutSeconds: integer('timeoutSeconds', 1),
    memoryMiB: integer('memoryMiB', 1),
    concurrency: integer('concurrency', 1),
    cpuMillis: integer('cpuMillis', 1),
    network: json.network,
    stateTables: stateTables as string[],
  };
}

/** Refuses an asset that is not the one lambda.json names: the image would serve other code. */
export function verifyStandaloneAsset(bytes: Uint8Array, artifact: StandaloneLambda['artifact'], assetFile: string): void {
  const digest = digestOf(bytes);
  if (digest !== artifact.digest) throw new Error(`${assetFile}: its digest is ${digest}, but lambda.json names artifact.digest ${artifact.digest}`);
  if (bytes.byteLength !== artifact.size) throw new Error(`${assetFile}: it has ${bytes.byteLength} bytes, but lambda.json names artifact.size ${artifact.size}`);
}

export interface LoadedStandaloneLambda {
  lambda: StandaloneLambda;
  /** The asset, verified. */
  assets: AssetSource;
}

/** Reads lambda.json and the asset beside it, checked; a start-up error if either is wrong. */
export async function loadStandaloneLambda(lambdaFile: string): Promise<LoadedStandaloneLambda> {
  const lambda = parseStandaloneLambda((await readFileNamed(lambdaFile, 'the lambda')).toString('utf8'), lambdaFile);
  const assetFile = standaloneAssetPath(lambdaFile);
  verifyStandaloneAsset(await readFileNamed(assetFile, 'the asset'), lambda.artifact, assetFile);
  return { lambda, assets: localAsset(lambda.artifact.digest, assetFile) };
}

/** The one asset at its file, which nothing evicts: no pins to keep. */
export function localAsset(digest: string, file: string): AssetSource {
  return {
    path: async (wanted) => {
      if (wanted !== digest) throw new Error(`asset ${wanted}: the standalone runner holds only ${digest}`);
      return file;
    },
    pin: () => () => undefined,
  };
}

function isDigest(value: string): boolean {
  try {
    digestHex(value);
    return true;
  } catch {
    return false;
  }
}

async function readFileNamed(file: string, what: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (error) {
    throw new Error(`reading ${what} ${file}: ${(error as Error).message}`, { cause: error });
  }
}
