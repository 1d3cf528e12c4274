export { startControlPlane, installCrds, type ControlPlane, type ControlPlaneOptions } from './control-plane.ts';
export { cacheDir, kubeBinary, kubernetesVersion } from './binaries.ts';
export { freePort } from './free-port.ts';
// TEMP export { startRedis, type RedisServer, type RedisOptions } from './redis.ts';
// TEMP export { startS3, type S3Server } from './s3.ts';
// TEMP export { startRegistry, type OciRegistry } from './registry.ts';
export { kubectl, type KubectlResult } from './kubectl.ts';
export { createTestNamespace, testKubeConfig } from './test-namespace.ts';
