/**
 * Secrets must never reach logs (README.md, "Secrets"). Pino's path-based `redact` only catches keys
 * we know in advance, so we also scrub values: passwords inside connection URLs and token-looking
 * query parameters, wherever they appear (messages, error texts, nested objects).
 */
const SECRET_KEY = /pass(word)?|secret|token|api[-_]?key|authorization|credential|private[-_]?key/i;
const URL_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/[^\s:/@]*:)([^\s@/]+)@/gi;
const QUERY_SECRET =
  /([?&](?:password|pass|token|secret|api[-_]?key|access[-_]?token|sslpassword)=)[^&\s]+/gi;

/** TLS settings (kafka.ssl): their key, certificate and CA files are masked, paths or PEM text alike. */
const TLS_CONTAINER = /^(ssl|tls)$/i;
const TLS_FILE = /^(ca|cert|key|pfx)$/i;

export const REDACTED = '[redacted]';

export function redactSecrets(text: string): string {
  return text.replace(URL_PASSWORD, `$1${REDACTED}@`).replace(QUERY_SECRET, `$1${REDACTED}`);
}

export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}

/** Deep copy with secret keys masked and secret-bearing strings scrubbed. Cycles are cut. */
export function redactDeep(value: unknown, seen = new WeakSet<object>()): unknown {
  if (typeof value === 'string') return redactSecrets(value);
  if (value === null || typeof value !== 'object') return value;
  if (seen.has(value)) return '[circular]';
  seen.add(value);
  if (Array.isArray(value)) return value.map((item) => redactDeep(item, seen));
  if (value instanceof Error) {
    const copy: Record<string, unknown> = { type: value.name, message: redactSecrets(value.message) };
    if (value.stack) copy['stack'] = redactSecrets(value.stack);
    for (const [key, inner] of Object.entries(value)) {
      copy[key] = isSecretKey(key) ? REDACTED : redactDeep(inner, seen);
    }
    if (value.cause !== undefined) copy['cause'] = redactDeep(value.cause, seen);
    return copy;
  }
  if (value instanceof Date || Buffer.isBuffer(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value)) {
    out[key] = isSecretKey(key) && inner !== null && inner !== undefined ? REDACTED : redactDeep(inner, seen);
    if (TLS_CONTAINER.test(key) && out[key] && typeof out[key] === 'object') maskTlsFiles(out[key]);
  }
  return out;
}

function maskTlsFiles(tls: object): void {
  for (const [key, inner] of Object.entries(tls))
    if (TLS_FILE.test(key) && inner !== undefined) (tls as Record<string, unknown>)[key] = REDACTED;
}
