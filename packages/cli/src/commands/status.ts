import { errorMessage } from '@walpurge/core';
import { unsafeHeadline } from '@walpurge/kafka';
import { ExitCode, UsageError, writeLine } from '../cli-io.js';
import { configOption, jsonOption, type CommandSpec } from '../command.js';
import { loadCliConfig } from '../load-cli-config.js';
import { connectDatabase } from '../live/connect-database.js';
import { readSlotStatus, type SlotStatus } from '../status/slot-status.js';
import { readKafkaStatus, type KafkaStatus } from '../status/kafka-status.js';
import { readDeadLetterTableStatus, type DeadLetterTableStatus } from '../status/dead-letter-table-status.js';
import { readCdnQueueStatus, type CdnQueueStatus } from '@walpurge/invalidator';
import { readWriteBehindStatus, type WriteBehindStatus } from '../status/write-behind-status.js';
import { formatBytes, formatDuration, renderPairs } from '../format/units.js';

interface Status {
  transport: string;
  slot: SlotStatus;
  kafka: KafkaStatus | { error: string } | null;
  /** transport inline: the dead-letter table (database.deadLetterTable). */
  deadLetterTable: DeadLetterTableStatus | null;
  writeBehind: WriteBehindStatus | { error: string } | null;
  /** Inline transport with a CDN: the CDN queue table (kafka: the lanes' groups on kafka.cdnTopic). */
  cdnQueue: CdnQueueStatus | { error: string } | null;
}

function describeSlot(slot: SlotStatus): Array<[string, string]> {
  if (!slot.exists)
    return [
      ['replication slot', `${slot.slot}: does not exist (created when walpurge starts)`],
      ['current WAL LSN', slot.currentLsn],
    ];
  const state = slot.active ? `active (pid ${slot.activePid ?? '?'})` : 'inactive: no walpurge is reading it';
  return [
    ['replication slot', `${slot.slot}: ${state}${slot.walStatus ? `, wal_status ${slot.walStatus}` : ''}`],
    ['confirmed LSN', slot.confirmedLsn ?? 'none'],
    ['current WAL LSN', slot.currentLsn],
    ['WAL retained', slot.walRetainedBytes == null ? 'unknown' : formatBytes(slot.walRetainedBytes)],
    [
      'replication lag',
      slot.lagBytes == null ? 'unknown' : `${formatBytes(slot.lagBytes)} not yet acknowledged`,
    ],
  ];
}

function describeKafka(status: Status): Array<[string, string]> {
  if (status.kafka === null)
    return [
      ['consumer lag', `n/a (transport ${status.transport})`],
      ...(status.deadLetterTable
        ? [
            [
              'dead-letter events',
              `${status.deadLetterTable.deadLetters} in ${status.deadLetterTable.table}`,
            ] as [string, string],
          ]
        : []),
    ];
  if ('error' in status.kafka) return [['kafka', `unavailable: ${status.kafka.error}`]];
  const kafka = status.kafka;
  return [
    [
      'consumer lag',
      kafka.consumerLag === null
        ? `${kafka.consumerGroup} has not committed on ${kafka.topic} yet`
        : `${kafka.consumerLag} events (group ${kafka.consumerGroup}, ${kafka.partitions.length} partitions)`,
    ],
    ['dead-letter events', `${kafka.deadLetters} in ${kafka.deadLetterTopic}`],
    ['topic durability', describeDurability(kafka)],
  ];
}

function describeDurability(kafka: KafkaStatus): string {
  if (kafka.durabilityError !== undefined) return `durability unknown: ${kafka.durabilityError}`;
  const flagged = kafka.durability.flatMap(({ verdict, topic, replicationFactor, minInsyncReplicas }) => {
    const problem = verdict.safe
      ? verdict.fewerReplicas && 'fewer replicas than the cluster allows'
      : unsafeHeadline(verdict.kind);
    return problem
      ? [
          `${topic}: ${problem} (replication factor ${replicationFactor}, min.insync.replicas ${minInsyncReplicas}; walpurge validate says how to fix it)`,
        ]
      : [];
  });
  if (flagged.length > 0) return flagged.join('; ');
  if (kafka.durability.length === 0) return `no walpurge topic yet (${kafka.brokers} brokers)`;
  const settings = [
    ...new Set(
      kafka.durability.map(
        ({ replicationFactor, minInsyncReplicas }) =>
          `replication factor ${replicationFactor}, min.insync.replicas ${minInsyncReplicas}`,
      ),
    ),
  ];
  return `ok (${settings.join('; ')}; ${kafka.brokers} brokers)`;
}

