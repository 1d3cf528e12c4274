import { describe, expect, it } from '@jest/globals';
import { readFile, realpath } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { lambdaCrdPath } from '@kublambda/crd-types';

const root = path.resolve(import.meta.dirname, '../..');
const apps = ['api-controller', 'builder', 'runner', 'event-watcher', 'autoscaler', 'cli'];
/** What each app's bundle consists of: main.mjs, and the scripts it runs as processes of their own. */
const processScripts: Record<string, string[]> = { runner: ['worker-host.mjs'], builder: ['kaniko-context-script.mjs'] };
const bundleFiles = (app: string) => ['main.mjs', ...(processScripts[app] ?? [])];
// Runs under the pinned Node.js, not the machine's.
const node = process.execPath;

describe('workspace', () => {
  it('runs on the pinned Node.js 26', async () => {
    const pkg = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8'));
    expect(pkg.devDependencies.node).toMatch(/^26\.\d+\.\d+$/);
    expect(pkg.engines.node).toBe('>=26 <27');
    expect(process.versions.node).toBe(pkg.devDependencies.node);
  });

  it('type-checks with no errors', async () => {
    const result = await execa(node, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', path.join(root, 'tsconfig.json')], { reject: false });
    expect(result.stdout).toBe('');
    expect(result.exitCode).toBe(0);
  }, 120_000);

  it.each(apps)('bundles %s into main.mjs, which starts', async (app) => {
    const bundled = await execa(node, [path.join(root, 'tools/build/bundle-app.ts')], { cwd: path.join(root, 'apps', app), reject: false });
    expect(bundled.stderr).toBe('');
    expect(bundled.stdout).toBe(`bundled apps/${app} -> ${bundleFiles(app).map((file) => `dist/apps/${app}/${file}`).join(', ')}`);
    const bundle = path.join(root, 'dist/apps', app, 'main.mjs');
    // Run from / with an empty environment: nothing may come from the workspace's cwd or env.
    // A service that does not refuse would run on: the timeout kills it, and the test fails on its exit code.
    const run = await execa(node, [bundle, 'help'], { cwd: '/', reject: false, env: {}, extendEnv: false, timeout: 30_000 });
    if (app === 'cli') {
      expect(run.exitCode).toBe(0);
      expect(run.stdout).toMatch(/^usage: kublambda <command>/);
    } else if (app === 'event-watcher') {
      expect(run.exitCode).toBe(1);
      const line = JSON.parse(run.stdout) as { level: string; message: string; component: string };
      expect(line).toMatchObject({ component: app, level: 'error' });
      expect(line.message).toBe(
        "event-watcher: invalid configuration:\n  - WATCHER_CONFIG is required: the JSON api-controller writes into the watcher's Deployment\n  - RUNNER_URL is required\n  - REDIS_URL is required",
      );
    } else if (app === 'api-controller' || app === 'builder' || app === 'runner') {
      // Unconfigured services refuse to start and say what is missing, in one structured line.
      expect(run.exitCode).toBe(1);
      const line = JSON.parse(run.stdout) as { level: string; message: string; component: string };
      expect(line).toMatchObject({ component: app, level: 'error' });
      const missing = ['REDIS_URL is required', 'invalid artifact store configuration: ARTIFACT_STORE_URL is not set'];
      // The builder never holds the keys that encrypt Secret values in route records.
      if (app !== 'builder') missing.push('ENV_ENCRYPTION_KEYS is required: <key id>:<base64 of 32 random bytes>, comma-separated, the first one encrypting (for example from `openssl rand -base64 32`)');
      expect(line.message).toBe(`${app}: invalid configuration:\n  - ${missing.join('\n  - ')}`);
    } else {
      // The autoscaler has a default for everything but the API server it scales through.
      expect(app).toBe('autoscaler');
      expect(run.exitCode).toBe(1);
      const line = JSON.parse(run.stdout) as { level: string; message: string; component: string };
      expect(line).toMatchObject({ component: app, level: 'error' });
      expect(line.message).toBe(
        'autoscaler: invalid configuration:\n  - no Kubernetes API server to talk to: set KUBECONFIG, run in a pod (KUBERNETES_SERVICE_HOST), or put a kubeconfig at ~/.kube/config',
      );
    }
  }, 60_000);

  it('ships the one Lambda CRD in the Helm chart', async () => {
    expect(await realpath(path.join(root, 'charts/kublambda/crds/lambdas.kublambda.io.yaml'))).toBe(await realpath(lambdaCrdPath));
  });
});
