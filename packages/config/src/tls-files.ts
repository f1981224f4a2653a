import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { urlSslFiles } from './connections/pg-connection.js';
import type { WalpurgeConfig } from './schema/index.js';
import type { RedisTlsConfig } from './schema/tls.js';

export interface TlsFileProblem {
  path: PropertyKey[];
  message: string;
}

type TlsSections = Partial<Pick<WalpurgeConfig, 'database' | 'redis' | 'flusher'>>;
type PemKind = 'certificate' | 'private key';

const KIND: Record<'ca' | 'cert' | 'key', PemKind> = {
  ca: 'certificate',
  cert: 'certificate',
  key: 'private key',
};
const EXPECTED: Record<PemKind, RegExp> = {
  certificate: /-----BEGIN CERTIFICATE-----/,
  'private key': /-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----/,
};

/**
 * Why a PEM file cannot serve, or undefined. A key's path is never printed: the option names it,
 * and paths to keys stay out of logs.
 */
export function pemFileProblem(path: string, kind: PemKind): string | undefined {
  const shown = kind === 'private key' ? '' : `: ${path}`;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return `cannot read the ${kind} file (${code === 'ENOENT' ? 'file not found' : (code ?? 'unreadable')})${shown}`;
  }
  if (kind === 'private key' && /-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(text))
    return 'the private key file is encrypted and walpurge takes no passphrase: decrypt it (openssl pkey -in <file> -out <new file>)';
  return EXPECTED[kind].test(text) ? undefined : `the ${kind} file holds no PEM ${kind}${shown}`;
}

function redisTlsFileProblems(tls: RedisTlsConfig | undefined, at: PropertyKey[]): TlsFileProblem[] {
  const problems: TlsFileProblem[] = [];
  for (const field of ['ca', 'cert', 'key'] as const) {
    const path = tls?.[field];
    const problem = path === undefined ? undefined : pemFileProblem(path, KIND[field]);
    if (problem) problems.push({ path: [...at, field], message: problem });
  }
  return problems;
}

/**
 * The TLS files of the database (database.ssl and the URL's sslrootcert/sslcert/sslkey, reported at
 * `url`), the cache Redis and the queue Redis that cannot be read or hold no PEM of their kind.
 * `validate` reports them (offline: as warnings), and the start refuses them.
 */
export function tlsFileProblems(
  config: TlsSections,
  unusedSections: ReadonlySet<string> = new Set(),
): TlsFileProblem[] {
  const problems: TlsFileProblem[] = [];
  const { database, redis, flusher } = config;
  if (database && !unusedSections.has('database')) {
    for (const file of urlSslFiles(database.url)) {
      const problem = pemFileProblem(file.path, KIND[file.field]);
      if (problem) problems.push({ path: ['database', 'url'], message: `${file.parameter}: ${problem}` });
    }
    for (const field of ['ca', 'cert', 'key'] as const) {
      const path = database.ssl?.[field];
      const problem = path === undefined ? undefined : pemFileProblem(path, KIND[field]);
      if (problem) problems.push({ path: ['database', 'ssl', field], message: problem });
    }
  }
  if (redis && !unusedSections.has('redis'))
    problems.push(...redisTlsFileProblems(redis.tls, ['redis', 'tls']));
  if (flusher && !unusedSections.has('flusher'))
    problems.push(...redisTlsFileProblems(flusher.queueRedisTls, ['flusher', 'queueRedisTls']));
  return problems;
}

/**
 * Makes the TLS file paths of the config absolute against the config file's directory, as a user
 * reads them next to walpurge.yaml. The URL's sslrootcert, sslcert and sslkey keep libpq's rule
 * (the working directory).
 */
export function resolveTlsFiles(config: TlsSections, configFile: string): void {
  const base = dirname(resolve(configFile));
  const absolute = (path: string): string => (isAbsolute(path) ? path : resolve(base, path));
  const sections = [config.database?.ssl, config.redis?.tls, config.flusher?.queueRedisTls];
  for (const section of sections) {
    if (!section) continue;
    for (const field of ['ca', 'cert', 'key'] as const) {
      const path = section[field];
      if (path !== undefined) section[field] = absolute(path);
    }
  }
}
