// What the builder's admin API (GET /api/builds) returns for each build, and what
// `kublambda builds` shows: the contract between the two, made from BullMQ jobs and, for jobs
// api-controller has already taken the outcome of and removed, from the queue's event stream.
import { IMAGE_JOB_NAME, type BuildJobResult, type ImageJobResult, type LambdaRef } from './index.ts';

export type BuildKind = 'asset' | 'image';
export const BUILD_STATES = ['waiting', 'active', 'completed', 'failed'] as const;
export type BuildState = (typeof BUILD_STATES)[number];

export interface BuildRecord {
  /** The BullMQ job id: `<namespace>/<name>/<digest hex>` (asset), `.../image/<repository>` (image). */
  id: string;
  lambda: LambdaRef;
  kind: BuildKind;
  /**
   * What the build is made from: the source digest for an asset build, the asset's digest for an
   * image build (both `sha256:...`, both from the job id, so they are known before the build ends).
   */
  digest: string;
  /** What a completed build made: the asset's digest, or the pushed image (`host/repository@sha256:...`). */
  output?: string;
  /**
   * waiting (queued, or backing off before a retry), active, completed, failed. A build that ran
   * to the end but whose source could not be built (a compile error; for images, the builder's
   * refusal) is failed, with the builder's message, though BullMQ counts it as completed.
   */
  state: BuildState;
  /** ISO 8601 times: requested, first started, finished. */
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  /** From the first start to the end (or to now, while active). */
  durationMs?: number;
  /** Attempts started so far (failed attempts are retried with backoff). */
  attempts: number;
  /** Why it failed: the last attempt's error, or the builder's message about the source. */
  error?: string;
  /** The failure's reason code for asset builds whose source is at fault (CompileFailed, ...). */
  reason?: string;
  /**
   * Whether the job is still in the queue. false: api-controller has recorded its outcome in the
   * Lambda's status and removed it, and this record comes from the queue's event history.
   */
  queued: boolean;
  /**
   * Whether a retry may run it again: it is queued and failed as a job (its attempts ran out), not
   * a build that ran to the end and found the source at fault.
   */
  retryable: boolean;
}

export interface BuildFilter {
  namespace?: string;
  lambda?: string;
  state?: BuildState;
}

/** Whether a job id (or a record) is the lambda's: ids start with `<namespace>/<name>/`. */
export function lambdaJobIdPrefix(lambda: LambdaRef): string {
  return `${lambda.namespace}/${lambda.name}/`;
}

/** The lambda, kind and input digest a job id names; undefined for an id no build job has. */
export function parseBuildJobId(id: string): { lambda: LambdaRef; kind: BuildKind; digest: string } | undefined {
  const [namespace, name, hex, image, ...repository] = id.split('/');
  if (!namespace || !name || !hex) return undefined;
  if (image === undefined) return { lambda: { namespace, name }, kind: 'asset', digest: `sha256:${hex}` };
  if (image === IMAGE_JOB_NAME && repository.length > 0) return { lambda: { namespace, name }, kind: 'image', digest: `sha256:${hex}` };
  return undefined;
}

export function matchesBuildFilter(record: BuildRecord, filter: BuildFilter): boolean {
  return (
    (filter.namespace === undefined || record.lambda.namespace === filter.namespace) &&
    (filter.lambda === undefined || record.lambda.name === filter.lambda) &&
    (filter.state === undefined || record.state === filter.state)
  );
}

/** The parts of a BullMQ job a record is made from (a Job has them all). */
export interface QueuedJob {
  id?: string;
  name: string;
  timestamp: number;
  processedOn?: number;
  finishedOn?: number;
  attemptsMade: number;
  failedReason?: string;
  returnvalue: unknown;
}

/** BullMQ's job states; everything before active is waiting here. */
export type QueueJobState = 'completed' | 'failed' | 'active' | 'wait' | 'waiting' | 'waiting-children' | 'prioritized' | 'delayed' | 'unknown';

/** A job in the queue as a record; undefined for a job whose id is not a build's. */
export function buildRecordOfJob(job: QueuedJob, jobState: QueueJobState | string, now: number): BuildRecord | undefined {
  const parsed = job.id === undefined ? undefined : parseBuildJobId(job.id);
  if (!parsed) return undefined;
  const kind: BuildKind = job.name === IMAGE_JOB_NAME ? 'image' : 'asset';
  const state: BuildState = jobState === 'completed' ? 'completed' : jobState === 'failed' ? 'failed' : jobState === 'active' ? 'active' : 'waiting';
  return recordOf({
    id: job.id!,
    ...parsed,
    kind,
    state,
    createdAt: job.timestamp,
    startedAt: job.processedOn || undefined,
    finishedAt: state === 'completed' || state === 'failed' ? job.finishedOn || undefined : undefined,
    // attemptsMade counts finished attempts; the running one is started too.
    attempts: job.attemptsMade + (state === 'active' ? 1 : 0),
    failedReason: state === 'failed' ? job.failedReason : undefined,
    result: state === 'completed' ? job.returnvalue : undefined,
    queued: true,
    now,
  });
}

