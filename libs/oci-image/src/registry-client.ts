// A small client for the OCI distribution API (the parts an image push and pull need), for
// one registry, with HTTP basic credentials. Every failure is a RegistryError that names the
// registry, the operation, the repository, the reference and the HTTP status.
import { isDigest, sha256Digest } from './digest.ts';
import { MANIFEST_ACCEPT, OCI_MANIFEST } from './media-types.ts';

export interface RegistryClientOptions {
  /** The registry's base URL, such as `https://registry.example.com` or `http://127.0.0.1:5000`. */
  url: string;
  username?: string;
  password?: string;
  /** Allow plain http (a loopback development registry). Without it an http URL is refused. */
  insecure?: boolean;
  /** Per request; default 120 s (a base layer is tens of MB). */
  timeoutMs?: number;
  /** Injected in tests to count requests; default the global fetch. */
  fetch?: typeof globalThis.fetch;
}

export interface Manifest {
  bytes: Buffer;
  mediaType: string;
  digest: string;
}

export interface ManifestHead {
  mediaType: string;
  digest: string;
  size: number;
}

/** What happened to a blob that a push needed in a repository. */
export type BlobPushOutcome = 'present' | 'mounted' | 'uploaded';

export type RegistryOperation =
  | 'headBlob'
  | 'getBlob'
  | 'pushBlob'
  | 'mountBlob'
  | 'getManifest'
  | 'headManifest'
  | 'putManifest'
  | 'deleteManifest';

export interface RegistryErrorContext {
  registry: string;
  operation: RegistryOperation;
  repo: string;
  reference: string;
  status: number | undefined;
  bodyExcerpt: string;
}

export class RegistryError extends Error {
  override readonly name = 'RegistryError';
  readonly registry: string;
  readonly operation: RegistryOperation;
  readonly repo: string;
  readonly reference: string;
  /** Undefined when no answer came (a network error, or the request was refused before sending). */
  readonly status: number | undefined;
  readonly bodyExcerpt: string;

  constructor(context: RegistryErrorContext, detail: string, options?: ErrorOptions) {
    const { registry, operation, repo, reference, status, bodyExcerpt } = context;
    super(
      `registry ${registry}: ${operation} ${repo}${reference.startsWith('sha256:') ? '@' : ':'}${reference}: ` +
        `${status === undefined ? '' : `HTTP ${status}: `}${detail}${bodyExcerpt ? ` (${bodyExcerpt})` : ''}`,
      options,
    );
    this.registry = registry;
    this.operation = operation;
    this.repo = repo;
    this.reference = reference;
    this.status = status;
    this.bodyExcerpt = bodyExcerpt;
  }
}

/** Per-client counts of what the registry was asked to do, for tests and logs. */
export interface RegistryClientStats {
  blobUploads: number;
  blobMounts: number;
  /** Mount requests the registry answered with an upload session instead (202). */
  blobMountsRefused: number;
  manifestPuts: number;
}

const REPOSITORY = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const BODY_EXCERPT = 300;

export class RegistryClient {
  /** host[:port], as it appears in image references. */
  readonly host: string;
  readonly stats: RegistryClientStats = { blobUploads: 0, blobMounts: 0, blobMountsRefused: 0, manifestPuts: 0 };
  private readonly base: URL;
  private readonly authorization: string | undefined;
  private readonly timeoutMs: number;
  private readonly fetch: typeof globalThis.fetch;

  constructor(options: RegistryClientOptions) {
    this.base = new URL(options.url);
    if (this.base.protocol !== 'https:' && this.base.protocol !== 'http:') throw new Error(`registry ${options.url}: only http(s) URLs`);
    if (this.base.protocol === 'http:' && !options.insecure) throw new Error(`registry ${options.url}: plain http needs insecure: true`);
    if (this.base.pathname !== '/' || this.base.search) throw new Error(`registry ${options.url}: give the registry's base URL, without a path`);
    this.host = this.base.host;
    this.authorization =
      options.username === undefined ? undefined : `Basic ${Buffer.from(`${options.username}:${options.password ?? ''}`).toString('base64')}`;
    this.timeoutMs = options.timeoutMs ?? 120_000;
    this.fetch = options.fetch ?? globalThis.fetch;
  }

  /** The blob's size if the repository has it, undefined if not. */
  async headBlob(repo: string, digest: string): Promise<{ size: number } | undefined> {
    const context = this.context('headBlob', repo, digest, 'digest');
    const response = await this.request(context, 'HEAD', `/v2/${repo}/blobs/${digest}`);
    if (response.status === 404) return undefined;
    await this.expect(context, response, [200]);
    return { size: Number(response.headers.get('content-length') ?? -1) };
  }

