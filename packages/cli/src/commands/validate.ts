import type pg from 'pg';
import {
  columnsReadByTable,
  ConfigError,
  databaseAddress,
  databaseSslWarning,
  kafkaSslWarning,
  tlsFileProblems,
  type ConfigProblem,
  type DatabaseConfig,
  type WalpurgeConfig,
} from '@walpurge/config';
import { ErrorCode } from '@walpurge/core';
import {
  cdnSupportsPrefixes,
  cdnUrlTemplateProblems,
  compileRules,
  ruleWarnings,
  truncateProblems,
  validateRulesAgainstSchema,
  type ProblemAt,
} from '@walpurge/rules';
import { ExitCode, UsageError, writeLine } from '../cli-io.js';
import { configOption, jsonOption, stringOption, type CommandSpec, type OptionValues } from '../command.js';
import { loadCliConfig } from '../load-cli-config.js';
import { connectDatabase } from '../live/connect-database.js';
import { patternWarnings } from '../live/pattern-cost.js';
import { loadTableCatalog, type TableInfo } from '../live/table-catalog.js';
import { rulePublicationProblems } from '../live/rule-publication.js';
import { checkServer, standbyProblem } from '../live/server-checks.js';
import { checkSlot } from '../live/slot-checks.js';
import { cdnQueueTableProblems, deadLetterTableProblems } from '../live/state-table-checks.js';
import { flusherConfigProblems, flusherTableProblems, queueRedisProblems } from '../live/flusher-checks.js';
import { kafkaTopicChecks } from '../live/kafka-checks.js';
import { estimatePurges, type PurgeEstimate } from '../purge-estimate/purge-estimate.js';

