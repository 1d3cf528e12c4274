import preset from './jest.preset.js';

const sources = ['<rootDir>/apps', '<rootDir>/libs', '<rootDir>/tools'];

export default {
  // A safety limit, not a performance bound: CI shares 2 cores with every server of the suite,
  // and a 1 MiB fsync or a type check can take seconds there. Jest reads testTimeout only from
  // the top-level config: set inside a project it is silently ignored.
  testTimeout: 30_000,
  // Two test files at a time: most of an integration test is waiting on real servers and
  // controllers, so two overlap well even on two cores (about 1.5 times faster than one at a
  // time). Every test keeps to its own namespace, ports and servers, so files never share state.
  maxWorkers: 2,
  projects: [
    {
      ...preset,
      displayName: 'unit',
      roots: sources,
      testMatch: ['**/*.test.ts'],
      testPathIgnorePatterns: ['/node_modules/', '\\.int\\.test\\.ts$'],
    },
    {
      ...preset,
      displayName: 'integration',
      roots: sources,
      testMatch: ['**/*.int.test.ts'],
      // One control plane (etcd, kube-apiserver, kube-controller-manager) for the whole run;
      // Jest runs this only when an integration test is selected.
      globalSetup: '<rootDir>/tools/test/global-setup.ts',
      globalTeardown: '<rootDir>/tools/test/global-teardown.ts',
      setupFilesAfterEnv: ['<rootDir>/tools/test/integration-setup.ts'],
    },
  ],
};
