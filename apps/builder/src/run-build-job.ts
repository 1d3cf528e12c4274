import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import type { ArtifactStore } from '@kublambda/artifact-store';
import type { BuildJobData, BuildJobResult } from '@kublambda/build-queue';
import { forLambda, type Logger } from '@kublambda/logging';
import { bundleSource } from './bundle-source.ts';
import { CompileError } from './compile-error.ts';

export interface BuildJobDeps {
  assets: Pick<ArtifactStore, 'put'>;
  /** Each build gets a private directory below this one, removed afterwards. */
  workRoot: string;
  npmCacheDir: string;
  npmRegistry?: string;
  logger: Logger;
}

/**
 * Bundles a lambda's source and stores the asset. A problem in the source is a result (the
 * build failed, permanently); anything else throws, so the queue retries it.
 */
export async function runBuildJob(data: BuildJobData, deps: BuildJobDeps): Promise<BuildJobResult> {
  const log = forLambda(deps.logger, data.lambda);
  const workDir = await mkdtemp(path.join(deps.workRoot, 'build-'));
  const started = Date.now();
  try {
    const bundle = await bundleSource({ files: data.files, entrypoint: data.entrypoint, typeCheck: data.typeCheck }, { workDir, npmCacheDir: deps.npmCacheDir, npmRegistry: deps.npmRegistry });
    const artifact = await deps.assets.put(bundle.asset);
    log.info('built', { sourceDigest: data.sourceDigest, artifact: artifact.digest, size: artifact.size, ms: Date.now() - started });
    return { outcome: 'built', artifact, warnings: bundle.warnings };
  } catch (error) {
    if (error instanceof CompileError) {
      log.info('build failed', { sourceDigest: data.sourceDigest, reason: error.reason, message: error.message });
      return { outcome: 'failed', reason: error.reason, message: error.message };
    }
    throw new Error(`building ${data.lambda.namespace}/${data.lambda.name} from source ${data.sourceDigest}`, { cause: error });
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}
