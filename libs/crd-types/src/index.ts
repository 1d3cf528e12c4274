export * from './crd.ts';
export type * from './lambda.generated.ts';
