import { createLogger } from '@kublambda/logging';

// Unfinished: the event-watcher has no implementation yet. It refuses to start rather than pretend to run.
const logger = createLogger('event-watcher');
logger.error('event-watcher is not implemented yet');
process.exitCode = 2;
