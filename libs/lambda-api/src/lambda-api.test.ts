import { describe, expect, it } from '@jest/globals';
import { isStateErrorCode, StateError, type FetchHandler, type Handler, type LambdaContext } from './index.ts';

// The example of docs/state-tables.md; the workspace type check compiles it against these types.
const handler: Handler = async (request, context) => {
  const orders = context.state.table('orders');
  const id = new URL(request.url).searchParams.get('id') ?? 'none';
  for (;;) {
    const current = await orders.get(`order/${id}`);
    const next = { ...(current?.value as object | undefined), seen: Date.now() };
    try {
      await orders.put(`order/${id}`, next, { ifVersion: current?.version ?? 0 });
      break;
    } catch (error) {
      if ((error as StateError).code !== 'StateConflict') throw error;
    }
  }
  const views = await orders.increment('views');
  const page = await orders.list({ prefix: 'order/', limit: 20 });
  return Response.json({ views, orders: page.entries, more: page.cursor });
};

const fetchStyle = {
  async fetch(_request: Request, env: LambdaContext['env'], context: LambdaContext) {
    return new Response(`${env.GREETING ?? 'hello'} from ${context.lambda.namespace}/${context.lambda.name}`);
  },
} satisfies FetchHandler;

describe('lambda API', () => {
  it('gives a fetch-style handler env and context', async () => {
    const context = { requestId: 'r1', lambda: { namespace: 'shop', name: 'greeter' }, env: { GREETING: 'hi' } } as Partial<LambdaContext> as LambdaContext;
    const asHandler: Handler = fetchStyle;
    expect(await (await (asHandler as FetchHandler).fetch(new Request('http://x/'), context.env, context)).text()).toBe('hi from shop/greeter');
    expect(typeof handler).toBe('function');
  });

  it('has a StateError a handler can tell apart by name and code', () => {
    const error: unknown = new StateError('StateConflict', 'put "k": expected version 1, but it is at version 2');
    expect(error).toBeInstanceOf(Error);
    expect(error).toMatchObject({ name: 'StateError', code: 'StateConflict', message: 'put "k": expected version 1, but it is at version 2' });
    expect(isStateErrorCode('TableNotDeclared')).toBe(true);
    expect(isStateErrorCode('Nope')).toBe(false);
  });
});
