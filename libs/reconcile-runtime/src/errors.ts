/**
 * A reconcile failure that retrying cannot fix (the input is wrong). The key is not requeued
 * with backoff; the next change to the object triggers a new reconcile.
 */
export class TerminalError extends Error {
  override readonly name = 'TerminalError';
}
