import path from 'node:path';

/** The CRD manifest: the one source of truth for the Lambda resource. */
export const lambdaCrdPath = path.resolve(import.meta.dirname, '../crd/lambdas.kublambda.io.yaml');

export const LAMBDA_GROUP = 'kublambda.io';
export const LAMBDA_VERSION = 'v1alpha1';
export const LAMBDA_API_VERSION = `${LAMBDA_GROUP}/${LAMBDA_VERSION}`;
export const LAMBDA_KIND = 'Lambda';
export const LAMBDA_PLURAL = 'lambdas';
