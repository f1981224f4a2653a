/**
 * Secrets must never reach logs (README.md, "Secrets"). Pino's path-based `redact` only catches keys
 * we know in advance, so we also scrub values: passwords inside connection URLs and token-looking
 * query parameters, wherever they appear (messages, error texts, nested objects).
 */
const SECRET_KEY =
  /pass(word|phrase)?|secret|token|api[-_]?key|authorization|credential|private[-_]?key|ssl[-_]?key/i;
const URL_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/[^\s:/@]*:)([^\s@/]+)@/gi;
// sslkey, sslcert and sslrootcert name TLS files: their paths are kept out of logs like the
// ca/cert/key of a TLS section.
const QUERY_SECRET =
  /([?&](?:password|pass|token|secret|api[-_]?key|access[-_]?token|sslpassword|sslkey|sslcert|sslrootcert)=)[^&\s]+/gi;
const PEM_PRIVATE_KEY = /-----BEGIN ([A-Z ]*)PRIVATE KEY-----[\s\S]*?(?:-----END \1PRIVATE KEY-----|$)/g;
/**
 * TLS settings (`database.ssl`, `kafka.ssl`, `redis.tls`, `flusher.queueRedisTls`, node's `ssl`/`tls`
 * options): inside them `key` is a private key or its file's path, not a cache key; it, the passphrase
 * and the certificate and CA files (paths or PEM text alike) are masked.
 */
const TLS_SECTION = /^(ssl|tls|[a-zA-Z]+Tls)$/;
const TLS_SECRET_FIELDS = new Set(['key', 'pfx', 'passphrase', 'ca', 'cert']);

export const REDACTED = '[redacted]';

export function redactSecrets(text: string): string {
  return text
    .replace(URL_PASSWORD, `$1${REDACTED}@`)
    .replace(QUERY_SECRET, `$1${REDACTED}`)
    .replace(PEM_PRIVATE_KEY, REDACTED);
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
    if (isSecretKey(key) && inner !== null && inner !== undefined) out[key] = REDACTED;
    else if (TLS_SECTION.test(key) && inner !== null && typeof inner === 'object' && !Array.isArray(inner))
      out[key] = redactTlsSection(inner as Record<string, unknown>, seen);
    else out[key] = redactDeep(inner, seen);
  }
  return out;
}

function redactTlsSection(section: Record<string, unknown>, seen: WeakSet<object>): unknown {
  const masked: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(section))
    masked[key] = TLS_SECRET_FIELDS.has(key) && inner !== undefined ? REDACTED : inner;
  return redactDeep(masked, seen);
}
