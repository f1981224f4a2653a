import type { ConnectionOptions } from 'node:tls';
import { readPemFile } from './pem-file.js';
import { SSL_MODES, type DatabaseSslConfig, type SslMode } from '../schema/database-ssl.js';

/** What a PostgreSQL connection needs: the URL and the optional `database.ssl` section. */
export interface DatabaseConnection {
  url: string;
  ssl?: DatabaseSslConfig | undefined;
}

/** Options for `new pg.Client(...)`, `new pg.Pool(...)` and pg-logical-replication. */
export interface PgConnectionOptions {
  connectionString: string;
  ssl: false | ConnectionOptions;
}

/** The URL's own TLS parameters, each mapped to the `database.ssl` field it stands for. */
const URL_SSL_PARAMETERS = {
  sslmode: 'mode',
  sslrootcert: 'ca',
  sslcert: 'cert',
  sslkey: 'key',
} as const;
// Read by node-postgres with meanings walpurge replaces (ssl=true, uselibpqcompat, sslnegotiation):
// stripped as well, or node-postgres would parse them again and override `ssl`.
const NODE_POSTGRES_PARAMETERS = ['ssl', 'uselibpqcompat', 'sslnegotiation'] as const;
/** node-postgres' `ssl=` values. */
const SSL_PARAMETER: Record<string, SslMode> = {
  true: 'verify-full',
  '1': 'verify-full',
  'no-verify': 'no-verify',
  false: 'disable',
  '0': 'disable',
};
// node-postgres' fallback for a URL without a host before the path (`postgres://u@/app?host=…`).
const NO_HOST = '@___walpurge_no_host___/';

type SslFields = Partial<Record<keyof DatabaseSslConfig, string>>;

/** The URL as node-postgres (pg-connection-string) reads it, or undefined when it cannot. */
function parseUrl(url: string): URL | undefined {
  try {
    return new URL(url);
  } catch {
    try {
      return new URL(url.replace('@/', NO_HOST));
    } catch {
      return undefined;
    }
  }
}

function formatUrl(url: URL): string {
  return url.toString().replace(NO_HOST, '@/');
}

/** sslmode, sslrootcert, sslcert and sslkey from the URL, under their `database.ssl` names. */
function urlSslFields(url: URL): SslFields {
  const fields: SslFields = {};
  for (const [parameter, field] of Object.entries(URL_SSL_PARAMETERS)) {
    const value = url.searchParams.get(parameter);
    if (value !== null) fields[field] = value;
  }
  const ssl = url.searchParams.get('ssl');
  if (ssl !== null && fields.mode === undefined) fields.mode = SSL_PARAMETER[ssl] ?? `ssl=${ssl}`;
  return fields;
}

/** The URL's sslrootcert, sslcert and sslkey, for the file checks (reported at `url`). */
export function urlSslFiles(
  url: string,
): Array<{ parameter: string; field: 'ca' | 'cert' | 'key'; path: string }> {
  const parsed = parseUrl(url);
  if (!parsed) return [];
  const files: Array<{ parameter: string; field: 'ca' | 'cert' | 'key'; path: string }> = [];
  for (const [parameter, field] of Object.entries(URL_SSL_PARAMETERS)) {
    const path = parsed.searchParams.get(parameter);
    if (field !== 'mode' && path !== null) files.push({ parameter, field, path });
  }
  return files;
}

/**
 * Problems with how the URL and `database.ssl` combine, as `[field, message]`: an sslmode walpurge
 * does not support, a URL parameter and a config field that disagree, or a mode without what it needs.
 */
export function databaseSslProblems(connection: DatabaseConnection): Array<[string, string]> {
  const url = parseUrl(connection.url);
  if (!url) {
    // node-postgres cannot read it either; but never let TLS settings go unused.
    return connection.ssl === undefined
      ? []
      : [['url', 'cannot be read as a URL, so database.ssl cannot apply to it: fix the URL']];
  }
  const problems: Array<[string, string]> = [];
  const fromUrl = urlSslFields(url);
  if (fromUrl.mode?.startsWith('ssl=')) {
    problems.push([
      'url',
      `${fromUrl.mode} is not supported: use true, 1 (verify-full), no-verify, false or 0 (no TLS)`,
    ]);
  } else if (fromUrl.mode !== undefined && !(SSL_MODES as readonly string[]).includes(fromUrl.mode)) {
    problems.push([
      'url',
      `sslmode=${fromUrl.mode} is not supported: use ${SSL_MODES.join(', ')} (walpurge never falls back to an unencrypted connection)`,
    ]);
  }
  if (url.searchParams.get('sslnegotiation') === 'direct')
    problems.push([
      'url',
      'sslnegotiation=direct is not supported: remove it (walpurge starts TLS with the usual SSLRequest)',
    ]);
  for (const [parameter, field] of Object.entries(URL_SSL_PARAMETERS)) {
    const inUrl = fromUrl[field];
    const inConfig = connection.ssl?.[field];
    if (inUrl !== undefined && inConfig !== undefined && inUrl !== inConfig)
      problems.push([
        `ssl.${field}`,
        field === 'key'
          ? `database.url has an sslkey and database.ssl.key names another file: set it in one place`
          : `database.url says ${parameter}=${inUrl} but database.ssl.${field} is ${inConfig}: set it in one place`,
      ]);
  }
  const merged = { ...fromUrl, ...definedFields(connection.ssl) };
  if (merged.mode === 'verify-ca' && merged.ca === undefined)
    problems.push([
      'ssl.ca',
      'sslmode verify-ca needs a CA (database.ssl.ca or sslrootcert): against the public CAs any certificate they issued would pass',
    ]);
  if (merged.mode === 'no-verify' && merged.ca !== undefined)
    problems.push(['ssl.ca', 'sslmode no-verify checks no certificate: remove ca, or use verify-full']);
  if ((merged.cert === undefined) !== (merged.key === undefined))
    problems.push(['ssl', 'a client certificate needs both cert (sslcert) and key (sslkey)']);
  if (merged.mode === 'disable' && (merged.ca ?? merged.cert ?? merged.key) !== undefined)
    problems.push([
      'ssl',
      'sslmode disable uses no certificates: remove ca, cert and key, or choose another mode',
    ]);
  return problems;
}

