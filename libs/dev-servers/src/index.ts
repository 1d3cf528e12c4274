export { startControlPlane, installCrds, type ControlPlane, type ControlPlaneOptions } from './control-plane.ts';
export { cacheDir, kubeBinary, kubernetesVersion } from './binaries.ts';
export { freePort, portAcceptsConnections } from './ports.ts';
export { startRedis, type RedisServer, type RedisOptions } from './redis.ts';
export { startS3, type S3Server } from './s3.ts';
export { startRegistry, type OciRegistry } from './registry.ts';
export { kubectl, type KubectlResult } from './kubectl.ts';
export { createTestNamespace, testKubeConfig } from './test-namespace.ts';