function describeCdnQueue(status: Status): Array<[string, string]> {
  if (status.cdnQueue === null) return [];
  if ('error' in status.cdnQueue) return [['CDN queue', `unavailable: ${status.cdnQueue.error}`]];
  const queue = status.cdnQueue;
  if (!queue.exists) return [['CDN queue', `${queue.table}: not created yet (the invalidator creates it)`]];
  if (queue.providers.length === 0) return [['CDN queue', 'empty']];
  return [
    [
      'CDN queue',
      queue.providers
        .map((p) => `${p.provider}: ${p.pending} pending, oldest ${formatDuration(p.oldestAgeMs)} old`)
        .join('; '),
    ],
  ];
}

function describeWriteBehind(status: Status): Array<[string, string]> {
  if (status.writeBehind === null) return [['write-behind', 'n/a (no flusher section)']];
  if ('error' in status.writeBehind) return [['write-behind', `unavailable: ${status.writeBehind.error}`]];
  const wb = status.writeBehind;
  return [
    [
      'write-behind queue',
      `${wb.pending} pending${wb.oldestPendingAgeMs == null ? '' : `, oldest ${formatDuration(wb.oldestPendingAgeMs)} old`}`,
    ],
    ['failed writes', `${wb.failed}${wb.failedCapped ? '+' : ''} (walpurge dlq list --source writes)`],
  ];
}

export const statusCommand: CommandSpec = {
  name: 'status',
  summary:
    'Slot state, confirmed LSN, WAL retained, replication and consumer lag, CDN queue, write-behind queue, dead letters.',
  usage: 'walpurge status [--config FILE] [--json]',
  options: { config: configOption, json: jsonOption },
  details: `Reads PostgreSQL (pg_replication_slots; database.deadLetterTable, and database.cdnQueueTable when
a cdn section exists, when transport is inline), Kafka (consumer-group offsets, dead-letter topic,
the topics' replication and whether it makes acks=all meaningless) when transport is kafka, and the
write-behind queue when a flusher section exists. Exit 1 when the database cannot be reached; parts
that cannot be reached otherwise are reported, not fatal.`,
  async run({ io, options }) {
    const { config } = await loadCliConfig(options, io);
    if (!config.database) throw new UsageError('the config has no database section', 'status');
    const client = await connectDatabase(config.database);
    let slot: SlotStatus;
    let deadLetterTable: DeadLetterTableStatus | null = null;
    let cdnQueue: Status['cdnQueue'] = null;
    try {
      slot = await readSlotStatus(client, config.database.slot);
      if (config.transport === 'inline')
        deadLetterTable = await readDeadLetterTableStatus(client, config.database.deadLetterTable);
      if (config.transport === 'inline' && config.cdn)
        cdnQueue = await readCdnQueueStatus(client, config.database.cdnQueueTable).catch(
          (error: unknown) => ({ error: errorMessage(error) }),
        );
    } finally {
      await client.end().catch(() => {});
    }
    const status: Status = {
      transport: config.transport,
      slot,
      kafka: null,
      deadLetterTable,
      writeBehind: null,
      cdnQueue,
    };
    if (config.transport === 'kafka' && config.kafka) {
      status.kafka = await readKafkaStatus(config.kafka).catch((error: unknown) => ({
        error: errorMessage(error),
      }));
    }
    if (config.flusher) {
      status.writeBehind = await readWriteBehindStatus(config).catch((error: unknown) => ({
        error: errorMessage(error),
      }));
    }
    if (options['json'] === true) {
      writeLine(io.stdout, JSON.stringify(status, null, 2));
    } else {
      io.stdout.write(
        renderPairs([
          ...describeSlot(slot),
          ...describeKafka(status),
          ...describeCdnQueue(status),
          ...describeWriteBehind(status),
        ]),
      );
    }
    return ExitCode.Ok;
  },
};
