// The least a runner can cost that hands each request to a process of its own, to put B in
// proportion: node:http in front, each request's method, URL and headers as one JSON line over a
// socket pair (the other process's fd 3), the answer back the same way, lines of one event-loop
// turn in one write. Nothing else: no routing, limits, metrics, timeouts or streaming.
//   node floor.ts serve PORT fixed|fetch    the front process; it starts the answering one
//   node floor.ts answer fixed|fetch        the answering process (started by serve)
// fixed answers with a ready-made reply; fetch builds a web Request, calls a handler and reads
// its Response, as a lambda's handler shape requires.
import { spawn } from 'node:child_process';
import { createServer, type ServerResponse } from 'node:http';
import { Socket } from 'node:net';

interface Asked {
  id: number;
  method: string;
  url: string;
  headers: string[];
}

interface Answer {
  id: number;
  status: number;
  headers: string[];
  body: string;
}

/** Writes the lines of one event-loop turn together, reads lines as they come. */
function lineChannel<Incoming>(socket: Socket, onLine: (message: Incoming) => void): (message: unknown) => void {
  let queued: string[] = [];
  let received = '';
  socket.setEncoding('utf8');
  socket.on('data', (data: string) => {
    received += data;
    for (let end = received.indexOf('\n'); end >= 0; end = received.indexOf('\n')) {
      onLine(JSON.parse(received.slice(0, end)) as Incoming);
      received = received.slice(end + 1);
    }
  });
  return (message) => {
    if (queued.length === 0) setImmediate(() => socket.write(queued.splice(0).join('')));
    queued.push(`${JSON.stringify(message)}\n`);
  };
}

const [role, second, third] = process.argv.slice(2);

if (role === 'serve') {
  const answering = spawn(process.execPath, [process.argv[1]!, 'answer', third!], { stdio: ['ignore', 'inherit', 'inherit', 'pipe'] });
  const waiting = new Map<number, ServerResponse>();
  let asked = 0;
  const send = lineChannel<Answer>(answering.stdio[3] as Socket, (answer) => {
    const response = waiting.get(answer.id)!;
    waiting.delete(answer.id);
    response.writeHead(answer.status, answer.headers).end(answer.body);
  });
  createServer((request, response) => {
    const id = asked++;
    waiting.set(id, response);
    send({ id, method: request.method ?? 'GET', url: request.url ?? '/', headers: request.rawHeaders } satisfies Asked);
  }).listen(Number(second), '127.0.0.1', () => console.log('listening'));
  process.on('SIGTERM', () => {
    answering.kill();
    process.exit(0);
  });
} else if (role === 'answer') {
  const handler = async (_request: Request) => new Response('hello world');
  const socket = new Socket({ fd: 3, readable: true, writable: true });
  socket.on('close', () => process.exit(0));
  const send = lineChannel<Asked>(socket, (asked) => {
    if (second === 'fixed') return send({ id: asked.id, status: 200, headers: ['content-type', 'text/plain;charset=UTF-8'], body: 'hello world' } satisfies Answer);
    void (async () => {
      const headers: Array<[string, string]> = [];
      for (let i = 0; i < asked.headers.length; i += 2) headers.push([asked.headers[i]!, asked.headers[i + 1]!]);
      const response = await handler(new Request(`http://127.0.0.1${asked.url}`, { method: asked.method, headers }));
      const body = await response.text();
      send({ id: asked.id, status: response.status, headers: [...response.headers].flat(), body } satisfies Answer);
    })();
  });
} else {
  throw new Error('usage: node floor.ts serve PORT fixed|fetch');
}