  /** The blob's bytes, checked against the digest. */
  async getBlob(repo: string, digest: string): Promise<Buffer> {
    const context = this.context('getBlob', repo, digest, 'digest');
    const response = await this.request(context, 'GET', `/v2/${repo}/blobs/${digest}`);
    await this.expect(context, response, [200]);
    const bytes = Buffer.from(await response.arrayBuffer());
    if (sha256Digest(bytes) !== digest) throw this.error(context, response.status, '', `the bytes received have digest ${sha256Digest(bytes)}`);
    return bytes;
  }

  /** Uploads the blob in one PUT (POST for a session, then PUT to its Location with the digest). */
  async pushBlob(repo: string, digest: string, bytes: Uint8Array): Promise<void> {
    const context = this.context('pushBlob', repo, digest, 'digest');
    const response = await this.request(context, 'POST', `/v2/${repo}/blobs/uploads/`);
    await this.expect(context, response, [202]);
    await this.putUpload(context, response, digest, bytes);
  }

  /**
   * Asks the registry to link a blob it holds in `fromRepo` into `repo` (201). When it answers
   * with an upload session instead (202: it does not have the blob there, or will not mount),
   * uploads the bytes from `source` into that session.
   */
  async mountBlob(repo: string, digest: string, fromRepo: string, source: () => Promise<Uint8Array>): Promise<'mounted' | 'uploaded'> {
    const context = this.context('mountBlob', repo, digest, 'digest');
    checkRepository(context, fromRepo, this.host);
    const query = `?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(fromRepo)}`;
    const response = await this.request(context, 'POST', `/v2/${repo}/blobs/uploads/${query}`);
    await this.expect(context, response, [201, 202]);
    if (response.status === 201) {
      this.stats.blobMounts++;
      return 'mounted';
    }
    this.stats.blobMountsRefused++;
    await this.putUpload(context, response, digest, await source());
    return 'uploaded';
  }

  /** Skips the blob if the repository has it, else mounts it from `mountFrom` (if given), else uploads it. */
  async ensureBlob(repo: string, digest: string, source: () => Promise<Uint8Array>, mountFrom?: string): Promise<BlobPushOutcome> {
    if (await this.headBlob(repo, digest)) return 'present';
    if (mountFrom !== undefined && mountFrom !== repo) return this.mountBlob(repo, digest, mountFrom, source);
    await this.pushBlob(repo, digest, await source());
    return 'uploaded';
  }

  /** A single-platform manifest or an index, by tag or digest. */
  async getManifest(repo: string, reference: string): Promise<Manifest> {
    const context = this.context('getManifest', repo, reference, 'reference');
    const response = await this.request(context, 'GET', `/v2/${repo}/manifests/${reference}`, { accept: MANIFEST_ACCEPT });
    await this.expect(context, response, [200]);
    const bytes = Buffer.from(await response.arrayBuffer());
    const digest = sha256Digest(bytes);
    if (isDigest(reference) && digest !== reference) throw this.error(context, 200, '', `the manifest received has digest ${digest}`);
    const mediaType = response.headers.get('content-type')?.split(';')[0]?.trim() || mediaTypeOf(bytes);
    return { bytes, mediaType, digest };
  }

  /** The manifest's digest and media type, or undefined if there is none. */
  async headManifest(repo: string, reference: string): Promise<ManifestHead | undefined> {
    const context = this.context('headManifest', repo, reference, 'reference');
    // Without the OCI types in Accept, distribution answers a HEAD by tag for an OCI manifest with 404.
    const response = await this.request(context, 'HEAD', `/v2/${repo}/manifests/${reference}`, { accept: MANIFEST_ACCEPT });
    if (response.status === 404) return undefined;
    await this.expect(context, response, [200]);
    const digest = response.headers.get('docker-content-digest');
    if (!digest || !isDigest(digest)) throw this.error(context, 200, '', 'no Docker-Content-Digest header in the answer');
    return { digest, mediaType: response.headers.get('content-type')?.split(';')[0]?.trim() ?? '', size: Number(response.headers.get('content-length') ?? -1) };
  }

  /** Stores the manifest under a tag (or its digest); returns its digest. */
  async putManifest(repo: string, reference: string, bytes: Uint8Array, mediaType: string = OCI_MANIFEST): Promise<string> {
    const context = this.context('putManifest', repo, reference, 'reference');
    const digest = sha256Digest(bytes);
    if (isDigest(reference) && reference !== digest) throw this.error(context, undefined, '', `the manifest's digest is ${digest}`);
    const response = await this.request(context, 'PUT', `/v2/${repo}/manifests/${reference}`, { 'content-type': mediaType }, bytes);
    await this.expect(context, response, [201]);
    this.stats.manifestPuts++;
    const stored = response.headers.get('docker-content-digest');
    if (stored && stored !== digest) throw this.error(context, response.status, '', `the registry stored digest ${stored}, the bytes have ${digest}`);
    return digest;
  }