export const validateCommand: CommandSpec = {
  name: 'validate',
  summary:
    'Check walpurge.yaml, then the live database (tables, columns, REPLICA IDENTITY, wal_level, privileges).',
  usage: 'walpurge validate [--config FILE] [--offline] [--scan-rate KEYS_PER_S] [--json]',
  options: {
    config: configOption,
    offline: {
      type: 'boolean',
      description:
        'Check the file only; connect to no service (database, Redis, Kafka), and report unreadable TLS files as warnings.',
      env: 'WALPURGE_OFFLINE',
    },
    json: jsonOption,
    'scan-rate': {
      type: 'string',
      description:
        'SCAN speed of the cache Redis in keys/s for the pattern cost estimate, instead of measuring it.',
      valueName: 'KEYS_PER_S',
    },
  },
  details: `Every problem is listed at once, as FILE:LINE:COLUMN: PATH: MESSAGE. Warnings (rules that are
valid but may purge more, or leave entries stale) are printed to stderr and do not fail the check.
TLS files (database.ssl and the URL's sslrootcert/sslcert/sslkey, redis.tls,
flusher.queueRedisTls, kafka.ssl, the OAUTHBEARER token module) that cannot be read or hold no PEM
block of their kind are errors naming the option, never the path (--offline: warnings, as the
certificates may exist only where walpurge runs); a connection that encrypts without checking the
server's certificate (database sslmode no-verify) is a warning.
Live checks run when the config has a database section; an unreachable database is an error
(exit 1) unless --offline is given.
With a cdn section, it prints a CDN purge estimate per provider (items and API calls per second at
the tables' recorded change rates) and warns where a provider's limit would be exceeded.
Pattern rules get a warning with the cost of the keyspace sweep
each purge waits for (DBSIZE of the cache Redis and a short SCAN sample, or --scan-rate), and a hint
where a tag per row would serve; an unreachable cache Redis only skips that estimate.
With a flusher section, it checks what the flusher would refuse at start-up: the write-behind
tables (primary key, bigint version column) and a queue Redis that keeps writes (noeviction, AOF;
unreachable is an error unless --offline).
With transport kafka, it connects to the brokers as the roles do (TLS, SASL): a refused
certificate or password, or unreachable brokers, is an error unless --offline. It then reads
walpurge's topics as the roles do at start: a replication factor the cluster cannot give is an
error when a topic is still to create (a warning when all exist); an
existing topic whose min.insync.replicas is above its replication factor is an error (every write
refused); one whose replication makes acks=all meaningless (one replica on several brokers, or
min.insync.replicas 1 with several replicas) or that has fewer replicas than min(3, brokers) is a
warning with the command that fixes it.`,
  async run({ io, options }) {
    const json = options['json'] === true;
    let loaded;
    try {
      loaded = await loadCliConfig(options, io, { tlsFiles: 'skip' });
    } catch (error) {
      if (json && error instanceof ConfigError) {
        writeLine(
          io.stdout,
          JSON.stringify({ ok: false, file: error.file, code: error.code, problems: error.problems }),
        );
        return ExitCode.Failure;
      }
      throw error;
    }
    const { config, file } = loaded;
    const compiled = compileRules(config.rules).rules;
    // Rules that handle truncate but cannot purge what it makes stale (needs no database).
    const problems: ConfigProblem[] = [
      ...truncateProblems(compiled, loaded.problemAt, { cdnPrefixPurge: cdnSupportsPrefixes(config.cdn) }),
      ...cdnUrlTemplateProblems(compiled, loaded.problemAt),
    ];
    // Valid but probably not what was meant (e.g. a CDN prefix ending in a row value).
    const warnings: ConfigProblem[] = ruleWarnings(compiled, loaded.problemAt);
    const flusherChecks = flusherConfigProblems(config, loaded.problemAt);
    problems.push(...flusherChecks.problems);
    warnings.push(...flusherChecks.warnings);
    // TLS files: where validate runs offline (CI) they may exist only where walpurge runs.
    const tlsFiles = tlsFileProblems(config).map((file) => loaded.problemAt(file.path, file.message));
    if (options['offline'] === true) warnings.push(...tlsFiles);
    else problems.push(...tlsFiles);
    const sslWarning = config.database ? databaseSslWarning(config.database) : undefined;
    if (sslWarning) warnings.push(loaded.problemAt(['database', 'url'], sslWarning));
    const kafkaWarning = kafkaSslWarning(config.kafka);
    if (kafkaWarning) warnings.push(loaded.problemAt(['kafka', 'ssl', 'rejectUnauthorized'], kafkaWarning));
    // A live check over a connection whose TLS files are missing would only repeat the problem.
    const filesMissing = (section: string): boolean => tlsFiles.some((file) => file.path.startsWith(section));
    const databaseFilesMissing = filesMissing('database');
    let estimate: PurgeEstimate | undefined;
    let live: 'skipped (--offline)' | 'skipped (no database section)' | 'passed' | 'failed' =
      'skipped (no database section)';

    if (options['offline'] === true) live = 'skipped (--offline)';
    else if (config.database && databaseFilesMissing) live = 'failed';
    else if (config.database) {
      const offlineProblems = problems.length;
      const client = await connectDatabase(config.database);
      try {
        const catalog = await loadTableCatalog(
          client,
          config.rules.map((rule) => rule.table),
        );
        problems.push(
          ...(await validateRulesAgainstSchema(config.rules, client, loaded.problemAt, warnings, {
            publication: config.database.publication,
          })),
        );
        problems.push(
          ...(await serverProblems(client, config, config.database, catalog, loaded.problemAt, warnings)),
        );
        estimate = await estimatePurges(config, compiled, client);
      } finally {
        await client.end().catch(() => {});
      }
      live = problems.length === offlineProblems ? 'passed' : 'failed';
    }
    // The flusher's queue Redis must keep accepted writes, as the flusher itself checks at start-up.
    if (options['offline'] !== true && !filesMissing('flusher'))
      problems.push(...(await queueRedisProblems(config, loaded.problemAt)));
    // The brokers as the roles connect (TLS, SASL), then the topics' replication as they check it.
    if (options['offline'] !== true && !filesMissing('kafka')) {
      const kafka = await kafkaTopicChecks(config, loaded.problemAt);
      problems.push(...kafka.problems);
      warnings.push(...kafka.warnings);
    }
    // CDN purge volume per provider vs its limits (per event only without a database).
    estimate ??= await estimatePurges(config, compiled, undefined);
    warnings.push(...(estimate?.warnings ?? []));
    // Pattern rules: the keyspace sweep each purge waits for, and where a tag would serve instead.
    warnings.push(
      ...(await patternWarnings({
        rules: compiled,
        problemAt: loaded.problemAt,
        ...(config.redis && options['offline'] !== true && !filesMissing('redis')
          ? { redis: config.redis }
          : {}),
        ...scanRateOption(options),
      })),
    );
    const byPosition = (a: ConfigProblem, b: ConfigProblem): number =>
      (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0);
    problems.sort(byPosition);
    warnings.sort(byPosition);

    if (json) {
      writeLine(
        io.stdout,
        JSON.stringify({
          ok: problems.length === 0,
          file,
          rules: config.rules.length,
          live,
          problems,
          warnings,
          ...(estimate ? { estimate: { tables: estimate.tables, providers: estimate.providers } } : {}),
        }),
      );
      return problems.length === 0 ? ExitCode.Ok : ExitCode.Failure;
    }
    for (const warning of warnings) writeLine(io.stderr, formatWarning(file, warning));
    for (const line of estimate?.lines ?? []) writeLine(io.stdout, line);
    if (problems.length > 0) {
      throw new ConfigError(ErrorCode.SchemaMismatch, file, problems);
    }
    const target =
      config.database && live === 'passed' ? ` against ${databaseAddress(config.database.url)}` : '';
    writeLine(
      io.stdout,
      `${file}: OK (${config.rules.length} rule${config.rules.length === 1 ? '' : 's'}; live checks${target} ${live})`,
    );
    return ExitCode.Ok;
  },
};

