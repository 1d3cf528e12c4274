import { describe, expect, it } from '@jest/globals';
import { buildRecordOfJob, finishedBuildRecordsFromEvents, matchesBuildFilter, parseBuildJobId, sortBuildRecords, type QueueEvent } from './build-record.ts';

const hex = (c: string) => c.repeat(64);
const assetId = `shop/hello/${hex('a')}`;
const imageId = `shop/hello/${hex('b')}/image/kublambda.shop-hello`;
const t0 = Date.parse('2026-12-01T10:00:00Z');

describe('parseBuildJobId', () => {
  it.each([
    [assetId, { lambda: { namespace: 'shop', name: 'hello' }, kind: 'asset', digest: `sha256:${hex('a')}` }],
    [imageId, { lambda: { namespace: 'shop', name: 'hello' }, kind: 'image', digest: `sha256:${hex('b')}` }],
    ['shop/hello', undefined],
    [`shop/hello/${hex('a')}/other`, undefined],
    ['', undefined],
  ])('%s', (id, expected) => {
    expect(parseBuildJobId(id)).toEqual(expected);
  });
});

describe('buildRecordOfJob', () => {
  const job = { id: assetId, name: 'build', timestamp: t0, processedOn: t0 + 1_000, finishedOn: t0 + 3_500, attemptsMade: 1, returnvalue: null as unknown };

  it('a built asset: completed, with its duration and the asset it made', () => {
    const record = buildRecordOfJob({ ...job, returnvalue: { outcome: 'built', artifact: { digest: `sha256:${hex('c')}`, size: 10 }, warnings: [] } }, 'completed', t0 + 9_000);
    expect(record).toEqual({
      id: assetId,
      lambda: { namespace: 'shop', name: 'hello' },
      kind: 'asset',
      digest: `sha256:${hex('a')}`,
      output: `sha256:${hex('c')}`,
      state: 'completed',
      createdAt: '2026-12-01T10:00:00.000Z',
      startedAt: '2026-12-01T10:00:01.000Z',
      finishedAt: '2026-12-01T10:00:03.500Z',
      durationMs: 2_500,
      attempts: 1,
      queued: true,
      retryable: false,
    });
  });

  it('a completed job whose source failed to build is failed, with the builder message and reason', () => {
    const record = buildRecordOfJob({ ...job, returnvalue: { outcome: 'failed', reason: 'CompileFailed', message: 'index.ts:1:1: Expected ")"' } }, 'completed', t0);
    expect(record).toMatchObject({ state: 'failed', error: 'index.ts:1:1: Expected ")"', reason: 'CompileFailed' });
  });

  it('a failed job carries its last error; an image job that failed for good carries the message', () => {
    expect(buildRecordOfJob({ ...job, attemptsMade: 5, failedReason: 'S3 down' }, 'failed', t0)).toMatchObject({ state: 'failed', error: 'S3 down', attempts: 5, retryable: true });
    const image = buildRecordOfJob({ ...job, id: imageId, name: 'image', returnvalue: { outcome: 'failed', message: 'no base image' } }, 'completed', t0);
    expect(image).toMatchObject({ kind: 'image', state: 'failed', error: 'no base image', retryable: false });
    expect(image).not.toHaveProperty('reason');
  });

  it('an active job counts its running attempt and lasts until now; waiting states are waiting', () => {
    expect(buildRecordOfJob({ ...job, attemptsMade: 0, finishedOn: undefined }, 'active', t0 + 4_000)).toMatchObject({ state: 'active', attempts: 1, durationMs: 3_000 });
    for (const state of ['wait', 'delayed', 'prioritized']) {
      expect(buildRecordOfJob({ ...job, processedOn: undefined, finishedOn: undefined, attemptsMade: 0 }, state, t0)).toMatchObject({ state: 'waiting', attempts: 0 });
    }
  });

  it('a pushed image names the image it made', () => {
    const image = 'registry.local/kublambda/shop-hello@sha256:' + hex('d');
    expect(buildRecordOfJob({ ...job, id: imageId, name: 'image', returnvalue: { outcome: 'pushed', image, digest: `sha256:${hex('d')}`, size: 5 } }, 'completed', t0)).toMatchObject({ kind: 'image', output: image });
  });

  it('ignores jobs whose ids are not builds', () => {
    expect(buildRecordOfJob({ ...job, id: 'other' }, 'completed', t0)).toBeUndefined();
  });
});

