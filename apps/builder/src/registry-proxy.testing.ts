// A forwarding HTTP proxy in front of a test registry: it records every request the builder
// makes (so a test can count blob uploads and mounts) and can hold requests (so a test can
// act while a build is in the middle of talking to the registry).
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SeenRegistryRequest {
  method: string;
  url: URL;
  status: number;
}

export interface RegistryProxy {
  /** http://127.0.0.1:<port>: give this to the builder as IMAGE_REGISTRY_URL. */
  url: string;
  host: string;
  requests: SeenRegistryRequest[];
  /** Requests waiting at the gate right now. */
  readonly held: number;
  /** Holds every request from now until the returned function is called. */
  hold(): () => void;
  /** Answers the next `count` requests itself with this status, as a registry in trouble would. */
  failNext(count: number, status: number): void;
  close(): Promise<void>;
}

export async function startRegistryProxy(registryUrl: string): Promise<RegistryProxy> {
  const upstream = new URL(registryUrl);
  const requests: SeenRegistryRequest[] = [];
  let gate: Promise<void> | undefined;
  let held = 0;
  let failures = { count: 0, status: 503 };
  const server = http.createServer(async (request, response) => {
    response.on('error', () => {});
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    while (gate) {
      held++;
      await gate;
      held--;
    }
    if (failures.count > 0) {
      failures.count--;
      requests.push({ method: request.method ?? 'GET', url: new URL(request.url ?? '/', proxyUrl), status: failures.status });
      response.writeHead(failures.status, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ errors: [{ code: 'UNAVAILABLE', message: 'injected by the test proxy' }] }));
      return;
    }
    // The Host header passes unchanged: the registry builds upload Locations from it, so they point back here.
    const forward = http.request(
      { host: upstream.hostname, port: upstream.port, method: request.method, path: request.url, headers: request.headers },
      (answer) => {
        requests.push({ method: request.method ?? 'GET', url: new URL(request.url ?? '/', proxyUrl), status: answer.statusCode ?? 0 });
        response.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(response);
      },
    );
    forward.on('error', (error) => response.destroy(error));
    forward.end(Buffer.concat(chunks));
  });
  server.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', resolve));
  const { port } = server.address() as AddressInfo;
  const proxyUrl = `http://127.0.0.1:${port}`;
  return {
    url: proxyUrl,
    host: `127.0.0.1:${port}`,
    requests,
    get held() {
      return held;
    },
    hold() {
      let release!: () => void;
      gate = new Promise<void>((resolve) => (release = resolve));
      return () => {
        gate = undefined;
        release();
      };
    },
    failNext(count, status) {
      failures = { count, status };
    },
    async close() {
      gate = undefined;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The blob requests for one repository: upload sessions, mounts the registry did and refused, upload PUTs. */
export function blobTraffic(requests: SeenRegistryRequest[], repository: string) {
  const uploads = requests.filter((request) => request.url.pathname.startsWith(`/v2/${repository}/blobs/uploads/`));
  const posts = uploads.filter((request) => request.method === 'POST');
  return {
    uploadSessions: posts.filter((request) => !request.url.searchParams.has('mount')).length,
    mounted: posts.filter((request) => request.url.searchParams.has('mount') && request.status === 201).length,
    mountRefused: posts.filter((request) => request.url.searchParams.has('mount') && request.status === 202).length,
    uploadPuts: uploads.filter((request) => request.method === 'PUT').length,
  };
}
