import { z } from 'zod';
import { DatabaseConfig } from './database.js';
import { KafkaConfig } from './kafka.js';
import { RedisConfig } from './redis.js';
import { HttpConfig, LogConfig } from './http.js';
import { Rule } from './rules.js';
import { FlusherConfig } from './flusher.js';
import { InvalidatorConfig } from './invalidator.js';
import { CdnConfig } from './cdn.js';
import { InspectConfig } from './inspect.js';
import { inspectGroupProblems } from './inspect-group.js';
import { producerClientProblems } from './kafka-producer-client.js';

export * from './common.js';
export * from './database.js';
export * from './database-ssl.js';
export * from './tls.js';
export * from './kafka.js';
export * from './kafka-producer-client.js';
export * from './redis.js';
export * from './http.js';
export * from './rules.js';
export * from './flusher.js';
export * from './invalidator.js';
export * from './cdn.js';
export * from './inspect.js';

/** The whole walpurge.yaml. Sections for components not in use may be omitted. */
export const WalpurgeConfig = z.strictObject({
  $schema: z.string().optional().describe('Path or URL of walpurge.schema.json, for editors.'),
  transport: z
    .enum(['inline', 'kafka'])
    .default('inline')
    .describe(
      'inline: listener hands events to the invalidator in-process; kafka: roles talk through Kafka.',
    ),
  database: DatabaseConfig.optional().describe('The PostgreSQL database whose commits drive invalidation.'),
  kafka: KafkaConfig.optional().describe('Kafka, required when transport is kafka.'),
  redis: RedisConfig.optional().describe('The cache Redis walpurge purges.'),
  http: HttpConfig.default({ port: 9464, host: '0.0.0.0' }).describe('Ops HTTP server.'),
  log: LogConfig.default({ level: 'info' }).describe('Logging.'),
  invalidator: InvalidatorConfig.prefault({}).describe('Invalidator batching, retries and shutdown.'),
  cdn: CdnConfig.optional().describe('CDN purge drivers (Cloudflare, Fastly, CloudFront, generic HTTP).'),
  flusher: FlusherConfig.optional().describe('Write-behind flusher (BullMQ queue → PostgreSQL).'),
  inspect: InspectConfig.optional().describe(
    'Consistency observer: checks sampled changes against the cache and the database (docs/consistency.md).',
  ),
  rules: z.array(Rule).default([]).describe('Which rows map to which cache entries.'),
});
export type WalpurgeConfig = z.infer<typeof WalpurgeConfig>;
export type WalpurgeConfigInput = z.input<typeof WalpurgeConfig>;

/**
 * Checks that span sections. Kept outside the zod object because zod skips refinements once any
 * field fails, and users should see every problem in one run. Works on raw (unvalidated) input.
 */
export function crossSectionProblems(raw: unknown): Array<{ path: PropertyKey[]; message: string }> {
  if (!raw || typeof raw !== 'object') return [];
  const config = raw as Record<string, unknown>;
  const problems: Array<{ path: PropertyKey[]; message: string }> = [];
  if (config['transport'] === 'kafka' && !config['kafka']) {
    problems.push({ path: ['kafka'], message: "transport is 'kafka' but no kafka section is configured" });
  }
  problems.push(...deadLetterTableRuleProblems(config));
  problems.push(...kafkaReplicationProblems(config['kafka']));
  problems.push(...producerClientProblems(config['kafka']));
  problems.push(...inspectGroupProblems(config));
  return problems;
}

/** An explicit min.insync.replicas above the replication factor would refuse every acks=all write. */
function kafkaReplicationProblems(kafka: unknown): Array<{ path: PropertyKey[]; message: string }> {
  if (!kafka || typeof kafka !== 'object') return [];
  const { replicationFactor, minInsyncReplicas } = kafka as Record<string, unknown>;
  if (typeof replicationFactor !== 'number' || typeof minInsyncReplicas !== 'number') return [];
  if (minInsyncReplicas <= replicationFactor) return [];
  return [
    {
      path: ['kafka', 'minInsyncReplicas'],
      message: `min.insync.replicas ${minInsyncReplicas} is above kafka.replicationFactor ${replicationFactor}: Kafka would refuse every write (acks=all)`,
    },
  ];
}

/** `schema.table` for a table name as rules write it ('table' is public.table). */
export const qualified = (name: string): string => (name.includes('.') ? name : `public.${name}`);

/**
 * A rule on the dead-letter table would feed refusals back into the pipeline: each stored refusal
 * is a change of that table, which the rule may get refused again, stored again, and so on.
 */
function deadLetterTableRuleProblems(
  config: Record<string, unknown>,
): Array<{ path: PropertyKey[]; message: string }> {
  const database = config['database'];
  const rules = config['rules'];
  if (!Array.isArray(rules)) return [];
  const configured =
    database && typeof database === 'object'
      ? (database as Record<string, unknown>)['deadLetterTable']
      : undefined;
  const deadLetterTable = qualified(typeof configured === 'string' ? configured : 'walpurge_dead_letters');
  const problems: Array<{ path: PropertyKey[]; message: string }> = [];
  rules.forEach((rule: unknown, index) => {
    const table = rule && typeof rule === 'object' ? (rule as Record<string, unknown>)['table'] : undefined;
    if (typeof table === 'string' && qualified(table) === deadLetterTable)
      problems.push({
        path: ['rules', index, 'table'],
        message: `${deadLetterTable} is walpurge's dead-letter table (database.deadLetterTable): a rule on it would feed refused events back into the pipeline`,
      });
  });
  return problems;
}
