// The runner and a worker talk over a socket pair of their own (the worker's fd 3). Node's IPC
// channel writes each message with a syscall of its own and its 'advanced' serialization costs
// more than the rest of a small request; here every message sent in one turn of the event loop
// leaves in one write, and a message is JSON with its binary parts (body chunks) alongside:
//   [u32 frame length][u32 JSON length][JSON]([u32 part length][part])*
// The worker host imports this file, so it may import nothing but node built-ins.
import type { Socket } from 'node:net';

const U32 = 4;

export interface MessageChannelOptions {
  /** Frames announced larger than this are a protocol error: the other side cannot make this one buffer without bound. */
  maxFrameBytes?: number;
  /**
   * Called once when the other side breaks the framing (a frame too large, lengths that do not
   * add up, a message that is not JSON); the channel reads nothing more.
   */
  onProtocolError?: (problem: string) => void;
  /** Called as each write is assembled; what it sends goes out in that write. */
  beforeFlush?: () => void;
}

export class MessageChannel<Outgoing, Incoming> {
  readonly #socket: Socket;
  readonly #maxFrameBytes: number;
  readonly #onProtocolError: (problem: string) => void;
  readonly #beforeFlush: (() => void) | undefined;
  #broken = false;
  #queued: Buffer[] = [];
  #flushScheduled = false;
  /** Bytes received and not yet framed, in arrival order; copied together once per frame. */
  #received: Buffer[] = [];
  #receivedBytes = 0;

  constructor(socket: Socket, onMessage: (message: Incoming, parts: Uint8Array[]) => void, options: MessageChannelOptions = {}) {
    this.#socket = socket;
    this.#maxFrameBytes = options.maxFrameBytes ?? Infinity;
    this.#onProtocolError = options.onProtocolError ?? (() => undefined);
    this.#beforeFlush = options.beforeFlush;
    socket.on('data', (data: Buffer) => {
      if (this.#broken) return;
      this.#received.push(data);
      this.#receivedBytes += data.length;
      for (const [message, parts] of this.#completeFrames()) onMessage(message, parts);
    });
    // A failed write means the other side is gone; its 'close' tells the owner.
    socket.on('error', () => undefined);
  }

  /** Queues the message; it is written with the others of this turn once the turn ends. */
  send(message: Outgoing, parts: readonly Uint8Array[] = []): void {
    const json = Buffer.from(JSON.stringify(message));
    let frameLength = U32 + json.length;
    for (const part of parts) frameLength += U32 + part.byteLength;
    const header = Buffer.allocUnsafe(2 * U32);
    header.writeUInt32LE(frameLength, 0);
    header.writeUInt32LE(json.length, U32);
    this.#queued.push(header, json);
    for (const part of parts) {
      const length = Buffer.allocUnsafe(U32);
      length.writeUInt32LE(part.byteLength);
      this.#queued.push(length, Buffer.from(part.buffer, part.byteOffset, part.byteLength));
    }
    this.flushSoon();
  }

  /** Makes sure a write is assembled once this turn ends, also when nothing is queued yet (see beforeFlush). */
  flushSoon(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => this.#flush());
  }

  /** Resolves once everything sent so far has been handed to the operating system. */
  drained(): Promise<void> {
    return new Promise((resolve) => setImmediate(() => (this.#socket.writableNeedDrain ? this.#socket.once('drain', resolve) : resolve())));
  }

  #flush() {
    // Still marked scheduled, so what beforeFlush sends joins this write.
    this.#beforeFlush?.();
    this.#flushScheduled = false;
    const buffers = this.#queued;
    this.#queued = [];
    if (buffers.length > 0 && this.#socket.writable) this.#socket.write(Buffer.concat(buffers));
  }

  #completeFrames(): Array<[Incoming, Uint8Array[]]> {
    const frames: Array<[Incoming, Uint8Array[]]> = [];
    while (!this.#broken && this.#receivedBytes >= U32) {
      const frameBytes = this.#peekLength();
      if (frameBytes > this.#maxFrameBytes) {
        this.#fail(`a frame of ${frameBytes} bytes, more than ${this.#maxFrameBytes}`);
        break;
      }
      if (this.#receivedBytes < U32 + frameBytes) break;
      const frame = this.#take(U32 + frameBytes).subarray(U32);
      try {
        frames.push(decodeFrame<Incoming>(frame));
      } catch (error) {
        this.#fail(error instanceof Error ? error.message : String(error));
      }
    }
    return frames;
  }

  #peekLength(): number {
    const first = this.#received[0]!;
    return (first.length >= U32 ? first : Buffer.concat(this.#received, U32)).readUInt32LE(0);
  }

  /** The next `bytes` received bytes, copied only when they span several reads. */
  #take(bytes: number): Buffer {
    const first = this.#received[0]!;
    let taken: Buffer;
    if (first.length >= bytes) {
      taken = first.subarray(0, bytes);
      if (first.length === bytes) this.#received.shift();
      else this.#received[0] = first.subarray(bytes);
    } else {
      taken = Buffer.allocUnsafe(bytes);
      let filled = 0;
      while (filled < bytes) {
        const chunk = this.#received[0]!;
        const used = Math.min(chunk.length, bytes - filled);
        chunk.copy(taken, filled, 0, used);
        filled += used;
        if (used === chunk.length) this.#received.shift();
        else this.#received[0] = chunk.subarray(used);
      }
    }
    this.#receivedBytes -= bytes;
    return taken;
  }

  #fail(problem: string) {
    this.#broken = true;
    this.#received = [];
    this.#receivedBytes = 0;
    this.#socket.pause();
    this.#onProtocolError(problem);
  }
}

/** One frame after its length: [u32 JSON length][JSON]([u32 part length][part])*. Throws when the lengths do not add up. */
function decodeFrame<Message>(frame: Buffer): [Message, Uint8Array[]] {
  if (frame.length < U32) throw new Error('a frame too short for its JSON length');
  const jsonEnd = U32 + frame.readUInt32LE(0);
  if (jsonEnd > frame.length) throw new Error('a JSON length beyond its frame');
  let message: Message;
  try {
    message = JSON.parse(frame.toString('utf8', U32, jsonEnd)) as Message;
  } catch {
    throw new Error('a message that is not JSON');
  }
  const parts: Uint8Array[] = [];
  for (let at = jsonEnd; at < frame.length; ) {
    if (at + U32 > frame.length) throw new Error('a part length beyond its frame');
    const partEnd = at + U32 + frame.readUInt32LE(at);
    if (partEnd > frame.length) throw new Error('a part beyond its frame');
    parts.push(frame.subarray(at + U32, partEnd));
    at = partEnd;
  }
  return [message, parts];
}
