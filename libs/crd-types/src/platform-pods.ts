// How the platform's own pods are found from outside: the labels the chart gives them
// (charts/kublambda, "kublambda.selectorLabels") and the names of their container ports. The
// runner Service api-controller applies selects RUNNER_POD_LABELS; the CLI port-forwards to
// these pods and reads their logs through the API server.

export const RUNNER_POD_LABELS = { 'app.kubernetes.io/name': 'kublambda', 'app.kubernetes.io/component': 'runner' } as const;
export const API_CONTROLLER_POD_LABELS = { 'app.kubernetes.io/name': 'kublambda', 'app.kubernetes.io/component': 'api-controller' } as const;
export const BUILDER_POD_LABELS = { 'app.kubernetes.io/name': 'kublambda-builder', 'app.kubernetes.io/component': 'builder' } as const;

/** The runner's container port that serves lambdas. */
export const RUNNER_HTTP_PORT_NAME = 'http';
/** The container port of a platform service's admin API (healthz, metrics, JSON for the CLI). */
export const ADMIN_PORT_NAME = 'admin';

/** A label selector (a=b,c=d) for a set of labels. */
export function labelSelector(labels: Readonly<Record<string, string>>): string {
  return Object.entries(labels)
    .map(([key, value]) => `${key}=${value}`)
    .join(',');
}
