import { pathToFileURL } from 'node:url';
import type { ConnectionOptions } from 'node:tls';
import type { OauthbearerProviderResponse, SASLOptions } from 'kafkajs';
import { readPemFile, type KafkaConfig } from '@walpurge/config';
import { ErrorCode, WalpurgeError, errorMessage } from '@walpurge/core';

/** kafkajs's OAUTHBEARER contract: called at every (re)authentication, returns the token to send. */
export type OauthBearerProvider = () => Promise<OauthbearerProviderResponse>;

/**
 * kafkajs `ssl` from kafka.ssl: the PEM files read once, here, so a rotated file takes effect at the
 * next start (like every other config value) and a missing file fails the start, not a reconnect.
 * The error names the option, not the path: key paths stay out of logs.
 */
export function tlsOptions(ssl: KafkaConfig['ssl']): boolean | ConnectionOptions {
  if (typeof ssl === 'boolean') return ssl;
  const read = (option: 'ca' | 'cert' | 'key'): string | undefined => {
    const path = ssl[option];
    if (path === undefined) return undefined;
    return readPemFile(path, option === 'key' ? 'private key' : 'certificate', `kafka.ssl.${option}`);
  };
  const ca = read('ca');
  const cert = read('cert');
  const key = read('key');
  return {
    rejectUnauthorized: ssl.rejectUnauthorized,
    ...(ca !== undefined ? { ca } : {}),
    ...(cert !== undefined ? { cert } : {}),
    ...(key !== undefined ? { key } : {}),
    ...(ssl.passphrase !== undefined ? { passphrase: ssl.passphrase } : {}),
    ...(ssl.servername !== undefined ? { servername: ssl.servername } : {}),
  };
}

/**
 * kafkajs `sasl` from kafka.sasl; a programmatic provider wins over the configured module, and is
 * refused next to a password mechanism.
 */
export function saslOptions(
  sasl: KafkaConfig['sasl'],
  provider: OauthBearerProvider | undefined,
): SASLOptions | undefined {
  if (!sasl) {
    if (provider) return { mechanism: 'oauthbearer', oauthBearerProvider: provider };
    return undefined;
  }
  if (sasl.mechanism === 'oauthbearer') {
    return {
      mechanism: 'oauthbearer',
      oauthBearerProvider: provider ?? moduleTokenProvider(sasl.tokenProvider),
    };
  }
  if (provider) {
    // Dropping it silently would authenticate with the password while the caller expects tokens.
    throw new WalpurgeError(
      ErrorCode.ConfigInvalid,
      `an oauthBearerProvider was given but kafka.sasl.mechanism is ${sasl.mechanism}`,
      { retriable: false, hint: 'set kafka.sasl.mechanism: oauthbearer, or leave kafka.sasl out' },
    );
  }
  return { mechanism: sasl.mechanism, username: sasl.username, password: sasl.password } as SASLOptions;
}

/** The token provider of kafka.sasl.tokenProvider, imported at the first authentication. */
export function moduleTokenProvider(modulePath: string): OauthBearerProvider {
  let loaded: Promise<OauthBearerProvider> | undefined;
  const load = async (): Promise<OauthBearerProvider> => {
    const url = pathToFileURL(modulePath).href;
    let module: { default?: unknown };
    try {
      module = (await import(url)) as { default?: unknown };
    } catch (error) {
      // Node's text names the module's path; the option is enough (paths stay out of logs).
      const reason = (errorMessage(error).split('\n')[0] ?? '')
        .split(url)
        .join('the module')
        .split(modulePath)
        .join('the module');
      throw new WalpurgeError(
        ErrorCode.ConfigInvalid,
        `kafka.sasl.tokenProvider: cannot import the module: ${reason}`,
        {
          retriable: false,
          hint: 'walpurge validate checks the module; its imports must resolve from its directory',
        },
      );
    }
    if (typeof module.default !== 'function') {
      throw new WalpurgeError(
        ErrorCode.ConfigInvalid,
        'kafka.sasl.tokenProvider: the module has no default export function',
        { retriable: false, hint: 'export default async () => ({ value: token })' },
      );
    }
    return module.default as OauthBearerProvider;
  };
  return async () => {
    loaded ??= load();
    const token: unknown = await (await loaded)();
    if (!token || typeof token !== 'object' || typeof (token as { value?: unknown }).value !== 'string') {
      throw new WalpurgeError(
        ErrorCode.ConfigInvalid,
        'kafka.sasl.tokenProvider: the function returned no { value: string }',
        { retriable: false, hint: 'return { value: token } from the default export' },
      );
    }
    return token as OauthbearerProviderResponse;
  };
}

/**
 * The secret values of a Kafka config (password, key passphrase, PEM and module paths), for scrubbing
 * kafkajs's log lines, whose texts the key-based redaction cannot recognise.
 */
export function kafkaSecrets(config: KafkaConfig): string[] {
  const secrets: Array<string | undefined> = [];
  if (typeof config.ssl === 'object')
    secrets.push(config.ssl.ca, config.ssl.cert, config.ssl.key, config.ssl.passphrase);
  if (config.sasl?.mechanism === 'oauthbearer') secrets.push(config.sasl.tokenProvider);
  else if (config.sasl) secrets.push(config.sasl.password);
  // Very short values would blank unrelated text; they are too weak to be worth hiding that way.
  return secrets.filter((secret): secret is string => secret !== undefined && secret.length >= 4);
}
