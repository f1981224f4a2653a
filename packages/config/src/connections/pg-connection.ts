import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
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
const URL_PARAMETERS = { sslmode: 'mode', sslrootcert: 'ca', sslcert: 'cert', sslkey: 'key' } as const;
// Read by node-postgres with meanings walpurge replaces (ssl=true, uselibpqcompat): stripped as well.
const NODE_POSTGRES_PARAMETERS = ['ssl', 'uselibpqcompat'] as const;

type SslFields = Partial<Record<keyof DatabaseSslConfig, string>>;

function parseUrl(url: string): URL | undefined {
  try {
    return new URL(url);
  } catch {
    return undefined;
  }
}

/** sslmode, sslrootcert, sslcert and sslkey from the URL, under their `database.ssl` names. */
function urlSslFields(url: URL): SslFields {
  const fields: SslFields = {};
  for (const [parameter, field] of Object.entries(URL_PARAMETERS)) {
    const value = url.searchParams.get(parameter);
    if (value !== null) fields[field] = value;
  }
  const ssl = url.searchParams.get('ssl');
  // node-postgres' ssl=true means "TLS, verified"; ssl=false|0 means none.
  if (ssl !== null && fields.mode === undefined)
    fields.mode = ssl === 'true' || ssl === '1' ? 'verify-full' : 'disable';
  return fields;
}

/**
 * Problems with how the URL and `database.ssl` combine, as `[field, message]`: an sslmode walpurge
 * does not support, a URL parameter and a config field that disagree, or a mode without what it needs.
 */
export function databaseSslProblems(connection: DatabaseConnection): Array<[string, string]> {
  const url = parseUrl(connection.url);
  if (!url) return [];
  const problems: Array<[string, string]> = [];
  const fromUrl = urlSslFields(url);
  if (fromUrl.mode !== undefined && !(SSL_MODES as readonly string[]).includes(fromUrl.mode)) {
    problems.push([
      'url',
      `sslmode=${fromUrl.mode} is not supported: use ${SSL_MODES.join(', ')} (walpurge never falls back to an unencrypted connection)`,
    ]);
  }
  for (const [parameter, field] of Object.entries(URL_PARAMETERS)) {
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

/**
 * The one place that turns `database.url` + `database.ssl` into node-postgres options, with libpq's
 * meaning of each sslmode (node-postgres 8 alone treats require and verify-ca as verify-full unless
 * the URL says uselibpqcompat=true). The URL's TLS parameters are taken out of the connection string:
 * node-postgres would otherwise parse them again and override `ssl`.
 */
export function pgConnectionOptions(connection: DatabaseConnection): PgConnectionOptions {
  const url = parseUrl(connection.url);
  if (!url) return { connectionString: connection.url, ssl: false };
  const problem = databaseSslProblems(connection)[0];
  if (problem) throw new Error(`database.${problem[0]}: ${problem[1]}`);
  const merged = { ...urlSslFields(url), ...definedFields(connection.ssl) };
  const mode = effectiveSslMode(connection);
  for (const parameter of [...Object.keys(URL_PARAMETERS), ...NODE_POSTGRES_PARAMETERS])
    url.searchParams.delete(parameter);
  const connectionString = url.toString();
  if (mode === 'disable') return { connectionString, ssl: false };
  const tls: ConnectionOptions = {};
  if (merged.ca !== undefined) tls.ca = readFileSync(merged.ca, 'utf8');
  if (merged.cert !== undefined) tls.cert = readFileSync(merged.cert, 'utf8');
  if (merged.key !== undefined) tls.key = readFileSync(merged.key, 'utf8');
  // libpq: require with a root certificate behaves as verify-ca.
  const verifyChain = mode === 'verify-full' || mode === 'verify-ca' || tls.ca !== undefined;
  if (!verifyChain) tls.rejectUnauthorized = false;
  else if (mode !== 'verify-full') tls.checkServerIdentity = () => undefined;
  return { connectionString, ssl: tls };
}

/** `host:port/database` of a database URL, password-free, for messages. */
export function databaseAddress(url: string): string {
  const parsed = parseUrl(url);
  if (!parsed) return 'the configured database';
  const database = parsed.pathname.replace(/^\//, '') || '(default db)';
  return `${parsed.hostname || 'localhost'}:${parsed.port || '5432'}/${database}`;
}
