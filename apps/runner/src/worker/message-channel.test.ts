import { describe, expect, it } from '@jest/globals';
import type { Socket } from 'node:net';
import { duplexPair } from 'node:stream';
import { MessageChannel } from './message-channel.ts';

interface Note {
  text: string;
}

function receiverOf(socket: Socket) {
  const received: Array<{ message: Note; parts: string[] }> = [];
  new MessageChannel<Note, Note>(socket, (message, parts) => received.push({ message, parts: parts.map((part) => Buffer.from(part).toString()) }));
  return received;
}

function u32(value: number): Buffer {
  const buffer = Buffer.alloc(4);
  buffer.writeUInt32LE(value);
  return buffer;
}

/** A frame starts with its length (not counting those 4 bytes). */
const frameLength = u32;

async function until(condition: () => boolean) {
  while (!condition()) await new Promise((resolve) => setImmediate(resolve));
}

describe('MessageChannel', () => {
  it('delivers messages in order with their binary parts', async () => {
    const [left, right] = duplexPair();
    const sender = new MessageChannel<Note, Note>(left as unknown as Socket, () => undefined);
    const received = receiverOf(right as unknown as Socket);
    sender.send({ text: 'no parts' });
    sender.send({ text: 'two parts' }, [Buffer.from('first'), new Uint8Array(Buffer.from('second'))]);
    sender.send({ text: 'ünïcode' }, [new Uint8Array(0)]);
    await until(() => received.length === 3);
    expect(received).toEqual([
      { message: { text: 'no parts' }, parts: [] },
      { message: { text: 'two parts' }, parts: ['first', 'second'] },
      { message: { text: 'ünïcode' }, parts: [''] },
    ]);
  });

  it('reassembles frames that arrive a byte at a time and several in one read', async () => {
    const [left, right] = duplexPair();
    const wire: Buffer[] = [];
    const capture = new MessageChannel<Note, Note>(left as unknown as Socket, () => undefined);
    right.on('data', (data: Buffer) => wire.push(data));
    capture.send({ text: 'one' }, [Buffer.from('a'.repeat(1000))]);
    capture.send({ text: 'two' });
    await until(() => wire.length > 0);
    const bytes = Buffer.concat(wire);

    const [writer, reader] = duplexPair();
    const received = receiverOf(reader as unknown as Socket);
    for (const byte of bytes) writer.write(Buffer.from([byte]));
    writer.write(Buffer.concat([bytes, bytes]));
    await until(() => received.length === 6);
    expect(received.map(({ message }) => message.text)).toEqual(['one', 'two', 'one', 'two', 'one', 'two']);
    expect(received[0]!.parts).toEqual(['a'.repeat(1000)]);
  });

  it('writes all messages of one turn in one write', async () => {
    const [left, right] = duplexPair();
    const reads: Buffer[] = [];
    right.on('data', (data: Buffer) => reads.push(data));
    const sender = new MessageChannel<Note, Note>(left as unknown as Socket, () => undefined);
    for (let i = 0; i < 10; i++) sender.send({ text: `message ${i}` });
    await sender.drained();
    await until(() => reads.length > 0);
    expect(reads).toHaveLength(1);
  });

  it('reassembles a 16 MiB frame that arrives in 64 KiB reads', async () => {
    const [left, right] = duplexPair();
    const wire: Buffer[] = [];
    right.on('data', (data: Buffer) => wire.push(data));
    const sender = new MessageChannel<Note, Note>(left as unknown as Socket, () => undefined);
    const big = Buffer.alloc(16 * 1024 * 1024, 7);
    big[big.length - 1] = 9;
    sender.send({ text: 'big' }, [big]);
    await sender.drained();
    await until(() => wire.length > 0);
    const bytes = Buffer.concat(wire);

    const [writer, reader] = duplexPair();
    const received: Array<{ text: string; part: Uint8Array }> = [];
    new MessageChannel<Note, Note>(reader as unknown as Socket, (message, parts) => received.push({ text: message.text, part: parts[0]! }));
    for (let offset = 0; offset < bytes.length; offset += 64 * 1024) writer.write(bytes.subarray(offset, offset + 64 * 1024));
    await until(() => received.length === 1);
    expect(received[0]!.text).toBe('big');
    expect(Buffer.from(received[0]!.part).equals(big)).toBe(true);
  });

  it.each([
    ['a frame over the limit', [frameLength(2048)], 'a frame of 2048 bytes, more than 1024'],
    ['a message that is not JSON', [frameLength(4 + 9), u32(9), Buffer.from('{not json')], 'a message that is not JSON'],
    ['a JSON length beyond its frame', [frameLength(4 + 2), u32(50), Buffer.from('{}')], 'a JSON length beyond its frame'],
    ['a part beyond its frame', [frameLength(4 + 2 + 4 + 1), u32(2), Buffer.from('{}'), u32(99), Buffer.from('x')], 'a part beyond its frame'],
  ])('stops reading and reports %s', async (_what, pieces, problem) => {
    const [writer, reader] = duplexPair();
    const problems: string[] = [];
    const received: unknown[] = [];
    new MessageChannel<Note, Note>(reader as unknown as Socket, (message) => received.push(message), { maxFrameBytes: 1024, onProtocolError: (found) => problems.push(found) });
    writer.write(Buffer.concat(pieces as Buffer[]));
    // A good frame after the bad one is not read either.
    writer.write(Buffer.concat([frameLength(4 + 2), u32(2), Buffer.from('{}')]));
    await until(() => problems.length > 0);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(problems).toEqual([problem]);
    expect(received).toEqual([]);
  });
});
