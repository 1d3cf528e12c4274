import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { EncryptedEnvValue, RouteEnvEntry } from './index.ts';

// Env values taken from Secrets are encrypted in route records (AES-256-GCM), so Redis, its
// backups and anyone allowed to read the routes hash never hold them in plaintext. Only
// api-controller (which encrypts) and the runners (which decrypt for the workers) hold the keys.

/** The variable both api-controller and the runner read their keys from. */
export const ENV_ENCRYPTION_KEYS = 'ENV_ENCRYPTION_KEYS';

const ALGORITHM = 'aes-256-gcm';
const KEY_BYTES = 32;
/** 96 bits, the IV length GCM is specified for; a fresh random one for every value. */
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export interface EnvEncryptionKey {
  id: string;
  key: Buffer;
}

/** Where a value belongs: authenticated with it, so a ciphertext is valid for this lambda and env name only. */
export interface EnvValueContext {
  /** "<namespace>/<name>" */
  lambdaKey: string;
  name: string;
}

/** A value that cannot be decrypted: its key is unknown here, or it fails authentication. */
export class EnvDecryptionError extends Error {}

/**
 * The keys values are encrypted with: the first encrypts, every one decrypts, so a key can be
 * rotated by putting the new one first and dropping the old one once no record uses it.
 */
export class EnvKeyRing {
  readonly #keys: ReadonlyMap<string, Buffer>;
  readonly current: EnvEncryptionKey;

  constructor(keys: readonly EnvEncryptionKey[]) {
    if (keys.length === 0) throw new Error('an env key ring needs at least one key');
    this.current = keys[0]!;
    this.#keys = new Map(keys.map(({ id, key }) => [id, key]));
  }

  get ids(): string[] {
    return [...this.#keys.keys()];
  }

  encrypt(value: string, context: EnvValueContext): EncryptedEnvValue {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv(ALGORITHM, this.current.key, iv, { authTagLength: TAG_BYTES }).setAAD(associatedData(context));
    const ciphertext = Buffer.concat([cipher.update(value, 'utf8'), cipher.final()]);
    return { keyId: this.current.id, iv: iv.toString('base64'), ciphertext: ciphertext.toString('base64'), tag: cipher.getAuthTag().toString('base64') };
  }

  /** Throws EnvDecryptionError, naming the lambda, the env name and the key id, when it cannot. */
  decrypt(encrypted: EncryptedEnvValue, context: EnvValueContext): string {
    const what = `env ${context.name} of lambda ${context.lambdaKey}`;
    const key = this.#keys.get(encrypted.keyId);
    if (!key) throw new EnvDecryptionError(`${what} is encrypted with key "${encrypted.keyId}", which is not among the keys in ${ENV_ENCRYPTION_KEYS} (${this.ids.join(', ')})`);
    try {
      const decipher = createDecipheriv(ALGORITHM, key, Buffer.from(encrypted.iv, 'base64'), { authTagLength: TAG_BYTES }).setAAD(associatedData(context));
      decipher.setAuthTag(Buffer.from(encrypted.tag, 'base64'));
      return Buffer.concat([decipher.update(Buffer.from(encrypted.ciphertext, 'base64')), decipher.final()]).toString('utf8');
    } catch (error) {
      throw new EnvDecryptionError(`${what} fails authentication under key "${encrypted.keyId}": it was altered, or encrypted for another lambda or env name`, { cause: error });
    }
  }

  /**
   * The value encrypted with the current key, reusing `previous` when it already is that value
   * under that key: a fresh IV each time would change the route record on every reconcile, and
   * the runners start new workers whenever a record changes.
   */
  encryptUnlessUnchanged(value: string, context: EnvValueContext, previous: EncryptedEnvValue | undefined): EncryptedEnvValue {
    if (previous?.keyId === this.current.id && this.#decryptsTo(previous, context, value)) return previous;
    return this.encrypt(value, context);
  }

  #decryptsTo(encrypted: EncryptedEnvValue, context: EnvValueContext, value: string): boolean {
    try {
      return this.decrypt(encrypted, context) === value;
    } catch {
      return false;
    }
  }
}

/** Versioned, and JSON so that no lambda key and env name pair can be read as another. */
function associatedData({ lambdaKey, name }: EnvValueContext): Buffer {
  return Buffer.from(JSON.stringify(['kublambda.io/route-env/v1', lambdaKey, name]));
}

/**
 * The route's env as the lambda gets it, every encrypted value decrypted. Throws
 * EnvDecryptionError for the first value that cannot be: the lambda must not run without it.
 */
export function decryptRouteEnv(route: { key: string; env: readonly RouteEnvEntry[] }, keys: EnvKeyRing): Record<string, string> {
  return Object.fromEntries(route.env.map((entry) => [entry.name, 'encrypted' in entry ? keys.decrypt(entry.encrypted, { lambdaKey: route.key, name: entry.name }) : entry.value]));
}

/**
 * Parses ENV_ENCRYPTION_KEYS: comma-separated `<key id>:<base64 of 32 bytes>`, the first one
 * encrypting. Every error names the variable and the entry, never the key material.
 */
export function parseEnvKeyRing(raw: string | undefined): EnvKeyRing {
  const entries = (raw ?? '').split(',').map((entry) => entry.trim()).filter(Boolean);
  const format = `<key id>:<base64 of ${KEY_BYTES} random bytes>, comma-separated, the first one encrypting`;
  if (entries.length === 0) throw new Error(`${ENV_ENCRYPTION_KEYS} is required: ${format} (for example from \`openssl rand -base64 32\`)`);
  const keys = entries.map((entry, index) => parseKey(entry, `${ENV_ENCRYPTION_KEYS} entry ${index + 1}`, format));
  const duplicate = keys.find((key, index) => keys.findIndex((other) => other.id === key.id) !== index);
  if (duplicate) throw new Error(`${ENV_ENCRYPTION_KEYS} names key id "${duplicate.id}" more than once`);
  return new EnvKeyRing(keys);
}

function parseKey(entry: string, label: string, format: string): EnvEncryptionKey {
  const separator = entry.indexOf(':');
  if (separator < 0) throw new Error(`${label} has no key id: expected ${format}`);
  const id = entry.slice(0, separator);
  const encoded = entry.slice(separator + 1);
  if (!KEY_ID.test(id)) throw new Error(`${label}: the key id "${id}" must be 1 to 64 letters, digits, ".", "_" or "-", starting with a letter or digit`);
  if (!BASE64.test(encoded)) throw new Error(`${label} (key id "${id}"): the key is not valid base64`);
  const key = Buffer.from(encoded, 'base64');
  if (key.length !== KEY_BYTES) throw new Error(`${label} (key id "${id}"): the key is ${key.length} bytes, AES-256 needs ${KEY_BYTES}`);
  return { id, key };
}

/** A new random key, as an ENV_ENCRYPTION_KEYS value: for local platforms and tests. */
export function generateEnvEncryptionKey(id: string): string {
  return `${id}:${randomBytes(KEY_BYTES).toString('base64')}`;
}
