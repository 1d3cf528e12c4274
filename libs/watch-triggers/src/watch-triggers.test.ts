import { describe, expect, it } from '@jest/globals';
import { readResourceEvent } from '@kublambda/lambda-api';
import { compileCondition, parseWatcherConfig, percentEncodeHeaderValue, resourceEventRequest, watchTriggerId, watcherKeys, watcherRedisUser, type ConditionInput } from './index.ts';

const configMap = (data: Record<string, string>, resourceVersion = '7') => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name: 'settings', namespace: 'shop', uid: 'uid-1', resourceVersion, labels: { app: 'demo' } },
  data,
});

describe('compileCondition', () => {
  const evaluate = (source: string, input: Partial<ConditionInput> = {}) => {
    const compiled = compileCondition(source);
    if (!compiled.ok) throw new Error(compiled.message);
    return compiled.evaluate({ type: 'ADDED', object: configMap({ enabled: 'true', count: '3' }), oldObject: null, ...input });
  };

  it.each([
    ['object.data.enabled == "true"', true],
    ['type == "MODIFIED"', false],
    ['object.metadata.labels.app == "demo" && object.metadata.name.startsWith("set")', true],
    ['int(object.data.count) > 2', true],
    ['oldObject == null', true],
    ['object.metadata.labels.exists(k, k == "app")', true],
  ])('evaluates %s', (source, matched) => {
    expect(evaluate(source)).toEqual({ matched });
  });

  it('sees the old object on a change', () => {
    const input = { type: 'MODIFIED' as const, oldObject: configMap({ enabled: 'false' }, '6') };
    expect(evaluate('oldObject.data.enabled != object.data.enabled', input)).toEqual({ matched: true });
  });

  it('reports a missing field as an evaluation error, not a match', () => {
    expect(evaluate('object.spec.replicas > 1')).toEqual({ matched: false, error: expect.stringContaining('spec') });
  });

  it('makes JSON numbers CEL doubles: int() is needed for int arithmetic', () => {
    const deployment = { metadata: { name: 'web' }, spec: { replicas: 3 } };
    expect(evaluate('object.spec.replicas > 2.0', { object: deployment })).toEqual({ matched: true });
    expect(evaluate('int(object.spec.replicas) + 1 == 4', { object: deployment })).toEqual({ matched: true });
    expect(evaluate('object.spec.replicas + 1 == 4', { object: deployment })).toEqual({ matched: false, error: expect.stringContaining("'_+_' applied to '(double, int)'") });
  });

  it.each([
    ['object.data.enabled == ', /^1:21: .*expecting/],
    ['type == "ADDED" &&\n  enabled', /^2:3: undeclared reference to 'enabled'/],
    ['object.data.all(k, k == other)', /undeclared reference to 'other'/],
    ['type + 1 == 2', /^1:\d+: found no matching overload for '_\+_' applied to '\(string, int\)'/],
    ['size(type) + 1', /must be true or false, but it gives an int/],
  ])('refuses %j with the position', (source, message) => {
    const compiled = compileCondition(source);
    expect(compiled.ok).toBe(false);
    expect(!compiled.ok && compiled.message).toMatch(message);
  });

  it('accepts the variable named type, which other CEL libraries reserve', () => {
    expect(compileCondition('type == "DELETED" || type == "ADDED"').ok).toBe(true);
  });
});

