import { describe, expect, it } from '@jest/globals';
import type { Lambda } from '@kublambda/crd-types';
import { UsageError } from './command-line.ts';
import { invokeRequest, runInvoke, type InvokeDeps } from './invoke-command.ts';
import { CommandError } from './kube-errors.ts';
import type { LambdaClient } from './lambda-client.ts';

function lambda(http?: { path: string; host?: string }): Lambda {
  return { apiVersion: 'kublambda.io/v1alpha1', kind: 'Lambda', metadata: { name: 'hello', namespace: 'shop' }, spec: { source: { inline: 'x' }, triggers: http ? { http } : {} } } as Lambda;
}

describe('invokeRequest', () => {
  it("sends GET to the trigger's path, with --path below it", () => {
    expect(invokeRequest(lambda({ path: '/hello' }), { header: [] }, undefined)).toEqual({ method: 'GET', path: '/hello', headers: {}, body: undefined, timeoutMs: 60_000 });
    expect(invokeRequest(lambda({ path: '/hello' }), { header: [], path: '?name=you' }, undefined).path).toBe('/hello?name=you');
    expect(invokeRequest(lambda({ path: '/api/' }), { header: [], path: '/items' }, undefined).path).toBe('/api/items');
  });

  it("carries the trigger's host, the headers given, and POSTs a body", () => {
    const body = Buffer.from('{"a":1}');
    expect(invokeRequest(lambda({ path: '/', host: 'shop.example.com' }), { header: ['Content-Type: application/json', 'X-A:  b c '], timeoutSeconds: 5 }, body)).toEqual({
      method: 'POST',
      path: '/',
      headers: { host: 'shop.example.com', 'content-type': 'application/json', 'x-a': 'b c' },
      body,
      timeoutMs: 5_000,
    });
    expect(invokeRequest(lambda({ path: '/' }), { header: [], method: 'put' }, body).headers).toEqual({ 'content-type': 'application/octet-stream' });
    expect(invokeRequest(lambda({ path: '/' }), { header: [], method: 'put' }, body).method).toBe('PUT');
  });

  it('refuses a lambda without an HTTP trigger, and bad headers, methods and paths', () => {
    expect(() => invokeRequest(lambda(), { header: [] }, undefined)).toThrow(new CommandError('lambda shop/hello has no HTTP trigger (spec.triggers.http): invoke calls a lambda over HTTP'));
    expect(() => invokeRequest(lambda({ path: '/' }), { header: ['no colon'] }, undefined)).toThrow(new UsageError('--header must be "Name: value", not "no colon"'));
    expect(() => invokeRequest(lambda({ path: '/' }), { header: [': empty name'] }, undefined)).toThrow(UsageError);
    expect(() => invokeRequest(lambda({ path: '/' }), { header: [], method: 'GET /x' }, undefined)).toThrow(new UsageError('--method must be an HTTP method such as GET or POST, not "GET /x"'));
    expect(() => invokeRequest(lambda({ path: '/' }), { header: [], path: 'items' }, undefined)).toThrow(new UsageError('--path must start with / or ?, not "items"'));
  });
});

describe('runInvoke', () => {
  function deps(found: Lambda | undefined, status: number, text: string) {
    const out: string[] = [];
    const err: string[] = [];
    const client = { namespace: 'shop', get: async () => found } as unknown as LambdaClient;
    const invoke: InvokeDeps = {
      client,
      send: async () => ({ status, headers: { 'content-type': 'text/plain' }, body: Buffer.from(text) }),
      readData: async (source) => Buffer.from(`from ${source}`),
    };
    const terminal = { out: (t: string) => out.push(t), err: (t: string) => err.push(t), isTTY: false, now: () => 0, sleep: async () => {} };
    return { invoke, terminal, out, err };
  }

  it('prints the body; -i adds the status line and headers', async () => {
    const d = deps(lambda({ path: '/hello' }), 200, 'hi');
    expect(await runInvoke('hello', { header: [], include: true }, d.invoke, d.terminal)).toBe(0);
    expect(d.out.join('')).toBe('HTTP/1.1 200\ncontent-type: text/plain\n\nhi');
  });

  it('reads @file bodies', async () => {
    const d = deps(lambda({ path: '/hello' }), 200, 'ok');
    let sent: Uint8Array | undefined;
    d.invoke.send = async (request) => ((sent = request.body), { status: 200, headers: {}, body: Buffer.from('ok') });
    expect(await runInvoke('hello', { header: [], data: '@body.json' }, d.invoke, d.terminal)).toBe(0);
    expect(Buffer.from(sent!).toString()).toBe('from body.json');
  });

  it('exits 1 on an answer of 400 or more, saying so', async () => {
    const d = deps(lambda({ path: '/hello' }), 502, '{"error":"the lambda crashed"}');
    expect(await runInvoke('hello', { header: [] }, d.invoke, d.terminal)).toBe(1);
    expect(d.out.join('')).toBe('{"error":"the lambda crashed"}');
    expect(d.err.join('')).toBe('\nkublambda invoke: GET /hello answered 502\n');
  });

  it('says when there is no such lambda', async () => {
    const d = deps(undefined, 200, '');
    await expect(runInvoke('nope', { header: [] }, d.invoke, d.terminal)).rejects.toThrow('Lambda "nope" not found in namespace "shop"');
  });
});
