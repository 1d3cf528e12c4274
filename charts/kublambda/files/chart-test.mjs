// `helm test`: deploys a lambda, waits until it is Ready, calls it through the runner Service and
// removes it. Runs with the platform's own Node (the api-controller image), no dependencies.
// In a pod it finds the API server and its credentials where Kubernetes puts them; the same
// variables point it at any cluster (tools/helm/chart-test-hook.int.test.ts runs it that way).
import { readFile } from 'node:fs/promises';

const serviceAccountDir = process.env.SERVICE_ACCOUNT_DIR ?? '/var/run/secrets/kubernetes.io/serviceaccount';
const apiServer = process.env.KUBERNETES_API_URL ?? `https://${process.env.KUBERNETES_SERVICE_HOST}:${process.env.KUBERNETES_SERVICE_PORT}`;
const namespace = process.env.LAMBDA_NAMESPACE ?? (await readFile(`${serviceAccountDir}/namespace`, 'utf8')).trim();
const runnerUrl = process.env.RUNNER_URL;
const name = process.env.LAMBDA_NAME ?? 'kublambda-chart-test';
const timeoutMs = Number(process.env.READY_TIMEOUT_SECONDS ?? 180) * 1000;
const callAttempts = Number(process.env.CALL_ATTEMPTS ?? 30);
const token = (await readFile(`${serviceAccountDir}/token`, 'utf8')).trim();
const lambdas = `${apiServer}/apis/kublambda.io/v1alpha1/namespaces/${namespace}/lambdas`;
const expected = `chart test ${Date.now().toString(36)}`;

function say(message, fields = {}) {
  console.log(JSON.stringify({ message, namespace, name, ...fields }));
}

async function api(method, url, body) {
  const response = await fetch(url, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

async function removeLambda() {
  const removed = await api('DELETE', `${lambdas}/${name}`);
  if (removed.status !== 200 && removed.status !== 202 && removed.status !== 404) throw new Error(`deleting Lambda ${namespace}/${name}: ${removed.status} ${JSON.stringify(removed.body)}`);
}

async function main() {
  if (!runnerUrl) throw new Error('RUNNER_URL is not set: the runner Service URL, for example http://kublambda-runner.kublambda-system.svc');
  // A lambda left by an earlier, interrupted run would hold the name until its finalizer is done.
  await removeLambda();
  for (let waited = 0; (await api('GET', `${lambdas}/${name}`)).status !== 404; waited++) {
    if (waited >= 60) throw new Error(`Lambda ${namespace}/${name} from an earlier run is still being deleted`);
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  const created = await api('POST', lambdas, {
    apiVersion: 'kublambda.io/v1alpha1',
    kind: 'Lambda',
    metadata: { name, labels: { 'app.kubernetes.io/component': 'chart-test' } },
    spec: { source: { inline: `export default async () => new Response(${JSON.stringify(expected)})` } },
  });
  if (created.status !== 201) throw new Error(`creating Lambda ${namespace}/${name}: ${created.status} ${JSON.stringify(created.body)}`);
  say('created the lambda');
  const deadline = Date.now() + timeoutMs;
  let conditions = [];
  for (;;) {
    const lambda = await api('GET', `${lambdas}/${name}`);
    conditions = lambda.body?.status?.conditions ?? [];
    if (conditions.some((condition) => condition.type === 'Ready' && condition.status === 'True')) break;
    if (Date.now() > deadline) throw new Error(`Lambda ${namespace}/${name} was not Ready within ${timeoutMs / 1000} s; its conditions: ${JSON.stringify(conditions)}`);
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  say('the lambda is Ready');
  // Routes reach runners within a moment of Ready; a few tries cover that gap.
  let answer;
  for (let attempt = 1; ; attempt++) {
    const response = await fetch(`${runnerUrl}/${namespace}/${name}`).catch((error) => ({ status: 0, text: async () => String(error) }));
    answer = { status: response.status, body: await response.text() };
    if (answer.status === 200 && answer.body === expected) break;
    if (attempt >= callAttempts) throw new Error(`the lambda answered ${answer.status} ${JSON.stringify(answer.body)}, not 200 ${JSON.stringify(expected)}`);
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  say('the lambda answered', { status: answer.status });
}

try {
  await main();
  await removeLambda();
  say('passed');
} catch (error) {
  say('failed', { error: error instanceof Error ? error.message : String(error) });
  await removeLambda().catch(() => {});
  process.exitCode = 1;
}