  /** Deletes the manifest (by digest: a tag is not deletable). False if it was already gone. */
  async deleteManifest(repo: string, digest: string): Promise<boolean> {
    const context = this.context('deleteManifest', repo, digest, 'digest');
    const response = await this.request(context, 'DELETE', `/v2/${repo}/manifests/${digest}`);
    if (response.status === 404) return false;
    await this.expect(context, response, [202]);
    return true;
  }

  private context(operation: RegistryOperation, repo: string, reference: string, kind: 'digest' | 'reference'): RequestContext {
    const context = { operation, repo, reference };
    checkRepository(context, repo, this.host);
    if (kind === 'digest' ? !isDigest(reference) : !isDigest(reference) && !TAG.test(reference)) {
      throw new RegistryError({ registry: this.host, operation, repo, reference, status: undefined, bodyExcerpt: '' }, `not a valid ${kind === 'digest' ? 'sha256 digest' : 'tag or digest'}`);
    }
    return context;
  }

  private async putUpload(context: RequestContext, session: Response, digest: string, bytes: Uint8Array): Promise<void> {
    const location = session.headers.get('location');
    if (!location) throw this.error(context, session.status, '', 'the upload session has no Location header');
    const target = uploadUrlWithDigest(location, this.base, digest);
    // The credentials go only to the registry they are for.
    if (target.origin !== this.base.origin) throw this.error(context, session.status, '', `the upload Location points to another origin: ${target.origin}`);
    const response = await this.request(context, 'PUT', target.pathname + target.search, { 'content-type': 'application/octet-stream' }, bytes);
    await this.expect(context, response, [201]);
    this.stats.blobUploads++;
    const stored = response.headers.get('docker-content-digest');
    if (stored && stored !== digest) throw this.error(context, response.status, '', `the registry stored digest ${stored}`);
  }

  private async request(context: RequestContext, method: string, pathAndQuery: string, headers: Record<string, string> = {}, body?: Uint8Array): Promise<Response> {
    const init: RequestInit = {
      method,
      headers: { ...headers, ...(this.authorization ? { authorization: this.authorization } : {}) },
      signal: AbortSignal.timeout(this.timeoutMs),
      redirect: 'follow',
    };
    if (body !== undefined) init.body = body;
    try {
      return await this.fetch(new URL(pathAndQuery, this.base), init);
    } catch (cause) {
      throw this.error(context, undefined, '', `${method} failed: ${(cause as Error).message}`, { cause });
    }
  }

  private async expect(context: RequestContext, response: Response, statuses: number[]): Promise<void> {
    if (statuses.includes(response.status)) return;
    const body = await response.text().catch(() => '');
    const detail =
      response.status === 401 ? 'the registry refused the credentials' : response.status === 404 ? 'not found' : `expected ${statuses.join(' or ')}`;
    throw this.error(context, response.status, excerpt(body), detail);
  }

  private error(context: RequestContext, status: number | undefined, bodyExcerpt: string, detail: string, options?: ErrorOptions): RegistryError {
    return new RegistryError({ registry: this.host, ...context, status, bodyExcerpt }, detail, options);
  }
}

interface RequestContext {
  operation: RegistryOperation;
  repo: string;
  reference: string;
}

function checkRepository(context: RequestContext, repo: string, host = ''): void {
  if (!REPOSITORY.test(repo) || repo.length > 255) {
    throw new RegistryError({ registry: host, operation: context.operation, repo, reference: context.reference, status: undefined, bodyExcerpt: '' }, 'not a valid repository name');
  }
}

/**
 * The URL to PUT a monolithic upload to: the session's Location (absolute, as distribution
 * returns it, or relative to the registry) with `digest=` added to whatever query it has.
 * The existing query is kept byte for byte: it carries signed upload state.
 */
export function uploadUrlWithDigest(location: string, base: URL | string, digest: string): URL {
  const url = new URL(location, base);
  const parameter = `digest=${encodeURIComponent(digest)}`;
  url.search = url.search && url.search !== '?' ? `${url.search}&${parameter}` : `?${parameter}`;
  return url;
}

function excerpt(body: string): string {
  const oneLine = body.replace(/\s+/g, ' ').trim();
  return oneLine.length > BODY_EXCERPT ? `${oneLine.slice(0, BODY_EXCERPT)}...` : oneLine;
}

function mediaTypeOf(bytes: Buffer): string {
  try {
    const parsed = JSON.parse(bytes.toString('utf8')) as { mediaType?: unknown };
    return typeof parsed.mediaType === 'string' ? parsed.mediaType : '';
  } catch {
    return '';
  }
}
