import kafkajs, { type KafkaConfig as KafkaJsConfig, type LogEntry, type RetryOptions } from 'kafkajs';
import type { KafkaConfig } from '@walpurge/config';
import { REDACTED, type Logger } from '@walpurge/core';
import { classifyConnectError } from './kafka-refusals.js';
import { kafkaSecrets, saslOptions, tlsOptions, type OauthBearerProvider } from './kafka-security.js';

const { Kafka, logLevel } = kafkajs;
export type KafkaClient = InstanceType<typeof Kafka>;

export interface KafkaClientOptions {
  /** Where kafkajs's own log lines go (through the redacting logger); none: kafkajs stays silent. */
  logger?: Logger;
  /** Appended to `kafka.clientId` (`<clientId>-<suffix>`), so brokers can tell the CLI's clients apart. */
  clientSuffix?: string;
  connectionTimeoutMs?: number;
  retry?: RetryOptions;
  /**
   * OAUTHBEARER tokens for library users who build them in code (kafkajs's contract: resolves to
   * `{ value: token }`); wins over kafka.sasl.tokenProvider, and alone selects OAUTHBEARER.
   */
  oauthBearerProvider?: OauthBearerProvider;
  /**
   * kafkajs `ssl` already read by `tlsOptions` (another thread's client: the PEM files are read once
   * per process start, and every client of the process uses the same certificates).
   */
  tls?: ReturnType<typeof tlsOptions>;
  /**
   * Another client of this process has connected with these settings (a client started later for
   * the same process, e.g. in a worker thread): a closed or reset handshake is then an outage, not
   * a refusal of the settings (see withBrokersOnErrors).
   */
  connectedBefore?: boolean;
}

/**
 * Replaces every known secret value inside the strings of a log entry. The logger redacts secret-named
 * keys and URL passwords itself when it writes the line; it cannot know a password or a path by value.
 */
function scrubber(secrets: ReadonlySet<string>): (value: unknown) => unknown {
  const replace = (value: unknown): unknown => {
    if (typeof value === 'string') {
      let out = value;
      for (const secret of secrets) out = out.split(secret).join(REDACTED);
      return out;
    }
    if (Array.isArray(value)) return value.map(replace);
    if (value && typeof value === 'object')
      return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, replace(inner)]));
    return value;
  };
  return replace;
}

/** kafkajs log entries into our pino logger, known secret values scrubbed; its chatty INFO lines become debug. */
export function kafkaLogCreator(logger: Logger, secrets: ReadonlySet<string>) {
  const log = logger.child({ component: 'kafkajs' });
  const scrub = scrubber(secrets);
  return () =>
    ({ namespace, level, log: entry }: LogEntry): void => {
      const { message: raw, ...extra } = entry;
      const message = scrub(raw) as string;
      const fields = { kafka: namespace, ...(scrub(extra) as object) };
      // The listener's sink limits retries on purpose (a failed send makes it replay from its durable
      // LSN: at-least-once, not exactly-once), so kafkajs's warning about it is noise for operators.
      if (typeof message === 'string' && message.startsWith('Limiting retries for the idempotent producer'))
        log.debug(fields, message);
      else if (level === logLevel.ERROR) log.error(fields, message);
      else if (level === logLevel.WARN) log.warn(fields, message);
      else if (level === logLevel.INFO) log.debug(fields, message);
      else log.trace(fields, message);
    };
}

/**
 * The one way walpurge connects to Kafka: every role and every CLI command builds its client here, so
 * brokers, TLS and SASL settings are read in one place.
 */
export function createKafka(config: KafkaConfig, options: KafkaClientOptions = {}): KafkaClient {
  const secrets = new Set(kafkaSecrets(config));
  const provider = options.oauthBearerProvider;
  const sasl = saslOptions(config.sasl, provider);
  if (sasl?.mechanism === 'oauthbearer') {
    // Tokens are known only once fetched: the current one joins the secrets scrubbed from kafkajs's
    // lines, replacing the one before (a long-running client refreshes them for days).
    const fetchToken = sasl.oauthBearerProvider;
    const configured = new Set(secrets);
    let lastToken: string | undefined;
    sasl.oauthBearerProvider = async () => {
      const token = await fetchToken();
      if (token.value.length >= 4) {
        if (lastToken !== undefined && !configured.has(lastToken)) secrets.delete(lastToken);
        secrets.add(token.value);
        lastToken = token.value;
      }
      return token;
    };
  }
  const kafkaOptions: KafkaJsConfig = {
    clientId: options.clientSuffix ? `${config.clientId}-${options.clientSuffix}` : config.clientId,
    brokers: config.brokers,
    ssl: options.tls ?? tlsOptions(config.ssl),
    connectionTimeout: options.connectionTimeoutMs ?? 5_000,
    ...(sasl ? { sasl } : {}),
    ...(options.retry ? { retry: options.retry } : {}),
    ...(options.logger
      ? { logLevel: logLevel.INFO, logCreator: kafkaLogCreator(options.logger, secrets) }
      : { logLevel: logLevel.NOTHING }),
  };
  return withBrokersOnErrors(new Kafka(kafkaOptions), config.brokers, options.connectedBefore ?? false);
}

/**
 * Every client's connect() failure carries the configured brokers (`brokers`: kafkajs's SASL errors
 * do not say which broker refused), and a TLS or SASL refusal becomes one non-retriable line. Only
 * connect() is classified: a broker that closes an established connection (a restart) is an outage.
 * Once any client of this Kafka has connected, the settings are known to work: a handshake closed
 * or reset later (a broker restarting) is retriable; certificate and SASL verdicts stay fatal.
 */
function withBrokersOnErrors(
  kafka: KafkaClient,
  brokers: readonly string[],
  connectedAtStart: boolean,
): KafkaClient {
  let connectedBefore = connectedAtStart;
  const annotate = <T extends { connect(): Promise<void> }>(client: T): T => {
    const connect = client.connect.bind(client);
    client.connect = async () => {
      try {
        await connect();
        connectedBefore = true;
      } catch (error) {
        if (error && typeof error === 'object' && !('brokers' in error))
          Object.defineProperty(error, 'brokers', { value: [...brokers], enumerable: false });
        throw classifyConnectError(error, brokers, connectedBefore);
      }
    };
    return client;
  };
  const { producer, consumer, admin } = kafka;
  kafka.producer = (config) => annotate(producer.call(kafka, config));
  kafka.consumer = (config) => annotate(consumer.call(kafka, config));
  kafka.admin = (config) => annotate(admin.call(kafka, config));
  return kafka;
}