function definedFields(ssl: DatabaseSslConfig | undefined): SslFields {
  const fields: SslFields = {};
  if (ssl?.mode !== undefined) fields.mode = ssl.mode;
  if (ssl?.ca !== undefined) fields.ca = ssl.ca;
  if (ssl?.cert !== undefined) fields.cert = ssl.cert;
  if (ssl?.key !== undefined) fields.key = ssl.key;
  return fields;
}

/** The sslmode in effect: explicit (config, then URL), else verify-full when anything asks for TLS. */
export function effectiveSslMode(connection: DatabaseConnection): SslMode {
  const url = parseUrl(connection.url);
  const merged = { ...(url ? urlSslFields(url) : {}), ...definedFields(connection.ssl) };
  if (merged.mode !== undefined && (SSL_MODES as readonly string[]).includes(merged.mode))
    return merged.mode as SslMode;
  return (merged.ca ?? merged.cert ?? merged.key) !== undefined ? 'verify-full' : 'disable';
}

/** The warning for a connection that encrypts without checking who answers, else undefined. */
export function databaseSslWarning(connection: DatabaseConnection): string | undefined {
  if (effectiveSslMode(connection) !== 'no-verify') return undefined;
  return "sslmode no-verify: encrypted, but the server's certificate is not checked: anyone on the path can impersonate it; use verify-full with `ca`";
}

/** The option a merged TLS file came from: `database.ssl.<field>` wins over the URL's parameter. */
function databaseFileOption(connection: DatabaseConnection, field: 'ca' | 'cert' | 'key'): string {
  if (connection.ssl?.[field] !== undefined) return `database.ssl.${field}`;
  const parameter = Object.entries(URL_SSL_PARAMETERS).find(([, name]) => name === field)?.[0];
  return `database.url ${parameter ?? field}`;
}

/**
 * The one place that turns `database.url` + `database.ssl` into node-postgres options, with
 * node-postgres' meaning of each sslmode: require verifies like verify-full, verify-ca checks the
 * chain only, no-verify encrypts without checking. The URL's TLS parameters are taken out of the
 * connection string: node-postgres would otherwise parse them again and override `ssl`.
 */
export function pgConnectionOptions(connection: DatabaseConnection): PgConnectionOptions {
  const problem = databaseSslProblems(connection)[0];
  if (problem) throw new Error(`database.${problem[0]}: ${problem[1]}`);
  const url = parseUrl(connection.url);
  if (!url) return { connectionString: connection.url, ssl: false };
  const merged = { ...urlSslFields(url), ...definedFields(connection.ssl) };
  const mode = effectiveSslMode(connection);
  for (const parameter of [...Object.keys(URL_SSL_PARAMETERS), ...NODE_POSTGRES_PARAMETERS])
    url.searchParams.delete(parameter);
  const connectionString = formatUrl(url);
  if (mode === 'disable') return { connectionString, ssl: false };
  const tls: ConnectionOptions = {};
  if (merged.ca !== undefined)
    tls.ca = readPemFile(merged.ca, 'certificate', databaseFileOption(connection, 'ca'));
  if (merged.cert !== undefined)
    tls.cert = readPemFile(merged.cert, 'certificate', databaseFileOption(connection, 'cert'));
  if (merged.key !== undefined)
    tls.key = readPemFile(merged.key, 'private key', databaseFileOption(connection, 'key'));
  if (mode === 'no-verify') tls.rejectUnauthorized = false;
  else if (mode === 'verify-ca') tls.checkServerIdentity = () => undefined;
  return { connectionString, ssl: tls };
}

/** `host:port/database` of a database URL, password-free, for messages. */
export function databaseAddress(url: string): string {
  const parsed = parseUrl(url);
  if (!parsed) return 'the configured database';
  const database = parsed.pathname.replace(/^\//, '') || '(default db)';
  const host = parsed.hostname === '___walpurge_no_host___' ? '' : parsed.hostname;
  return `${parsed.searchParams.get('host') ?? (host || 'localhost')}:${parsed.searchParams.get('port') ?? (parsed.port || '5432')}/${database}`;
}
