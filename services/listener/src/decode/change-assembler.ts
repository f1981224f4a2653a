import { ErrorCode, WalpurgeError } from '@walpurge/core';
import { formatLsn, type ChangeEvent, type EventSource, type Row } from '@walpurge/protocol';
import {
  UNCHANGED_TOAST,
  type PgoutputMessage,
  type RawTuple,
  type RelationMessage,
} from './pgoutput-messages.js';
import type { RelationFacts } from '../setup/relation-catalog.js';
import type { Converter, TypeConverters } from './value-converters.js';

export interface AssemblerOptions {
  /** `source.db` of every event. */
  database: string;
  types: TypeConverters;
  /** Primary-key columns by table OID: the row identity of REPLICA IDENTITY FULL tables. */
  primaryKeys: ReadonlyMap<number, readonly string[]>;
}

export type AssemblerOutput =
  | { type: 'begin'; xid: number; commitTimeMs: number; lsn: string }
  | { type: 'events'; events: ChangeEvent[] }
  | { type: 'commit'; endLsn: bigint; commitTimeMs: number };

interface CompiledRelation {
  schema: string;
  table: string;
  names: string[];
  converters: Converter[];
  /** Replica-identity column positions (what key / old-key tuples carry). */
  identity: number[];
  /** Row identity for `key` (and the Kafka message key). */
  key: number[];
}

interface OpenTransaction {
  xid: number;
  lsn: string;
  commitTs: string;
  origin: string | null;
  sources: Map<number, EventSource>;
}

/**
 * Turns decoded pgoutput messages into protocol v1 change events, one per row change, carrying the
 * transaction's xid, commit LSN, commit timestamp and origin. Holds the relation and type state of
 * one replication session (pgoutput re-sends relations on every new session).
 */
export class ChangeAssembler {
  private readonly relations = new Map<number, CompiledRelation>();
  private readonly facts = new Map<number, RelationFacts>();
  private transaction: OpenTransaction | undefined;

  constructor(private readonly options: AssemblerOptions) {}

  /**
   * Catalog facts for the relation message of `oid` that comes next: a partition's changes are then
   * reported under its partitioned root, and its primary key identifies rows under REPLICA IDENTITY FULL.
   */
  learnRelation(oid: number, facts: RelationFacts): void {
    this.facts.set(oid, facts);
  }

  get inTransaction(): boolean {
    return this.transaction !== undefined;
  }

  apply(message: PgoutputMessage): AssemblerOutput | undefined {
    switch (message.tag) {
      case 'begin': {
        const lsn = formatLsn(message.finalLsn);
        this.transaction = {
          xid: message.xid,
          lsn,
          commitTs: new Date(Number(message.commitTimeMicros / 1000n)).toISOString(),
          origin: null,
          sources: new Map(),
        };
        return {
          type: 'begin',
          xid: message.xid,
          commitTimeMs: Number(message.commitTimeMicros / 1000n),
          lsn,
        };
      }
      case 'origin':
        if (this.transaction) this.transaction.origin = message.name;
        return undefined;
      case 'commit':
        this.transaction = undefined;
        return {
          type: 'commit',
          endLsn: message.endLsn,
          commitTimeMs: Number(message.commitTimeMicros / 1000n),
        };
      case 'relation':
        this.relations.set(message.relationOid, this.compile(message));
        return undefined;
      case 'type':
        this.options.types.learn(message.typeOid, message.name, message.schema);
        return undefined;
      case 'message':
        return undefined;
      case 'insert': {
        const relation = this.relation(message.relationOid);
        const { row: after } = toRow(relation, message.newTuple, undefined);
        return this.events(
          relation,
          message.relationOid,
          'c',
          pick(relation, relation.key, after),
          null,
          after,
          [],
        );
      }
      case 'update': {
        const relation = this.relation(message.relationOid);
        const old = message.oldTuple ? toRow(relation, message.oldTuple, undefined).row : undefined;
        // Unchanged TOAST columns are filled from the old row when REPLICA IDENTITY FULL sent it.
        const { row: after, unchanged } = toRow(relation, message.newTuple, old);
        let before: Row;
        if (old) before = old;
        else if (message.keyTuple)
          before = pick(relation, relation.identity, toRow(relation, message.keyTuple, undefined).row);
        // Identity unchanged (so not sent): the old identity columns equal the new ones.
        else before = pick(relation, relation.identity, after);
        const keySource = relation.key.every((i) => (relation.names[i] as string) in after) ? after : before;
        return this.events(
          relation,
          message.relationOid,
          'u',
          pick(relation, relation.key, keySource),
          before,
          after,
          unchanged,
        );
      }
      case 'delete': {
        const relation = this.relation(message.relationOid);
        const tuple = message.oldTuple ?? message.keyTuple;
        const full = tuple ? toRow(relation, tuple, undefined).row : {};
        const before = message.oldTuple ? full : pick(relation, relation.identity, full);
        return this.events(
          relation,
          message.relationOid,
          'd',
          pick(relation, relation.key, before),
          before,
          null,
          [],
        );
      }
      case 'truncate': {
        const events = message.relationOids.map((oid) => {
          const relation = this.relation(oid);
          return this.event(relation, oid, 't', null, null, null, []);
        });
        return { type: 'events', events };
      }
    }
  }

