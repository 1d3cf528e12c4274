import { createLogger } from '@kublambda/logging';

// Unfinished: the api-controller has no implementation yet. It refuses to start rather than pretend to run.
const logger = createLogger('api-controller');
logger.error('api-controller is not implemented yet');
process.exitCode = 2;
