import { execa } from 'execa';
import { kubeBinary } from './binaries.ts';

export interface KubectlResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs the kubectl built alongside the control plane (same version) against a kubeconfig,
 * default $KUBECONFIG. Never throws for a non-zero exit: callers assert on the result.
 */
export async function kubectl(args: string[], options: { kubeconfig?: string; input?: string } = {}): Promise<KubectlResult> {
  const kubeconfig = options.kubeconfig ?? process.env.KUBECONFIG;
  if (!kubeconfig) throw new Error('kubectl: no kubeconfig given and KUBECONFIG is not set');
  const result = await execa(await kubeBinary('kubectl'), ['--kubeconfig', kubeconfig, ...args], {
    reject: false,
    input: options.input,
    timeout: 60_000,
  });
  return { exitCode: result.exitCode ?? -1, stdout: result.stdout, stderr: result.stderr };
}
