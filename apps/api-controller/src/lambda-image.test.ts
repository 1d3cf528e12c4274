import { describe, expect, it } from '@jest/globals';
import { imageJobId } from '@kublambda/build-queue';
import type { Condition, Lambda, LambdaStatus } from '@kublambda/crd-types';
import {
  decideImage,
  desiredImageJob,
  imageJobOutcome,
  imageRepository,
  mountSources,
  parseImageReference,
  referencedByOther,
  supersededImages,
  SUPERSEDED_IMAGES_ANNOTATION,
} from './lambda-image.ts';

const hex = (c: string) => c.repeat(64);
const A = { digest: `sha256:${hex('a')}`, size: 10 };
const B = { digest: `sha256:${hex('b')}`, size: 20 };
const image = (repo: string, c: string, host = 'registry.test:5000') => `${host}/${repo}@sha256:${hex(c)}`;
const ready = (status: Condition['status'], reason: string): Condition => ({ type: 'ImageReady', status, reason, message: `${reason} message`, lastTransitionTime: '2026-01-01T00:00:00Z' });
const built = { type: 'Built', status: 'True', reason: 'Built', message: '' } as const;

function lambda(name: string, status?: LambdaStatus, namespace = 'shop'): Lambda {
  return { apiVersion: 'kublambda.io/v1alpha1', kind: 'Lambda', metadata: { namespace, name, generation: 1 }, spec: { source: { inline: 'x' } }, ...(status ? { status } : {}) } as Lambda;
}

describe('imageRepository and parseImageReference', () => {
  it('names the repository after the namespace and lambda', () => {
    expect(imageRepository('kublambda', 'shop', 'cart')).toBe('kublambda/shop-cart');
  });

  it.each([
    [image('kublambda/shop-cart', 'c'), { host: 'registry.test:5000', repository: 'kublambda/shop-cart', digest: `sha256:${hex('c')}` }],
    ['registry.test/kublambda/shop-cart:latest', undefined],
    [`kublambda@sha256:${hex('c')}`, undefined],
    [`r/x@sha256:${hex('C')}`, undefined],
  ])('parses %s', (reference, parsed) => {
    expect(parseImageReference(reference)).toEqual(parsed);
  });
});

describe('mountSources', () => {
  const others = [
    lambda('cart', { artifact: A, image: image('kublambda/shop-cart', 'c'), conditions: [ready('True', 'Pushed')] }),
    // The same asset again: once is enough.
    lambda('cart', { artifact: A, image: image('kublambda/web-cart', 'c', 'other.host'), conditions: [ready('True', 'Pushed')] }, 'web'),
    // Another asset.
    lambda('list', { artifact: B, image: image('kublambda/shop-list', 'd'), conditions: [ready('True', 'Pushed')] }),
    // The same asset, but its image is still of the asset before (ImageReady not True).
    lambda('old', { artifact: A, image: image('kublambda/shop-old', 'e'), conditions: [ready('Unknown', 'Building')] }),
    // No image yet.
    lambda('new', { artifact: A, conditions: [ready('Unknown', 'Building')] }),
    // The lambda itself.
    lambda('me', { artifact: A, image: image('kublambda/shop-me', 'f'), conditions: [ready('True', 'Pushed')] }),
  ];

  it('lists the repositories of other lambdas whose image carries the same asset', () => {
    expect(mountSources('shop/me', A.digest, 'kublambda/shop-me', others)).toEqual(['kublambda/shop-cart', 'kublambda/web-cart']);
  });

  it('leaves out its own repository, and is empty when no one has the asset', () => {
    expect(mountSources('shop/other', A.digest, 'kublambda/shop-cart', others)).toEqual(['kublambda/shop-me', 'kublambda/web-cart']);
    expect(mountSources('shop/me', `sha256:${hex('9')}`, 'kublambda/shop-me', others)).toEqual([]);
  });
});

describe('referencedByOther', () => {
  const others = [lambda('cart', { image: image('kublambda/shop-cart', 'c') }), lambda('me', { image: image('kublambda/shop-me', 'f') })];

  it.each([
    ['the same repository and digest, from any host', image('kublambda/shop-cart', 'c', 'elsewhere'), true],
    ['the same digest in another repository', image('kublambda/shop-x', 'c'), false],
    ['another digest in the same repository', image('kublambda/shop-cart', 'd'), false],
    ['only the lambda itself names it', image('kublambda/shop-me', 'f'), false],
  ])('%s: %s', (_label, reference, expected) => {
    expect(referencedByOther(parseImageReference(reference)!, 'shop/me', others)).toBe(expected);
  });
});

describe('desiredImageJob', () => {
  it('asks for the asset on the runner base, with the route settings but no env, host or path', () => {
    const cart = { ...lambda('cart'), spec: { source: { inline: 'x' }, timeoutSeconds: 5, env: [{ name: 'A', value: 'b' }], triggers: { http: { host: 'shop.example.com', path: '/cart' } } } } as Lambda;
    const { jobId, data } = desiredImageJob(cart, A, 'kublambda/shop-cart', ['kublambda/web-cart']);
    expect(jobId).toBe(imageJobId({ namespace: 'shop', name: 'cart' }, A.digest, 'kublambda/shop-cart'));
    expect(data).toEqual({
      lambda: { namespace: 'shop', name: 'cart' },
      artifact: A,
      repository: 'kublambda/shop-cart',
      tag: hex('a'),
      settings: { namespace: 'shop', name: 'cart', runtime: 'nodejs', timeoutSeconds: 5, memoryMiB: 128, concurrency: 50, cpuMillis: 10_000, network: 'outbound', stateTables: [] },
      mountFrom: ['kublambda/web-cart'],
    });
  });
});