function scanRateOption(options: OptionValues): { statedRate?: number } {
  const text = stringOption(options, 'scan-rate');
  if (text === undefined) return {};
  const rate = Number(text);
  if (!Number.isFinite(rate) || rate <= 0) {
    throw new UsageError(
      `--scan-rate must be a positive number of keys per second, not '${text}'`,
      'validate',
    );
  }
  return { statedRate: rate };
}

function formatWarning(file: string, warning: ConfigProblem): string {
  const at = warning.line === undefined ? file : `${file}:${warning.line}:${warning.column ?? 1}`;
  return `${at}: warning: ${warning.path ? `${warning.path}: ` : ''}${warning.message}`;
}

/**
 * The checks of the server walpurge streams from: settings, role, publication, slot, state tables.
 * A standby is reported alone: the rest would describe a server walpurge does not use, and some
 * (the WAL position) fail during recovery.
 */
async function serverProblems(
  client: pg.Client,
  config: WalpurgeConfig,
  database: DatabaseConfig,
  catalog: Map<string, TableInfo>,
  problemAt: ProblemAt,
  warnings: ConfigProblem[],
): Promise<ConfigProblem[]> {
  const standby = await standbyProblem(client, problemAt);
  if (standby) return [standby];
  const problems = [
    ...(await checkServer(client, database, catalog, problemAt, columnsReadByTable(config))),
    ...(await rulePublicationProblems(client, database, config.rules, problemAt, warnings)),
  ];
  const slot = await checkSlot(client, database, problemAt);
  problems.push(...slot.problems);
  warnings.push(...slot.warnings);
  if (config.transport === 'inline')
    problems.push(...(await deadLetterTableProblems(client, database, problemAt)));
  if (config.transport === 'inline' && config.cdn)
    problems.push(...(await cdnQueueTableProblems(client, database, problemAt)));
  problems.push(...(await flusherTableProblems(client, config, problemAt)));
  return problems;
}
