import { readResourceEvent, type Handler } from '@kublambda/lambda-api';

// Two triggers, one handler. The watch trigger (lambda.yaml) sends a CloudEvent for each change
// to a ConfigMap labelled audit=true that passes its CEL condition; each one is recorded in the
// state table "configmaps". An HTTP GET lists what was recorded.
export default (async (request, context) => {
  const table = context.state.table('configmaps');
  if (request.method === 'GET') return Response.json((await table.list({ limit: 100 })).entries.map(({ key, value }) => ({ configMap: key, ...(value as object) })));
  const event = await readResourceEvent(request);
  const data = (event.object.data ?? {}) as Record<string, string>;
  if (event.type === 'DELETED') await table.delete(event.subject);
  else await table.put(event.subject, { change: event.type, resourceVersion: event.object.metadata?.resourceVersion ?? '', keys: Object.keys(data).sort(), at: event.time });
  console.log(`${event.type} ${event.subject}`);
  return new Response(null, { status: 204 });
}) satisfies Handler;
