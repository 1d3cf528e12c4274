import { StateError } from '@kublambda/lambda-api';

let serial = 0;

/** A namespace name no other test in this file uses, so tests share one Redis without meeting. */
export function freshNamespace(prefix = 'ns'): string {
  return `${prefix}-${process.pid}-${++serial}`;
}

/** The StateError an operation fails with; fails the test when it succeeds or fails otherwise. */
export async function stateErrorOf(operation: Promise<unknown>): Promise<StateError> {
  try {
    await operation;
  } catch (error) {
    if (error instanceof StateError) return error;
    throw error;
  }
  throw new Error('expected the state operation to fail with a StateError, but it succeeded');
}
