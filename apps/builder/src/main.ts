import { createLogger } from '@kublambda/logging';

// Unfinished: the builder has no implementation yet. It refuses to start rather than pretend to run.
const logger = createLogger('builder');
logger.error('builder is not implemented yet');
process.exitCode = 2;