describe('finishedBuildRecordsFromEvents', () => {
  const event = (ms: number, fields: Record<string, string>): QueueEvent => ({ id: `${t0 + ms}-0`, fields });
  const events = [
    event(0, { event: 'added', jobId: assetId, name: 'build' }),
    event(1, { event: 'waiting', jobId: assetId }),
    event(100, { event: 'active', jobId: assetId, prev: 'waiting' }),
    event(200, { event: 'delayed', jobId: assetId, delay: '0' }),
    event(1_200, { event: 'active', jobId: assetId, prev: 'waiting' }),
    event(2_100, { event: 'completed', jobId: assetId, returnvalue: JSON.stringify({ outcome: 'failed', reason: 'CompileFailed', message: 'boom' }), prev: 'active' }),
    event(2_200, { event: 'removed', jobId: assetId, prev: 'completed' }),
    event(3_000, { event: 'added', jobId: imageId, name: 'image' }),
    event(3_100, { event: 'active', jobId: imageId, prev: 'waiting' }),
    event(3_600, { event: 'failed', jobId: imageId, failedReason: 'registry away', prev: 'active' }),
    event(4_000, { event: 'added', jobId: 'shop/other/' + hex('e'), name: 'build' }),
    event(5_000, { event: 'drained' }),
  ];

  it('rebuilds removed jobs that finished: attempts, times, outcome', () => {
    const records = finishedBuildRecordsFromEvents(events, new Set(), t0 + 10_000);
    expect(records).toEqual([
      expect.objectContaining({ id: assetId, kind: 'asset', state: 'failed', error: 'boom', reason: 'CompileFailed', attempts: 2, durationMs: 2_000, queued: false, createdAt: '2026-12-01T10:00:00.000Z' }),
      expect.objectContaining({ id: imageId, kind: 'image', state: 'failed', error: 'registry away', attempts: 1, durationMs: 500, queued: false, retryable: false }),
    ]);
  });

  it('leaves out jobs still in the queue (their own record is better) and a job added again, until it finishes again', () => {
    expect(finishedBuildRecordsFromEvents(events, new Set([assetId]), t0).map((r) => r.id)).toEqual([imageId]);
    const again = [...events, event(6_000, { event: 'added', jobId: imageId, name: 'image' })];
    expect(finishedBuildRecordsFromEvents(again, new Set(), t0).map((r) => r.id)).toEqual([assetId]);
  });
});

describe('matchesBuildFilter and sortBuildRecords', () => {
  const record = (id: string, createdAt: string, state: 'completed' | 'failed') => ({ ...parseBuildJobId(id)!, id, createdAt, state, attempts: 1, queued: true, retryable: false });
  const a = record(assetId, '2026-12-01T10:00:00.000Z', 'completed');
  const b = record('dev/visits/' + hex('f'), '2026-12-01T11:00:00.000Z', 'failed');

  it.each([
    [{}, true, true],
    [{ namespace: 'shop' }, true, false],
    [{ namespace: 'shop', lambda: 'hello' }, true, false],
    [{ lambda: 'visits' }, false, true],
    [{ state: 'failed' as const }, false, true],
  ])('%j', (filter, matchesA, matchesB) => {
    expect([matchesBuildFilter(a, filter), matchesBuildFilter(b, filter)]).toEqual([matchesA, matchesB]);
  });

  it('lists the newest first', () => {
    expect(sortBuildRecords([a, b]).map((r) => r.id)).toEqual([b.id, a.id]);
  });
});
