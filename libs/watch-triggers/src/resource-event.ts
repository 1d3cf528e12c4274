import { CloudEvent, HTTP } from 'cloudevents';
import { RESOURCE_EVENT_TYPES } from '@kublambda/lambda-api';
import type { WatchEventType } from './watcher-config.ts';

// The CloudEvent a lambda receives for a resource change, in HTTP binary mode: attributes in
// ce-* headers, the object as the JSON body. libs/lambda-api reads it back (readResourceEvent).

export { RESOURCE_EVENT_TYPES };

/** Old objects larger than this (encoded) are left out of the event, and `ce-oldobjectomitted` says so. */
export const OLD_OBJECT_HEADER_LIMIT = 256 * 1024;

interface KubeObject {
  metadata?: { uid?: string; resourceVersion?: string; name?: string; namespace?: string };
}

/**
 * The event id: the same for every delivery of one object version (a redelivery or a relist
 * finding it again), different for the next one. A deletion happens once per uid.
 */
export function resourceEventId(type: WatchEventType, object: KubeObject): string {
  const { uid = '', resourceVersion = '' } = object.metadata ?? {};
  return type === 'DELETED' ? `${uid}/deleted` : `${uid}/${resourceVersion}`;
}

export interface ResourceEventInput {
  type: WatchEventType;
  object: KubeObject;
  oldObject?: KubeObject | null;
  /** The API server's URL and the resource's path. */
  source: string;
  /** When the watcher saw the change. */
  time: Date;
  triggerIndex: number;
  /** The id it was first sent with, for a redelivery (a dead letter's); else resourceEventId's. */
  id?: string;
}

/** The HTTP request of one delivery: headers and body. */
export function resourceEventRequest(input: ResourceEventInput): { headers: Record<string, string>; body: string } {
  const { namespace, name } = input.object.metadata ?? {};
  const extensions: Record<string, string> = { kublambdatrigger: String(input.triggerIndex) };
  if (input.oldObject) {
    const old = JSON.stringify(input.oldObject);
    if (Buffer.byteLength(old) <= OLD_OBJECT_HEADER_LIMIT) extensions.oldobject = old;
    else extensions.oldobjectomitted = 'too-large';
  }
  const event = new CloudEvent({
    specversion: '1.0',
    // The SDK would make both up (a random id, the current time); ours must survive redelivery.
    id: input.id ?? resourceEventId(input.type, input.object),
    time: input.time.toISOString(),
    type: RESOURCE_EVENT_TYPES[input.type],
    source: input.source,
    subject: namespace ? `${namespace}/${name}` : `${name}`,
    datacontenttype: 'application/json',
    data: input.object,
    ...extensions,
  }, false);
  const message = HTTP.binary(event);
  const headers: Record<string, string> = {};
  for (const [key, value] of Object.entries(message.headers)) {
    // The HTTP binding wants ce-* values percent-encoded; the SDK sends them as they are.
    if (value !== undefined) headers[key.toLowerCase()] = key.toLowerCase().startsWith('ce-') ? percentEncodeHeaderValue(String(value)) : String(value);
  }
  const body = typeof message.body === 'string' ? message.body : JSON.stringify(input.object);
  return { headers, body };
}

/**
 * The CloudEvents HTTP binding's encoding of header values: space, double quote, percent and
 * everything outside printable ASCII become %XX of their UTF-8 bytes.
 */
export function percentEncodeHeaderValue(value: string): string {
  let out = '';
  for (const char of value) {
    const code = char.codePointAt(0)!;
    if (code > 0x20 && code < 0x7f && char !== '"' && char !== '%') out += char;
    else for (const byte of Buffer.from(char, 'utf8')) out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}
