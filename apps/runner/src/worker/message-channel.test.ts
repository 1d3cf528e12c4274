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
});
