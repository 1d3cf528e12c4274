import { describe, expect, it } from '@jest/globals';
import { parseBuilderConfig } from './config.ts';

const required = { REDIS_URL: 'redis://builder:secret@127.0.0.1:6379', ARTIFACT_STORE_URL: 'file:///tmp/assets' };

describe('parseBuilderConfig: the admin server', () => {
  it.each([
    ['is off without ADMIN_PORT', {}, undefined],
    ['listens on loopback, read-only, by default', { ADMIN_PORT: '9090' }, { host: '127.0.0.1', port: 9090, boardActions: false }],
    ['takes a host and board actions', { ADMIN_PORT: '9090', ADMIN_HOST: '0.0.0.0', BUILD_BOARD_ACTIONS: 'true' }, { host: '0.0.0.0', port: 9090, boardActions: true }],
    ['takes a host name', { ADMIN_PORT: '1', ADMIN_HOST: 'localhost', BUILD_BOARD_ACTIONS: 'FALSE' }, { host: 'localhost', port: 1, boardActions: false }],
    ['ignores blank values', { ADMIN_PORT: ' ', ADMIN_HOST: '', BUILD_BOARD_ACTIONS: '' }, undefined],
  ])('%s', (_, env, admin) => {
    expect(parseBuilderConfig({ ...required, ...env }).admin).toEqual(admin);
  });

  it.each([
    [{ ADMIN_PORT: 'http' }, 'ADMIN_PORT must be a whole number from 1 to 65535, not "http"'],
    [{ ADMIN_PORT: '0' }, 'ADMIN_PORT must be a whole number from 1 to 65535, not "0"'],
    [{ ADMIN_PORT: '65536' }, 'ADMIN_PORT must be a whole number from 1 to 65535, not "65536"'],
    [{ ADMIN_PORT: '80.5' }, 'ADMIN_PORT must be a whole number from 1 to 65535, not "80.5"'],
    [{ ADMIN_PORT: '9090', ADMIN_HOST: 'http://0.0.0.0' }, 'ADMIN_HOST must be an IP address or a host name, not "http://0.0.0.0"'],
    [{ ADMIN_PORT: '9090', BUILD_BOARD_ACTIONS: 'yes' }, 'BUILD_BOARD_ACTIONS must be true or false, not "yes"'],
    [{ ADMIN_HOST: '0.0.0.0' }, 'ADMIN_HOST is set but ADMIN_PORT is not (the admin server is off without ADMIN_PORT)'],
    [{ BUILD_BOARD_ACTIONS: 'true' }, 'BUILD_BOARD_ACTIONS is set but ADMIN_PORT is not (the admin server is off without ADMIN_PORT)'],
  ])('refuses %j', (env, problem) => {
    expect(() => parseBuilderConfig({ ...required, ...env })).toThrow(`builder: invalid configuration:\n  - ${problem}`);
  });

  it('reports every admin problem with the others at once', () => {
    expect(() => parseBuilderConfig({ ARTIFACT_STORE_URL: 'file:///tmp/assets', ADMIN_PORT: 'x', BUILD_BOARD_ACTIONS: 'maybe' })).toThrow(
      'builder: invalid configuration:\n  - REDIS_URL is required\n  - ADMIN_PORT must be a whole number from 1 to 65535, not "x"\n  - BUILD_BOARD_ACTIONS must be true or false, not "maybe"',
    );
  });
});
