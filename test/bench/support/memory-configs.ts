import { stringify } from 'yaml';

/** Everything per run named after the run, so that runs never share a slot, topic or group. */
export interface RunNames {
  slot: string;
  publication: string;
  topic: string;
  group: string;
}

/**
 * `walpurge run --role listener`: the defaults, except the byte bound under test, heartbeats off (the
 * topic must hold the workload's changes only) and a larger message limit where rows need it.
 */
export function listenerYaml(opts: {
  databaseUrl: string;
  table: string;
  names: RunNames;
  brokers: string[];
  partitions: number;
  maxPendingBytes: number;
  maxMessageBytes: number | undefined;
  httpPort: number;
}): string {
  const { names } = opts;
  return stringify({
    transport: 'kafka',
    database: {
      url: opts.databaseUrl,
      slot: names.slot,
      publication: names.publication,
      createPublication: false,
      tables: [opts.table],
      heartbeatIntervalMs: 0,
      maxPendingBytes: opts.maxPendingBytes,
    },
    kafka: {
      brokers: opts.brokers,
      topic: names.topic,
      partitions: opts.partitions,
      deadLetterTopic: `${names.topic}.dlq`,
      ...(opts.maxMessageBytes === undefined ? {} : { maxMessageBytes: opts.maxMessageBytes }),
    },
    // A known port: the benchmark scrapes /metrics for the heap and the pending bytes.
    http: { port: opts.httpPort, host: '127.0.0.1' },
    log: { level: 'warn' },
  });
}

/** `walpurge run --role invalidator`: the defaults, except the byte bound under test; one exact key per change. */
export function invalidatorYaml(opts: {
  table: string;
  names: RunNames;
  brokers: string[];
  partitions: number;
  redisUrl: string;
  maxFetchBytes: number;
  httpPort: number;
}): string {
  const { names } = opts;
  return stringify({
    transport: 'kafka',
    kafka: {
      brokers: opts.brokers,
      topic: names.topic,
      partitions: opts.partitions,
      deadLetterTopic: `${names.group}.dlq`,
      cdnTopic: `${names.group}.cdn`,
      consumerGroup: names.group,
    },
    redis: { url: opts.redisUrl, keyPrefix: `${names.group}:` },
    invalidator: { maxFetchBytes: opts.maxFetchBytes },
    rules: [{ table: opts.table, on: ['insert'], redis: { keys: ['bench:{id}'] } }],
    // A known port: the benchmark scrapes /metrics for the heap and the pending bytes.
    http: { port: opts.httpPort, host: '127.0.0.1' },
    log: { level: 'warn' },
  });
}
