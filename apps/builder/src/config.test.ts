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

describe('parseBuilderConfig: the image backend', () => {
  const direct = { IMAGE_BACKEND: 'direct', IMAGE_REGISTRY_URL: 'https://registry.example.com', IMAGE_BASE: 'kublambda/runner-base:v1' };

  it.each([
    ['is off by default', {}, { backend: 'off' }],
    ['is off when asked', { IMAGE_BACKEND: 'off' }, { backend: 'off' }],
    ['pushes straight to an https registry', direct, { backend: 'direct', registry: { url: 'https://registry.example.com', insecure: false }, base: { repo: 'kublambda/runner-base', reference: 'v1' } }],
    [
      'takes credentials, plain http when insecure, and a base by digest',
      { ...direct, IMAGE_REGISTRY_URL: 'http://127.0.0.1:5000/', IMAGE_REGISTRY_INSECURE: 'true', IMAGE_REGISTRY_USERNAME: 'builder', IMAGE_REGISTRY_PASSWORD: 's3cret', IMAGE_BASE: `runner@sha256:${'a'.repeat(64)}` },
      { backend: 'direct', registry: { url: 'http://127.0.0.1:5000', username: 'builder', password: 's3cret', insecure: true }, base: { repo: 'runner', reference: `sha256:${'a'.repeat(64)}` } },
    ],
  ])('%s', (_, env, image) => {
    expect(parseBuilderConfig({ ...required, ...env }).image).toEqual(image);
  });

  it.each([
    [{ IMAGE_BACKEND: 'kaniko' }, 'IMAGE_BACKEND=kaniko is not implemented yet (future work); use direct or off'],
    [{ IMAGE_BACKEND: 'docker' }, 'IMAGE_BACKEND must be off, direct or kaniko, not "docker"'],
    [{ IMAGE_BACKEND: 'direct' }, 'IMAGE_REGISTRY_URL is required with IMAGE_BACKEND=direct (http(s)://host[:port] of the registry, as the builder reaches it)\n  - IMAGE_BASE is required'],
    [{ ...direct, IMAGE_REGISTRY_URL: 'http://127.0.0.1:5000' }, 'IMAGE_REGISTRY_URL is plain http ("http://127.0.0.1:5000"): set IMAGE_REGISTRY_INSECURE=true to allow it, or use https'],
    [{ ...direct, IMAGE_REGISTRY_URL: 'https://registry.example.com/v2' }, 'IMAGE_REGISTRY_URL must be http(s)://host[:port] with no path, query or credentials, not "https://registry.example.com/v2"'],
    [{ ...direct, IMAGE_REGISTRY_URL: 'registry.example.com' }, 'IMAGE_REGISTRY_URL must be http(s)://host[:port]'],
    [{ ...direct, IMAGE_REGISTRY_INSECURE: 'yes' }, 'IMAGE_REGISTRY_INSECURE must be true or false, not "yes"'],
    [{ ...direct, IMAGE_REGISTRY_USERNAME: 'builder' }, 'IMAGE_REGISTRY_USERNAME and IMAGE_REGISTRY_PASSWORD go together: set both or neither'],
    [{ ...direct, IMAGE_BASE: 'runner' }, 'IMAGE_BASE must be repo:tag or repo@sha256:<64 hex>'],
    [{ ...direct, IMAGE_BASE: 'registry.example.com:5000/runner' }, 'IMAGE_BASE must be repo:tag or repo@sha256:<64 hex>'],
    [{ ...direct, IMAGE_BASE: 'Runner:v1' }, 'IMAGE_BASE must be repo:tag'],
    [{ ...direct, IMAGE_BASE: 'runner@sha256:abc' }, 'IMAGE_BASE must be repo:tag'],
    [{ IMAGE_BASE: 'runner:v1' }, 'IMAGE_BASE is set but IMAGE_BACKEND is off (set IMAGE_BACKEND=direct to build images)'],
  ])('refuses %j', (env, problem) => {
    expect(() => parseBuilderConfig({ ...required, ...env })).toThrow(problem);
  });
});
