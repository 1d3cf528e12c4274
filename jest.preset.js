// Shared Jest settings: ES modules throughout (@kubernetes/client-node 2.x is ESM-only),
// TypeScript compiled by swc, run under `node --experimental-vm-modules`.
export default {
  testEnvironment: 'node',
  // A safety limit, not a performance bound: CI shares 2 cores with every server of the suite,
  // and a 1 MiB fsync can take seconds there.
  testTimeout: 30_000,
  extensionsToTreatAsEsm: ['.ts'],
  moduleFileExtensions: ['ts', 'js', 'mjs', 'json'],
  transform: {
    '^.+\\.ts$': [
      '@swc/jest',
      {
        jsc: { parser: { syntax: 'typescript' }, target: 'es2024' },
        module: { type: 'es6' },
        sourceMaps: 'inline',
      },
    ],
  },
};
