import { describe, expect, it } from '@jest/globals';
import { isAllowedBoardAction } from './admin-app.ts';

describe('isAllowedBoardAction', () => {
  it.each([
    ['PUT', '/queues/builds/shop%2Fhello%2Fabc/retry', true],
    ['PUT', '/queues/builds/shop%2Fhello%2Fabc/clean', true],
    ['POST', '/queues/builds/shop%2Fhello%2Fabc/retry', false],
    ['POST', '/queues/builds/add', false],
    ['PUT', '/queues/builds/retry/failed', false],
    ['PUT', '/queues/builds/clean/completed', false],
    ['PUT', '/queues/builds/empty', false],
    ['PUT', '/queues/builds/obliterate', false],
    ['PUT', '/queues/builds/pause', false],
    ['PUT', '/queues/pause', false],
    ['PATCH', '/queues/builds/shop%2Fhello%2Fabc/update-data', false],
    ['PUT', '/queues/builds/shop%2Fhello%2Fabc/promote', false],
  ])('%s %s: %s', (method, path, allowed) => {
    expect(isAllowedBoardAction(method, path)).toBe(allowed);
  });
});
