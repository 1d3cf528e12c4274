/// <reference path="./ms.d.ts" />
import ms from 'ms';
import type { Handler } from '@kublambda/lambda-api';

// An npm dependency (package.json beside this file): the builder installs it and bundles it in.
//   GET /durations?text=2h      -> {"text":"2h","ms":7200000}
//   GET /durations?ms=90000     -> {"ms":90000,"text":"2m"}
export default (async (request) => {
  const query = new URL(request.url).searchParams;
  const text = query.get('text');
  if (text !== null) {
    const value = ms(text);
    if (value === undefined) return Response.json({ error: `"${text}" is not a duration such as 2h, 1.5d or 90s` }, { status: 400 });
    return Response.json({ text, ms: value });
  }
  const millis = Number(query.get('ms'));
  if (query.has('ms') && Number.isFinite(millis)) return Response.json({ ms: millis, text: ms(millis) });
  return Response.json({ error: 'give ?text=2h or ?ms=90000' }, { status: 400 });
}) satisfies Handler;
