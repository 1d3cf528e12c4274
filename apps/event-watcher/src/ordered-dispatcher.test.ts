import { describe, expect, it } from '@jest/globals';
import { OrderedDispatcher } from './ordered-dispatcher.ts';

interface Item {
  key: string;
  n: number;
  mergeable?: boolean;
}

/** A dispatcher whose handler waits until the test releases each item. */
function controlled(options: { concurrency: number; maxPending?: number }) {
  const started: string[] = [];
  const finished: string[] = [];
  const releases = new Map<string, () => void>();
  const dispatcher = new OrderedDispatcher<Item>({
    concurrency: options.concurrency,
    maxPending: options.maxPending ?? 100,
    handle: (item) => {
      const name = `${item.key}${item.n}`;
      started.push(name);
      return new Promise<void>((resolve) => releases.set(name, () => (finished.push(name), resolve())));
    },
    supersedes: (next, queued) => Boolean(next.mergeable && queued.mergeable),
    onError: () => undefined,
  });
  const release = async (name: string) => {
    releases.get(name)!();
    await new Promise((resolve) => setImmediate(resolve));
  };
  return { dispatcher, started, finished, release };
}

describe('OrderedDispatcher', () => {
  it('runs one key in order and different keys in parallel up to the limit', async () => {
    const { dispatcher, started, release } = controlled({ concurrency: 2 });
    for (const item of [{ key: 'a', n: 1 }, { key: 'a', n: 2 }, { key: 'b', n: 1 }, { key: 'c', n: 1 }]) dispatcher.add(item.key, item);
    expect(started).toEqual(['a1', 'b1']);
    await release('a1');
    expect(started).toEqual(['a1', 'b1', 'c1']);
    await release('b1');
    await release('c1');
    expect(started).toEqual(['a1', 'b1', 'c1', 'a2']);
    await release('a2');
    await dispatcher.idle();
    expect(dispatcher.pending).toBe(0);
  });

  it('merges queued items that supersede each other, never the one running', async () => {
    const { dispatcher, started, release } = controlled({ concurrency: 1 });
    dispatcher.add('a', { key: 'a', n: 1, mergeable: true });
    dispatcher.add('a', { key: 'a', n: 2, mergeable: true });
    dispatcher.add('a', { key: 'a', n: 3, mergeable: true });
    dispatcher.add('a', { key: 'a', n: 4 });
    expect(dispatcher.pending).toBe(3);
    await release('a1');
    await release('a3');
    await release('a4');
    expect(started).toEqual(['a1', 'a3', 'a4']);
  });

  it('holds room() while full', async () => {
    const { dispatcher, release } = controlled({ concurrency: 1, maxPending: 2 });
    dispatcher.add('a', { key: 'a', n: 1 });
    dispatcher.add('b', { key: 'b', n: 1 });
    let roomy = false;
    const room = dispatcher.room().then(() => (roomy = true));
    await new Promise((resolve) => setImmediate(resolve));
    expect(roomy).toBe(false);
    await release('a1');
    await room;
    expect(roomy).toBe(true);
  });

  it('drops what waits on close and lets what runs finish', async () => {
    const { dispatcher, started, release } = controlled({ concurrency: 1 });
    dispatcher.add('a', { key: 'a', n: 1 });
    dispatcher.add('a', { key: 'a', n: 2 });
    dispatcher.add('b', { key: 'b', n: 1 });
    dispatcher.close();
    expect(dispatcher.pending).toBe(1);
    await release('a1');
    await dispatcher.idle();
    expect(started).toEqual(['a1']);
  });
});
