import { describe, expect, it } from '@jest/globals';
import { Writable } from 'node:stream';
import winston from 'winston';
import { createLogger, forLambda } from './index.ts';

function captured(component: string) {
  const lines: string[] = [];
  const logger = createLogger(component);
  logger.clear().add(new winston.transports.Stream({ stream: new Writable({ write: (chunk, _enc, done) => (lines.push(String(chunk)), done()) }) }));
  return { logger, lines: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>) };
}

describe('createLogger', () => {
  it('writes one JSON object per line with component, level, timestamp', () => {
    const { logger, lines } = captured('runner');
    logger.info('listening', { port: 8080 });
    expect(lines()).toEqual([{ component: 'runner', level: 'info', message: 'listening', port: 8080, timestamp: expect.any(String) }]);
  });

  it('tags lines about a lambda with its namespace, name and request id', () => {
    const { logger, lines } = captured('runner');
    forLambda(logger, { namespace: 'shop', name: 'orders' }, 'req-1').warn('slow');
    forLambda(logger, { namespace: 'shop', name: 'cart' }).error(new Error('boom'));
    const [first, second] = lines();
    expect(first).toMatchObject({ namespace: 'shop', lambda: 'orders', requestId: 'req-1', message: 'slow', level: 'warn' });
    expect(second).toMatchObject({ namespace: 'shop', lambda: 'cart', level: 'error', message: 'boom', stack: expect.stringContaining('Error: boom') });
    expect(second).not.toHaveProperty('requestId');
  });
});
