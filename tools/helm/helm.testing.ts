// helm (built from the module pinned in tools/helm/go.mod) for tests, and reading what it renders.
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import YAML from 'yaml';
import { helmBinary } from '@kublambda/dev-servers';

export const chartPath = path.resolve(import.meta.dirname, '../../charts/kublambda');

export interface HelmResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface HelmOptions {
  /** The cluster to talk to; without it helm only renders (template, lint). */
  kubeconfig?: string;
  /**
   * Helm's cache, config and data directories: repositories, plugins and registry logins
   * found in the user's own would otherwise change what a test sees. Default: one directory
   * under the system's temporary directory, shared by every run (helm keeps nothing there that
   * these tests make: no repositories, no logins).
   */
  home?: string;
  timeoutMs?: number;
}

/** Runs helm; never throws for a non-zero exit, callers assert on the result. */
export async function helm(args: string[], options: HelmOptions = {}): Promise<HelmResult> {
  const home = options.home ?? path.join(os.tmpdir(), 'kublambda-helm-home');
  const result = await execa(await helmBinary(), [...(options.kubeconfig ? ['--kubeconfig', options.kubeconfig] : []), ...args], {
    reject: false,
    timeout: options.timeoutMs ?? 120_000,
    env: {
      HELM_CACHE_HOME: path.join(home, 'cache'),
      HELM_CONFIG_HOME: path.join(home, 'config'),
      HELM_DATA_HOME: path.join(home, 'data'),
      // Only the kubeconfig given counts, never the one the test run exported.
      KUBECONFIG: options.kubeconfig ?? '',
    },
  });
  return { exitCode: result.exitCode ?? -1, stdout: result.stdout, stderr: result.stderr };
}

/** Like helm(), but a failure throws with helm's output. */
export async function helmOk(args: string[], options: HelmOptions = {}): Promise<string> {
  const result = await helm(args, options);
  if (result.exitCode !== 0) throw new Error(`helm ${args.join(' ')} exited ${result.exitCode}: ${result.stderr || result.stdout}`);
  return result.stdout;
}

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: any;
  data?: Record<string, string>;
  [key: string]: unknown;
}

/**
 * The objects of a multi-document manifest, empty documents left out. Read as YAML 1.1, as helm
 * and kubectl read it (sigs.k8s.io/yaml): an unquoted on/off/yes/no is a boolean there.
 */
export function parseManifest(manifest: string): KubeObject[] {
  return YAML.parseAllDocuments(manifest, { version: '1.1' })
    .map((document) => {
      if (document.errors.length > 0) throw new Error(`unparsable manifest document: ${document.errors[0]!.message}`);
      return document.toJSON() as KubeObject | null;
    })
    .filter((object): object is KubeObject => object !== null && typeof object === 'object' && typeof object.kind === 'string');
}

/** Objects counted by kind: { Deployment: 4, ... }. */
export function countByKind(objects: KubeObject[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const object of objects) counts[object.kind] = (counts[object.kind] ?? 0) + 1;
  return counts;
}

/** `--set` arguments from a flat map of value paths. */
export function setArgs(values: Record<string, string | number | boolean>): string[] {
  return Object.entries(values).flatMap(([key, value]) => [typeof value === 'string' ? '--set-string' : '--set', `${key}=${value}`]);
}
