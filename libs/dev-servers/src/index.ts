export { startControlPlane, installCrds, type ControlPlane, type ControlPlaneOptions } from './control-plane.ts';
export { cacheDir, kubeBinary, kubernetesVersion } from './binaries.ts';
export { freePort } from './free-port.ts';
