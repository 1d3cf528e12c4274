import { describe, expect, it } from '@jest/globals';
import { expandEnvReferences } from './local-deployment.ts';

describe('expandEnvReferences', () => {
  const earlier = { REDIS_PASSWORD: 'p4ss', HOST: 'redis:6379' };

  it.each([
    ['redis://runner:$(REDIS_PASSWORD)@$(HOST)', 'redis://runner:p4ss@redis:6379'],
    ['no references', 'no references'],
    ['$(UNDEFINED) stays', '$(UNDEFINED) stays'],
    ['$$(REDIS_PASSWORD) is escaped', '$(REDIS_PASSWORD) is escaped'],
    ['a lone $ and $$ and $(', 'a lone $ and $ and $('],
  ])('turns %j into %j, as Kubernetes does', (value, expanded) => {
    expect(expandEnvReferences(value, earlier)).toBe(expanded);
  });
});