/** One entry of the queue's event stream (XRANGE): its id (`<ms>-<n>`) and fields. */
export interface QueueEvent {
  id: string;
  fields: Record<string, string>;
}

/**
 * Records of finished builds that are no longer in the queue, from its event stream (BullMQ
 * keeps the latest ten thousand or so events): for each job id not in `queuedIds`, what
 * happened since it was last added, if that ended in completed or failed.
 */
export function finishedBuildRecordsFromEvents(events: QueueEvent[], queuedIds: ReadonlySet<string>, now: number): BuildRecord[] {
  interface Seen {
    name?: string;
    createdAt?: number;
    startedAt?: number;
    attempts: number;
    end?: { at: number; failedReason?: string; result?: unknown; failed: boolean };
  }
  const seen = new Map<string, Seen>();
  for (const event of events) {
    const { event: type, jobId } = event.fields;
    if (!jobId || queuedIds.has(jobId) || !parseBuildJobId(jobId)) continue;
    const at = Number(event.id.split('-')[0]);
    if (type === 'added') {
      seen.set(jobId, { name: event.fields.name, createdAt: at, attempts: 0 });
      continue;
    }
    const entry = seen.get(jobId) ?? { attempts: 0 };
    seen.set(jobId, entry);
    entry.createdAt ??= at;
    if (type === 'active') {
      entry.startedAt ??= at;
      entry.attempts += 1;
    } else if (type === 'completed') {
      entry.end = { at, failed: false, result: parseJson(event.fields.returnvalue) };
    } else if (type === 'failed') {
      entry.end = { at, failed: true, failedReason: event.fields.failedReason };
    }
  }
  const records: BuildRecord[] = [];
  for (const [id, entry] of seen) {
    if (!entry.end) continue;
    const parsed = parseBuildJobId(id)!;
    const kind: BuildKind = entry.name === undefined ? parsed.kind : entry.name === IMAGE_JOB_NAME ? 'image' : 'asset';
    records.push(
      recordOf({
        id,
        ...parsed,
        kind,
        state: entry.end.failed ? 'failed' : 'completed',
        createdAt: entry.createdAt!,
        startedAt: entry.startedAt,
        finishedAt: entry.end.at,
        attempts: Math.max(entry.attempts, 1),
        failedReason: entry.end.failedReason,
        result: entry.end.result,
        queued: false,
        now,
      }),
    );
  }
  return records;
}

/** Newest first, as kubectl lists events: what was just requested is on top. */
export function sortBuildRecords(records: BuildRecord[]): BuildRecord[] {
  return [...records].sort((a, b) => b.createdAt.localeCompare(a.createdAt) || a.id.localeCompare(b.id));
}

function recordOf(input: {
  id: string;
  lambda: LambdaRef;
  kind: BuildKind;
  digest: string;
  state: BuildState;
  createdAt: number;
  startedAt?: number;
  finishedAt?: number;
  attempts: number;
  failedReason?: string;
  result?: unknown;
  queued: boolean;
  now: number;
}): BuildRecord {
  let state = input.state;
  let error = input.failedReason;
  let reason: string | undefined;
  let output: string | undefined;
  const result = input.result as BuildJobResult | ImageJobResult | null | undefined;
  if (state === 'completed' && result) {
    if (result.outcome === 'failed') {
      state = 'failed';
      error = result.message;
      if ('reason' in result) reason = result.reason;
    } else if (result.outcome === 'built') {
      output = result.artifact.digest;
    } else if (result.outcome === 'pushed') {
      output = result.image;
    }
  }
  const end = input.finishedAt ?? (input.state === 'active' ? input.now : undefined);
  const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());
  return {
    id: input.id,
    lambda: input.lambda,
    kind: input.kind,
    digest: input.digest,
    ...(output ? { output } : {}),
    state,
    createdAt: iso(input.createdAt)!,
    ...(input.startedAt !== undefined ? { startedAt: iso(input.startedAt) } : {}),
    ...(input.finishedAt !== undefined ? { finishedAt: iso(input.finishedAt) } : {}),
    ...(input.startedAt !== undefined && end !== undefined ? { durationMs: Math.max(0, end - input.startedAt) } : {}),
    attempts: input.attempts,
    ...(error ? { error } : {}),
    ...(reason ? { reason } : {}),
    queued: input.queued,
    retryable: input.queued && input.state === 'failed',
  };
}

function parseJson(text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
