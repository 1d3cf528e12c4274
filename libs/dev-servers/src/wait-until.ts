import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Polls until probe returns something other than undefined or false, and returns it; after
 * timeoutMs fails with what was awaited and, when given, the last state seen.
 */
export async function waitUntil<T>(
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  options: { timeoutMs?: number; intervalMs?: number; describe?: () => Promise<string> | string } = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) {
      const seen = options.describe ? `; last seen: ${await options.describe()}` : '';
      throw new Error(`timed out waiting for ${what}${seen}`);
    }
    await sleep(options.intervalMs ?? 100);
  }
}
