import https from 'node:https';

export interface ClientTls {
  ca?: string;
  cert?: string;
  key?: string;
  /** Only for probing servers with certificates we did not issue (health endpoints). */
  insecure?: boolean;
}

/** GET over HTTPS; resolves the status code and body, rejects on connection errors. */
export function httpsGet(url: string, tls: ClientTls, timeoutMs = 2_000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = https.get(
      url,
      { ca: tls.ca, cert: tls.cert, key: tls.key, rejectUnauthorized: !tls.insecure, timeout: timeoutMs },
      (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (body += chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
        response.on('error', reject);
      },
    );
    request.on('timeout', () => request.destroy(new Error(`GET ${url} timed out after ${timeoutMs} ms`)));
    request.on('error', reject);
  });
}
