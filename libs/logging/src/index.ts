import winston from 'winston';

export type Logger = winston.Logger;

/**
 * A structured JSON logger for one platform component. Log lines about a lambda go through
 * forLambda() so they carry its namespace and name.
 */
export function createLogger(component: string, level = process.env.LOG_LEVEL ?? 'info'): Logger {
  return winston.createLogger({
    level,
    defaultMeta: { component },
    format: winston.format.combine(winston.format.timestamp(), winston.format.errors({ stack: true }), winston.format.json()),
    transports: [new winston.transports.Console()],
  });
}

export function forLambda(logger: Logger, lambda: { namespace: string; name: string }, requestId?: string): Logger {
  return logger.child(requestId ? { namespace: lambda.namespace, lambda: lambda.name, requestId } : { namespace: lambda.namespace, lambda: lambda.name });
}
