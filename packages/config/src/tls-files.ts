import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { urlSslFiles } from './connections/pg-connection.js';
import type { WalpurgeConfig } from './schema/index.js';
import type { RedisTlsConfig } from './schema/tls.js';

export interface TlsFileProblem {
  path: PropertyKey[];
  message: string;
}

type TlsSections = Partial<Pick<WalpurgeConfig, 'database' | 'redis' | 'flusher' | 'kafka'>>;
type PemKind = 'certificate' | 'private key';

const KIND: Record<'ca' | 'cert' | 'key', PemKind> = {
  ca: 'certificate',
  cert: 'certificate',
  key: 'private key',
};
const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----/g;
const EXPECTED: Record<PemKind, RegExp> = {
  certificate: /^CERTIFICATE$/,
  'private key': /^(?:[A-Z0-9]+ )?PRIVATE KEY$/,
};
const ENCRYPTED = /-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/;

function readProblem(error: unknown, what: string): string {
  const code = (error as NodeJS.ErrnoException).code;
  return `cannot read the ${what} (${code === 'ENOENT' ? 'file not found' : (code ?? 'unreadable')})`;
}

/**
 * Why a PEM file cannot serve, or undefined. It serves when any of its blocks has the kind: `openssl
 * ecparam -genkey` writes EC PARAMETERS before the key, and a combined file holds a key and
 * certificates in any order. An encrypted key serves only where a passphrase option exists
 * (kafka.ssl.passphrase; PostgreSQL and Redis have none). No path is printed (CA, certificate or
 * key): the option and its line name the file, as the logger masks these paths.
 */
function pemFileProblem(
  path: string,
  kind: PemKind,
  { passphraseOption = false }: { passphraseOption?: boolean } = {},
): string | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    return readProblem(error, `${kind} file`);
  }
  if (kind === 'private key' && !passphraseOption && ENCRYPTED.test(text))
    return 'the private key file is encrypted and walpurge takes no passphrase: decrypt it (openssl pkey -in <file> -out <new file>)';
  const blocks = [...text.matchAll(PEM_BLOCK)].map((block) => block[1] ?? '');
  if (blocks.length === 0) return `the ${kind} file holds no PEM ${kind}`;
  if (!blocks.some((block) => EXPECTED[kind].test(block)))
    return `the ${kind} file holds a PEM ${blocks.join(' and ')}, not a ${kind}`;
  return undefined;
}

/** The OAUTHBEARER token module must be readable; its path is never printed (the option names it). */
function tokenProviderProblem(path: string): string | undefined {
  try {
    readFileSync(path);
    return undefined;
  } catch (error) {
    return readProblem(error, 'token provider module');
  }
}

function kafkaFileProblems(kafka: NonNullable<TlsSections['kafka']>): TlsFileProblem[] {
  const problems: TlsFileProblem[] = [];
  if (typeof kafka.ssl === 'object')
    for (const field of ['ca', 'cert', 'key'] as const) {
      const path = kafka.ssl[field];
      const problem =
        path === undefined ? undefined : pemFileProblem(path, KIND[field], { passphraseOption: true });
      if (problem) problems.push({ path: ['kafka', 'ssl', field], message: problem });
    }
  if (kafka.sasl?.mechanism === 'oauthbearer') {
    const problem = tokenProviderProblem(kafka.sasl.tokenProvider);
    if (problem) problems.push({ path: ['kafka', 'sasl', 'tokenProvider'], message: problem });
  }
  return problems;
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
 * `url`), the cache Redis, the queue Redis and Kafka (kafka.ssl, the OAUTHBEARER token module) that
 * cannot be read or hold no PEM of their kind, except in the sections the role never reads (a flusher
 * pod need not mount the Kafka certificates).
 * `validate` reports them (offline: as warnings), and the start refuses them.
 */
export function tlsFileProblems(
  config: TlsSections,
  unusedSections: ReadonlySet<string> = new Set(),
): TlsFileProblem[] {
  const problems: TlsFileProblem[] = [];
  const { database, redis, flusher, kafka } = config;
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
  if (kafka && !unusedSections.has('kafka')) problems.push(...kafkaFileProblems(kafka));
  return problems;
}

/**
 * Makes the TLS file paths of the config (and the OAUTHBEARER token module) absolute against the config file's directory, as a user
 * reads them next to walpurge.yaml. The URL's sslrootcert, sslcert and sslkey keep libpq's rule
 * (the working directory).
 */
export function resolveTlsFiles(config: TlsSections, configFile: string): void {
  const base = dirname(resolve(configFile));
  const absolute = (path: string): string => (isAbsolute(path) ? path : resolve(base, path));
  const kafkaSsl = typeof config.kafka?.ssl === 'object' ? config.kafka.ssl : undefined;
  const sections = [config.database?.ssl, config.redis?.tls, config.flusher?.queueRedisTls, kafkaSsl];
  for (const section of sections) {
    if (!section) continue;
    for (const field of ['ca', 'cert', 'key'] as const) {
      const path = section[field];
      if (path !== undefined) section[field] = absolute(path);
    }
  }
  const sasl = config.kafka?.sasl;
  if (sasl?.mechanism === 'oauthbearer') sasl.tokenProvider = absolute(sasl.tokenProvider);
}
