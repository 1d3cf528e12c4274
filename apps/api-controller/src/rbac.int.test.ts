// api-controller runs as a user that holds only the chart's RBAC rules (charts/kublambda/
// templates/api-controller-rbac.yaml, rendered by helm with the chart's default values),
// impersonated through its kubeconfig, against the real API server with RBAC on. Builder and
// runner are local processes, as elsewhere.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import YAML from 'yaml';
import { helmBinary, kubectl, waitUntil } from '@kublambda/dev-servers';
import { condition, isReady, startLambdaPlatform, type LambdaPlatform } from './lambda-platform.testing.ts';

const chart = path.resolve(import.meta.dirname, '../../../charts/kublambda');
const release = `kl-rbac-${randomBytes(4).toString('hex')}`;
const user = `${release}-api-controller`;
let platform: LambdaPlatform;
let controllerLog: string;

async function kubectlOk(args: string[], input?: string): Promise<void> {
  const result = await kubectl(args, { input });
  if (result.exitCode !== 0) throw new Error(`kubectl ${args.join(' ')}: ${result.stderr}`);
}

beforeAll(async () => {
  platform = await startLambdaPlatform('rbac');
  // The rules come from values (watchTriggers.watchableResources): helm renders them.
  const rendered = await execa(await helmBinary(), ['template', release, chart, '--namespace', platform.namespace, '--show-only', 'templates/api-controller-rbac.yaml'], { reject: false });
  if (rendered.exitCode !== 0) throw new Error(`helm template: ${rendered.stderr}`);
  await kubectlOk(['apply', '-f', '-'], rendered.stdout);
  await kubectlOk(['create', 'clusterrolebinding', release, `--clusterrole=${release}-api-controller`, `--user=${user}`]);
  await kubectlOk(['create', 'rolebinding', release, '-n', platform.namespace, `--role=${release}-api-controller-leader-election`, `--user=${user}`]);

  const kubeconfig = YAML.parse(await readFile(process.env.KUBECONFIG!, 'utf8'));
  for (const entry of kubeconfig.users) entry.user.as = user;
  const impersonating = path.join(platform.logDir, 'api-controller.kubeconfig');
  await writeFile(impersonating, YAML.stringify(kubeconfig));

  await platform.startBuilder();
  controllerLog = (await platform.startController('restricted', { KUBECONFIG: impersonating, EXTERNAL_BASE_URL: 'http://lambdas.example.com' })).logFile;
}, 90_000);
afterAll(async () => {
  await platform?.stop();
  await kubectl(['delete', 'clusterrolebinding', release, '--ignore-not-found']);
  // What the template holds cluster-wide (namespaced objects go with the namespace).
  await kubectl(['delete', 'clusterrole,clusterrolebinding', '-l', `app.kubernetes.io/instance=${release}`, '--ignore-not-found']);
});

describe("api-controller's RBAC rules", () => {
  it('are enough for a lambda with an HTTP trigger and env from a Secret, and for deleting it', async () => {
    await kubectlOk(['create', 'secret', 'generic', 'token', '-n', platform.namespace, '--from-literal=token=t']);
    await platform.apply('guarded', {
      source: { inline: 'export default () => new Response("ok")' },
      env: [{ name: 'TOKEN', valueFrom: { secretKeyRef: { name: 'token', key: 'token' } } }],
      triggers: { http: { path: '/guarded' } },
    });
    const lambda = await platform.waitFor('guarded', 'Ready', isReady);
    expect(condition(lambda, 'Routed')!.message).toContain('through Ingress kublambda-guarded');
    expect(lambda!.status!.url).toBe('http://lambdas.example.com/guarded');
    const events = await kubectl(['get', 'events', '-n', platform.namespace, '--field-selector', 'involvedObject.name=guarded', '-o', 'jsonpath={.items[*].reason}']);
    expect(events.stdout).toContain('Serving');

    await platform.remove('guarded');
    await platform.waitFor('guarded', 'gone', (l) => l === undefined);
    const log = await readFile(controllerLog, 'utf8');
    expect(log).toContain('"message":"reconciling lambdas"');
    expect(log).not.toMatch(/forbidden|HTTP 403/i);
  }, 60_000);

  it("are enough to make a watcher's ServiceAccount, Role, RoleBinding, Secret and Deployment, and to remove them", async () => {
    // Apps and core kinds: the Role holds only what the ClusterRole lets the controller grant.
    await platform.apply('watching', {
      source: { inline: 'export default () => new Response("ok")' },
      triggers: { watch: [{ apiVersion: 'v1', kind: 'ConfigMap' }, { apiVersion: 'apps/v1', kind: 'Deployment' }] },
    });
    await platform.waitFor('watching', 'with its watcher available', (l) => condition(l, 'WatchersReady')?.reason === 'Available', 90_000);
    for (const kind of ['serviceaccount', 'role', 'rolebinding', 'secret', 'deployment']) {
      expect((await kubectl(['get', kind, 'kublambda-watch-watching', '-n', platform.namespace])).exitCode).toBe(0);
    }

    await platform.apply('watching', { source: { inline: 'export default () => new Response("ok")' } });
    await platform.waitFor('watching', 'without watchers', (l) => l?.status?.observedGeneration === l?.metadata.generation && !condition(l, 'WatchersReady'));
    await waitUntil('the watcher objects to go', async () => {
      const left = await kubectl(['get', 'serviceaccount,role,rolebinding,secret,deployment', '-n', platform.namespace, '-l', 'kublambda.io/lambda=watching', '-o', 'name']);
      return left.exitCode === 0 && left.stdout.trim() === '';
    });
    await platform.remove('watching');
    await platform.waitFor('watching', 'gone', (l) => l === undefined);
    expect(await readFile(controllerLog, 'utf8')).not.toMatch(/forbidden|HTTP 403/i);
  }, 120_000);
});
