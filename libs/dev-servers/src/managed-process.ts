import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';

export interface ManagedProcessOptions {
  /** Short name used in errors, for example "kube-apiserver". */
  name: string;
  command: string;
  args: string[];
  /** stdout and stderr go here, so a failed start can show why. */
  logFile: string;
  /**
   * The same lines again in the CRI log format a kubelet writes (`<RFC 3339 time> stdout F <line>`),
   * for kwok to serve as a pod's log (pods/log): servePodLogs's logsFile.
   */
  criLogFile?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Resolves true once the process serves; polled until startTimeoutMs. */
  isReady: () => Promise<boolean>;
  startTimeoutMs?: number;
}

export interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  /** The CRI-format copy of the output, when one was asked for. */
  readonly criLogFile?: string;
  /** SIGTERM, then SIGKILL after the grace period. Safe to call twice. */
  stop(graceMs?: number): Promise<void>;
  /** Kills the process at once, as a crash would. */
  kill(): Promise<void>;
}

const LOG_TAIL_LINES = 30;

export async function logTail(logFile: string): Promise<string> {
  const text = await readFile(logFile, 'utf8').catch(() => '');
  return text.trimEnd().split('\n').slice(-LOG_TAIL_LINES).join('\n');
}

/**
 * Starts a server process and waits until it answers. If it exits or does not become ready
 * in time, the error carries the tail of its log.
 */
export async function startManagedProcess(options: ManagedProcessOptions): Promise<ManagedProcess> {
  const log = createWriteStream(options.logFile, { flags: 'a' });
  await once(log, 'open');
  const cri = options.criLogFile ? createWriteStream(options.criLogFile, { flags: 'a' }) : undefined;
  if (cri) await once(cri, 'open');
  const child = spawn(options.command, options.args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    // The file itself when nothing else wants the output: no copy through this process.
    stdio: cri ? ['ignore', 'pipe', 'pipe'] : ['ignore', log, log],
  });
  if (cri) {
    for (const [stream, name] of [[child.stdout!, 'stdout'], [child.stderr!, 'stderr']] as const) {
      const lines = new CriLines(name, cri);
      stream.on('data', (chunk: Buffer) => {
        log.write(chunk);
        lines.write(chunk);
      });
      stream.on('end', () => lines.end());
    }
    // With pipes, output may still arrive after the exit event: 'close' comes once both are drained.
    child.once('close', () => {
      log.end();
      cri.end();
    });
  }
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
  let exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  void exited.then((info) => {
    exitInfo = info;
    if (!cri) log.end();
  });

  const failure = async (why: string) => {
    await stopChild(child, exited, 2_000);
    return new Error(`${options.name} ${why}; last lines of ${options.logFile}:\n${await logTail(options.logFile)}`);
  };

  const deadline = Date.now() + (options.startTimeoutMs ?? 60_000);
  for (;;) {
    const early = await Promise.race([spawnError, sleep(0).then(() => undefined)]);
    if (early) throw new Error(`${options.name}: cannot start ${options.command}: ${early.message}`, { cause: early });
    if (exitInfo) throw await failure(`exited during start-up (code ${exitInfo.code}, signal ${exitInfo.signal})`);
    if (await options.isReady().catch(() => false)) break;
    if (Date.now() > deadline) throw await failure(`was not ready within ${options.startTimeoutMs ?? 60_000} ms`);
    await sleep(100);
  }

  return {
    name: options.name,
    pid: child.pid!,
    logFile: options.logFile,
    ...(options.criLogFile ? { criLogFile: options.criLogFile } : {}),
    stop: (graceMs = 10_000) => stopChild(child, exited, graceMs),
    kill: () => stopChild(child, exited, 0),
  };
}

/** Splits output into lines and writes each as a CRI log line (full lines only: tag F). */
class CriLines {
  #partial = '';
  readonly #stream: 'stdout' | 'stderr';
  readonly #out: NodeJS.WritableStream;
  constructor(stream: 'stdout' | 'stderr', out: NodeJS.WritableStream) {
    this.#stream = stream;
    this.#out = out;
  }
  write(chunk: Buffer): void {
    const parts = (this.#partial + chunk.toString('utf8')).split('\n');
    this.#partial = parts.pop()!;
    for (const line of parts) this.#out.write(criLogLine(new Date(), this.#stream, line));
  }
  end(): void {
    if (this.#partial) this.#out.write(criLogLine(new Date(), this.#stream, this.#partial));
    this.#partial = '';
  }
}

/** One line as a kubelet's CRI log file holds it. */
export function criLogLine(time: Date, stream: 'stdout' | 'stderr', line: string): string {
  return `${time.toISOString()} ${stream} F ${line}\n`;
}

async function stopChild(child: ChildProcess, exited: Promise<unknown>, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill(graceMs > 0 ? 'SIGTERM' : 'SIGKILL');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}
