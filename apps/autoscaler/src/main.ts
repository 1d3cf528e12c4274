import { createLogger } from '@kublambda/logging';

// Unfinished: the autoscaler has no implementation yet. It refuses to start rather than pretend to run.
const logger = createLogger('autoscaler');
logger.error('autoscaler is not implemented yet');
process.exitCode = 2;
