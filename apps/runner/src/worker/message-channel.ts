// The runner and a worker talk over a socket pair of their own (the worker's fd 3). Node's IPC
// channel writes each message with a syscall of its own and its 'advanced' serialization costs
// more than the rest of a small request; here every message sent in one turn of the event loop
// leaves in one write, and a message is JSON with its binary parts (body chunks) alongside:
//   [u32 frame length][u32 JSON length][JSON]([u32 part length][part])*
// The worker host imports this file, so it may import nothing but node built-ins.
import type { Socket } from 'node:net';

const U32 = 4;

export interface MessageChannelOptions {
  /**
   * Frames announced larger than this are not read: the channel stops reading and calls
   * onOversizedFrame, so the other side cannot make this one buffer without bound.
   */
  maxFrameBytes?: number;
  onOversizedFrame?: (bytes: number) => void;
}

export class MessageChannel<Outgoing, Incoming> {
  readonly #socket: Socket;
  readonly #maxFrameBytes: number;
  readonly #onOversizedFrame: (bytes: number) => void;
  #refused = false;
  #queued: Buffer[] = [];
  #flushScheduled = false;
  #received: Buffer = Buffer.alloc(0);

  constructor(socket: Socket, onMessage: (message: Incoming, parts: Uint8Array[]) => void, options: MessageChannelOptions = {}) {
    this.#socket = socket;
    this.#maxFrameBytes = options.maxFrameBytes ?? Infinity;
    this.#onOversizedFrame = options.onOversizedFrame ?? (() => undefined);
    socket.on('data', (data: Buffer) => {
      if (this.#refused) return;
      for (const [message, parts] of this.#framesOf(data)) onMessage(message, parts);
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
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => this.#flush());
  }

  /** Resolves once everything sent so far has been handed to the operating system. */
  drained(): Promise<void> {
    return new Promise((resolve) => setImmediate(() => (this.#socket.writableNeedDrain ? this.#socket.once('drain', resolve) : resolve())));
  }

  #flush() {
    this.#flushScheduled = false;
    const buffers = this.#queued;
    this.#queued = [];
    if (this.#socket.writable) this.#socket.write(Buffer.concat(buffers));
  }

  #framesOf(data: Buffer): Array<[Incoming, Uint8Array[]]> {
    const buffer = this.#received.length ? Buffer.concat([this.#received, data]) : data;
    const frames: Array<[Incoming, Uint8Array[]]> = [];
    let offset = 0;
    while (buffer.length - offset >= U32) {
      const frameBytes = buffer.readUInt32LE(offset);
      if (frameBytes > this.#maxFrameBytes) {
        this.#refused = true;
        this.#received = Buffer.alloc(0);
        this.#socket.pause();
        this.#onOversizedFrame(frameBytes);
        return frames;
      }
      const end = offset + U32 + frameBytes;
      if (buffer.length < end) break;
      const jsonEnd = offset + 2 * U32 + buffer.readUInt32LE(offset + U32);
      const message = JSON.parse(buffer.toString('utf8', offset + 2 * U32, jsonEnd)) as Incoming;
      const parts: Uint8Array[] = [];
      for (let at = jsonEnd; at < end; ) {
        const partEnd = at + U32 + buffer.readUInt32LE(at);
        parts.push(buffer.subarray(at + U32, partEnd));
        at = partEnd;
      }
      frames.push([message, parts]);
      offset = end;
    }
    // A partial frame is kept as a copy, so the socket's large read buffer can be freed.
    this.#received = offset < buffer.length ? Buffer.from(buffer.subarray(offset)) : Buffer.alloc(0);
    return frames;
  }
}
