import http from 'node:http';
import https from 'node:https';

// Delivering a resource event to a lambda: one POST to the runner, as its Ingress would route
// it. The event-watcher retries through it; api-controller's admin API redelivers dead letters.

/** What one attempt came back with: an HTTP answer, or no answer (connection error, timeout). */
export type AttemptOutcome = { status: number; bodyExcerpt: string; retryAfter?: string } | { error: string };

/** A dead letter's lastError: the status and the start of the body, or what went wrong on the wire. */
export function describeOutcome(outcome: AttemptOutcome): string {
  if ('error' in outcome) return outcome.error;
  return outcome.bodyExcerpt ? `HTTP ${outcome.status}: ${outcome.bodyExcerpt}` : `HTTP ${outcome.status}`;
}

const BODY_EXCERPT_CHARS = 200;

export interface EventPoster {
  /** One attempt: POST the event, resolve with the answer or the reason there was none. Never rejects. */
  post(request: { headers: Record<string, string>; body: string }, signal: AbortSignal): Promise<AttemptOutcome>;
  close(): void;
}

/**
 * POSTs to the runner with node:http, because fetch cannot set the Host header, and the
 * runner routes by Host and path as the Ingress in front of it would.
 */
export function createEventPoster(options: { url: string; host: string; timeoutMs: number; concurrency: number }): EventPoster {
  const url = new URL(options.url);
  const client = url.protocol === 'https:' ? https : http;
  // Keep-alive: events arrive in bursts, a new connection per event would cost a handshake each.
  const agent = new client.Agent({ keepAlive: true, maxSockets: options.concurrency });
  return {
    post: (event, parent) =>
      new Promise<AttemptOutcome>((resolve) => {
        const signal = AbortSignal.any([parent, AbortSignal.timeout(options.timeoutMs)]);
        const headers: Record<string, string | number> = { ...event.headers, 'content-length': Buffer.byteLength(event.body) };
        if (options.host) headers.host = options.host;
        const request = client.request(url, { method: 'POST', agent, headers, signal }, (response) => {
          let excerpt = '';
          response.setEncoding('utf8');
          response.on('data', (chunk: string) => {
            if (excerpt.length < BODY_EXCERPT_CHARS) excerpt += chunk;
          });
          response.on('end', () => {
            const retryAfter = response.headers['retry-after'];
            resolve({ status: response.statusCode ?? 0, bodyExcerpt: excerpt.slice(0, BODY_EXCERPT_CHARS).trim(), ...(retryAfter ? { retryAfter } : {}) });
          });
          response.on('error', (error) => resolve({ error: describeRequestError(error, signal, options.timeoutMs) }));
        });
        request.on('error', (error) => resolve({ error: describeRequestError(error, signal, options.timeoutMs) }));
        request.end(event.body);
      }),
    close: () => agent.destroy(),
  };
}

function describeRequestError(error: Error, signal: AbortSignal, timeoutMs: number): string {
  if (signal.aborted && (signal.reason as Error | undefined)?.name === 'TimeoutError') return `no answer within ${timeoutMs} ms`;
  const code = (error as { code?: string }).code;
  return code && !error.message.includes(code) ? `${code}: ${error.message}` : error.message;
}
