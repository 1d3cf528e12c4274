// `npm run down`: stops the local all-in-one that `npm run up` started with the same --dir, from
// another terminal, as Ctrl-C would, and waits until it has stopped everything.
//   node tools/local/down.ts [--dir <state dir>]
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { cacheDir } from '@kublambda/dev-servers';

export const UP_PID_FILE = 'up.pid';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { dir: { type: 'string' } } });
  const dir = path.resolve(values.dir ?? path.join(cacheDir(), 'local'));
  const pid = Number((await readFile(path.join(dir, UP_PID_FILE), 'utf8').catch(() => '')).trim());
  if (!pid || !alive(pid)) {
    console.log(`down: no local platform is running from ${dir}`);
  } else {
    process.kill(pid, 'SIGTERM');
    console.log(`down: asked the local platform (pid ${pid}) to stop; waiting for it`);
    const deadline = Date.now() + 120_000;
    while (alive(pid) && Date.now() < deadline) await sleep(200);
    if (alive(pid)) {
      console.error(`down: pid ${pid} is still running after 120 s`);
      process.exitCode = 1;
    } else console.log('down: stopped');
  }
}