describe('the resource CloudEvent', () => {
  it('is read back by the lambda API helper with the same attributes, object and old object', async () => {
    const old = configMap({ note: 'before: "quoted" 100% é' }, '6');
    const { headers, body } = resourceEventRequest({
      type: 'MODIFIED',
      object: configMap({ note: 'after' }),
      oldObject: old,
      source: 'https://127.0.0.1:6443/api/v1/namespaces/shop/configmaps',
      time: new Date('2026-12-01T10:00:00Z'),
      triggerIndex: 1,
    });
    expect(headers).toMatchObject({ 'ce-id': 'uid-1/7', 'ce-type': 'io.kublambda.resource.modified', 'ce-subject': 'shop/settings', 'ce-specversion': '1.0', 'content-type': 'application/json' });
    for (const value of Object.values(headers)) expect(value).toMatch(/^[\x21-\x7e]*$/);
    const event = await readResourceEvent(new Request('http://runner/shop/on-change', { method: 'POST', headers, body }));
    expect(event).toEqual({
      id: 'uid-1/7',
      type: 'MODIFIED',
      source: 'https://127.0.0.1:6443/api/v1/namespaces/shop/configmaps',
      subject: 'shop/settings',
      time: '2026-12-01T10:00:00.000Z',
      triggerIndex: 1,
      object: configMap({ note: 'after' }),
      oldObject: old,
      oldObjectOmitted: false,
    });
  });

  it('gives a deletion an id per object, so a deletion found again by a relist carries the same id', () => {
    const ids = ['7', '9'].map((rv) => resourceEventRequest({ type: 'DELETED', object: configMap({}, rv), source: 's', time: new Date(), triggerIndex: 0 }).headers['ce-id']);
    expect(ids).toEqual(['uid-1/deleted', 'uid-1/deleted']);
  });

  it('leaves out an old object too large for a header, and says so', async () => {
    const big = configMap({ blob: 'x'.repeat(300 * 1024) }, '6');
    const { headers, body } = resourceEventRequest({ type: 'MODIFIED', object: configMap({}), oldObject: big, source: 's', time: new Date(), triggerIndex: 0 });
    expect(headers['ce-oldobject']).toBeUndefined();
    const event = await readResourceEvent(new Request('http://x/', { method: 'POST', headers, body }));
    expect({ old: event.oldObject, omitted: event.oldObjectOmitted }).toEqual({ old: null, omitted: true });
  });

  it('percent-encodes as the HTTP binding asks', () => {
    expect(percentEncodeHeaderValue('a b"c%d€')).toBe('a%20b%22c%25d%E2%82%AC');
  });
});

describe('watcher configuration and keys', () => {
  const trigger = { id: 'x', index: 0, apiVersion: 'v1', kind: 'ConfigMap', resource: 'configmaps', namespace: 'shop', events: ['ADDED' as const] };
  const config = { lambda: { namespace: 'shop', name: 'on-change' }, target: { host: '', path: '/shop/on-change' }, triggers: [trigger] };

  it('parses what the controller writes', () => {
    expect(parseWatcherConfig(JSON.stringify(config))).toEqual(config);
  });

  it.each([
    [undefined, /WATCHER_CONFIG is required/],
    ['{', /WATCHER_CONFIG is not JSON/],
    [JSON.stringify({ ...config, triggers: [] }), /triggers must be a non-empty list/],
    [JSON.stringify({ ...config, triggers: [{ ...trigger, events: ['CHANGED'] }] }), /triggers\[0\]\.events must list some of ADDED, MODIFIED, DELETED/],
    [JSON.stringify({ ...config, triggers: [{ ...trigger, resource: '' }] }), /triggers\[0\]\.resource must be a non-empty string/],
  ])('refuses %s', (raw, message) => {
    expect(() => parseWatcherConfig(raw)).toThrow(message);
  });

  it('keys a trigger by the stream it watches, not by its condition or events', () => {
    const stream = { apiVersion: 'v1', resource: 'configmaps', namespace: 'shop', labelSelector: 'app=demo' };
    expect(watchTriggerId(stream)).toBe(watchTriggerId({ ...stream }));
    expect(watchTriggerId(stream)).not.toBe(watchTriggerId({ ...stream, labelSelector: 'app=other' }));
    expect(watchTriggerId(stream)).not.toBe(watchTriggerId({ ...stream, namespace: 'other' }));
  });

  it('puts all of one lambda\'s keys under one hash-tagged prefix its Redis user is limited to', () => {
    const keys = watcherKeys({ namespace: 'shop', name: 'on-change' });
    expect(keys.pattern).toBe('kublambda:watch:{shop/on-change}:*');
    for (const key of [keys.lease, keys.objects('a'), keys.resourceVersion('a'), keys.deadLetters, keys.triggerIds]) expect(key.startsWith('kublambda:watch:{shop/on-change}:')).toBe(true);
    expect(watcherRedisUser({ namespace: 'shop', name: 'on.change' })).toBe('watcher.shop.on.change');
  });
});
