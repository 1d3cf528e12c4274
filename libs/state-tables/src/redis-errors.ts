import { StateError } from '@kublambda/lambda-api';
import { types } from 'node:util';

// Replies with which Redis says "not now" rather than "wrong command": loading its data after a
// restart, a busy script, a cluster without quorum, out of memory under noeviction.
const UNAVAILABLE_REPLIES = /^(LOADING|BUSY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|OOM|READONLY|NOREPLICAS)\b/;

/**
 * Turns a failure of a Redis command into StateUnavailable when Redis could not be reached or
 * could not serve (the operation's outcome is then unknown), and into an Error with context
 * otherwise: that is a defect, not a condition a lambda should handle.
 */
export function stateFailure(what: string, error: unknown): Error {
  if (error instanceof StateError) return error;
  const message = types.isNativeError(error) || error instanceof Error ? error.message : String(error);
  const isReply = (error as { name?: unknown } | undefined)?.name === 'ReplyError';
  if (!isReply || UNAVAILABLE_REPLIES.test(message)) {
    return new StateError('StateUnavailable', `${what}: the state store is unavailable (${message}); the outcome is unknown, retry later`);
  }
  return new Error(`${what}: Redis refused the command: ${message}`, { cause: error });
}
