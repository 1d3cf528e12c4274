export { WorkQueue, backoffDelay, type WorkQueueOptions } from './work-queue.ts';
export { TerminalError, describeError, isConflict, isNotFound } from './errors.ts';
export { startReconcileWorkers, type Reconcile, type ReconcileResult, type ReconcileWorkers } from './controller.ts';
export { watchResource, objectKey, type ResourceWatch, type WatchResourceOptions } from './watch-resource.ts';
export { LeaderElector, type LeaderElectionOptions } from './leader-election.ts';
export { loadKubeConfig, reuseApiConnections } from './kube-config.ts';
