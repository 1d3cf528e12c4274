export * from './condition.ts';
export * from './redis-keys.ts';
export * from './resource-event.ts';
export * from './watcher-config.ts';
export * from './event-poster.ts';
