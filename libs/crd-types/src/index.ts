export * from './crd.ts';
export type * from './lambda.generated.ts';
export * from './platform-pods.ts';
export * from './lambda-path.ts';
