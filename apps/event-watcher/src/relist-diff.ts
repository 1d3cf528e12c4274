import { resourceVersionOf, uidOf, type KubeObject, type ResourceChange } from './kube-object.ts';

/**
 * What happened between what the watcher knows (the checkpoint at start, the cache after a
 * 410 Gone) and a fresh list, as client-go's DeltaFIFO Replace does it: listed objects it does
 * not know were ADDED, known ones at another resourceVersion were MODIFIED, known ones missing
 * from the list were DELETED, carrying their last known state (the final state is unknown).
 *
 * On the very first start the checkpoint is empty, so every existing object comes out ADDED:
 * a new watch trigger tells the lambda about what already exists, as an informer would.
 */
export function diffRelist(known: ReadonlyMap<string, KubeObject>, listed: readonly KubeObject[]): ResourceChange[] {
  const changes: ResourceChange[] = [];
  const listedUids = new Set<string>();
  for (const object of listed) {
    const uid = uidOf(object);
    listedUids.add(uid);
    const before = known.get(uid);
    if (!before) changes.push({ type: 'ADDED', object, oldObject: null });
    else if (resourceVersionOf(before) !== resourceVersionOf(object)) changes.push({ type: 'MODIFIED', object, oldObject: before });
  }
  for (const [uid, before] of known) {
    if (!listedUids.has(uid)) changes.push({ type: 'DELETED', object: before, oldObject: before });
  }
  return changes;
}
