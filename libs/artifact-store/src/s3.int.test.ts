import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startS3, type S3Server } from '@kublambda/dev-servers';
import { describeArtifactStoreContract } from './contract.testing.ts';
import { createArtifactStore, createS3ArtifactStore, digestOf, parseArtifactStoreConfig } from './index.ts';

const BUCKET = 'assets';

let s3: S3Server;
beforeAll(async () => {
  s3 = await startS3({ bucket: BUCKET });
});
afterAll(() => s3?.stop());

/** Each test gets a prefix of its own in the one bucket, so it starts from an empty store. */
describeArtifactStoreContract('S3 artifact store', async () => {
  const client = s3.client();
  const prefix = `${randomUUID()}/`;
  return {
    store: createS3ArtifactStore({ client, bucket: BUCKET, prefix }),
    writeRaw: async (key, bytes) => {
      await client.putObject(BUCKET, `${prefix}${key}`, Buffer.from(bytes));
    },
  };
});

describe('S3 artifact store', () => {
  const asset = new TextEncoder().encode('export default () => new Response("hi")');
  const hex = digestOf(asset).slice('sha256:'.length);

  it('keeps assets at <prefix>sha256/<hex>, under "assets/" unless told otherwise', async () => {
    const client = s3.client();
    await createS3ArtifactStore({ client, bucket: BUCKET }).put(asset);
    await createS3ArtifactStore({ client, bucket: BUCKET, prefix: 'team-a' }).put(asset);
    expect((await client.statObject(BUCKET, `assets/sha256/${hex}`)).size).toBe(asset.byteLength);
    expect((await client.statObject(BUCKET, `team-a/sha256/${hex}`)).size).toBe(asset.byteLength);
  });

  it('sees only the assets under its own prefix', async () => {
    const client = s3.client();
    const [first, second] = [randomUUID(), randomUUID()].map((prefix) => createS3ArtifactStore({ client, bucket: BUCKET, prefix }));
    const ref = await first!.put(asset);
    expect(await second!.list()).toEqual([]);
    expect(await second!.has(ref.digest)).toBe(false);
    expect(await first!.list()).toEqual([ref]);
  });

  it('is built from the environment by createArtifactStore, which creates a missing bucket', async () => {
    const config = parseArtifactStoreConfig({
      ARTIFACT_STORE_URL: 's3://created-on-demand/lambdas',
      S3_ENDPOINT: s3.url,
      S3_ACCESS_KEY: s3.accessKey,
      S3_SECRET_KEY: s3.secretKey,
    });
    expect(await s3.client().bucketExists('created-on-demand')).toBe(false);
    const ref = await (await createArtifactStore(config)).put(asset);
    expect(await s3.client().bucketExists('created-on-demand')).toBe(true);
    // A second replica finds the bucket there and sees the same assets.
    expect(await (await createArtifactStore(config)).get(ref.digest)).toEqual(Buffer.from(asset));
  });

  it('rejects, naming the store, once the server is gone', async () => {
    const doomed = await startS3({ bucket: BUCKET });
    const store = createS3ArtifactStore({ client: doomed.client(), bucket: BUCKET, prefix: 'gone' });
    let digest: string;
    try {
      ({ digest } = await store.put(asset));
    } finally {
      await doomed.stop();
    }

    const naming = (operation: string) => expect.objectContaining({ message: expect.stringMatching(new RegExp(`^${operation} .*s3://${BUCKET}/gone/sha256/.*ECONNREFUSED`)) });
    await expect(store.put(new TextEncoder().encode('new'))).rejects.toEqual(naming('storing asset'));
    await expect(store.get(digest)).rejects.toEqual(naming('reading asset'));
    await expect(store.has(digest)).rejects.toEqual(naming('checking for asset'));
    await expect(store.delete(digest)).rejects.toEqual(naming('deleting asset'));
    await expect(store.list()).rejects.toEqual(naming('listing assets in'));
    // Digests are checked before the server is asked.
    await expect(store.get('sha256:nope')).rejects.toThrow('invalid asset digest "sha256:nope"');
  }, 15_000);

  describe('against a server that accepts connections and never answers', () => {
    let silent: SilentServer;
    // Hooks rather than try/finally, so the server closes even when the test times out.
    beforeAll(async () => {
      silent = await startSilentServer();
    });
    afterAll(() => silent?.stop());

    it('gives up once the connection has been idle for idleTimeoutMs', async () => {
      const config = parseArtifactStoreConfig({ ARTIFACT_STORE_URL: `s3://${BUCKET}`, S3_ENDPOINT: silent.url, S3_ACCESS_KEY: 'a', S3_SECRET_KEY: 'b' });
      await expect(createArtifactStore(config, { idleTimeoutMs: 300 })).rejects.toThrow(
        `making sure bucket s3://${BUCKET} exists: no answer from the S3 server for 300 ms`,
      );
    }, 10_000);
  });
});

interface SilentServer {
  url: string;
  stop(): Promise<void>;
}

/** A TCP server on loopback that accepts connections and never says a word. */
async function startSilentServer(): Promise<SilentServer> {
  const server = net.createServer();
  const connections = new Set<net.Socket>();
  server.on('connection', (socket) => connections.add(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    stop: async () => {
      for (const socket of connections) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