  private events(...args: Parameters<ChangeAssembler['event']>): AssemblerOutput {
    return { type: 'events', events: [this.event(...args)] };
  }

  private event(
    relation: CompiledRelation,
    oid: number,
    op: ChangeEvent['op'],
    key: Row | null,
    before: Row | null,
    after: Row | null,
    unchanged: string[],
  ): ChangeEvent {
    const transaction = this.transaction;
    if (!transaction) {
      throw new WalpurgeError(ErrorCode.Replication, 'row change outside a transaction', { retriable: true });
    }
    let source = transaction.sources.get(oid);
    if (!source) {
      source = {
        db: this.options.database,
        schema: relation.schema,
        table: relation.table,
        lsn: transaction.lsn,
        xid: transaction.xid,
        commitTs: transaction.commitTs,
        origin: transaction.origin,
      };
      transaction.sources.set(oid, source);
    }
    return { v: 1, op, source, key: nonEmpty(key), before: nonEmpty(before), after, unchanged };
  }

  private relation(oid: number): CompiledRelation {
    const relation = this.relations.get(oid);
    if (!relation) {
      throw new WalpurgeError(
        ErrorCode.Replication,
        `row change for unknown relation ${oid} (no relation message)`,
        {
          retriable: true,
        },
      );
    }
    return relation;
  }

  private compile(message: RelationMessage): CompiledRelation {
    const names = message.columns.map((column) => column.name);
    const identity = message.columns.flatMap((column, i) => (column.isKey ? [i] : []));
    let key = identity;
    // Under FULL every column is "identity": the primary key is the row's stable identity. A FULL
    // table without one has no stable identity (the "key" would change with every update and scatter
    // one row's changes over partitions): its key is null, so the Kafka key is the table alone and all
    // of its changes stay in commit order in one partition. `before` still carries the whole old row.
    const facts = this.facts.get(message.relationOid);
    if (message.replicaIdentity === 'full') {
      const primaryKey =
        facts && facts.primaryKey.length > 0
          ? facts.primaryKey
          : this.options.primaryKeys.get(message.relationOid);
      const positions = primaryKey?.map((name) => names.indexOf(name)) ?? [];
      key = positions.length > 0 && positions.every((i) => i >= 0) ? positions : [];
    }
    return {
      schema: facts?.root?.schema ?? message.schema,
      table: facts?.root?.table ?? message.table,
      names,
      converters: message.columns.map((column) => this.options.types.converterFor(column.typeOid)),
      identity,
      key,
    };
  }
}

function toRow(
  relation: CompiledRelation,
  tuple: RawTuple,
  fallback: Row | undefined,
): { row: Row; unchanged: string[] } {
  const row: Row = {};
  const unchanged: string[] = [];
  const count = Math.min(tuple.length, relation.names.length);
  for (let i = 0; i < count; i += 1) {
    const name = relation.names[i] as string;
    const value = tuple[i];
    if (value === UNCHANGED_TOAST) {
      if (fallback && name in fallback) row[name] = fallback[name];
      else unchanged.push(name);
    } else if (value === null || value === undefined) row[name] = null;
    else row[name] = (relation.converters[i] as Converter)(value);
  }
  return { row, unchanged };
}

function pick(relation: CompiledRelation, positions: readonly number[], row: Row): Row {
  const out: Row = {};
  for (const i of positions) {
    const name = relation.names[i] as string;
    if (name in row) out[name] = row[name];
  }
  return out;
}

/** An identity with no columns (REPLICA IDENTITY NOTHING) is "not available": null, not {}. */
function nonEmpty(row: Row | null): Row | null {
  return row && Object.keys(row).length > 0 ? row : null;
}
