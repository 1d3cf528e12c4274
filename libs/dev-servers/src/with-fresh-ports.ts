import { freePort } from './ports.ts';

const ATTEMPTS = 3;

/**
 * Runs start() with free loopback ports, and again with new ports if it fails: another
 * process may take a port between our probe and the server's bind.
 */
export async function withFreshPorts<T>(count: number, start: (ports: number[]) => Promise<T>): Promise<T> {
  let lastError: unknown;
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    const ports = await Promise.all(Array.from({ length: count }, () => freePort()));
    try {
      return await start(ports);
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError;
}
