export default async function stopSharedControlPlane(): Promise<void> {
  await globalThis.kublambdaControlPlane?.stop();
}