describe('decideImage', () => {
  const repository = 'kublambda/shop-me';
  const mine = image(repository, 'f');
  it.each<[string, Parameters<typeof decideImage>[0], ReturnType<typeof decideImage>['action'], string | undefined]>([
    ['no asset, build running', { artifact: undefined, built: { ...built, status: 'Unknown' }, repository, before: {} }, 'wait', 'Unknown'],
    ['no asset, build failed', { artifact: undefined, built: { ...built, status: 'False' }, repository, before: {} }, 'wait', 'False'],
    ['first image (builds just turned on)', { artifact: A, built, repository, before: { artifact: A } }, 'job', undefined],
    ['image of this asset pushed', { artifact: A, built, repository, before: { artifact: A, image: mine, conditions: [ready('True', 'Pushed')] } }, 'keep', 'True'],
    ['a new asset: the image is of the one before', { artifact: B, built, repository, before: { artifact: A, image: mine, conditions: [ready('True', 'Pushed')] } }, 'job', undefined],
    ['the repository changed (another prefix)', { artifact: A, built, repository: 'other/shop-me', before: { artifact: A, image: mine, conditions: [ready('True', 'Pushed')] } }, 'job', undefined],
    ['the builder refused this asset: permanent', { artifact: A, built, repository, before: { artifact: A, conditions: [ready('False', 'ImageBuildFailed')] } }, 'keep', 'False'],
    ['the builder refused the asset before: try the new one', { artifact: B, built, repository, before: { artifact: A, conditions: [ready('False', 'ImageBuildFailed')] } }, 'job', undefined],
    ['errored after retries: ask again', { artifact: A, built, repository, before: { artifact: A, conditions: [ready('False', 'ImageBuildError')] } }, 'job', undefined],
    ['still building', { artifact: A, built, repository, before: { artifact: A, conditions: [ready('Unknown', 'Building')] } }, 'job', undefined],
    ['ImageReady=True but no image in status', { artifact: A, built, repository, before: { artifact: A, conditions: [ready('True', 'Pushed')] } }, 'job', undefined],
  ])('%s', (_label, input, action, status) => {
    const step = decideImage(input);
    expect(step.action).toBe(action);
    if (step.action !== 'job') expect(step.condition).toMatchObject({ type: 'ImageReady', status });
  });
});

describe('imageJobOutcome', () => {
  const old = image('kublambda/shop-me', '1');
  const pushed = image('kublambda/shop-me', '2');
  it.each<[string, Parameters<typeof imageJobOutcome>[0], string | undefined, object]>([
    ['absent: request it', { state: 'absent' }, old, { condition: { status: 'Unknown', reason: 'Building' }, request: true, pollAgain: true }],
    ['pending', { state: 'pending' }, old, { condition: { status: 'Unknown', reason: 'Building' }, pollAgain: true }],
    ['errored after its retries: report, forget, ask again later', { state: 'error', message: 'registry away' }, old, { condition: { status: 'False', reason: 'ImageBuildError', message: 'registry away' }, forget: true, pollAgain: true }],
    ['failed for this asset', { state: 'done', result: { outcome: 'failed', message: 'no base' } }, old, { condition: { status: 'False', reason: 'ImageBuildFailed', message: 'no base' }, consumed: true }],
    ['pushed, replacing the image before', { state: 'done', result: { outcome: 'pushed', image: pushed, digest: `sha256:${hex('2')}`, size: 5 } }, old, { condition: { status: 'True', reason: 'Pushed' }, image: pushed, consumed: true, superseded: old }],
    ['pushed, the first image', { state: 'done', result: { outcome: 'pushed', image: pushed, digest: `sha256:${hex('2')}`, size: 5 } }, undefined, { image: pushed, consumed: true }],
    ['pushed the same image again', { state: 'done', result: { outcome: 'pushed', image: pushed, digest: `sha256:${hex('2')}`, size: 5 } }, pushed, { image: pushed, consumed: true }],
  ])('%s', (_label, job, previous, expected) => {
    const outcome = imageJobOutcome(job, A.digest, previous);
    expect(outcome).toMatchObject(expected);
    if (!('superseded' in expected)) expect(outcome.superseded).toBeUndefined();
    if (!('request' in expected)) expect(outcome.request).toBeUndefined();
  });
});

describe('supersededImages', () => {
  it('reads the annotation', () => {
    const annotated = lambda('me');
    expect(supersededImages(annotated)).toEqual([]);
    annotated.metadata.annotations = { [SUPERSEDED_IMAGES_ANNOTATION]: `${image('r/a', '1')} ${image('r/a', '2')}` };
    expect(supersededImages(annotated)).toEqual([image('r/a', '1'), image('r/a', '2')]);
  });
});
