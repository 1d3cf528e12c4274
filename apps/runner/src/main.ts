import { createLogger } from '@kublambda/logging';

// Unfinished: the runner has no implementation yet. It refuses to start rather than pretend to run.
const logger = createLogger('runner');
logger.error('runner is not implemented yet');
process.exitCode = 2;
