/**
 * A reconcile failure that retrying cannot fix (the input is wrong). The key is not requeued
 * with backoff; the next change to the object triggers a new reconcile.
 */
export class TerminalError extends Error {
  override readonly name = 'TerminalError';
}

/** Whether a Kubernetes API call failed because the object does not exist. */
export function isNotFound(error: unknown): boolean {
  return (error as { code?: number } | undefined)?.code === 404;
}

/** Whether a Kubernetes API call lost an optimistic-concurrency race (or the object already exists). */
export function isConflict(error: unknown): boolean {
  return (error as { code?: number } | undefined)?.code === 409;
}

/**
 * One line about an error and its causes. client-node's ApiException carries the whole
 * response with headers; only the API server's message is worth a log line.
 */
export function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const body = (error as { body?: unknown }).body;
  const code = (error as { code?: unknown }).code;
  let text = error.message;
  if (typeof code === 'number' && body !== undefined) {
    const parsed = typeof body === 'string' ? safeJson(body) : body;
    const message = (parsed as { message?: string } | undefined)?.message;
    text = `HTTP ${code}${message ? `: ${message}` : ''}`;
  }
  return error.cause ? `${text}: ${describeError(error.cause)}` : text;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
