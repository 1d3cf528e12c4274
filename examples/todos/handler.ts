import { Hono, type Context } from 'hono';
import type { LambdaContext } from '@kublambda/lambda-api';

// A fetch-style app on the Hono router, its data in the state table "todos". A default export
// with a fetch method is called as fetch(request, env, context), as on other fetch-style
// platforms: Hono hands the lambda's spec.env to handlers as c.env and its context (state
// tables, request id) as c.executionCtx. The runner passes the path below the trigger's
// (/todos/3 arrives as /3), so the routes need no prefix.
//   GET    /todos            every todo
//   POST   /todos            {"title":"..."} -> the new todo (201)
//   GET    /todos/:id        one todo, or 404
//   PATCH  /todos/:id        {"done":true}
//   DELETE /todos/:id
type Todo = { id: string; title: string; done: boolean };

const app = new Hono();
const todos = (c: Context) => (c.executionCtx as unknown as LambdaContext).state.table('todos');

app.get('/', async (c) => c.json((await todos(c).list({ prefix: 'todo/', limit: 1000 })).entries.map((entry) => entry.value as Todo)));

app.post('/', async (c) => {
  const body = await c.req.json<{ title?: unknown }>().catch(() => ({}) as { title?: unknown });
  if (typeof body.title !== 'string' || body.title.trim() === '') return c.json({ error: 'give {"title": "..."}' }, 400);
  const id = String(await todos(c).increment('next-id'));
  const todo: Todo = { id, title: body.title.trim(), done: false };
  await todos(c).put(`todo/${id}`, todo);
  return c.json(todo, 201);
});

app.get('/:id', async (c) => {
  const entry = await todos(c).get(`todo/${c.req.param('id')}`);
  return entry ? c.json(entry.value as Todo) : c.json({ error: 'no such todo' }, 404);
});

app.patch('/:id', async (c) => {
  const entry = await todos(c).get(`todo/${c.req.param('id')}`);
  if (!entry) return c.json({ error: 'no such todo' }, 404);
  const body = await c.req.json<{ done?: unknown }>().catch(() => ({}) as { done?: unknown });
  if (typeof body.done !== 'boolean') return c.json({ error: 'give {"done": true|false}' }, 400);
  const todo = { ...(entry.value as Todo), done: body.done };
  await todos(c).put(`todo/${todo.id}`, todo, { ifVersion: entry.version });
  return c.json(todo);
});

app.delete('/:id', async (c) => ((await todos(c).delete(`todo/${c.req.param('id')}`)) ? c.body(null, 204) : c.json({ error: 'no such todo' }, 404)));

export default app;
