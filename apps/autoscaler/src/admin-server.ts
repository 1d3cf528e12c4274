import http from 'node:http';
import type { Registry } from 'prom-client';

/** /healthz and /metrics (the registry) on host:port; resolves once listening. */
export async function serveAdmin(registry: Registry, host: string, port: number): Promise<http.Server> {
  const json = (response: http.ServerResponse, status: number, body: unknown) => void response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  const server = http.createServer((request, response) => {
    const path = request.url?.split('?')[0];
    if (path === '/healthz') json(response, 200, { status: 'ok' });
    else if (path === '/metrics') {
      registry.metrics().then(
        (text) => void response.writeHead(200, { 'content-type': registry.contentType }).end(text),
        (error: unknown) => json(response, 500, { error: String(error) }),
      );
    } else json(response, 404, { error: 'not found' });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}
